"""One request per cache key in flight: identical jets wait for the first one's answer."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable

from .results import TaggingError, TagResult, Usage

__all__ = ["InFlight"]


class InFlight:
    """The requests in flight per event loop, by cache key."""

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[TagResult]]
        ] = weakref.WeakKeyDictionary()

    async def run(
        self, key: str, index: int | None, tag: Callable[[], Awaitable[TagResult]]
    ) -> TagResult:
        """``tag()``, unless a request for ``key`` is in flight: then a copy of its result.

        A copy is ``cached`` (it cost nothing); when the original fails, the copy fails with
        the same error and no usage.
        """
        loop = asyncio.get_running_loop()
        inflight = self._loops.setdefault(loop, {})
        pending = inflight.get(key)
        if pending is not None:
            try:
                result = await asyncio.shield(pending)
            except TaggingError as exc:  # the copy cost nothing: the original holds the usage
                copy = {"index": index, "usage": Usage(), "latency": 0.0}
                raise TaggingError(exc.result.model_copy(update=copy)) from None
            return result.model_copy(update={"cached": True, "index": index})
        future: asyncio.Future[TagResult] = loop.create_future()
        inflight[key] = future
        try:
            result = await tag()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: duplicates may not exist
            else:
                future.cancel()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            inflight.pop(key, None)
