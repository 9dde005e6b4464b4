"""``vjt templates``: the prompt templates found by name."""

from __future__ import annotations

from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from .app import app, out


@app.command()
def templates() -> None:
    """List the prompt templates (shipped ones and those in $VJT_PROMPTS), on stdout."""
    from ..tagging.templates import list_templates

    for t in list_templates():
        examples = f", {t.selector} examples" if t.shots else ""
        version = "" if t.version == "1" else f" v{t.version}"
        out.print(
            f"[bold]{escape(t.name)}[/]{escape(version)}: {t.shots} shots, "
            f"format {escape(t.format.name)}{examples}",
            highlight=False,
        )
        out.print(Padding(Text(t.description, style="dim"), (0, 0, 0, 4)))
