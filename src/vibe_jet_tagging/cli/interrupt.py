"""Ctrl-C while ``vjt`` runs its event loop.

``asyncio.run`` takes SIGINT with a plain signal handler. Python runs it only when the main
thread next executes bytecode, at whatever point that thread is; a loop asleep in ``epoll``
on a server that answers nothing need not wake for it. Under load, ``vjt tag`` was seen to
go on waiting after Ctrl-C. Here the loop's own handler (``loop.add_signal_handler``) takes
SIGINT instead: the signal wakes the loop through its wakeup fd whichever thread it lands
on, and the run's task is cancelled between two callbacks, never inside one. A second
Ctrl-C exits at once (rows are written as whole lines, so nothing written is lost).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())``; Ctrl-C cancels it and raises ``KeyboardInterrupt``."""
    interrupted = False

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def interrupt() -> None:
            nonlocal interrupted
            if interrupted:
                os.write(2, b"interrupted again: exiting now\n")
                os._exit(130)
            interrupted = True
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            return await main()
        try:
            return await main()
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
