"""Tables and summary lines the commands print (on stderr, through rich)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from .._lazy import lazy
from .app import console
from .run import say

np = lazy("numpy")  # numpy is imported when a command first uses it

# -- tables -----------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    """A rejection factor in a few characters: 6.5, 15, 230, ∞."""
    if value is None or not np.isfinite(value):
        return "∞" if value is not None and value > 0 else "-"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _cell(m: dict[str, Any], key: str) -> str:
    """``0.836 ± 0.028`` for AUC and accuracy, ``15 (6.5–30)`` for rejections."""
    value = m.get(key)
    interval = (m.get("intervals") or {}).get(key)
    if key in ("auc", "accuracy"):
        if value is None:
            return "-"
        if interval and all(v is not None and np.isfinite(v) for v in interval):
            return f"{value:.3f} ± {(interval[1] - interval[0]) / 2:.3f}"
        return f"{value:.3f}"
    if value is None and m.get(key, 0) is None:
        value = float("inf")  # a saved report writes inf as null
    if interval and len(interval) == 2:
        lo, hi = (float("inf") if v is None else v for v in interval)
        if _num(lo) != _num(hi):
            return f"{_num(value)} ({_num(lo)}–{_num(hi)})"
    return _num(value)


def summary_table(title: str, entries: dict[str, dict[str, Any]], caption: str) -> Table:
    """Metrics of the tagger and the baselines, one row each, within 80 columns."""
    table = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("")
    for col in ("AUC", "accuracy", "1/εg @ 30%", "1/εg @ 50%"):
        table.add_column(col, justify="right")
    for name, m in entries.items():
        table.add_row(
            name,
            *(_cell(m, k) for k in ("auc", "accuracy", "rejection_at_30", "rejection_at_50")),
        )
    return table


def print_report(report: dict[str, Any]) -> None:
    """The report's headline numbers as a table and a few lines."""
    from ..report import tagger_name

    names = {"multiplicity": "multiplicity", "logistic_regression": "logistic regr."}
    entries = {}
    if report.get("metrics"):
        entries[tagger_name(report)] = report["metrics"]
    for key, metrics in (report.get("baselines") or {}).items():
        entries[names.get(key, key)] = metrics
    if entries:
        n = (report.get("metrics") or {}).get("n", report["n_labelled"])
        console.print(
            summary_table(
                f"quark/gluon tagging on {n} jets",
                entries,
                "±, (…): 68% intervals · 1/εg @ x%: gluon rejection at quark efficiency x%",
            )
        )
    if report.get("backend_note"):
        say(f"[yellow]{report['backend_note']} (these numbers say nothing about an LLM)[/]")
    errors = report["n_errors"]
    kinds = ", ".join(f"{k} {v}" for k, v in (report.get("errors_by_kind") or {}).items())
    parsed = ", ".join(f"{k} {v}" for k, v in (report.get("parsed_by") or {}).items())
    say(
        f"{report['n_jets']} jets: {report['n_labelled']} labelled, {errors} without label"
        f"{f' ({kinds})' if kinds else ''}, {report['cache_hits']} from the cache · answers "
        f"read by {parsed or 'nothing'}"
    )
    u = report["usage"]
    estimated = " (estimated)" if u["reasoning_estimated"] else ""
    if report["cache_hits"] >= report["n_jets"]:
        rec = u["per_jet_recorded"]
        say(
            f"all from the cache: nothing asked, nothing paid (when asked, per jet: "
            f"{rec['input_tokens']:,.0f} input, {rec['output_tokens']:,.0f} output tokens)"
        )
        return
    per = u["per_jet"]
    lat = report["latency"]
    say(
        f"per jet asked: {per['input_tokens']:,.0f} input, {per['output_tokens']:,.0f} output "
        f"tokens ({per['reasoning_tokens']:,.0f} reasoning{estimated}), ${per['cost']:.5f} · "
        f"latency p50 {lat['p50']:.2f} s, p90 {lat['p90']:.2f} s"
    )
