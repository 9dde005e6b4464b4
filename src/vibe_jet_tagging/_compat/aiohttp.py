"""Closing an aiohttp connector from its finalizer, without an event loop to await on.

``BaseConnector.close()`` returns an awaitable (it may schedule a task on the connector's
loop); a finalizer can await nothing and the loop may be gone. The private
``BaseConnector._close()`` closes the connections at once (nothing when the loop is closed)
and marks the connector closed, which is what a finalizer needs.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["close_now"]


def close_now(connector: Any) -> None:
    """Close ``connector``'s connections now (from a finalizer; never raises)."""
    with contextlib.suppress(Exception):
        connector._close()
