"""Ctrl-C stops a run whichever thread of the process the kernel hands SIGINT to.

A process-directed signal may land on any thread (a worker of the default executor, rich's
refresh thread, the background loop); Python then runs its handler only when the main thread
next executes bytecode. ``asyncio.run`` relies on that, so a loop asleep waiting on a server
that answers nothing never ran it (``vjt tag`` went on waiting after Ctrl-C under load).
Each test sends SIGINT to a thread other than the main one while the main thread waits on
something that never finishes; without the fix it waits until pytest-timeout stops it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator

import pytest

from vibe_jet_tagging._sync import iterate_sync, run_sync
from vibe_jet_tagging.cli import interrupt


def ctrl_c_on_another_thread(ready: threading.Event) -> None:
    """Once ``ready`` is set, SIGINT to a thread of its own (the kernel's choice, forced)."""

    def send() -> None:
        ready.wait()
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=send, daemon=True).start()


def test_the_cli_loop_stops_when_ctrl_c_lands_on_another_thread() -> None:
    ready = threading.Event()
    cancelled = []

    async def silent_server() -> None:
        asyncio.get_running_loop().call_soon(ready.set)
        try:
            await asyncio.get_running_loop().create_future()  # no answer, ever
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    ctrl_c_on_another_thread(ready)
    with pytest.raises(KeyboardInterrupt):
        interrupt.run(silent_server)
    assert cancelled == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_run_that_ends_or_fails_is_not_an_interrupt() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("bad jet")

    assert interrupt.run(answer) == 42
    with pytest.raises(ValueError, match="bad jet"):
        interrupt.run(fail)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_exits_at_once_when_the_first_is_not_enough() -> None:
    """A run whose cleanup does not end (a task that ignores its cancellation) still stops."""
    script = (
        "import asyncio\n"
        "from vibe_jet_tagging.cli import interrupt\n"
        "async def stubborn():\n"
        "    while True:\n"
        "        print('waiting', flush=True)\n"
        "        try:\n"
        "            await asyncio.get_running_loop().create_future()\n"
        "        except asyncio.CancelledError:\n"
        "            pass\n"
        "interrupt.run(stubborn)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for _ in range(2):  # it waits; Ctrl-C; it ignores that and waits again; Ctrl-C
        assert proc.stdout.readline() == "waiting\n", proc.communicate()
        os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate()
    assert proc.returncode == 130
    assert stderr.strip() == "interrupted again: exiting now"


@pytest.mark.parametrize("call", ["run_sync", "iterate_sync"])
def test_sync_calls_stop_when_ctrl_c_lands_on_another_thread(call: str) -> None:
    """tagger.batch() and friends wait in the calling thread for the background loop."""
    ready = threading.Event()
    cancelled = threading.Event()

    async def silent_server() -> None:
        ready.set()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def silent_stream() -> AsyncIterator[int]:
        await silent_server()
        yield 1

    def wait() -> object:
        if call == "run_sync":
            return run_sync(silent_server())
        return list(iterate_sync(silent_stream()))

    ctrl_c_on_another_thread(ready)
    with pytest.raises(KeyboardInterrupt):
        wait()
    cancelled.wait()  # the coroutine on the background loop is cancelled too


def test_a_forked_child_runs_sync_calls_on_a_loop_of_its_own():
    """The parent's loop thread does not survive a fork; the child must not wait on it."""
    import os

    from vibe_jet_tagging._sync import run_sync

    async def five() -> int:
        return 5

    assert run_sync(five()) == 5  # the parent's background loop exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: says what run_sync gave; a hang ends at SIGALRM's default action
        os.close(read)
        signal.alarm(60)
        os.write(write, str(run_sync(five())).encode())
        os._exit(0)
    os.close(write)
    said = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert said == b"5"
