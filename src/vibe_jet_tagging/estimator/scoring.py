"""scikit-learn scorers for :class:`~.classifier.LocalLLMClassifier`.

- :func:`roc_auc_scorer`: ROC AUC of the stated P(quark), with a defined treatment of the jets
  the model gave no label. scikit-learn's ``scoring="roc_auc"`` reads ``predict_proba``,
  whose nan for such a jet makes the score fail (``Input contains NaN``) as soon as one jet
  of a fold is unlabelled; this scorer counts them as you choose, by default as wrong, as
  ``score`` (accuracy) does.
- :func:`usage_scorer`: what the answers cost per jet (tokens, seconds), to read beside the
  scores of a search: ``GridSearchCV(..., scoring={"auc": roc_auc_scorer(), "reasoning":
  usage_scorer("reasoning_tokens")}, refit="auc")`` gives ``mean_test_reasoning`` per setting.

Both read the answers the classifier keeps per fit, so scoring asks the server nothing more.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["UNLABELLED_POLICIES", "USAGE_MEASURES", "roc_auc_scorer", "usage_scorer"]

Unlabelled = Literal["wrong", "drop"]
UNLABELLED_POLICIES: tuple[str, ...] = get_args(Unlabelled)
"""How :func:`roc_auc_scorer` can count a jet without a label (or a probability 0..1)."""

UsageMeasure = Literal["input_tokens", "output_tokens", "reasoning_tokens", "latency"]
USAGE_MEASURES: tuple[str, ...] = get_args(UsageMeasure)


class _RocAuc:
    """ROC AUC of P(quark) with unlabelled jets counted as :func:`roc_auc_scorer` says."""

    def __init__(self, unlabelled: Unlabelled | float) -> None:
        self.unlabelled = unlabelled

    def __repr__(self) -> str:
        return f"roc_auc_scorer(unlabelled={self.unlabelled!r})"

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        quark = np.asarray(estimator.predict_proba(X), dtype=float)[:, 1]
        truth = np.asarray(y).astype(int)
        missing = np.isnan(quark)
        if self.unlabelled == "drop":
            quark, truth = quark[~missing], truth[~missing]
            if len(set(truth.tolist())) < 2:
                raise ValueError(
                    f"roc_auc_scorer(unlabelled='drop'): the {len(truth)} labelled jets are "
                    "not of both kinds, so there is no AUC"
                )
        elif self.unlabelled == "wrong":
            # Ranked on the wrong side of every stated probability (0..1): a quark jet below
            # all of them, a gluon jet above: each loses every pair it is in.
            quark = np.where(missing, np.where(truth == 1, -1.0, 2.0), quark)
        else:
            quark = np.where(missing, float(self.unlabelled), quark)
        return float(roc_auc_score(truth, quark))


def roc_auc_scorer(unlabelled: Unlabelled | float = "wrong") -> _RocAuc:
    """A scorer (``scoring=``) giving the ROC AUC of the stated P(quark).

    A jet the model gave no label (``predict_proba`` nan) counts as ``unlabelled`` says:

    - ``"wrong"`` (default): ranked on the wrong side of every other jet (a quark jet below
      all, a gluon jet above all), so it loses every pair it is in: the worst case, as
      ``score`` counts such a jet as wrong;
    - ``"drop"``: left out (the AUC of the labelled jets only: optimistic; what the report's
      AUC row does, which says how many it left out);
    - a number in [0, 1]: that P(quark) for each (0.5: no information either way).

    ``scoring="roc_auc"`` has no such choice: one unlabelled jet makes it fail.
    """
    if isinstance(unlabelled, bool) or not (
        unlabelled in UNLABELLED_POLICIES
        or (isinstance(unlabelled, int | float) and 0 <= unlabelled <= 1)
    ):
        raise ValueError(
            f"unlabelled must be 'wrong', 'drop' or a probability in [0, 1], got {unlabelled!r}"
        )
    return _RocAuc(unlabelled)


class _Usage:
    def __init__(self, measure: UsageMeasure) -> None:
        self.measure = measure

    def __repr__(self) -> str:
        return f"usage_scorer({self.measure!r})"

    def __call__(self, estimator: Any, X: Any, y: Any = None) -> float:
        results = estimator.tag(X)  # the answers kept by this fit: nothing is asked again
        if self.measure == "latency":
            values = [r.latency for r in results]
        else:
            values = [getattr(r.usage, self.measure) for r in results]
        return float(np.mean(values)) if values else math.nan


def usage_scorer(measure: UsageMeasure = "reasoning_tokens") -> _Usage:
    """A scorer giving the mean ``measure`` per jet of the answers: ``"input_tokens"``,
    ``"output_tokens"``, ``"reasoning_tokens"`` or ``"latency"`` (seconds in requests, as
    recorded when asked: a cache hit keeps what it cost then).

    A measure, not a score to maximise: give it beside a real one with ``refit`` naming that
    one. On the emulated server the reasoning grows with the effort as gpt-oss's does (about
    120, 370 and 2,000 tokens) while its answers stay the same, so this is what differs
    between efforts there.
    """
    if measure not in USAGE_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(USAGE_MEASURES)}, got {measure!r}")
    return _Usage(measure)
