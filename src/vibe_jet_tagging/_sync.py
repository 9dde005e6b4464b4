"""Running the async core from sync code, in scripts and inside running event loops.

Every sync entry point hands its coroutine to one background event loop per process, on a
daemon thread. It works the same whether or not the caller's thread runs a loop (Jupyter),
never calls ``asyncio.run`` on the caller's loop, needs no nest_asyncio, and keeps HTTP
clients bound to a single loop for the life of the process. A forked child (multiprocessing,
a worker pool) starts a loop of its own: the parent's loop thread does not survive a fork.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from ._compat.asyncio import chain_future

__all__ = ["iterate_sync", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_WAKE = 0.25
"""Seconds the calling thread waits at a time: Python runs a signal handler (Ctrl-C) only
when the main thread runs bytecode, and a signal that lands on another thread does not end
the main thread's wait; so the wait ends this often to let it run."""


def _forget_loop() -> None:
    """In a forked child: the parent's loop thread did not come along, so start a new one."""
    global _loop, _lock
    _loop = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loop)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="vibe-jet-tagging-loop", daemon=True
            )
            thread.start()
            _loop = loop
        return _loop


def _submit(
    coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop, future: Future[T]
) -> None:
    """Run ``coro`` on ``loop`` with its outcome in ``future``; cancelling ``future`` cancels it.

    ``asyncio.run_coroutine_threadsafe`` returns its future only once the coroutine may
    already run: a Ctrl-C in between would leave it running, unowned. Here the caller holds
    the future (inside its ``try``) before anything is scheduled.
    """

    def start() -> None:
        task = loop.create_task(coro)
        chain_future(task, future)
        if future.cancelled():  # cancelled before it started
            task.cancel()

    loop.call_soon_threadsafe(start)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the background loop and return its result.

    Ctrl-C in the calling thread cancels the coroutine (within :data:`_WAKE` seconds).
    """
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync called from the background loop itself; await instead")
    future: Future[T] = Future()
    try:
        _submit(coro, loop, future)
        while True:
            try:
                return future.result(timeout=_WAKE)
            except TimeoutError:
                if future.done():  # the coroutine itself raised TimeoutError
                    return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async generator from sync code, running it on the background loop."""
    loop = _background_loop()
    items: queue.Queue[tuple[str, Any]] = queue.Queue()

    async def pump() -> None:
        try:
            async for item in agen:
                items.put(("item", item))
        except BaseException as exc:
            items.put(("error", exc))
            raise
        else:
            items.put(("done", None))

    future: Future[None] = Future()
    try:
        _submit(pump(), loop, future)
        while True:
            try:
                kind, value = items.get(timeout=_WAKE)
            except queue.Empty:
                continue
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        future.cancel()
