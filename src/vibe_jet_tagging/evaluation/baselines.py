"""Reference taggers the LLM is compared with: a multiplicity cut and a logistic regression.

Both return the metrics of :func:`~.evaluation.metrics.evaluate_scores` (accuracy at the
best cut on the jets scored, stated as ``threshold_method``) plus the per-jet ``scores`` and
the jets' ``indices`` in their source, so an LLM evaluated on the same jets can be drawn on the
same ROC plot. :func:`why_not` says which baselines a set of jets is too small for.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..jets.jet import OBSERVABLES
from .metrics import DEFAULT_INTERVAL_LEVEL, evaluate_scores

if TYPE_CHECKING:
    from ..jets.dataset import JetDataset

__all__ = [
    "BASELINES",
    "LR_FEATURES",
    "LR_MIN_PER_CLASS",
    "cross_validated_scores",
    "logistic_regression_baseline",
    "multiplicity_baseline",
    "run_baselines",
    "why_not",
]

logger = logging.getLogger(__name__)

LR_FEATURES: tuple[str, ...] = tuple(
    name for name in OBSERVABLES if name not in ("pt", "rapidity", "phi")
)
"""Observables the logistic regression uses. Jet pt, rapidity and azimuth are left out: the
selection (500 < pT < 550 GeV, |y| < 1.7) and the azimuthal symmetry make their distributions
the same for quarks and gluons by construction, so they only add noise."""

LR_MIN_PER_CLASS = 10
"""Quark and gluon jets the logistic regression needs, each: its 5-fold cross-validation
then trains on at least 8 of each kind and scores at least 2 of each kind per fold."""

BASELINES: dict[str, str] = {
    "multiplicity": "multiplicity cut",
    "logistic_regression": "logistic regression",
}
"""The baselines by key, with what to call them."""


def why_not(name: str, n_quark: int, n_gluon: int, *, folds: int = 5) -> str | None:
    """Why baseline ``name`` cannot run on ``n_quark`` quark and ``n_gluon`` gluon jets.

    ``None`` when it can. The multiplicity cut needs one jet of each kind (an AUC does); the
    cross-validated logistic regression needs :data:`LR_MIN_PER_CLASS` of each (or ``folds``).
    """
    have = f"these jets are {n_quark} quark and {n_gluon} gluon"
    if min(n_quark, n_gluon) < 1:
        return f"needs quark and gluon jets; {have}"
    need = max(LR_MIN_PER_CLASS, folds)
    if name == "logistic_regression" and min(n_quark, n_gluon) < need:
        return (
            f"its {folds}-fold cross-validation needs at least {need} quark and {need} gluon "
            f"jets; {have}"
        )
    return None


def _labels(dataset: JetDataset) -> NDArray[np.int8]:
    if dataset.labels is None:
        raise ValueError(f"{dataset.source}: the jets have no labels; baselines need them")
    if len(np.unique(dataset.labels)) < 2:
        raise ValueError(f"{dataset.source}: baselines need both quark and gluon jets")
    return dataset.labels


def _result(
    dataset: JetDataset,
    scores: NDArray[np.float64],
    description: str,
    *,
    n_bootstrap: int,
    seed: int,
    level: float,
    eps_q: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    out = evaluate_scores(
        _labels(dataset),
        scores,
        threshold=None,
        n_bootstrap=n_bootstrap,
        seed=seed,
        level=level,
        eps_q=eps_q,
    )
    out.update(description=description, **extra)
    out["scores"] = scores
    out["indices"] = np.asarray(dataset.indices)
    return out


def multiplicity_baseline(
    dataset: JetDataset,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_INTERVAL_LEVEL,
    observables: dict[str, NDArray[np.float64]] | None = None,
    eps_q: Any = None,
) -> dict[str, Any]:
    """Score = minus the constituent multiplicity (gluon jets have more constituents).

    The accuracy is at the best multiplicity cut; ``cut`` reports it as "quark when
    multiplicity <= cut". ``observables`` (from ``dataset.observables()``) saves recomputing;
    ``eps_q`` adds the ROC curve there (see :func:`~.evaluation.metrics.evaluate_scores`).
    """
    _labels(dataset)
    obs = dataset.observables() if observables is None else observables
    scores = -obs["multiplicity"]
    out = _result(
        dataset,
        scores,
        "score = -(number of constituents); accuracy at the best cut",
        n_bootstrap=n_bootstrap,
        seed=seed,
        level=level,
        eps_q=eps_q,
        probability=False,
    )
    out["cut"] = -out["threshold"] if np.isfinite(out["threshold"]) else None
    return out


def cross_validated_scores(
    features: NDArray[np.float64],
    labels: NDArray[np.integer[Any]],
    *,
    estimator: Any = None,
    folds: int = 5,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Quark probability of each jet from a model trained on the other folds only.

    ``cross_val_predict`` over a shuffled ``StratifiedKFold(folds)`` seeded by ``seed``; the
    default estimator is ``StandardScaler`` + ``LogisticRegression``.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the baselines need scikit-learn: pip install 'vibe-jet-tagging[eval]'"
        ) from exc
    if estimator is None:
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(estimator, features, labels, cv=cv, method="predict_proba")
    return np.asarray(proba[:, 1], dtype=np.float64)


def logistic_regression_baseline(
    dataset: JetDataset,
    seed: int = 0,
    *,
    folds: int = 5,
    n_bootstrap: int = 1000,
    level: float = DEFAULT_INTERVAL_LEVEL,
    observables: dict[str, NDArray[np.float64]] | None = None,
    eps_q: Any = None,
) -> dict[str, Any]:
    """Logistic regression on :data:`LR_FEATURES` (standardised), cross-validated.

    Every jet is scored by a model fitted on the other ``folds - 1`` folds, so no jet is scored
    by a model that saw it. The accuracy is at the best cut on the out-of-fold probabilities.
    """
    labels = _labels(dataset)
    reason = why_not("logistic_regression", int(labels.sum()), int(len(labels) - labels.sum()))
    if reason is not None:
        raise ValueError(f"{dataset.source}: the logistic regression {reason}")
    obs = dataset.observables() if observables is None else observables
    features = np.column_stack([obs[name] for name in LR_FEATURES])
    scores = cross_validated_scores(features, labels, folds=folds, seed=seed)
    return _result(
        dataset,
        scores,
        f"logistic regression on {', '.join(LR_FEATURES)}; {folds}-fold cross-validated "
        "probabilities; accuracy at the best cut",
        n_bootstrap=n_bootstrap,
        seed=seed,
        level=level,
        eps_q=eps_q,
        probability=True,
        features=list(LR_FEATURES),
        folds=folds,
    )


def run_baselines(
    dataset: JetDataset,
    *,
    seed: int = 0,
    n_bootstrap: int = 1000,
    level: float = DEFAULT_INTERVAL_LEVEL,
    names: tuple[str, ...] = tuple(BASELINES),
    eps_q: Any = None,
) -> dict[str, dict[str, Any]]:
    """The baselines ``names`` (default both) on ``dataset``, by key.

    Each value is a metrics dict (see :func:`~.evaluation.metrics.evaluate_scores`) with
    ``scores`` (per jet, in data-set order), ``indices``, a ``description`` and whether the
    scores are ``probability`` values. ``eps_q`` adds each ROC curve there, with its band.
    """
    _labels(dataset)
    obs = dataset.observables()
    logger.info("running baselines on %d jets from %s", len(dataset), dataset.source)
    run = {
        "multiplicity": lambda: multiplicity_baseline(
            dataset, n_bootstrap=n_bootstrap, seed=seed, level=level, observables=obs, eps_q=eps_q
        ),
        "logistic_regression": lambda: logistic_regression_baseline(
            dataset, seed, n_bootstrap=n_bootstrap, level=level, observables=obs, eps_q=eps_q
        ),
    }
    unknown = set(names) - set(run)
    if unknown:
        raise ValueError(f"no baseline {sorted(unknown)}: choose from {sorted(run)}")
    return {name: run[name]() for name in names}
