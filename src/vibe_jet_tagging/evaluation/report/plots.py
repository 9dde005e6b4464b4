"""The plots of a report or a comparison: ROC, calibration, score distributions.

- ``roc.png``: gluon rejection 1/εg (log) against quark efficiency εq, the field's convention,
  with 68 % bootstrap bands, the random tagger, and the baselines on the same jets. The y axis
  ends at the number of gluon jets N: beyond it less than one gluon jet passes, which the
  sample cannot resolve. A tagger that states no probability is a point (its working point),
  not a curve; one that does also shows the working point of its labels as a star.
- ``calibration.png``: the fraction of quark jets against the stated P(quark) per bin, with
  binomial error bars, and the jets in each bin.
- ``scores.png``: the stated P(quark) of true quark and true gluon jets, per tagger.

Curves that coincide stay visible (each its own line style and markers, offset along the
curve), and every plot says which jets and settings it shows.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import binomial_interval
from .table import fmt_fraction, taggers_of

__all__ = ["plot_context", "write_plots"]

logger = logging.getLogger(__name__)

DPI = 150
_TAGGER_STYLES: list[dict[str, Any]] = [
    {"color": "C0", "ls": "-", "marker": "o"},
    {"color": "C3", "ls": (0, (6, 2)), "marker": "s"},
    {"color": "C4", "ls": (0, (2, 1.5)), "marker": "D"},
    {"color": "C5", "ls": (0, (6, 2, 1, 2)), "marker": "v"},
    {"color": "C6", "ls": "-", "marker": "P"},
    {"color": "C8", "ls": (0, (6, 2)), "marker": "X"},
]
_BASELINE_STYLES = {
    "multiplicity": {"color": "C1", "ls": "--", "marker": "^"},
    "logistic_regression": {"color": "C2", "ls": "-.", "marker": "x"},
}
_BASELINE_NAMES = {"multiplicity": "multiplicity cut", "logistic_regression": "logistic regr."}


def _style(i: int) -> dict[str, Any]:
    return _TAGGER_STYLES[i % len(_TAGGER_STYLES)]


def _figure(width: float, height: float) -> Any:
    # A bare Figure, not pyplot: no global backend switch (a notebook keeps its own) and
    # nothing left open.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _settings(run: Mapping[str, Any]) -> str:
    parts = []
    for key, label in (("models", ""), ("efforts", "effort "), ("templates", "template ")):
        values = run.get(key) or []
        if values:
            parts.append(label + "/".join(str(v) for v in values))
    return " · ".join(parts)


def plot_context(report: Mapping[str, Any], *, note: bool = True) -> list[str]:
    """Lines every plot carries: the jets, the settings and (with ``note``) the emulated note."""
    taggers = taggers_of(report)
    lines = []
    if "runs" in report:
        varying = {  # in the order of the runs
            k: list(dict.fromkeys(v for r in taggers.values() for v in r.get(k) or []))
            for k in ("models", "efforts", "templates")
        }
        lines.append(f"{report['n_jets']:,} jets from {report['source']}: the same for every run")
        lines.append(_settings(varying))
    else:
        m = report.get("metrics") or {}
        kinds = ""
        if m.get("n_quark") is not None:
            kinds = f" ({m['n_quark']:,} quark, {m['n_gluon']:,} gluon with a stated P(quark))"
        lines.append(f"{report['n_jets']:,} jets from {report['source']}{kinds}")
        lines.append(_settings(report))
    if note and report.get("backend_note"):
        lines.append(str(report["backend_note"]))
    return [line for line in lines if line]


def _title(ax: Any, title: str, report: Mapping[str, Any], *extra: str) -> None:
    context = plot_context(report)
    ax.set_title("\n".join([title, *extra, *context]), fontsize=8.5, loc="left")


def _n_gluon(report: Mapping[str, Any]) -> int:
    plots = report["_plot"]
    counts = [int(np.sum(np.asarray(p["y"]) == 0)) for p in plots["baselines"].values()]
    for p in plots["taggers"].values():
        if "y" in p:
            counts.append(int(np.sum(np.asarray(p["y"]) == 0)))
        else:
            counts.append(int(p["working_point"]["n_gluon"]))
    return max([*counts, 1])


def _rejection(eps_g: Any, top: float) -> Any:
    """1/εg, with εg = 0 drawn above the axis (off the plot, not at a made-up value)."""
    eps = np.asarray(eps_g, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(eps > 0, 1.0 / eps, 10.0 * top)


def _curve(
    ax: Any,
    roc: Mapping[str, Any],
    label: str,
    style: Mapping[str, Any],
    top: float,
    lw: float,
    offset: int,
    alpha: float = 0.16,
) -> None:
    x = np.asarray(roc["eps_q"])
    if "eps_g_lo" in roc:
        lo, hi = _rejection(roc["eps_g_hi"], top), _rejection(roc["eps_g_lo"], top)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(x[ok], lo[ok], hi[ok], color=style["color"], alpha=alpha, lw=0)
    ax.plot(
        x,
        _rejection(roc["eps_g"], top),
        color=style["color"],
        ls=style["ls"],
        lw=lw,
        marker=style["marker"],
        markersize=5,
        markevery=(offset, 25),
        label=label,
    )


def _point(
    ax: Any,
    wp: Mapping[str, Any],
    label: str,
    style: Mapping[str, Any],
    top: float,
    marker: str,
    size: float,
) -> None:
    """A working point (εq, 1/εg) with binomial error bars; no gluon passing: ▲ at the top."""
    if wp["eps_q"] is None or wp["eps_g"] is None:
        return
    i = wp["intervals"]
    x, xerr = wp["eps_q"], [[wp["eps_q"] - i["eps_q"][0]], [i["eps_q"][1] - wp["eps_q"]]]
    if wp["eps_g"] > 0:
        y = 1.0 / wp["eps_g"]
        lo, hi = i["rejection"]
        yerr = [[y - lo], [min(hi if math.isfinite(hi) else top, top) - y]]
    else:
        y, yerr, marker = top, None, "^"
        label += f": no gluon passes (1/εg > {top:g})"
    ax.errorbar(
        x,
        y,
        xerr=xerr,
        yerr=yerr,
        color=style["color"],
        marker=marker,
        markersize=size,
        ls="none",
        capsize=2,
        label=label,
        zorder=5,
        markeredgecolor="black",
        markeredgewidth=0.6,
    )


def draw_roc(ax: Any, report: Mapping[str, Any]) -> None:
    """The ROC curves of a report's taggers and baselines on ``ax`` (see the module)."""
    plots = report["_plot"]
    top = float(_n_gluon(report))
    taggers = taggers_of(report)
    for i, (name, data) in enumerate(plots["taggers"].items()):
        style = _style(i)
        m = taggers[name]["metrics"]
        wp = data["working_point"]
        if "roc" in data:
            auc = fmt_fraction(m["auc"], m["intervals"].get("auc"))
            label = f"{name}: AUC {auc} ({m['n_scored']:,} jets)"
            _curve(ax, data["roc"], label, style, top, lw=2.2, offset=4 * i)
            # Later points smaller, so that points that coincide all stay visible.
            _point(ax, wp, f"{name}: its labels (P ≥ 0.5)", style, top, "*", 13 - 2.5 * i)
        else:
            label = f"{name}: labels only, no probability ({m['n_labelled']:,} jets)"
            _point(ax, wp, label, style, top, style["marker"], 10 - 2 * i)
    for j, (key, data) in enumerate(plots["baselines"].items()):
        b = report["baselines"][key]
        style = _BASELINE_STYLES.get(key, {"color": "C7", "ls": ":", "marker": "."})
        auc = fmt_fraction(b["auc"], b["intervals"].get("auc"))
        label = f"{_BASELINE_NAMES.get(key, key)}: AUC {auc}"
        _curve(ax, data["roc"], label, style, top, lw=1.5, offset=12 + 4 * j, alpha=0.1)
    x = np.geomspace(1 / (1.1 * top), 1, 200)
    ax.plot(x, 1 / x, color="grey", ls=":", lw=1.2, label="random (1/εg = 1/εq)")
    ax.set(xlabel="quark efficiency εq", ylabel="gluon rejection 1/εg", yscale="log")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, top * 1.06)
    steps = (
        (1, 2, 5) if top >= 300 else (1, 1.5, 2, 3, 5, 7) if top >= 10 else (1, 1.5, 2, 3, 4, 5, 7)
    )
    ticks = sorted(m * 10**e for e in range(7) for m in steps if m * 10**e <= top)
    if top / ticks[-1] > 1.25:
        ticks.append(top)
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_yticks([], minor=True)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.11), ncols=2, fontsize=7.5, frameon=False)


def _bins(n: int) -> np.ndarray:
    return np.linspace(0, 1, (10 if n >= 200 else 5 if n >= 40 else 3) + 1)


def draw_calibration(fig: Any, report: Mapping[str, Any]) -> None:
    """Fraction of quark jets per bin of stated P(quark), binomial bars; jets per bin below."""
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    data = {k: v for k, v in report["_plot"]["taggers"].items() if "score" in v}
    level = report.get("interval_level") or 0.68
    n_max = max(len(v["score"]) for v in data.values())
    edges = _bins(n_max)
    width = edges[1] - edges[0]
    for i, (name, d) in enumerate(data.items()):
        style = _style(i)
        y, p = np.asarray(d["y"]), np.asarray(d["score"])
        which = np.clip(np.digitize(p, edges[1:-1]), 0, len(edges) - 2)
        xs, fr, lo, hi, counts = [], [], [], [], np.zeros(len(edges) - 1, dtype=int)
        for b in range(len(edges) - 1):
            sel = which == b
            n = int(sel.sum())
            counts[b] = n
            if n == 0:
                continue
            k = int(y[sel].sum())
            a, c = binomial_interval(k, n, level)
            xs.append(float(p[sel].mean()) + (i - (len(data) - 1) / 2) * 0.012)
            fr.append(k / n)
            lo.append(k / n - a)
            hi.append(c - k / n)
        top.errorbar(
            xs,
            fr,
            yerr=[lo, hi],
            color=style["color"],
            marker=style["marker"],
            ls=style["ls"],
            lw=1.2,
            capsize=3,
            markersize=5,
            label=f"{name} ({len(p):,} jets)",
        )
        bottom.stairs(counts, edges, color=style["color"], ls=style["ls"], lw=1.5)
        if len(data) == 1:
            for b, n in enumerate(counts):
                bottom.text(edges[b] + width / 2, n, f"{n}", ha="center", va="bottom", fontsize=7)
    top.plot([0, 1], [0, 1], color="grey", ls=":", label="perfectly calibrated")
    top.set(ylabel="fraction of quark jets", xlim=(0, 1), ylim=(-0.02, 1.02))
    top.legend(loc="upper left", fontsize=7.5)
    top.grid(True, alpha=0.3)
    bottom.set(xlabel=f"stated P(quark) (bins of width {width:.2g})", ylabel="jets per bin")
    bottom.set_ylim(0, max(1, bottom.get_ylim()[1] * 1.2))
    _title(top, f"calibration ({level:.0%} binomial error bars)", report)


def draw_scores(fig: Any, report: Mapping[str, Any]) -> None:
    """Stated P(quark) of true quark and true gluon jets, one panel per tagger."""
    data = {k: v for k, v in report["_plot"]["taggers"].items() if "score" in v}
    cols = min(len(data), 3)
    rows = math.ceil(len(data) / cols)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    n_max = max(len(v["score"]) for v in data.values())
    edges = np.linspace(0, 1, 21 if n_max >= 200 else 11)
    for ax, (name, d) in zip(axes, data.items(), strict=False):
        y, p = np.asarray(d["y"]), np.asarray(d["score"])
        for kind, sel, style, shift in (
            ("quark", y == 1, {"color": "C0", "ls": "-", "fill": True}, -0.1),
            ("gluon", y == 0, {"color": "C1", "ls": "--", "fill": False}, 0.1),
        ):
            counts, _ = np.histogram(p[sel], bins=edges)
            if style["fill"]:
                ax.stairs(counts, edges, color=style["color"], alpha=0.2, fill=True)
            ax.stairs(
                counts,
                edges,
                color=style["color"],
                ls=style["ls"],
                lw=1.8,
                label=f"true {kind} ({int(sel.sum()):,} jets)",
            )
            centres = (edges[:-1] + edges[1:]) / 2 + shift * (edges[1] - edges[0])
            ax.errorbar(
                centres,
                counts,
                yerr=np.sqrt(counts),
                color=style["color"],
                ls="none",
                capsize=0,
                lw=0.8,
            )
        ax.set_xlim(0, 1)
        ax.axvline(0.5, color="grey", ls=":", lw=1, label="P = 0.5: the label changes")
        ax.legend(fontsize=7.5, loc="upper center", title=name, title_fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("stated P(quark)")
    axes[0].set_ylim(0, axes[0].get_ylim()[1] * 1.4)  # room for the legend
    for ax in axes[len(data) :]:
        ax.set_visible(False)
    axes[0].set_ylabel(f"jets per bin of width {edges[1] - edges[0]:.2g} (bars: √n)")
    fig.suptitle(
        "\n".join(["stated P(quark) of true quark and gluon jets", *plot_context(report)]),
        fontsize=8.5,
        x=0.02,
        ha="left",
    )


def write_plots(report: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> list[Path]:
    """``roc.png``, ``calibration.png`` and ``scores.png`` of a report or comparison.

    Returns the files written: the ROC plot whenever a tagger has a working point or a
    baseline ran; the other two when a tagger stated probabilities.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = report.get("_plot") or {"taggers": {}, "baselines": {}}
    drawable = [p for p in plots["taggers"].values() if p["working_point"]["eps_q"] is not None]
    written: list[Path] = []
    if not drawable and not plots["baselines"]:
        logger.warning("no labelled jets with a true label: no plots")
        return written

    fig = _figure(6.4, 6.6)
    ax = fig.subplots()
    draw_roc(ax, report)
    top = _n_gluon(report)
    level = report.get("interval_level") or 0.68
    _title(
        ax,
        f"quark/gluon ROC with {level:.0%} bootstrap bands",
        report,
        f"y axis ends at 1/εg = {top:,}: above it, less than one of the {top:,} gluon jets passes",
    )
    written.append(out / "roc.png")
    fig.savefig(written[-1], dpi=DPI)

    if any("score" in p for p in plots["taggers"].values()):
        fig = _figure(6.0, 5.8)
        draw_calibration(fig, report)
        written.append(out / "calibration.png")
        fig.savefig(written[-1], dpi=DPI)

        n = sum("score" in p for p in plots["taggers"].values())
        fig = _figure(min(4.2 * n, 12.6) if n > 1 else 6.0, 4.6 * math.ceil(n / 3))
        draw_scores(fig, report)
        written.append(out / "scores.png")
        fig.savefig(written[-1], dpi=DPI)
    return written
