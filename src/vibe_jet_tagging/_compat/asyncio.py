"""Chaining an asyncio task's outcome into a ``concurrent.futures.Future``.

``asyncio.run_coroutine_threadsafe`` does this with the private
``asyncio.futures._chain_future``, but returns its future only once the coroutine may
already run; :mod:`vibe_jet_tagging._sync` needs the future first, so it chains itself.
"""

from __future__ import annotations

import asyncio
import asyncio.futures
import concurrent.futures
from typing import Any

__all__ = ["chain_future"]


def chain_future(task: asyncio.Future[Any], future: concurrent.futures.Future[Any]) -> None:
    """Copy ``task``'s outcome into ``future``; cancelling ``future`` cancels ``task``."""
    asyncio.futures._chain_future(task, future)  # type: ignore[attr-defined]
