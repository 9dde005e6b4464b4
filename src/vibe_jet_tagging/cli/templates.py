"""``vjt templates``: the prompt templates found by name."""

from __future__ import annotations

from rich.table import Table

from .app import app, console


@app.command()
def templates() -> None:
    """List the prompt templates (shipped ones and those in $VJT_PROMPTS)."""
    from ..prompts import list_templates

    table = Table("name", "version", "shots", "format", "description", title_justify="left")
    for t in list_templates():
        table.add_row(t.name, t.version, str(t.shots), t.format.name, t.description)
    console.print(table)
