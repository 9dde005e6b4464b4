"""Verbose output of tag results: each jet's request and the running totals, rendered with rich.

It knows nothing of the classifier (which calls it): it takes the results, the price they
are costed at, the server's URL and the totals so far.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..tagging.results import TagResult
from ..tagging.usage import Price, UsageTotals

__all__ = ["show_results"]

console = Console(stderr=True)

REASONING_PREVIEW = 400
"""Characters of the reasoning shown per jet."""


def _panel(text: str, title: str) -> Panel:
    """Model text in a box, shown as is (never read as rich markup)."""
    return Panel(Text(text), title=title, title_align="left")


def _usage_table(result: TagResult, cost: float) -> Table:
    u = result.usage
    table = Table.grid(padding=(0, 2))
    table.add_row("input tokens", f"{u.input_tokens:,}")
    table.add_row("output tokens", f"{u.output_tokens:,}")
    reasoning = "reasoning (estimated)" if u.reasoning_estimated else "reasoning"
    table.add_row(f"  ├─ {reasoning}", f"{u.reasoning_tokens:,}")
    table.add_row("  └─ answer", f"{u.output_tokens - u.reasoning_tokens:,}")
    table.add_row("cost", f"${cost:.6f}" + ("  (cached: nothing paid)" if result.cached else ""))
    table.add_row("latency", f"{result.latency:.2f} s")
    return table


def _jet_panel(result: TagResult, price: Price, base_url: str | None) -> Panel:
    cost = 0.0 if result.cached else price.cost(result.usage)
    settings = Text(
        f"model {result.model} · effort {result.effort} · template {result.template} · "
        f"{base_url or 'server'}"
    )
    reasoning = result.reasoning or ""
    preview = reasoning[:REASONING_PREVIEW]
    if len(reasoning) > REASONING_PREVIEW:
        preview += f" [... {len(reasoning) - REASONING_PREVIEW} more characters]"
    if result.ok:
        p = result.quark_probability
        probability = "n/a" if p is None else f"{p:.2f}"
        verdict = f"[bold]{result.label}[/] (P(quark) = {probability}, by {result.parsed_by})"
    else:
        error = result.error
        assert error is not None
        verdict = f"[red]no label[/]: {error.kind}: {escape(error.message)}"
    body = Group(
        settings,
        _usage_table(result, cost),
        _panel(preview or "(no reasoning returned)", "reasoning"),
        _panel(result.answer or "(no answer)", "final answer"),
        verdict,
    )
    title = f"jet {result.index}" if result.index is not None else "jet"
    return Panel(body, title=title, title_align="left")


def show_results(
    results: Sequence[TagResult], *, price: Price, base_url: str | None, totals: UsageTotals
) -> None:
    """Print one panel per jet (settings, usage, cost at ``price``, reasoning preview, answer),
    then ``totals``.

    Text from the model is shown as is (never read as rich markup).
    """
    for result in results:
        console.print(_jet_panel(result, price, base_url))
    t = totals
    console.print(
        f"[bold]running totals[/]: {t.jets} jets, {t.labelled} labelled, {t.errors} without label, "
        f"{t.cache_hits} from cache · tokens in {t.usage.input_tokens:,} / out "
        f"{t.usage.output_tokens:,} (reasoning {t.usage.reasoning_tokens:,}) · cost ${t.cost:.6f}"
    )
