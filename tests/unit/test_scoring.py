"""The scorers of ``LocalLLMClassifier``: ROC AUC with unlabelled jets counted as chosen, and
usage per jet (no server: a stand-in estimator gives the probabilities and results)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vibe_jet_tagging import roc_auc_scorer, usage_scorer
from vibe_jet_tagging.tagging.results import TagResult, Usage

TRUTH = np.array([1, 1, 0, 0])
QUARK = np.array([0.9, np.nan, 0.2, np.nan])  # one quark and one gluon jet without a label


class StandIn:
    """What the scorers read of a fitted LocalLLMClassifier."""

    def __init__(self, quark: np.ndarray, results: list[TagResult] | None = None) -> None:
        self.quark = quark
        self.results = results or []

    def predict_proba(self, X):
        return np.column_stack([1 - self.quark, self.quark])

    def tag(self, X):
        return self.results


@pytest.mark.parametrize(
    ("unlabelled", "auc"),
    [
        # Scores 0.9, -1 (quark, below all), 0.2, 2 (gluon, above all): 1 of 4 pairs won.
        ("wrong", 0.25),
        ("drop", 1.0),  # 0.9 against 0.2
        (0.5, 0.875),  # 0.9 > 0.2, 0.9 > 0.5, 0.5 > 0.2, and a tie at 0.5
    ],
)
def test_roc_auc_counts_unlabelled_jets_as_chosen(unlabelled, auc) -> None:
    assert roc_auc_scorer(unlabelled)(StandIn(QUARK), None, TRUTH) == pytest.approx(auc)


def test_the_default_counts_them_as_wrong_as_score_does() -> None:
    assert roc_auc_scorer()(StandIn(QUARK), None, TRUTH) == pytest.approx(0.25)
    assert repr(roc_auc_scorer()) == "roc_auc_scorer(unlabelled='wrong')"


def test_labelled_jets_alone_give_scikit_learns_auc() -> None:
    quark = np.array([0.9, 0.6, 0.7, 0.1])
    expected = roc_auc_score(TRUTH, quark)
    for policy in ("wrong", "drop", 0.3):
        assert roc_auc_scorer(policy)(StandIn(quark), None, TRUTH) == pytest.approx(expected)


def test_scikit_learns_roc_auc_scorer_fails_on_them() -> None:
    # What the choice is for: the "roc_auc" scorer cannot score a fold with such a jet.
    with pytest.raises(ValueError, match="NaN"):
        roc_auc_score(TRUTH, QUARK)


def test_dropping_every_jet_of_one_kind_is_one_clear_error() -> None:
    quark = np.array([0.9, 0.8, np.nan, np.nan])
    with pytest.raises(ValueError, match="labelled jets are not of both kinds"):
        roc_auc_scorer("drop")(StandIn(quark), None, TRUTH)


@pytest.mark.parametrize("bad", ["worst", 1.5, -0.1, True, None])
def test_a_bad_choice_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="'wrong', 'drop' or a probability in"):
        roc_auc_scorer(bad)


def _result(reasoning: int, latency: float) -> TagResult:
    usage = Usage(input_tokens=100, output_tokens=reasoning + 20, reasoning_tokens=reasoning)
    return TagResult(jet_key="j", key="k", usage=usage, latency=latency)


def test_usage_scorer_gives_the_mean_per_jet() -> None:
    stand_in = StandIn(QUARK, [_result(100, 1.0), _result(300, 3.0)])
    assert usage_scorer()(stand_in, None, TRUTH) == 200
    assert usage_scorer("output_tokens")(stand_in, None, TRUTH) == 220
    assert usage_scorer("input_tokens")(stand_in, None, TRUTH) == 100
    assert usage_scorer("latency")(stand_in, None, TRUTH) == pytest.approx(2.0)
    assert math.isnan(usage_scorer()(StandIn(QUARK), None, TRUTH))
    with pytest.raises(ValueError, match="measure must be one of"):
        usage_scorer("cost")  # type: ignore[arg-type]
