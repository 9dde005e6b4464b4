"""The HTTP transport under the openai SDK that sends each request to a verified server.

:class:`PoolTransport` asks an :class:`~.pool.EndpointPool` for a server per request, reads a
server that is not verified (``/v1/models``, ``/version``) before sending it anything, bounds
every response body, and stops a request that two servers failed on (see :mod:`.pool`). The
reading of a server is written once (:func:`_reading`, a generator of the requests to send)
and driven by the async and the sync transport alike.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

from .._compat.httpx import httpx
from ..errors import ServerError
from .info import ServerInfo, models_url, parse_server_info, version_url
from .pool import (
    AnswerTooLargeError,
    Endpoint,
    EndpointPool,
    RepeatedFailureError,
)
from .url import redact

__all__ = ["DEFAULT_MAX_ANSWER_BYTES", "SERVER_HEADER", "PoolTransport"]

_FAILED_STATUS = frozenset({429, 500, 502, 503, 504})
_REACHED_STATUS = frozenset({500, 502, 503, 504})
"""Statuses of a server that took the request and failed on it."""
_REACHED_ERRORS: tuple[type[BaseException], ...] = (
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
"""Transport errors after the request reached the server (not a refused connection)."""
_INFO_BYTES = 1 << 20  # a /v1/models answer is read up to this

SERVER_HEADER = "x-vjt-server"
"""Response header naming the server a pooled request went to (its password left out)."""
DEFAULT_MAX_ANSWER_BYTES = 1 << 20
"""The default bound on one response body (1 MiB; gpt-oss at high effort writes ~10 kB)."""
_FAILURES_KEPT = 4096

Answer = tuple[int, bytes, Any] | None
"""What a GET gave: its status, body and connection (network stream), or ``None``."""


def _reading(endpoint: Endpoint, request: Any) -> Generator[Any, Answer, ServerInfo]:
    """Read what ``endpoint`` is: yields the GETs to send, gets their answers back.

    Raises ``httpx.ConnectError`` when the server cannot be reached and :class:`ServerError`
    when ``/v1/models`` gives no model list. The GETs carry the request's own authorization.
    """
    headers = {}
    if "authorization" in request.headers:
        headers["Authorization"] = request.headers["authorization"]
    models = yield httpx.Request("GET", models_url(endpoint.base_url), headers=headers)
    if models is None:
        raise httpx.ConnectError(f"cannot reach the model server at {endpoint.shown}")
    version = None
    if models[0] == 200:
        said = yield httpx.Request("GET", version_url(endpoint.base_url), headers=headers)
        version = said[1] if said is not None and said[0] == 200 else None
    return parse_server_info(endpoint.base_url, models[0], models[1], version)


def _connection(response: Any) -> Any:
    """The connection (network stream) a response came over, if the transport says."""
    return (getattr(response, "extensions", None) or {}).get("network_stream")


class _Bounded:
    """A response body stream that stops at ``limit`` bytes and releases its endpoint."""

    def __init__(
        self, stream: Any, done: Callable[[], None], limit: int | None, request: Any
    ) -> None:
        self._stream = stream
        self._done = done
        self._closed = False
        self._limit = limit
        self._request = request
        self._read = 0

    def _count(self, chunk: bytes) -> None:
        self._read += len(chunk)
        if self._limit is not None and self._read > self._limit:
            raise AnswerTooLargeError(
                f"the answer from {redact(str(self._request.url))} is larger than "
                f"{self._limit:,} bytes (max_answer_bytes); it was not read further",
                request=self._request,
                body=None,
            )

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._done()


class _AsyncBounded(_Bounded, httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._count(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._finish()


class _SyncBounded(_Bounded, httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._count(chunk)
            yield chunk

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._finish()


class _Failures:
    """Which server first failed on which request (by body digest), the last few thousand."""

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def second(self, request: Any, endpoint: Endpoint) -> bool:
        """Note that ``endpoint`` failed on ``request``: whether another server did before."""
        try:
            body = request.content
        except Exception:  # a streamed request body: cannot be compared
            return False
        digest = hashlib.blake2b(body, digest_size=16).digest()
        with self._lock:
            first = self._seen.get(digest)
            if first is None:
                self._seen[digest] = endpoint.base_url
                if len(self._seen) > _FAILURES_KEPT:
                    self._seen.popitem(last=False)
                return False
            return first != endpoint.base_url


class PoolTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An HTTP transport that sends each request to a verified server of ``pool``.

    ``inner`` does the sending (default: httpx's own transports); ``max_answer_bytes`` bounds
    each response body (``None``: no bound).
    """

    def __init__(
        self,
        pool: EndpointPool,
        inner: Any = None,
        *,
        sync_inner: Any = None,
        max_answer_bytes: int | None = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.pool = pool
        self._inner = inner
        self._sync_inner = sync_inner
        self.max_answer_bytes = max_answer_bytes
        self._failures = _Failures()

    # -- a verified server for each request ----------------------------------------------------

    def _checked(
        self, endpoint: Endpoint, outcome: ServerInfo | BaseException, seen: list[Any]
    ) -> bool:
        """Whether ``endpoint`` may take the request, after reading it (over the connections
        ``seen``) gave ``outcome``."""
        if isinstance(outcome, httpx.HTTPError | ServerError):
            self.pool.release(endpoint, ok=False)
            raise outcome
        if isinstance(outcome, BaseException):
            self.pool.release(endpoint, ok=None)
            raise outcome
        if self.pool.admit(endpoint, outcome):
            for connection in seen:
                if connection is not None:
                    endpoint.connections.add(connection)
            return True
        self.pool.release(endpoint, ok=None)
        return False

    async def _aget(self, request: Any) -> Answer:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.HTTPError:
            return None
        try:
            body = b""
            async for chunk in response.stream:
                body += chunk
                if len(body) > _INFO_BYTES:
                    break
            return response.status_code, body, _connection(response)
        finally:
            await response.aclose()

    def _get(self, request: Any) -> Answer:
        try:
            response = self._sync_inner.handle_request(request)
        except httpx.HTTPError:
            return None
        try:
            body = b""
            for chunk in response.stream:
                body += chunk
                if len(body) > _INFO_BYTES:
                    break
            return response.status_code, body, _connection(response)
        finally:
            response.close()

    async def _aread_server(self, endpoint: Endpoint, request: Any) -> bool:
        """Read ``endpoint`` now: whether it is the expected server (raises when unreadable)."""
        reading, seen = _reading(endpoint, request), []
        try:
            step = next(reading)
            while True:
                answer = await self._aget(step)
                seen.append(None if answer is None else answer[2])
                step = reading.send(answer)
        except StopIteration as done:
            outcome: ServerInfo | BaseException = done.value
        except BaseException as exc:
            outcome = exc
        return self._checked(endpoint, outcome, seen)

    def _read_server(self, endpoint: Endpoint, request: Any) -> bool:
        reading, seen = _reading(endpoint, request), []
        try:
            step = next(reading)
            while True:
                answer = self._get(step)
                seen.append(None if answer is None else answer[2])
                step = reading.send(answer)
        except StopIteration as done:
            outcome: ServerInfo | BaseException = done.value
        except BaseException as exc:
            outcome = exc
        return self._checked(endpoint, outcome, seen)

    async def _averified(self, request: Any) -> Endpoint:
        for _ in range(len(self.pool) + 1):
            endpoint = self.pool.acquire()
            if endpoint.verified or await self._aread_server(endpoint, request):
                return endpoint
        return self.pool.acquire()  # every server just set aside: raises NoServerLeftError

    def _verified(self, request: Any) -> Endpoint:
        for _ in range(len(self.pool) + 1):
            endpoint = self.pool.acquire()
            if endpoint.verified or self._read_server(endpoint, request):
                return endpoint
        return self.pool.acquire()

    @staticmethod
    def _replaced(endpoint: Endpoint) -> httpx.ConnectError:
        """The error for an answer from a server that is no longer the expected one (it was
        released when found out); the SDK asks another server."""
        return httpx.ConnectError(
            f"the server at {endpoint.shown} changed ({endpoint.foreign}): its answer was dropped"
        )

    # -- sending ------------------------------------------------------------------------------

    def _failed(self, endpoint: Endpoint, request: Any) -> None:
        """``endpoint`` failed on ``request`` after taking it: stop if another did too."""
        self.pool.release(endpoint, ok=False)
        if self._failures.second(request, endpoint):
            raise RepeatedFailureError(
                f"the request failed on two servers in turn (the last {endpoint.shown}); "
                "it is not sent to another: it may be what makes them fail",
                request=request,
                body=None,
            )

    def _answer(
        self,
        endpoint: Endpoint,
        request: Any,
        response: Any,
        stream: type[_Bounded],
        *,
        released: bool = False,
    ) -> Any:
        ok = response.status_code not in _FAILED_STATUS

        def done() -> None:
            if not released:
                self.pool.release(endpoint, ok=ok)

        response.stream = stream(response.stream, done, self.max_answer_bytes, request)
        response.headers[SERVER_HEADER] = endpoint.shown
        return response

    async def handle_async_request(self, request: Any) -> Any:
        if self._inner is None:
            self._inner = httpx.AsyncHTTPTransport()
        endpoint = await self._averified(request)
        self.pool.route(request, endpoint)
        try:
            response = await self._inner.handle_async_request(request)
        except _REACHED_ERRORS:
            self._failed(endpoint, request)
            raise
        except Exception:
            self.pool.release(endpoint, ok=False)
            raise
        except BaseException:  # cancelled: not the server's fault
            self.pool.release(endpoint, ok=None)
            raise
        if response.status_code in _REACHED_STATUS:
            try:
                self._failed(endpoint, request)
            except RepeatedFailureError:
                await response.aclose()
                raise
            return self._answer(endpoint, request, response, _AsyncBounded, released=True)
        connection = _connection(response)
        if connection is not None and connection not in endpoint.connections:
            try:
                still = await self._aread_server(endpoint, request)
            except BaseException:
                await response.aclose()
                raise
            if not still:
                await response.aclose()
                raise self._replaced(endpoint)
            endpoint.connections.add(connection)
        return self._answer(endpoint, request, response, _AsyncBounded)

    def handle_request(self, request: Any) -> Any:
        if self._sync_inner is None:
            self._sync_inner = httpx.HTTPTransport()
        endpoint = self._verified(request)
        self.pool.route(request, endpoint)
        try:
            response = self._sync_inner.handle_request(request)
        except _REACHED_ERRORS:
            self._failed(endpoint, request)
            raise
        except Exception:
            self.pool.release(endpoint, ok=False)
            raise
        except BaseException:
            self.pool.release(endpoint, ok=None)
            raise
        if response.status_code in _REACHED_STATUS:
            try:
                self._failed(endpoint, request)
            except RepeatedFailureError:
                response.close()
                raise
            return self._answer(endpoint, request, response, _SyncBounded, released=True)
        connection = _connection(response)
        if connection is not None and connection not in endpoint.connections:
            try:
                still = self._read_server(endpoint, request)
            except BaseException:
                response.close()
                raise
            if not still:
                response.close()
                raise self._replaced(endpoint)
            endpoint.connections.add(connection)
        return self._answer(endpoint, request, response, _SyncBounded)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    def close(self) -> None:
        if self._sync_inner is not None:
            self._sync_inner.close()
