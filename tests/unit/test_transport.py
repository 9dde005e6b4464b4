"""The pool's transport with a scripted inner transport (no network): verification of each
server and connection, the answer bound, and a request that two servers failed on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from vibe_jet_tagging._compat.httpx import httpx
from vibe_jet_tagging.servers.info import ServerIdentity
from vibe_jet_tagging.servers.pool import (
    AnswerTooLargeError,
    EndpointPool,
    NoServerLeftError,
    RepeatedFailureError,
)
from vibe_jet_tagging.servers.transport import SERVER_HEADER, PoolTransport
from vibe_jet_tagging.servers.url import redact

URLS = ["http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"]
MODEL = "m"
REAL = ServerIdentity(MODEL, "/weights/m", False)


class Connection:
    """Stands for a network stream (what httpcore names a connection)."""


def models(root: str, version: str = "0.32.0") -> dict[str, Any]:
    return {"data": [{"id": MODEL, "root": root, "owned_by": "vllm"}], "version": version}


class Scripted(httpx.AsyncBaseTransport):
    """Answers per host: ``servers[host]`` says what ``/v1/models`` gives and how chats go."""

    def __init__(self, servers: dict[str, dict[str, Any]]) -> None:
        self.servers = servers
        self.chats: list[str] = []
        self.gets: list[str] = []

    async def handle_async_request(self, request: Any) -> Any:
        host = request.url.host
        server = self.servers[host]
        if server.get("down"):
            raise httpx.ConnectError("refused")
        connection = server.setdefault("connection", Connection())
        extensions = {"network_stream": connection}
        if request.method == "GET":
            self.gets.append(f"{host}{request.url.path}")
            info = server["info"]
            if request.url.path.endswith("/models"):
                body = {"object": "list", "data": info["data"]}
            else:
                body = {"version": info["version"]}
            return httpx.Response(200, json=body, extensions=extensions)
        self.chats.append(host)
        behaviour: Callable[[Any], Any] = server.get("chat", lambda r: (200, b"{}"))
        status, body = behaviour(request)
        if isinstance(body, BaseException):
            raise body
        stream = body if not isinstance(body, bytes) else httpx.ByteStream(body)
        return httpx.Response(status, stream=stream, extensions=extensions)


def post(transport: PoolTransport, body: bytes = b'{"q": 1}') -> Any:
    request = httpx.Request("POST", URLS[0] + "/chat/completions", content=body)

    async def send() -> Any:
        response = await transport.handle_async_request(request)
        await response.aread()
        await response.aclose()
        return response

    return asyncio.run(send())


def pool_of(*urls: str, expected: ServerIdentity | None = REAL) -> EndpointPool:
    pool = EndpointPool(list(urls), model=MODEL)
    if expected is not None:
        pool.expect(expected, verified=list(urls))
    return pool


def test_a_verified_server_answers_without_being_read_again():
    inner = Scripted({"a": {"info": models("/weights/m")}})
    pool = pool_of(URLS[0])
    transport = PoolTransport(pool, inner)
    pool.endpoints[0].connections.add(inner.servers["a"].setdefault("connection", Connection()))
    response = post(transport)
    assert response.status_code == 200 and inner.gets == []
    assert response.headers[SERVER_HEADER] == URLS[0]


def test_a_server_not_read_yet_is_read_before_its_first_request():
    inner = Scripted({"a": {"info": models("/weights/m")}, "b": {"info": models("/weights/m")}})
    pool = EndpointPool(URLS[:2], model=MODEL)
    pool.expect(REAL, verified=[URLS[0]])
    transport = PoolTransport(pool, inner)
    for _ in range(4):
        post(transport)
    assert "b/v1/models" in inner.gets and "b/version" in inner.gets
    assert all(e.verified for e in pool.endpoints)
    assert inner.chats.count("b") >= 1


def test_a_server_that_is_someone_else_is_set_aside_for_good(caplog):
    inner = Scripted({
        "a": {"info": models("/weights/m")},
        "b": {"info": models("vibe-jet-tagging/emulated-heuristic", version="emulated 1")},
    })  # fmt: skip
    pool = EndpointPool(URLS[:2], model=MODEL)
    pool.expect(REAL, verified=[URLS[0]])
    transport = PoolTransport(pool, inner)
    for _ in range(6):
        post(transport)
    assert "b" not in inner.chats and inner.chats == ["a"] * 6
    assert pool.endpoints[1].foreign is not None
    assert "emulated server" in pool.endpoints[1].foreign
    assert "is set aside for the rest of the run" in caplog.text
    assert pool.stats()[1]["set_aside"] == pool.endpoints[1].foreign


def test_when_every_server_is_someone_else_no_request_is_sent():
    inner = Scripted({"a": {"info": models("/other/weights")}})
    pool = EndpointPool([URLS[0]], model=MODEL)
    pool.expect(REAL)
    transport = PoolTransport(pool, inner)
    with pytest.raises(NoServerLeftError, match="no server left that serves model m"):
        post(transport)
    assert inner.chats == []


def test_an_answer_over_a_new_connection_is_checked_and_dropped_if_the_server_changed():
    inner = Scripted({"a": {"info": models("/weights/m")}})
    pool = pool_of(URLS[0])
    transport = PoolTransport(pool, inner)
    post(transport)  # a new connection: read once, then known
    gets = len(inner.gets)
    post(transport)
    assert len(inner.gets) == gets  # the same connection: not read again
    inner.servers["a"] = {"info": models("/other/weights")}  # replaced, on a new connection
    with pytest.raises(httpx.ConnectError, match="changed"):
        post(transport)
    assert pool.endpoints[0].foreign is not None


def test_a_failed_server_is_read_again_before_its_next_answer():
    inner = Scripted({"a": {"info": models("/weights/m"), "chat": lambda r: (503, b"busy")}})
    pool = pool_of(URLS[0])
    transport = PoolTransport(pool, inner)
    post(transport)
    assert not pool.endpoints[0].verified
    inner.servers["a"]["chat"] = lambda r: (200, b"{}")
    pool.endpoints[0].down_until = 0
    gets = len(inner.gets)
    post(transport)
    assert len(inner.gets) > gets and pool.endpoints[0].verified


def test_a_server_down_while_being_read_fails_the_request_and_is_set_aside_a_while():
    inner = Scripted({"a": {"info": models("/weights/m"), "down": True}})
    pool = EndpointPool([URLS[0]], model=MODEL)
    pool.expect(REAL)
    transport = PoolTransport(pool, inner)
    with pytest.raises(httpx.ConnectError):
        post(transport)
    endpoint = pool.endpoints[0]
    assert endpoint.failed == 1 and endpoint.down_until > 0 and endpoint.in_flight == 0


def test_a_request_two_servers_failed_on_goes_to_no_third():
    dies = {"chat": lambda r: (500, b'{"error": "engine dead"}')}
    inner = Scripted({h: {"info": models("/weights/m"), **dies} for h in "abc"})
    pool = pool_of(*URLS)
    transport = PoolTransport(pool, inner)
    assert post(transport).status_code == 500  # the first server failed: the SDK retries
    with pytest.raises(RepeatedFailureError, match="failed on two servers in turn"):
        post(transport)  # the same request on the second
    assert sorted(inner.chats) == ["a", "b"]
    assert post(transport, b'{"other": 1}').status_code == 500  # another request: its own count
    assert all(e.in_flight == 0 for e in pool.endpoints)


def test_a_request_failing_twice_on_one_server_is_not_a_repeated_failure():
    inner = Scripted({"a": {"info": models("/weights/m"), "chat": lambda r: (500, b"x")}})
    pool = pool_of(URLS[0])
    transport = PoolTransport(pool, inner)
    for _ in range(3):
        pool.endpoints[0].down_until = 0
        assert post(transport).status_code == 500


def test_a_dropped_connection_mid_request_counts_as_a_failure_on_that_server():
    dropped = {"chat": lambda r: (200, httpx.RemoteProtocolError("peer closed"))}
    inner = Scripted({h: {"info": models("/weights/m"), **dropped} for h in "ab"})
    pool = pool_of(*URLS[:2])
    transport = PoolTransport(pool, inner)
    with pytest.raises(httpx.RemoteProtocolError):
        post(transport)
    with pytest.raises(RepeatedFailureError):
        post(transport)


def test_refused_connections_are_no_repeated_failure():
    refused = {"chat": lambda r: (200, httpx.ConnectError("refused"))}
    inner = Scripted({h: {"info": models("/weights/m"), **refused} for h in "ab"})
    pool = pool_of(*URLS[:2])
    transport = PoolTransport(pool, inner)
    for _ in range(3):
        for e in pool.endpoints:
            e.down_until = 0
        with pytest.raises(httpx.ConnectError):
            post(transport)


class Endless(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> Any:
        while True:
            self.sent += 65536
            yield b"x" * 65536

    async def aclose(self) -> None:
        pass


def test_an_answer_is_never_read_past_the_bound():
    endless = Endless()
    inner = Scripted({"a": {"info": models("/weights/m"), "chat": lambda r: (200, endless)}})
    transport = PoolTransport(pool_of(URLS[0]), inner, max_answer_bytes=1 << 20)
    with pytest.raises(AnswerTooLargeError, match="larger than 1,048,576 bytes"):
        post(transport)
    assert endless.sent <= (1 << 20) + 65536
    assert transport.pool.endpoints[0].in_flight == 0


def test_an_answer_at_the_bound_is_read():
    body = json.dumps({"x": "y" * 1000}).encode()
    inner = Scripted({"a": {"info": models("/weights/m"), "chat": lambda r: (200, body)}})
    transport = PoolTransport(pool_of(URLS[0]), inner, max_answer_bytes=len(body))
    assert post(transport).content == body


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:secret@host:8000/v1", "http://user@host:8000/v1"),
        ("http://:secret@host/v1", "http://host/v1"),
        ("http://user@host/v1", "http://user@host/v1"),
        ("http://host:8000/v1", "http://host:8000/v1"),
        ("http://u:p@[::1]:8000/v1", "http://u@[::1]:8000/v1"),
        ("http://u:p@host:notaport/v1", "<a URL that cannot be shown>"),
        (None, None),
    ],
)
def test_a_url_is_shown_without_its_password(url, shown):
    assert redact(url) == shown


def test_the_pool_shows_urls_without_passwords():
    pool = EndpointPool(["http://u:secret@a:1/v1", "http://u:secret@b:1/v1"])
    assert "secret" not in repr(pool) and "secret" not in json.dumps(pool.stats())
    assert pool.base_urls[0] == "http://u:secret@a:1/v1"  # the clients still get it
    with pytest.raises(ValueError, match="given twice") as error:
        EndpointPool(["http://u:secret@a:1/v1", "http://u:secret@a:1/v1"])
    assert "secret" not in str(error.value)
