"""Tagging metrics from scores: ROC AUC, accuracy, gluon rejection, bootstrap intervals.

Conventions: quark is the positive class (label 1), gluon the negative (label 0); a higher score
means more quark-like. The quark efficiency ``eps_q`` is the true-positive rate, the gluon
efficiency (mistag rate) ``eps_g`` the false-positive rate, and the gluon rejection is
``1 / eps_g``. A jet is called a quark when ``score >= threshold``.

Point estimates use scikit-learn (the ``eval`` extra); the bootstrap is a vectorised paired
resampling of the jets (labels and scores together) in numpy.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_INTERVAL_LEVEL",
    "accuracy",
    "best_threshold",
    "binomial_interval",
    "confusion_matrix",
    "eps_g_curve",
    "evaluate_scores",
    "rejection_at",
    "roc_auc",
    "roc_curve",
]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_LEVEL = 0.68
"""Central probability of the bootstrap intervals (0.68: a "1 sigma" band)."""


def _sklearn_metrics() -> Any:
    try:
        from sklearn import metrics
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "metrics need scikit-learn: pip install 'vibe-jet-tagging[eval]'"
        ) from exc
    return metrics


def _check(
    y: ArrayLike, score: ArrayLike, *, both: bool = True
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Labels (0/1) and finite float scores of the same length; both classes if ``both``."""
    y_arr = np.asarray(y)
    s = np.asarray(score, dtype=np.float64)
    if y_arr.ndim != 1 or s.shape != y_arr.shape:
        raise ValueError(
            f"labels and scores must be 1-D of equal length, got {y_arr.shape} and {s.shape}"
        )
    if not ((y_arr == 0) | (y_arr == 1)).all():
        raise ValueError("labels must be 1 (quark) or 0 (gluon)")
    if not np.isfinite(s).all():
        raise ValueError(
            f"{int((~np.isfinite(s)).sum())} scores are nan or inf; drop those jets first"
        )
    y_int = y_arr.astype(np.int8)
    if both and (y_int.min(initial=1) != 0 or y_int.max(initial=0) != 1):
        raise ValueError("need both quark (1) and gluon (0) jets")
    return y_int, s


def roc_curve(
    y: ArrayLike, score: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(eps_g, eps_q, thresholds)``: the ROC curve from ``(0, 0)`` to ``(1, 1)``.

    Point ``k`` is reached by calling quark every jet with ``score >= thresholds[k]``
    (``thresholds[0]`` is ``inf``). All points are kept (no dropping of collinear ones).
    """
    y_int, s = _check(y, score)
    fpr, tpr, thr = _sklearn_metrics().roc_curve(y_int, s, drop_intermediate=False)
    return fpr, tpr, thr


def roc_auc(y: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve (ties count one half); 0.5 is random, 1 perfect."""
    y_int, s = _check(y, score)
    return float(_sklearn_metrics().roc_auc_score(y_int, s))


def accuracy(y: ArrayLike, score: ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of jets right when calling quark those with ``score >= threshold``."""
    y_int, s = _check(y, score, both=False)
    return float(np.mean((s >= threshold) == (y_int == 1)))


def best_threshold(y: ArrayLike, score: ArrayLike) -> tuple[float, float]:
    """``(threshold, accuracy)`` of the cut with the highest accuracy on these jets.

    The threshold is one of the scores (or ``inf``: call everything gluon). Fitted on the same
    jets it is scored on, the accuracy is slightly optimistic; use it for baselines only.
    """
    y_int, s = _check(y, score, both=False)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y_int[order]
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # last jet of each group of equal scores
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(1 - y_sorted)[last]
    n_neg = len(y_int) - int(y_int.sum())
    correct = np.r_[n_neg, tp + (n_neg - fp)]  # first entry: nothing called quark
    k = int(np.argmax(correct))
    thresholds = np.r_[np.inf, s_sorted[last]]
    return float(thresholds[k]), float(correct[k] / len(y_int))


def confusion_matrix(y: ArrayLike, score: ArrayLike, threshold: float = 0.5) -> list[list[int]]:
    """``[[tn, fp], [fn, tp]]`` (rows: true gluon, true quark) at ``score >= threshold``."""
    y_int, s = _check(y, score, both=False)
    pred = s >= threshold
    truth = y_int == 1
    return [
        [int((~truth & ~pred).sum()), int((~truth & pred).sum())],
        [int((truth & ~pred).sum()), int((truth & pred).sum())],
    ]


def _eps_g_at(
    fpr: NDArray[np.float64], tpr: NDArray[np.float64], target: float
) -> NDArray[np.float64]:
    """Gluon efficiency at quark efficiency ``target`` on ROC curves (rows), interpolated.

    ``fpr`` and ``tpr`` are ``(..., K)`` non-decreasing along the last axis and start at 0.
    Takes the first point where ``tpr >= target`` and interpolates linearly from the one before.
    """
    k = np.minimum((tpr < target).sum(axis=-1), tpr.shape[-1] - 1)
    k0 = np.maximum(k - 1, 0)
    t1 = np.take_along_axis(tpr, k[..., None], -1)[..., 0]
    t0 = np.take_along_axis(tpr, k0[..., None], -1)[..., 0]
    f1 = np.take_along_axis(fpr, k[..., None], -1)[..., 0]
    f0 = np.take_along_axis(fpr, k0[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(t1 > t0, (target - t0) / (t1 - t0), 1.0)
    return f0 + np.clip(frac, 0.0, 1.0) * (f1 - f0)


def rejection_at(y: ArrayLike, score: ArrayLike, quark_efficiency: float) -> float:
    """Gluon rejection ``1 / eps_g`` at the given quark efficiency (0 < eps_q <= 1).

    ``eps_g`` is read off the ROC curve, linearly interpolated between its points (what a
    random mix of the two neighbouring cuts achieves). It is ``inf`` when no gluon passes
    (``eps_g == 0``), e.g. for a perfect tagger.
    """
    if not 0.0 < quark_efficiency <= 1.0:
        raise ValueError(f"quark efficiency must be in (0, 1], got {quark_efficiency}")
    fpr, tpr, _ = roc_curve(y, score)
    eps_g = float(_eps_g_at(fpr, tpr, quark_efficiency))
    return float("inf") if eps_g <= 0.0 else 1.0 / eps_g


def eps_g_curve(y: ArrayLike, score: ArrayLike, eps_q: ArrayLike) -> NDArray[np.float64]:
    """Gluon efficiency at each quark efficiency of ``eps_q``, as :func:`rejection_at` reads it.

    The ROC curve interpolated linearly between its points: what plots draw, so that a curve
    passes through the table's rejections.
    """
    fpr, tpr, _ = roc_curve(y, score)
    return _eps_g_on(fpr, tpr, np.asarray(eps_q, dtype=np.float64))


def _eps_g_on(
    fpr: NDArray[np.float64], tpr: NDArray[np.float64], targets: NDArray[np.float64]
) -> NDArray[np.float64]:
    """:func:`_eps_g_at` of one ROC curve at many quark efficiencies (sorted search)."""
    k = np.minimum(np.searchsorted(tpr, targets, side="left"), len(tpr) - 1)
    k0 = np.maximum(k - 1, 0)
    t0, t1, f0, f1 = tpr[k0], tpr[k], fpr[k0], fpr[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(t1 > t0, (targets - t0) / (t1 - t0), 1.0)
    return f0 + np.clip(frac, 0.0, 1.0) * (f1 - f0)


def binomial_interval(k: int, n: int, level: float = DEFAULT_INTERVAL_LEVEL) -> tuple[float, float]:
    """Clopper-Pearson ("exact") central interval of a fraction ``k / n`` (nan if ``n == 0``).

    It never collapses to a point: 8 right out of 8 gives (0.79, 1) at 68 %.
    """
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    from scipy.stats import beta

    tail = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return lo, hi


def _resample_weights(
    n: int, n_bootstrap: int, seed: int, chunk: int
) -> Iterator[NDArray[np.float64]]:
    """Resampling counts ``(b, n)`` of the jets, ``chunk`` resamples at a time."""
    rng = np.random.default_rng(seed)
    for first in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - first)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def _bootstrap(
    y: NDArray[np.int8],
    s: NDArray[np.float64],
    threshold: float | None,
    n_bootstrap: int,
    seed: int,
    chunk: int = 250,
    eps_q: NDArray[np.float64] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Metric values on ``n_bootstrap`` paired resamples (weights = resampling counts).

    ``accuracy`` is at ``threshold`` (or the best cut when ``None``), ``accuracy_best`` always
    at the best cut refitted on each resample; with ``eps_q``, ``eps_g_curve`` holds each
    resample's gluon efficiency at those quark efficiencies.
    """
    n = len(y)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order].astype(bool)
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # groups of equal score
    out: dict[str, list[NDArray[np.float64]]] = {
        k: [] for k in ("auc", "accuracy", "accuracy_best", "eps_g_30", "eps_g_50", "eps_g_curve")
    }
    pred = s_sorted >= threshold if threshold is not None else None
    for weights in _resample_weights(n, n_bootstrap, seed, chunk):
        w = weights[:, order]
        b = len(w)
        pos = np.add.reduceat(w * y_sorted, starts, axis=1)  # per score group, high to low
        neg = np.add.reduceat(w * ~y_sorted, starts, axis=1)
        tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
        n_pos, n_neg = tp[:, -1], fp[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            # AUC: each quark beats the gluons of lower groups and ties half of its own group.
            below = n_neg[:, None] - fp
            out["auc"].append((pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg))
            tpr = np.concatenate([np.zeros((b, 1)), tp / n_pos[:, None]], axis=1)
            fpr = np.concatenate([np.zeros((b, 1)), fp / n_neg[:, None]], axis=1)
        # The best cut, refitted on each resample.
        correct = np.concatenate([n_neg[:, None], tp + (n_neg[:, None] - fp)], axis=1)
        out["accuracy_best"].append(correct.max(axis=1) / n)
        if pred is None:
            out["accuracy"].append(out["accuracy_best"][-1])
        else:
            out["accuracy"].append((w * (pred == y_sorted)).sum(axis=1) / n)
        bad = (n_pos == 0) | (n_neg == 0)
        for key, target in (("eps_g_30", 0.3), ("eps_g_50", 0.5)):
            eps = _eps_g_at(fpr, tpr, target)
            eps[bad] = np.nan
            out[key].append(eps)
        out["auc"][-1][bad] = np.nan
        if eps_q is not None:
            curve = np.array([_eps_g_on(f, t, eps_q) for f, t in zip(fpr, tpr, strict=True)])
            curve[bad] = np.nan
            out["eps_g_curve"].append(curve)
    return {k: np.concatenate(v) for k, v in out.items() if v}


def _interval(values: NDArray[np.float64], level: float, axis: int = 0) -> NDArray[np.float64]:
    """Central ``level`` percentile interval over resamples (nan where every one is nan)."""
    q = [50 * (1 - level), 50 * (1 + level)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices: tiny samples
        return np.nanpercentile(values, q, axis=axis)


def _inverse(lo_hi: tuple[float, float]) -> list[float]:
    """The interval of ``1 / x`` from that of ``x`` (``inf`` where ``x`` reaches 0)."""
    lo, hi = lo_hi
    return [
        float("nan") if np.isnan(hi) else float("inf") if hi <= 0 else 1.0 / hi,
        float("nan") if np.isnan(lo) else float("inf") if lo <= 0 else 1.0 / lo,
    ]


def evaluate_scores(
    y: ArrayLike,
    score: ArrayLike,
    *,
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_INTERVAL_LEVEL,
    eps_q: ArrayLike | None = None,
) -> dict[str, Any]:
    """All metrics of scores against labels, with bootstrap confidence intervals.

    ``threshold``: cut for the accuracy and the confusion matrix (``score >= threshold`` is a
    quark call), e.g. 0.5 for probabilities; ``None`` takes the best cut on these jets
    (``threshold_method`` says which; the best cut is refitted on each resample).

    Returns ``auc``, ``accuracy``, ``rejection_at_30`` and ``rejection_at_50`` (``1/eps_g`` at
    30 % and 50 % quark efficiency; ``inf`` when no gluon passes), ``threshold``,
    ``threshold_method``, ``accuracy_best_cut`` and ``best_cut`` (always the best cut),
    ``confusion`` ``[[tn, fp], [fn, tp]]``, ``n``, ``n_quark``, ``n_gluon``, and ``intervals``
    ``{name: [lo, hi]}``: central ``level`` (default 68 %) percentile intervals over
    ``n_bootstrap`` paired resamples of the jets, seeded by ``seed`` (empty when
    ``n_bootstrap`` is 0; nan where no resample has both kinds of jet). ``interval_level``
    and ``n_bootstrap`` are reported.

    With ``eps_q`` (quark efficiencies), ``roc`` holds the curve there: ``eps_q``, ``eps_g``
    and, with the bootstrap, the pointwise interval ``eps_g_lo``, ``eps_g_hi`` (numpy arrays).
    """
    y_int, s = _check(y, score)
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    best_cut, best_acc = best_threshold(y_int, s)
    if threshold is None:
        thr, acc = best_cut, best_acc
        method = "best cut on these jets"
    else:
        thr, acc = float(threshold), accuracy(y_int, s, threshold)
        method = "fixed"
    result: dict[str, Any] = {
        "auc": roc_auc(y_int, s),
        "accuracy": acc,
        "rejection_at_30": rejection_at(y_int, s, 0.3),
        "rejection_at_50": rejection_at(y_int, s, 0.5),
        "threshold": thr,
        "threshold_method": method,
        "accuracy_best_cut": best_acc,
        "best_cut": best_cut,
        "confusion": confusion_matrix(y_int, s, thr),
        "n": len(y_int),
        "n_quark": int(y_int.sum()),
        "n_gluon": int(len(y_int) - y_int.sum()),
        "interval_level": level,
        "n_bootstrap": int(n_bootstrap),
        "intervals": {},
    }
    grid = None if eps_q is None else np.asarray(eps_q, dtype=np.float64)
    if grid is not None:
        result["roc"] = {"eps_q": grid, "eps_g": eps_g_curve(y_int, s, grid)}
    if n_bootstrap > 0:
        boot = _bootstrap(y_int, s, threshold, int(n_bootstrap), seed, eps_q=grid)
        intervals: dict[str, list[float]] = {}
        for name, key in (("auc", "auc"), ("accuracy", "accuracy")):
            intervals[name] = [float(v) for v in _interval(boot[key], level)]
        intervals["accuracy_best_cut"] = [float(v) for v in _interval(boot["accuracy_best"], level)]
        for name, key in (("rejection_at_30", "eps_g_30"), ("rejection_at_50", "eps_g_50")):
            lo, hi = (float(v) for v in _interval(boot[key], level))
            intervals[name] = _inverse((lo, hi))
        result["intervals"] = intervals
        if grid is not None:
            lo, hi = _interval(boot["eps_g_curve"], level)
            result["roc"].update(eps_g_lo=lo, eps_g_hi=hi)
    return result
