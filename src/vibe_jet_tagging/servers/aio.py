"""An httpx transport that sends over aiohttp: the async path's connections, at a tenth the CPU.

httpx's own async stack (httpcore's connection pool, h11's pure-Python HTTP parser, anyio)
costs ~1.3 ms of CPU per request on these machines; aiohttp (its C HTTP parser, asyncio's
sockets) ~0.2 ms. :class:`AiohttpTransport` is the ``inner`` transport of
:class:`~.transport.PoolTransport` on the async path, so everything above it is unchanged:
the openai SDK's client, the pool's verification of each server and connection, the answer
bound and the repeated-failure rule see httpx requests, responses and errors as before.

What it keeps of httpx's contract:

- the request's method, URL, headers and body bytes as given (aiohttp adds none of its own but
  ``Host``/``Content-Length``, which the request already says);
- the response body as a stream, read a chunk at a time (the pool's bound stops it early);
- the connection a response came over, as ``extensions["network_stream"]`` (the socket's
  asyncio transport: a new connection is a new object);
- httpx's errors: a refused connection is ``ConnectError``, a connection dropped after the
  request was sent ``RemoteProtocolError`` (or ``ReadError``), a time-out the
  matching ``TimeoutException``, so the SDK's retries and typed errors do not change;
- the request's time-outs (``extensions["timeout"]``: connect, read, pool).

Sessions are per event loop (an aiohttp connection belongs to the loop that opened it, as in
:class:`~vibe_jet_tagging.tagging.model._PerLoopTransport`); a loop's session goes with it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

from .._compat.aiohttp import close_now
from .._compat.httpx import httpx

__all__ = ["AiohttpTransport"]

_CHUNK = 1 << 16
_SKIPPED_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
_CONNECTION: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "vjt_aiohttp_connection", default=None
)
"""Where the connector notes the connection a request goes over (the request's task only)."""
_CLASSES: tuple[type, type] | None = None


def _classes() -> tuple[type, type]:
    """aiohttp's session and connector, made quiet and able to say which connection a
    request went over (imported on first use: aiohttp costs ~0.1 s to import).

    - The connector notes each request's connection (see :data:`_CONNECTION`): aiohttp
      releases a connection as soon as a small body is in, before the caller sees the
      response, so the response cannot say which connection it came over; the connector can.
    - A connector left open (its transport dropped, a background loop at exit, a loop closed
      without ``shutdown_asyncgens``) closes its connections when collected, without the
      "Unclosed connector" or "Unclosed client session" lines aiohttp would print then.
    """
    global _CLASSES
    if _CLASSES is None:
        import aiohttp

        class Connector(aiohttp.TCPConnector):
            owner: weakref.ref[Any] | None = None

            @property
            def closed(self) -> bool:
                # Once the transport that owns it is gone, its session counts as closed: no
                # "Unclosed client session" when collected (this connector closes itself).
                owner = self.owner
                return bool(super().closed) or (owner is not None and owner() is None)

            async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
                connection = await super().connect(req, traces, timeout)
                noted = _CONNECTION.get()
                if noted is not None:
                    noted.append(connection.transport)
                return connection

            def __del__(self, *args: Any) -> None:
                close_now(self)  # quietly: no "Unclosed connector" lines

        _CLASSES = (aiohttp.ClientSession, Connector)
    return _CLASSES


_TRANSPORTS: weakref.WeakSet[AiohttpTransport] = weakref.WeakSet()


@atexit.register
def _detach_all() -> None:
    """Sessions still open at exit (a background loop's) are let go without aiohttp's
    "Unclosed client session" lines; their connector closes its sockets when collected."""
    for transport in list(_TRANSPORTS):
        transport._detach(lambda loop: True)


async def _closing(session: Any) -> AsyncIterator[None]:
    """Holds ``session`` open until its loop shuts down its async generators (``asyncio.run``
    does when its coroutine ends), then closes it there."""
    try:
        yield
    finally:
        await session.close()


def _timeout(request: Any) -> Any:
    import aiohttp

    t = request.extensions.get("timeout") or {}
    connect = t.get("connect")
    pool = t.get("pool")
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None and pool is None else (connect or 0) + (pool or 0),
        sock_connect=connect,
        sock_read=t.get("read"),
    )


def _translated(exc: BaseException, request: Any, *, sent: bool) -> BaseException:
    """The httpx error that httpx's own transport raises for what aiohttp raised."""
    import aiohttp

    said = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(said, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(said, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(said, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(said, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # not HTTP
        return httpx.RemoteProtocolError(said, request=request)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        error = httpx.ReadError if sent else httpx.ConnectError
        return error(said, request=request)
    return httpx.ReadError(said, request=request)


def _target(url: Any) -> str:
    """``url`` without its user and password (the request's headers carry the credentials;
    aiohttp refuses both), as httpx's own transport sends it."""
    if not url.userinfo:
        return str(url)
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.raw_path.decode('ascii')}"


class _Body(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads it; closing releases or drops the connection."""

    def __init__(self, response: Any, request: Any) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _translated(exc, self._request, sent=True) from exc

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # read whole: the connection goes back to the pool
        else:
            response.close()  # not read whole (bounded, cancelled): not reused


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's async transport interface over aiohttp sessions, one per event loop.

    ``limit``: connections per loop (the tagger keeps up to its concurrency in flight);
    ``keepalive``: seconds an idle connection is kept.
    """

    def __init__(self, *, limit: int = 1000, keepalive: float = 5.0) -> None:
        self.limit = limit
        self.keepalive = keepalive
        self._sessions: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        _TRANSPORTS.add(self)

    def _detach(self, gone: Any) -> None:
        """Let go of the sessions of the loops ``gone(loop)`` says are gone (closed ones
        were closed by their loop's end; the others are detached: see :func:`_classes`)."""
        with self._lock:
            for loop in [loop for loop in self._sessions if gone(loop)]:
                session, _ = self._sessions.pop(loop)
                session.detach()

    async def _session(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None and not entry[0].closed:
            return entry[0]
        import aiohttp

        session_class, connector_class = _classes()
        connector = connector_class(
            limit=self.limit, keepalive_timeout=self.keepalive, ttl_dns_cache=300
        )
        connector.owner = weakref.ref(self)
        session = session_class(
            connector=connector,
            auto_decompress=False,  # httpx decodes the body by its headers
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        keeper = _closing(session)
        await anext(keeper)
        self._detach(lambda other: other.is_closed())
        with self._lock:
            self._sessions[loop] = (session, keeper)
        return session

    async def handle_async_request(self, request: Any) -> Any:
        import aiohttp

        session = await self._session()
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _SKIPPED_HEADERS
        ]
        body = await request.aread() if request.method != "GET" else None
        noted: list[Any] = []
        token = _CONNECTION.set(noted)
        try:
            response = await session.request(
                request.method,
                _target(request.url),
                headers=headers,
                data=body,
                timeout=_timeout(request),
                allow_redirects=False,
                compress=None,
                chunked=None,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _translated(exc, request, sent=bool(noted)) from exc
        finally:
            _CONNECTION.reset(token)
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if noted and noted[-1] is not None:
            extensions["network_stream"] = noted[-1]
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions=extensions,
            request=request,
        )

    async def aclose(self) -> None:
        with self._lock:
            entry = self._sessions.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()
