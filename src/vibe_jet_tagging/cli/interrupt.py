"""Ctrl-C while ``vjt`` runs its event loop.

``asyncio.run`` takes SIGINT with a plain signal handler. Python runs it only when the main
thread next executes bytecode, at whatever point that thread is; a loop asleep in ``epoll``
on a server that answers nothing need not wake for it. Under load, ``vjt tag`` was seen to
go on waiting after Ctrl-C. Here the loop's own handler (``loop.add_signal_handler``) takes
SIGINT instead: the signal wakes the loop through its wakeup fd whichever thread it lands
on, and the run's task is cancelled between two callbacks, never inside one. A second
Ctrl-C exits at once (rows are written as whole lines, so nothing written is lost).

SIGTERM (a batch system ending a job) is taken the same way and raises :class:`Terminated`,
a ``KeyboardInterrupt``: the command says how far it got, as for Ctrl-C, and exits 143.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["Terminated", "run", "take_sigterm"]

T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop as for Ctrl-C (what was written is kept), exit status 143."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        global terminated
        terminated = True


terminated = False
"""Whether SIGTERM stopped this process's command (typer reports any KeyboardInterrupt as
exit status 130; ``main`` reads this to say 143)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def take_sigterm() -> None:
    """Raise :class:`Terminated` on SIGTERM outside the run loop (the main thread only)."""
    with contextlib.suppress(ValueError):  # not the main thread: leave the default
        signal.signal(signal.SIGTERM, _terminate)


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())``; Ctrl-C cancels it and raises ``KeyboardInterrupt``."""
    interrupted: int | None = None

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def interrupt(signum: int) -> None:
            nonlocal interrupted
            if interrupted is not None:
                os.write(2, b"interrupted again: exiting now\n")
                os._exit(143 if signum == signal.SIGTERM else 130)
            interrupted = signum
            task.cancel()

        previous = signal.getsignal(signal.SIGTERM)
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, interrupt, signum)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            return await main()
        try:
            return await main()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            signal.signal(signal.SIGTERM, previous)  # remove_signal_handler set the default

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if interrupted == signal.SIGTERM:
            raise Terminated from None
        if interrupted is not None:
            raise KeyboardInterrupt from None
        raise
