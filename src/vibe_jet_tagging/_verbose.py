"""The classifier's verbose mode: each request and the running totals, rendered with rich."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .results import TagResult

if TYPE_CHECKING:
    from .classifier import LocalLLMClassifier

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


def show_results(classifier: LocalLLMClassifier, results: list[TagResult]) -> None:
    """Print one panel per jet (settings, usage, reasoning preview, answer), then the totals.

    Text from the model is shown as is (never read as rich markup).
    """
    for result in results:
        cost = 0.0 if result.cached else classifier.price.cost(result.usage)
        settings = Text(
            f"model {result.model} · effort {result.effort} · template {result.template} · "
            f"{classifier.base_url}"
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
        console.print(Panel(body, title=title, title_align="left"))
    t = classifier.totals_
    console.print(
        f"[bold]running totals[/]: {t.jets} jets, {t.labelled} labelled, {t.errors} without label, "
        f"{t.cache_hits} from cache · tokens in {t.usage.input_tokens:,} / out "
        f"{t.usage.output_tokens:,} (reasoning {t.usage.reasoning_tokens:,}) · cost ${t.cost:.6f}"
    )
