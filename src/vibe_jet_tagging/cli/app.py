"""The ``vjt`` Typer application the command modules register on."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

EXIT_CODES = (
    "Exit status: 0 done; 1 a run ended with jets a server failure left without an answer "
    "(rerun to ask again), or an unexpected error; 2 bad input or a server that cannot be "
    "used; 130 interrupted (Ctrl-C), 143 terminated (SIGTERM): rows already written are kept."
)

app = typer.Typer(
    name="vjt",
    help="Tag quark and gluon jets with a reasoning LLM served by vLLM (or its emulator).\n\n"
    + EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
"""Where progress, tables and messages go (stderr, so stdout stays for data)."""


class CLIError(Exception):
    """A bad input: printed as one line, exit status 2."""

    exit_code = 2


class RunIncomplete(CLIError):
    """A run that ended with jets a server failure left without an answer: exit status 1."""

    exit_code = 1


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"vjt (vibe-jet-tagging) {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Options of ``vjt`` itself (before the command)."""
