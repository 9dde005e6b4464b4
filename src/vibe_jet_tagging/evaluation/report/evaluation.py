"""The numbers of a report: a tagger's metrics from its rows, the baselines on the same jets.

What each number uses is fixed and stated: the tagger's **accuracy comes from its labels** (the
label the model stated; a jet without a label is left out, or counted as wrong in
``accuracy_all_jets``), its **AUC and rejections from its stated probability**
(``quark_probability``, over the jets that stated one). A tagger that states no probability has
no curve, only the working point of its labels. Accuracies at a fixed working point carry
binomial (Clopper-Pearson) intervals; AUC, rejections and best-cut accuracies bootstrap ones.

Baselines run on the jets behind the tagger's AUC, and are left out, with the reason, when
those jets are too few for them (:func:`~vibe_jet_tagging.evaluation.baselines.why_not`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import VJTError
from ..metrics import DEFAULT_INTERVAL_LEVEL, binomial_interval, evaluate_scores

__all__ = ["EPS_Q", "baseline_metrics", "tagger_metrics"]

logger = logging.getLogger(__name__)

EPS_Q = np.linspace(0.0, 1.0, 201)[1:]
"""Quark efficiencies at which ROC curves and their bands are computed for plots."""


def _has_label(row: Mapping[str, Any]) -> bool:
    return row.get("label") in ("quark", "gluon") and row.get("error") is None


def _fraction(k: int, n: int, level: float) -> tuple[float | None, list[float]]:
    """``k / n`` and its binomial interval (``None`` and nan when ``n`` is 0)."""
    if n == 0:
        return None, [float("nan"), float("nan")]
    return k / n, list(binomial_interval(k, n, level))


def _inverse(value: float | None) -> float | None:
    if value is None:
        return None
    return float("inf") if value <= 0 else 1.0 / value


def both_kinds(y: Sequence[int] | np.ndarray) -> bool:
    """Whether labels hold quark and gluon jets (an AUC needs both)."""
    kinds = set(np.asarray(y).tolist())
    return kinds >= {0, 1}


def _kinds(n_quark: int, n_gluon: int) -> str:
    return f"{n_quark} quark, {n_gluon} gluon"


def tagger_metrics(
    rows: Sequence[Mapping[str, Any]],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_INTERVAL_LEVEL,
) -> tuple[dict[str, Any], dict[str, Any]] | tuple[None, None]:
    """The metrics of one tagger's rows (index order), and what the plots need of them.

    Returns ``(metrics, plot data)``; ``(None, None)`` when no row has a true label.
    """
    truthful = [r for r in rows if r.get("truth") is not None]
    if not truthful:
        return None, None
    labelled = [r for r in truthful if _has_label(r)]
    scored = [r for r in labelled if r.get("quark_probability") is not None]
    right = sum((r["label"] == "quark") == (r["truth"] == 1) for r in labelled)
    accuracy, acc_interval = _fraction(right, len(labelled), level)
    all_jets, all_interval = _fraction(right, len(truthful), level)
    m: dict[str, Any] = {
        "accuracy_from": "label: the label the model stated (quark or gluon)",
        "auc_from": "quark_probability: the probability of quark the model stated",
        "accuracy": accuracy,
        "accuracy_at": "the stated label (quark means P(quark) >= 0.5)",
        "accuracy_all_jets": all_jets,
        "n_all": len(truthful),
        "n_labelled": len(labelled),
        "n_scored": len(scored),
        "n_without_probability": len(labelled) - len(scored),
        "n_contradicting": sum(
            (r["label"] == "quark") != (r["quark_probability"] >= 0.5) for r in scored
        ),
        "hard_labels": bool(labelled) and not scored,
        "interval_level": level,
        "n_bootstrap": n_bootstrap,
        "intervals": {"accuracy": acc_interval, "accuracy_all_jets": all_interval},
        "auc": None,
        "rejection_at_30": None,
        "rejection_at_50": None,
        "accuracy_best_cut": None,
        "no_auc": None,
    }
    m["working_point"] = _working_point(labelled, level)
    m["confusion"] = m["working_point"].pop("confusion")
    plot: dict[str, Any] = {"working_point": m["working_point"]}
    y = np.array([r["truth"] for r in scored], dtype=np.int8)
    if both_kinds(y):
        p = np.array([r["quark_probability"] for r in scored], dtype=np.float64)
        res = evaluate_scores(
            y, p, threshold=0.5, n_bootstrap=n_bootstrap, seed=seed, level=level, eps_q=EPS_Q
        )
        for key in ("auc", "rejection_at_30", "rejection_at_50", "accuracy_best_cut", "best_cut"):
            m[key] = res[key]
        m["n_quark"], m["n_gluon"] = res["n_quark"], res["n_gluon"]
        for key in ("auc", "rejection_at_30", "rejection_at_50", "accuracy_best_cut"):
            if key in res["intervals"]:
                m["intervals"][key] = res["intervals"][key]
        plot.update(y=y, score=p, roc=res["roc"], indices=[r["index"] for r in scored])
    elif m["hard_labels"]:
        m["no_auc"] = "the model stated no probability: one working point, no curve"
    elif labelled:
        n_q = int(y.sum())
        m["no_auc"] = (
            f"an AUC needs quark and gluon jets; the {len(scored)} jets with a stated "
            f"probability are {_kinds(n_q, len(scored) - n_q)}"
        )
    else:
        m["no_auc"] = "no jet got a label"
    return m, plot


def _working_point(labelled: Sequence[Mapping[str, Any]], level: float) -> dict[str, Any]:
    """Quark and gluon efficiency of the labels (the fraction of each called quark)."""
    quark_called = [r["label"] == "quark" for r in labelled if r["truth"] == 1]
    gluon_called = [r["label"] == "quark" for r in labelled if r["truth"] == 0]
    tp, fp = sum(quark_called), sum(gluon_called)
    n_q, n_g = len(quark_called), len(gluon_called)
    eps_q, eps_q_int = _fraction(tp, n_q, level)
    eps_g, eps_g_int = _fraction(fp, n_g, level)
    return {
        "eps_q": eps_q,
        "eps_g": eps_g,
        "rejection": _inverse(eps_g),
        "n_quark": n_q,
        "n_gluon": n_g,
        "intervals": {
            "eps_q": eps_q_int,
            "eps_g": eps_g_int,
            "rejection": [_inverse(eps_g_int[1]), _inverse(eps_g_int[0])]
            if n_g
            else [float("nan"), float("nan")],
        },
        "confusion": [[n_g - fp, fp], [n_q - tp, tp]],
    }


def baseline_metrics(
    dataset: Any,
    indices: Sequence[int],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_INTERVAL_LEVEL,
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, dict[str, Any]]]:
    """The baselines on the jets ``indices`` of ``dataset``.

    Returns ``(metrics by baseline, reasons for those left out, plot data by baseline)``.
    """
    from ..baselines import BASELINES, run_baselines, why_not

    position = {int(i): p for p, i in enumerate(np.asarray(dataset.indices))}
    try:
        subset = dataset[np.array([position[int(i)] for i in indices], dtype=np.intp)]
    except KeyError as exc:
        raise VJTError(f"result index {exc.args[0]} is not a jet of {dataset.source}") from None
    if subset.labels is None:
        return {}, dict.fromkeys(BASELINES, "the jets have no truth labels"), {}
    n_q = int(np.sum(subset.labels == 1))
    n_g = len(subset) - n_q
    left_out = {name: why_not(name, n_q, n_g) for name in BASELINES}
    names = tuple(name for name, reason in left_out.items() if reason is None)
    results = (
        run_baselines(
            subset, seed=seed, n_bootstrap=n_bootstrap, level=level, names=names, eps_q=EPS_Q
        )
        if names
        else {}
    )
    out, plots = {}, {}
    for name, res in results.items():
        summary = {
            key: res[key]
            for key in ("auc", "rejection_at_30", "rejection_at_50", "n_quark", "n_gluon")
        }
        summary.update(
            description=res["description"],
            probability=res["probability"],
            n_scored=res["n"],
            accuracy_best_cut=res["accuracy_best_cut"],
            best_cut=res["best_cut"],
            accuracy=None,
            accuracy_at=None,
            interval_level=level,
            n_bootstrap=n_bootstrap,
            intervals={
                key: res["intervals"][key]
                for key in ("auc", "rejection_at_30", "rejection_at_50", "accuracy_best_cut")
                if key in res["intervals"]
            },
        )
        if name == "multiplicity" and res.get("cut") is not None:
            summary["cut"] = res["cut"]
        if res["probability"]:  # a probability has a stated working point too: 0.5
            right = int(np.sum((res["scores"] >= 0.5) == (subset.labels == 1)))
            acc, interval = _fraction(right, len(subset), level)
            summary.update(accuracy=acc, accuracy_at="P(quark) >= 0.5")
            summary["intervals"]["accuracy"] = interval
        out[name] = summary
        plots[name] = {"y": subset.labels, "score": res["scores"], "roc": res["roc"]}
    reasons = {name: reason for name, reason in left_out.items() if reason is not None}
    for name, reason in reasons.items():
        logger.info("baseline %s left out: %s", name, reason)
    return out, reasons, plots
