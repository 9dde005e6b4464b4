"""The ``vjt`` command line."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.markup import escape

from ..errors import VJTError
from . import interrupt
from .app import CLIError, app, console

__all__ = ["app", "main"]


def _register() -> None:
    # Each module adds its commands to ``app``.
    from . import (
        batch,
        cache,
        compare,
        data,
        demo,
        evaluate,
        merge,
        serve,
        tag,
        templates,
    )


class _LineHandler(logging.Handler):
    """Each log record as one line on the console (stderr), never wrapped (a log or a test
    reads it whole); printed above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            console.print(escape(self.format(record)), soft_wrap=True, highlight=False)
        except Exception:
            self.handleError(record)


def _setup_logging() -> None:
    """Warnings of the library on the console (stderr), unless logging is set up already."""
    root = logging.getLogger()
    if root.handlers:  # e.g. main() called by a program or a test that logs its own way
        return
    handler = _LineHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for noisy in ("httpx", "openai", "httpcore"):  # one line per request or retry otherwise
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _error(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``vjt``; bad input gives one clear line and a non-zero exit, never a traceback.

    Exit status (:data:`~.app.EXIT_CODES`): 0 done; 1 a run left jets without an answer
    because a server failed, or an unexpected failure (a bug: ``VJT_DEBUG=1`` shows the
    traceback); 2 bad input or unusable server; 130 interrupted (Ctrl-C), 143 terminated
    (SIGTERM), what was done kept either way.
    """
    interrupt.take_sigterm()
    _register()
    _setup_logging()
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: typer's own copy of click's classes
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        console.print("[yellow]aborted[/]")
        return 1
    except KeyboardInterrupt as exc:
        console.print("[yellow]interrupted[/]")
        return 143 if isinstance(exc, interrupt.Terminated) else 130
    except CLIError as exc:
        _error(str(exc))
        return exc.exit_code
    except (VJTError, ValueError, OSError) as exc:
        _error(str(exc))
        return 2
    except Exception as exc:
        if os.environ.get("VJT_DEBUG"):
            raise
        _error(
            f"unexpected {type(exc).__name__}: {exc} (a bug, please report it; "
            "VJT_DEBUG=1 shows the traceback)"
        )
        return 1
    if result == 130 and interrupt.terminated:  # typer reports every KeyboardInterrupt as 130
        return 143
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
