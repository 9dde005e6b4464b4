"""The ``vjt`` command line."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from ..errors import VJTError
from .app import CLIError, app, console

__all__ = ["app", "main"]


def _register() -> None:
    # Each module adds its commands to ``app``.
    from . import cache, data, serve, tag, templates  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Run ``vjt``; bad input gives one clear line and a non-zero exit, never a traceback."""
    _register()
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: typer's own copy of click's classes
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        console.print("[yellow]interrupted[/]")
        return 130
    except (CLIError, VJTError, ValueError, OSError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
