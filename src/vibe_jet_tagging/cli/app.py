"""The ``vjt`` Typer application the command modules register on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="vjt",
    help="Tag quark and gluon jets with a reasoning LLM served by vLLM (or its emulator).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
"""Where progress, tables and messages go (stderr, so stdout stays for data)."""


class CLIError(Exception):
    """A bad input: printed as one line, exit status 2."""
