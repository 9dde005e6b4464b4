"""The ``vjt`` Typer application the command modules register on."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup


class CommandGroup(TyperGroup):
    """A command group whose help lists each command's whole first sentence, wrapped (click
    cuts it with "..." where it reaches the terminal's width)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:  # typer's own click types
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


EXIT_CODES = (
    "Exit status: 0 done; 1 a run ended with jets a server failure left without an answer "
    "(rerun to ask again), or an unexpected error; 2 bad input or a server that cannot be "
    "used; 130 interrupted (Ctrl-C), 143 terminated (SIGTERM): rows already written are kept."
)

app = typer.Typer(
    cls=CommandGroup,
    name="vjt",
    help="Tag quark and gluon jets with a reasoning LLM served by vLLM (or its emulator).\n\n"
    + EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's plain help: it wraps every line to the terminal and never cuts an option name
    # short (rich's option tables did at 80 columns), and flags show no <bool> type.
    rich_markup_mode=None,
)
console = Console(stderr=True)
"""Where progress, messages, warnings and errors go (stderr)."""
out = Console()
"""Where tables and results go (stdout), as Unix tools do: ``vjt evaluate r.jsonl > t.txt``
keeps the tables, and the progress stays on the terminal."""


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
