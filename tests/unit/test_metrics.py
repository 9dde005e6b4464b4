"""Metrics against hand-computed values, and the vectorised bootstrap against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vibe_jet_tagging.evaluation import metrics
from vibe_jet_tagging.evaluation.metrics import (
    accuracy,
    best_threshold,
    binomial_interval,
    confusion_matrix,
    eps_g_curve,
    evaluate_scores,
    rejection_at,
    roc_auc,
)

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]
# With ties: a quark alone at the top, then a group of one gluon and two quarks, then gluons.
# ROC points (eps_g, eps_q): (0, 0), (0, 1/3), (1/3, 1), (1, 1).
Y_TIES = [1, 0, 1, 1, 0, 0]
S_TIES = [3.0, 2.0, 2.0, 2.0, 1.0, 1.0]


def test_auc_by_hand() -> None:
    assert roc_auc(Y, S) == pytest.approx(0.75)  # 3 of the 4 quark-gluon pairs ordered right
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    # Ties: quark 3 beats 3 gluons; quarks at 2 beat 2 gluons and tie 1 -> (3 + 2.5 + 2.5) / 9
    assert roc_auc(Y_TIES, S_TIES) == pytest.approx(8 / 9)
    assert roc_auc([1, 1, 0], [0.1, 0.2, 0.9]) == pytest.approx(0.0)


def test_accuracy_and_confusion_by_hand() -> None:
    assert accuracy(Y, S) == pytest.approx(0.75)  # quark calls: only 0.8
    assert accuracy(Y, S, threshold=0.35) == pytest.approx(0.75)  # >= is a quark call
    assert accuracy(Y, S, threshold=0.36) == pytest.approx(0.5)
    assert confusion_matrix(Y, S) == [[2, 0], [1, 1]]
    assert confusion_matrix(Y, S, threshold=0.35) == [[1, 1], [0, 2]]
    assert confusion_matrix(Y, S, threshold=0.0) == [[0, 2], [0, 2]]


def test_best_threshold_by_hand() -> None:
    # Cuts from the top: inf -> 2/4, 0.8 -> 3/4, 0.4 -> 2/4, 0.35 -> 3/4, 0.1 -> 2/4.
    assert best_threshold(Y, S) == (0.8, 0.75)
    assert best_threshold(Y_TIES, S_TIES) == (2.0, 5 / 6)
    # Everything called gluon can be the best cut.
    assert best_threshold([0, 0, 1], [0.9, 0.8, 0.1]) == (math.inf, pytest.approx(2 / 3))


def test_rejection_interpolates_on_the_roc_curve() -> None:
    # At eps_q = 0.5: between (0, 1/3) and (1/3, 1), a quarter of the way: eps_g = 1/12.
    assert rejection_at(Y_TIES, S_TIES, 0.5) == pytest.approx(12.0)
    assert rejection_at(Y_TIES, S_TIES, 1.0) == pytest.approx(3.0)
    # eps_q = 1/3 is reached with no gluon: infinite rejection.
    assert rejection_at(Y_TIES, S_TIES, 0.3) == math.inf
    # Y/S: points (0, 0), (0, 1/2), (1/2, 1/2), (1/2, 1), (1, 1).
    assert rejection_at(Y, S, 0.5) == math.inf
    assert rejection_at(Y, S, 0.75) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="quark efficiency"):
        rejection_at(Y, S, 0.0)


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="equal length"):
        roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="both quark"):
        roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="1 scores are nan or inf"):
        evaluate_scores([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="labels must be 1"):
        roc_auc([0, 2], [0.1, 0.2])


def test_perfect_scores() -> None:
    y = np.r_[np.ones(50), np.zeros(50)]
    out = evaluate_scores(y, y * 2 - 1 + 0.01 * np.arange(100), n_bootstrap=200)
    assert out["auc"] == 1.0
    assert out["accuracy"] == 1.0
    assert out["rejection_at_30"] == math.inf
    assert out["rejection_at_50"] == math.inf
    assert out["confusion"] == [[50, 0], [0, 50]]
    assert out["intervals"]["auc"] == [1.0, 1.0]
    assert out["intervals"]["rejection_at_50"] == [math.inf, math.inf]


def test_random_scores() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 4000)
    out = evaluate_scores(y, rng.random(4000), threshold=0.5, n_bootstrap=300)
    assert out["auc"] == pytest.approx(0.5, abs=0.03)
    assert out["accuracy"] == pytest.approx(0.5, abs=0.03)
    assert out["rejection_at_50"] == pytest.approx(2.0, rel=0.1)  # eps_g = eps_q
    assert out["rejection_at_30"] == pytest.approx(1 / 0.3, rel=0.1)
    assert out["threshold"] == 0.5
    assert out["threshold_method"] == "fixed"
    lo, hi = out["intervals"]["auc"]
    assert lo <= out["auc"] <= hi
    assert 0.004 < hi - lo < 0.03  # 68 %: about 2 x 0.0046 for 4000 jets


def separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and integer-valued (many ties) scores with AUC about 0.84, like multiplicity."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = -np.round(np.where(y == 1, rng.normal(33, 13, n), rng.normal(54, 16, n)))
    return y, score


def test_evaluate_scores_keys_and_intervals_contain_the_estimates() -> None:
    y, s = separable(4000, 2)
    out = evaluate_scores(y, s, n_bootstrap=1000, seed=3)
    assert set(out) >= {
        "auc",
        "accuracy",
        "rejection_at_30",
        "rejection_at_50",
        "threshold",
        "threshold_method",
        "confusion",
        "intervals",
        "interval_level",
    }
    assert out["threshold_method"] == "best cut on these jets"
    assert out["interval_level"] == 0.68
    assert 0.8 < out["auc"] < 0.88
    assert out["accuracy"] == pytest.approx(accuracy(y, s, out["threshold"]))
    (tn, fp), (fn, tp) = out["confusion"]
    assert tn + fp + fn + tp == 4000
    assert (tn + tp) / 4000 == pytest.approx(out["accuracy"])
    for name in ("auc", "accuracy", "rejection_at_30", "rejection_at_50"):
        lo, hi = out["intervals"][name]
        assert lo <= out[name] <= hi, name
        assert hi - lo < 0.25 * out[name], name
    assert out["intervals"]["auc"][1] - out["intervals"]["auc"][0] == pytest.approx(
        0.012, abs=0.005
    )
    # Same seed, same intervals; 95 % intervals are wider.
    assert evaluate_scores(y, s, n_bootstrap=1000, seed=3)["intervals"] == out["intervals"]
    wide = evaluate_scores(y, s, n_bootstrap=1000, seed=3, level=0.95)["intervals"]["auc"]
    assert wide[1] - wide[0] > out["intervals"]["auc"][1] - out["intervals"]["auc"][0]
    assert evaluate_scores(y, s, n_bootstrap=0)["intervals"] == {}


@pytest.mark.parametrize("threshold", [None, -40.0])
def test_bootstrap_matches_brute_force(threshold: float | None) -> None:
    y, s = separable(300, 4)
    n_boot, seed = 25, 9
    fast = metrics._bootstrap(y.astype(np.int8), s, threshold, n_boot, seed, chunk=10)
    # Redraw the same resamples and compute each metric directly on them.
    rng = np.random.default_rng(seed)
    draws = np.concatenate([rng.integers(0, 300, size=(b, 300)) for b in (10, 10, 5)])
    for b, idx in enumerate(draws):
        yb, sb = y[idx], s[idx]
        assert fast["auc"][b] == pytest.approx(roc_auc_score(yb, sb))
        expected_acc = (
            best_threshold(yb, sb)[1] if threshold is None else accuracy(yb, sb, threshold)
        )
        assert fast["accuracy"][b] == pytest.approx(expected_acc)
        assert fast["eps_g_50"][b] == pytest.approx(1 / rejection_at(yb, sb, 0.5))
        assert fast["eps_g_30"][b] == pytest.approx(1 / rejection_at(yb, sb, 0.3))


def test_binomial_interval_by_hand() -> None:
    # Clopper-Pearson at 68 %: with k = n the lower end solves p**n = 0.16, with k = 0 the
    # upper end solves (1 - p)**n = 0.16; it never collapses to a point.
    lo, hi = binomial_interval(8, 8)
    assert (lo, hi) == (pytest.approx(0.16 ** (1 / 8)), 1.0)
    lo, hi = binomial_interval(0, 5)
    assert (lo, hi) == (0.0, pytest.approx(1 - 0.16 ** (1 / 5)))
    lo, hi = binomial_interval(151, 200)  # about the normal approximation, sqrt(pq/n)
    half = math.sqrt(0.755 * 0.245 / 200)
    assert lo == pytest.approx(0.755 - half, abs=0.004) and hi == pytest.approx(
        0.755 + half, abs=0.004
    )
    assert all(math.isnan(v) for v in binomial_interval(0, 0))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_interval(3, 2)


def test_the_drawn_curve_passes_through_the_rejections() -> None:
    y, s = separable(2000, 6)
    eps_q = np.array([0.3, 0.5, 0.75])
    curve = eps_g_curve(y, s, eps_q)
    for e, g in zip(eps_q, curve, strict=True):
        assert 1 / g == pytest.approx(rejection_at(y, s, e))
    assert eps_g_curve(Y_TIES, S_TIES, [0.3, 0.5])[0] == 0.0  # no gluon: rejection inf
    assert eps_g_curve(Y_TIES, S_TIES, [0.5])[0] == pytest.approx(1 / 12)


def test_evaluate_scores_gives_the_best_cut_beside_a_fixed_one_and_the_band() -> None:
    y, s = separable(600, 7)
    p = 1 / (1 + np.exp(-(s + 43) / 8))  # a probability from the score
    out = evaluate_scores(y, p, threshold=0.5, n_bootstrap=300, eps_q=np.linspace(0.01, 1, 50))
    assert out["accuracy"] == pytest.approx(accuracy(y, p, 0.5))
    assert (out["best_cut"], out["accuracy_best_cut"]) == best_threshold(y, p)
    lo, hi = out["intervals"]["accuracy_best_cut"]
    assert lo <= out["accuracy_best_cut"] <= hi
    roc = out["roc"]
    assert roc["eps_g"].shape == roc["eps_g_lo"].shape == roc["eps_g_hi"].shape == (50,)
    assert (roc["eps_g_lo"] <= roc["eps_g_hi"]).all()
    inside = (roc["eps_g_lo"] <= roc["eps_g"] + 1e-12) & (roc["eps_g"] <= roc["eps_g_hi"] + 1e-12)
    assert inside.mean() > 0.9


def test_two_jets_give_numbers_not_errors() -> None:
    out = evaluate_scores([0, 1], [0.2, 0.7], threshold=0.5, n_bootstrap=200, eps_q=[0.5, 1.0])
    assert out["auc"] == 1.0 and out["accuracy"] == 1.0
    # Half the resamples hold one kind of jet only: they are left out, not averaged in.
    assert out["intervals"]["auc"] == [1.0, 1.0]
    assert out["rejection_at_50"] == math.inf
