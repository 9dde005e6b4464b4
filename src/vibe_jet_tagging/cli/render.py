"""Tables and summary lines the commands print (on stdout, through rich).

The cells come from :func:`~.evaluation.report.metric_tables`: ``evaluate``, ``compare``
and ``demo`` print every metric the same way, as the HTML page and ``report.json`` hold it.
Tables, the notes that qualify them and the files written go to stdout (``vjt evaluate r.jsonl
> metrics.txt`` keeps them); progress and warnings go to stderr (:func:`.run.say`).
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from .app import out


def show(message: str, **options: Any) -> None:
    """One result line on stdout, unwrapped (a log or a test reads it whole)."""
    out.print(message, soft_wrap=True, highlight=False, **options)


def rich_table(table: Any) -> Table:
    """A :class:`~vibe_jet_tagging.evaluation.report.Table` as a rich table (sub rows dimmed)."""
    out = Table(
        title=table.title,
        title_justify="left",
        caption=table.caption or None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    for i, column in enumerate(table.columns):
        out.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
    for i, row in enumerate(table.rows):
        out.add_row(*row, style="dim" if i in table.sub else None)
    return out


def print_tables(report: dict[str, Any], extra: list[Any] | None = None) -> None:
    """The metrics tables of a report or comparison, then ``extra`` tables."""
    from ..evaluation.report import metric_tables

    for i, table in enumerate([*metric_tables(report), *(extra or [])]):
        if i:
            out.print()
        out.print(rich_table(table))


def print_notes(report: dict[str, Any]) -> None:
    """The emulated-server warning, jets without a label by kind, and what was left out."""
    from ..evaluation.report.table import error_summary, taggers_of

    if report.get("backend_note"):
        show(f"[yellow]{report['backend_note']} (these numbers say nothing about an LLM)[/]")
    taggers = taggers_of(report)
    for name, run in taggers.items():
        prefix = f"{escape(name)}: " if len(taggers) > 1 else ""
        show(prefix + escape(error_summary(run)))
    for note in report.get("notes") or []:
        show(f"[yellow]note[/]: {escape(note)}")


def print_report(report: dict[str, Any]) -> None:
    """The report's tables, what they leave out, and usage and latency in a few lines."""
    from ..evaluation.report.table import fmt_input_tokens  # the report stack, when one prints

    print_tables(report)
    print_notes(report)
    u = report["usage"]
    parsed = ", ".join(f"{k} {v:,}" for k, v in (report.get("parsed_by") or {}).items())
    show(f"{report['cache_hits']:,} from the cache · answers read by {parsed or 'nothing'}")
    estimated = " (estimated)" if u["reasoning_estimated"] else ""
    if report["cache_hits"] >= report["n_jets"]:
        rec = u["per_jet_recorded"]
        show(
            f"all from the cache: nothing asked, nothing paid (when asked, per jet: "
            f"{fmt_input_tokens(rec)}, {rec['output_tokens']:,.0f} output tokens)"
        )
        return
    per = u["per_jet"]
    lat = report["latency"]
    show(
        f"per jet asked: {fmt_input_tokens(per)}, {per['output_tokens']:,.0f} output "
        f"tokens ({per['reasoning_tokens']:,.0f} reasoning{estimated}), ${per['cost']:.5f} · "
        f"latency p50 {lat['p50']:.2f} s, p90 {lat['p90']:.2f} s"
    )
