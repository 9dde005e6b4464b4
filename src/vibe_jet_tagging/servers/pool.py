"""Several vLLM servers behind one client: least requests in flight, failures set aside.

On a cluster without a router (Slurm, most often), each GPU node runs its own vLLM. An
:class:`EndpointPool` spreads one client's requests over their base URLs: each request goes to
the server with the fewest requests in flight (ties: the one sent least); a server that fails
(connection error, time-out, HTTP 429 or 5xx) is set aside for ``cooldown`` seconds and tried
again after; when every server is set aside, the one back soonest is used. The pool sits
under the OpenAI SDK as an HTTP transport, so the SDK's own retries of a failed request go to
another server.

>>> pool = EndpointPool(["http://node1:8000/v1", "http://node2:8000/v1"])  # doctest: +SKIP
>>> model = ChatVLLM(base_url=pool.base_urls, ...)                          # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from langchain_openai._compat import httpx  # the httpx flavour the openai SDK uses

__all__ = ["SERVER_HEADER", "Endpoint", "EndpointPool", "PoolTransport"]

_FAILED_STATUS = frozenset({429, 500, 502, 503, 504})
SERVER_HEADER = "x-vjt-server"
"""Response header naming the server a pooled request went to (for per-server counts)."""


@dataclass
class Endpoint:
    """One server of a pool and what it did."""

    base_url: str
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    down_until: float = 0.0
    _parts: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The counts, for progress lines and reports."""
        return {
            "base_url": self.base_url,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "in_flight": self.in_flight,
        }


class EndpointPool:
    """Base URLs of servers that serve the same model, and the choice of one per request.

    Args:
        base_urls: the servers' OpenAI-compatible URLs (``http://host:port/v1``); all must
            have the same path, since requests are built for the first.
        cooldown: seconds a failed server is left out before it is tried again.
        clock: the time source (``time.monotonic``; tests pass their own).
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        urls = [u.rstrip("/") for u in base_urls]
        if not urls:
            raise ValueError("an endpoint pool needs at least one base URL")
        if len(set(urls)) < len(urls):
            raise ValueError(f"the same base URL is given twice: {', '.join(urls)}")
        paths = {urlsplit(u).path for u in urls}
        if len(paths) > 1:
            raise ValueError(f"the base URLs must share one path (e.g. /v1), got {sorted(paths)}")
        self.endpoints = [Endpoint(u, _parts=urlsplit(u)) for u in urls]
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def base_urls(self) -> list[str]:
        """The servers' URLs, in the order given."""
        return [e.base_url for e in self.endpoints]

    def __len__(self) -> int:
        return len(self.endpoints)

    def __repr__(self) -> str:
        return f"EndpointPool({self.base_urls!r})"

    def acquire(self) -> Endpoint:
        """The server for the next request (counted in flight until :meth:`release`)."""
        with self._lock:
            now = self._clock()
            up = [e for e in self.endpoints if e.down_until <= now]
            if up:
                chosen = min(up, key=lambda e: (e.in_flight, e.sent))
            else:
                chosen = min(self.endpoints, key=lambda e: (e.down_until, e.in_flight))
            chosen.in_flight += 1
            chosen.sent += 1
            return chosen

    def release(self, endpoint: Endpoint, *, ok: bool | None) -> None:
        """A request to ``endpoint`` ended; a failure sets the server aside for a while.

        ``ok=None``: the client gave up (cancelled), which says nothing about the server.
        """
        with self._lock:
            endpoint.in_flight -= 1
            if ok is None:
                return
            if ok:
                endpoint.ok += 1
                endpoint.down_until = 0.0
            else:
                endpoint.failed += 1
                endpoint.down_until = self._clock() + self.cooldown

    def stats(self) -> list[dict[str, Any]]:
        """Per-server counts."""
        with self._lock:
            return [e.as_dict() for e in self.endpoints]

    def route(self, request: Any, endpoint: Endpoint) -> None:
        """Point ``request`` (built for the first URL) at ``endpoint``."""
        parts = endpoint._parts
        request.url = request.url.copy_with(scheme=parts.scheme, host=parts.hostname,
                                            port=parts.port)  # fmt: skip
        request.headers["Host"] = parts.netloc


class _Counted:
    """A response body stream that releases its endpoint when it is closed."""

    def __init__(self, stream: Any, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done = done
        self._closed = False

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._done()


class _AsyncCounted(_Counted, httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._finish()


class _SyncCounted(_Counted, httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._finish()


class PoolTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An HTTP transport that sends each request to a server of ``pool`` (sync and async).

    ``inner`` does the sending (default: httpx's own transports).
    """

    def __init__(self, pool: EndpointPool, inner: Any = None, *, sync_inner: Any = None) -> None:
        self.pool = pool
        self._inner = inner
        self._sync_inner = sync_inner

    def _outcome(self, endpoint: Endpoint, response: Any) -> Callable[[], None]:
        ok = response.status_code not in _FAILED_STATUS
        return lambda: self.pool.release(endpoint, ok=ok)

    async def handle_async_request(self, request: Any) -> Any:
        if self._inner is None:
            self._inner = httpx.AsyncHTTPTransport()
        endpoint = self.pool.acquire()
        self.pool.route(request, endpoint)
        try:
            response = await self._inner.handle_async_request(request)
        except Exception:
            self.pool.release(endpoint, ok=False)
            raise
        except BaseException:  # cancelled: not the server's fault
            self.pool.release(endpoint, ok=None)
            raise
        response.stream = _AsyncCounted(response.stream, self._outcome(endpoint, response))
        response.headers[SERVER_HEADER] = endpoint.base_url
        return response

    def handle_request(self, request: Any) -> Any:
        if self._sync_inner is None:
            self._sync_inner = httpx.HTTPTransport()
        endpoint = self.pool.acquire()
        self.pool.route(request, endpoint)
        try:
            response = self._sync_inner.handle_request(request)
        except Exception:
            self.pool.release(endpoint, ok=False)
            raise
        except BaseException:
            self.pool.release(endpoint, ok=None)
            raise
        response.stream = _SyncCounted(response.stream, self._outcome(endpoint, response))
        response.headers[SERVER_HEADER] = endpoint.base_url
        return response

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    def close(self) -> None:
        if self._sync_inner is not None:
            self._sync_inner.close()
