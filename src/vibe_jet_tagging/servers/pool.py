"""Servers of one model behind one client: each verified before its answers count.

On a cluster without a router (Slurm, most often), each GPU node runs its own vLLM. An
:class:`EndpointPool` spreads one client's requests over their base URLs: each request goes to
the server with the fewest requests in flight (ties: the one sent least); a server that fails
(connection error, time-out, HTTP 429 or 5xx) is set aside for ``cooldown`` seconds and tried
again after; when every server is set aside, the one back soonest is used. The pool sits
under the OpenAI SDK as an HTTP transport (:class:`~.transport.PoolTransport`), so the
SDK's own retries of a failed request go to another server. One server is a pool of one.

Whose answers these are: the pool expects one :class:`~.info.ServerIdentity` (what the
tagger read from ``/v1/models`` at the start, else what the first server checked says). A
server that could not be read at the start, or that failed since (it may have been restarted,
with other weights or as the emulated server), is read again (``/v1/models``, ``/version``)
before its next request; so is a server whose answer came over a connection it was not
verified over (a server replaced between two requests drops its connections, and the client
reconnects without seeing a failure). One that now says it is someone else is set aside for
the rest of the run, with one warning line, and its answer is dropped. So every answer that
reaches the client came from a server verified to be the expected one.

Bounds the transport (:mod:`.transport`) keeps:

- an answer larger than ``max_answer_bytes`` is never held whole: reading it stops at the
  bound with :class:`AnswerTooLargeError`;
- a request a server failed on while handling it (HTTP 5xx, a dropped connection) goes to at
  most one other server; when that one fails on it too, :class:`RepeatedFailureError` ends it
  (a request that kills servers is not carried to every one of them).

Both errors are ``openai.APIError``s, which the openai SDK passes on without retrying.

>>> pool = EndpointPool(["http://node1:8000/v1", "http://node2:8000/v1"])  # doctest: +SKIP
>>> model = ChatVLLM(base_url=pool.base_urls, ...)                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from .info import ServerIdentity, ServerInfo
from .url import check_base_urls, redact

__all__ = [
    "AnswerTooLargeError",
    "Endpoint",
    "EndpointPool",
    "NoServerLeftError",
    "RepeatedFailureError",
]

logger = logging.getLogger(__name__)


class AnswerTooLargeError(openai.APIError):
    """The server's answer exceeded the bound; it was never read whole, parsed or kept."""


class RepeatedFailureError(openai.APIError):
    """The request failed on two servers in turn; it is not sent to a third."""


class NoServerLeftError(openai.APIError):
    """Every server of the pool was set aside for good (another model, or the emulator)."""


@dataclass
class Endpoint:
    """One server of a pool and what it did."""

    base_url: str
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    down_until: float = 0.0
    verified: bool = False
    """Read since its last failure and found to be the expected server."""
    foreign: str | None = None
    """Why it is set aside for good (it is not the expected server), or ``None``."""
    checking: bool = False
    connections: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet, repr=False)
    """The connections (network streams) this server was verified over: an answer that
    comes over another one (the server may have been replaced) is checked first."""
    _parts: Any = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The URL as it may be shown (no password)."""
        return redact(self.base_url) or ""

    def as_dict(self) -> dict[str, Any]:
        """The counts, for progress lines and reports (the URL without its password)."""
        return {
            "base_url": self.shown,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "set_aside": self.foreign,
        }


class EndpointPool:
    """Base URLs of servers that serve the same model, and the choice of one per request.

    Args:
        base_urls: the servers' OpenAI-compatible URLs (``http://host:port/v1``); all must
            have the same path, since requests are built for the first.
        cooldown: seconds a failed server is left out before it is tried again.
        clock: the time source (``time.monotonic``; tests pass their own).
        model: the served model whose identity the servers must share (set by the client
            that reads the servers; without it, the first server read sets it).
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        model: str | None = None,
    ) -> None:
        self.endpoints = [Endpoint(u, _parts=parts) for u, parts in check_base_urls(base_urls)]
        self.cooldown = cooldown
        self.model = model
        self.expected: ServerIdentity | None = None
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def base_urls(self) -> list[str]:
        """The servers' URLs, in the order given (with any credentials: for clients only)."""
        return [e.base_url for e in self.endpoints]

    @property
    def shown_urls(self) -> list[str]:
        """The servers' URLs as they may be shown (no password)."""
        return [e.shown for e in self.endpoints]

    def __len__(self) -> int:
        return len(self.endpoints)

    def __repr__(self) -> str:
        return f"EndpointPool({self.shown_urls!r})"

    # -- whose answers ------------------------------------------------------------------------

    def expect(self, identity: ServerIdentity, verified: Sequence[str] = ()) -> None:
        """The identity every answer must come from; ``verified``: URLs just read as such."""
        with self._lock:
            self.expected = identity
            self.model = identity.model
            for endpoint in self.endpoints:
                if endpoint.base_url in {u.rstrip("/") for u in verified}:
                    endpoint.verified = True

    def admit(self, endpoint: Endpoint, info: ServerInfo) -> bool:
        """Whether ``endpoint``, read as ``info``, is the expected server (else set aside)."""
        model = self.model or (info.model_ids[0] if info.model_ids else "")
        identity = info.identity(model)
        with self._lock:
            endpoint.checking = False
            if self.expected is None and identity is not None:
                self.expected = identity
                self.model = identity.model
            if identity is not None and identity == self.expected:
                endpoint.verified = True
                return True
            found = "does not serve it" if identity is None else f"is {identity}"
            endpoint.foreign = f"expected {self.expected}, the server {found}"
        logger.warning(
            "the server at %s is set aside for the rest of the run: %s",
            endpoint.shown,
            endpoint.foreign,
        )
        return False

    # -- choosing a server --------------------------------------------------------------------

    def acquire(self) -> Endpoint:
        """The server for the next request (counted in flight until :meth:`release`).

        Raises :class:`NoServerLeftError` (an ``openai.APIError``) when every server was set
        aside for good. An unverified server is handed to one request at a time while others
        are up (that request reads it first).
        """
        with self._lock:
            usable = [e for e in self.endpoints if e.foreign is None]
            if not usable:
                reasons = "; ".join(f"{e.shown}: {e.foreign}" for e in self.endpoints)
                raise NoServerLeftError(
                    f"no server left that serves {self.expected}: {reasons}",
                    request=None,  # type: ignore[arg-type]
                    body=None,
                )
            now = self._clock()
            up = [e for e in usable if e.down_until <= now]
            ready = [e for e in up if e.verified or not e.checking] or up
            if ready:
                chosen = min(ready, key=lambda e: (e.in_flight, e.sent))
            else:
                chosen = min(usable, key=lambda e: (e.down_until, e.in_flight))
            if not chosen.verified:
                chosen.checking = True
            chosen.in_flight += 1
            chosen.sent += 1
            return chosen

    def release(self, endpoint: Endpoint, *, ok: bool | None) -> None:
        """A request to ``endpoint`` ended; a failure sets the server aside for a while.

        ``ok=None``: the client gave up (cancelled), which says nothing about the server. A
        failed server is read again before its next answer counts.
        """
        with self._lock:
            endpoint.in_flight -= 1
            if ok is None:
                endpoint.checking = False
                return
            if ok:
                endpoint.ok += 1
                endpoint.down_until = 0.0
            else:
                endpoint.failed += 1
                endpoint.down_until = self._clock() + self.cooldown
                endpoint.verified = False
                endpoint.checking = False

    def stats(self) -> list[dict[str, Any]]:
        """Per-server counts."""
        with self._lock:
            return [e.as_dict() for e in self.endpoints]

    def route(self, request: Any, endpoint: Endpoint) -> None:
        """Point ``request`` (built for the first URL) at ``endpoint``.

        A request already built for ``endpoint`` (one server, or the first) is left as it is:
        rebuilding its URL costs more than the rest of the pool's work per request.
        """
        parts = endpoint._parts
        url = request.url
        if (url.scheme, url.host, url.port) == (parts.scheme, parts.hostname, parts.port):
            return
        request.url = url.copy_with(scheme=parts.scheme, host=parts.hostname, port=parts.port)
        request.headers["Host"] = parts.netloc.rpartition("@")[2]
