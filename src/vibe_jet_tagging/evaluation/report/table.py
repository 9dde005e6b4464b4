"""The metrics tables of a report, and the one way each metric is written.

``evaluate``, ``compare`` and ``demo`` print these tables (through rich), the HTML page and
``report.json`` hold them: the same cells everywhere.

- AUC, accuracy, efficiency: ``0.826 ± 0.029``, rounded as the PDG does (the interval to two
  significant digits, or one when they start above 354), or ``1.00 (0.79–1.00)`` when the
  interval is lopsided.
- Gluon rejection ``1/εg``: ``14 (11–24)``; above the number N of gluon jets it cannot be
  measured (no gluon, or less than one, is left) and is written ``> N``, never "∞".
- Every row says how many jets its numbers rest on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Table",
    "error_summary",
    "fmt_fraction",
    "fmt_input_tokens",
    "fmt_rejection",
    "interval_note",
    "metric_tables",
    "taggers_of",
    "usage_table",
]

DASH = "-"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _decimals(error: float) -> int:
    """Decimals that show ``error`` as the PDG rounds it (2 significant digits, 1 above 354)."""
    if not _finite(error) or error <= 0:
        return 3
    exponent = math.floor(math.log10(error))
    leading = round(error / 10 ** (exponent - 2))  # three digits, 100-1000
    if leading >= 1000:
        exponent, leading = exponent + 1, 100
    digits = 2 if leading <= 354 else 1
    if leading >= 950:
        exponent, digits = exponent + 1, 2
    return min(max(digits - 1 - exponent, 1), 4)


def fmt_fraction(value: float | None, interval: Any = None) -> str:
    """An AUC, accuracy or efficiency: ``0.826 ± 0.029``, or ``1.00 (0.79–1.00)`` if lopsided."""
    if value is None or not _finite(value):
        return DASH
    if not interval or not all(_finite(v) for v in interval):
        return f"{value:.3f}"
    lo, hi = float(interval[0]), float(interval[1])
    up, down = max(hi - value, 0.0), max(value - lo, 0.0)
    if up > 0 and down > 0 and max(up, down) <= 1.5 * min(up, down):
        d = _decimals((hi - lo) / 2)
        return f"{value:.{d}f} ± {(hi - lo) / 2:.{d}f}"
    d = _decimals(min(up, down) if min(up, down) > 0 else max(up, down))
    return f"{value:.{d}f} ({lo:.{d}f}–{hi:.{d}f})"


def _rejection(value: float, n_gluon: int | None, space: str) -> str:
    if n_gluon and (not math.isfinite(value) or value > n_gluon):
        return f">{space}{n_gluon}"
    if not math.isfinite(value):
        return f">{space}{n_gluon}" if n_gluon else DASH
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def fmt_rejection(value: float | None, interval: Any = None, n_gluon: int | None = None) -> str:
    """A gluon rejection ``1/εg`` with its interval: ``14 (11–24)``, ``50 (26–>100)``, ``> 100``.

    ``None`` counts as infinite (a saved report writes inf as null); anything above the
    ``n_gluon`` jets the number rests on is written ``> n_gluon``.
    """
    if value is None and n_gluon is None:
        return DASH
    v = math.inf if value is None else float(value)
    text = _rejection(v, n_gluon, " ")
    if (
        interval
        and len(interval) == 2
        and not any(isinstance(x, float) and math.isnan(x) for x in interval)
    ):
        lo, hi = (math.inf if x is None else float(x) for x in interval)
        lo_text, hi_text = _rejection(lo, n_gluon, ""), _rejection(hi, n_gluon, "")
        if lo_text != hi_text:
            text += f" ({lo_text}–{hi_text})"
    return text


def fmt_input_tokens(per_jet: Mapping[str, Any]) -> str:
    """Input tokens per jet, split into prefilled and prefix-cached when the server said.

    ``3,929 input (793 prefilled, 3,136 from the prefix cache)``, or ``3,929 input``.
    """
    total, cached = per_jet["input_tokens"], per_jet.get("cached_input_tokens")
    if cached is None:
        return f"{total:,.0f} input"
    return (
        f"{total:,.0f} input ({total - cached:,.0f} prefilled, {cached:,.0f} from the prefix cache)"
    )


def _count(n: int | None) -> str:
    return DASH if n is None else f"{n:,}"


@dataclass
class Table:
    """A table as text cells: ``rows[i][0]`` names the row; ``sub`` rows belong to the one above."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    sub: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """The table for JSON: title, columns, rows (sub rows marked), caption."""
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": [
                {"cells": row, **({"sub_row_of": row_above} if i in self.sub else {})}
                for i, (row, row_above) in enumerate(
                    zip(self.rows, [None, *(r[0] for r in self.rows)], strict=False)
                )
            ],
            "caption": self.caption,
        }


def taggers_of(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The taggers of a report (one) or of a comparison (its runs), by name: their run reports."""
    if "runs" in report:
        return dict(report["runs"])
    return {report.get("tagger") or "tagger": report}


def _names() -> dict[str, str]:
    return {"multiplicity": "multiplicity", "logistic_regression": "logistic regr."}


def interval_note(report: Mapping[str, Any]) -> str:
    """What the intervals are, in one line."""
    level = report.get("interval_level") or 0.68
    n_boot = report.get("n_bootstrap") or 0
    return (
        f"±, (…): {level:.0%} intervals, binomial at a fixed cut, else bootstrap "
        f"({n_boot:,} resamples)"
    )


def metric_tables(report: Mapping[str, Any]) -> list[Table]:
    """The two tables of a report or comparison: separation (from the scores) and accuracy."""
    taggers = taggers_of(report)
    baselines = report.get("baselines") or {}
    names = _names()
    scores = Table(
        title="separation, from the stated P(quark)",
        columns=["", "jets", "AUC", "1/εg @ εq 30%", "1/εg @ εq 50%"],
        caption=(
            "1/εg: gluon rejection at quark efficiency εq · baselines: from their scores · "
            "> N: beyond what N gluon jets resolve"
        ),
    )
    accuracy = Table(
        title="accuracy, from the stated labels",
        columns=["", "jets", "at label/P≥0.5", "at best cut"],
        caption=(
            "label: as the model stated it (a baseline's: P(quark) ≥ 0.5) · best cut: fitted "
            "on these jets (optimistic) · all jets: no label counts as wrong · "
            + interval_note(report)
        ),
    )
    for name, run in taggers.items():
        m = run.get("metrics")
        if not m:
            continue
        i = m["intervals"]
        if m.get("auc") is not None:
            n_g = m.get("n_gluon")
            scores.rows.append(
                [
                    name,
                    _count(m["n_scored"]),
                    fmt_fraction(m["auc"], i.get("auc")),
                    fmt_rejection(m["rejection_at_30"], i.get("rejection_at_30"), n_g),
                    fmt_rejection(m["rejection_at_50"], i.get("rejection_at_50"), n_g),
                ]
            )
        else:
            scores.rows.append([name, _count(m["n_scored"]), DASH, DASH, DASH])
        accuracy.rows.append(
            [
                name,
                _count(m["n_labelled"]),
                fmt_fraction(m["accuracy"], i.get("accuracy")),
                fmt_fraction(m.get("accuracy_best_cut"), i.get("accuracy_best_cut")),
            ]
        )
        accuracy.sub.add(len(accuracy.rows))
        accuracy.rows.append(
            [
                "  all jets",
                _count(m["n_all"]),
                fmt_fraction(m["accuracy_all_jets"], i.get("accuracy_all_jets")),
                "",
            ]
        )
    for key, b in baselines.items():
        i = b["intervals"]
        name = names.get(key, key)
        scores.rows.append(
            [
                name,
                _count(b["n_scored"]),
                fmt_fraction(b["auc"], i.get("auc")),
                fmt_rejection(b["rejection_at_30"], i.get("rejection_at_30"), b["n_gluon"]),
                fmt_rejection(b["rejection_at_50"], i.get("rejection_at_50"), b["n_gluon"]),
            ]
        )
        accuracy.rows.append(
            [
                name,
                _count(b["n_scored"]),
                fmt_fraction(b.get("accuracy"), i.get("accuracy")),
                fmt_fraction(b["accuracy_best_cut"], i.get("accuracy_best_cut")),
            ]
        )
    return [t for t in (scores, accuracy) if t.rows]


def error_summary(run: Mapping[str, Any]) -> str:
    """``200 jets: 180 labelled, 20 without a label (parse 12, contradiction 5, server 3 ...)``."""
    kinds = run.get("errors_by_kind") or {}
    server = run.get("server_errors_by_kind") or {}
    parts = []
    for kind, n in kinds.items():
        detail = ""
        if kind == "server" and server and set(server) != {"server"}:
            detail = " (" + ", ".join(f"{k} {v}" for k, v in server.items()) + ")"
        parts.append(f"{kind} {n}{detail}")
    m = run.get("metrics") or {}
    contradicting = m.get("n_contradicting") or 0
    extra = ""
    if contradicting:
        verb = "label contradicts its" if contradicting == 1 else "labels contradict their"
        extra = f"; {contradicting} {verb} probability"
    return (
        f"{run['n_jets']:,} jets: {run['n_labelled']:,} labelled, {run['n_errors']:,} without "
        f"a label ({', '.join(parts)}){extra}"
    )


def usage_table(comparison: Mapping[str, Any]) -> Table:
    """Tokens, seconds and jets without a label per run of a comparison."""
    table = Table(
        title="cost per jet",
        columns=["run", "in tok", "out tok", "reasoning", "s/jet", "no label"],
        caption="per jet, as recorded when asked (cache hits included)",
    )
    for name, run in taggers_of(comparison).items():
        rec = run["usage"]["per_jet_recorded"]
        table.rows.append(
            [
                name,
                f"{rec['input_tokens']:,.0f}",
                f"{rec['output_tokens']:,.0f}",
                f"{rec['reasoning_tokens']:,.0f}",
                f"{rec['latency']:.2f}",
                _count(run["n_errors"]),
            ]
        )
    return table
