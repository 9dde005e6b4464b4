"""The emulated vLLM server under load: queue, faults, restarts, subprocess, CLI."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import httpx2
import pytest
from openai import APIConnectionError, APITimeoutError, OpenAI

from vibe_jet_tagging.emulator import FAULT_KINDS, EmulatedServer
from vibe_jet_tagging.jets.formats import render_jet


def body_for(jet: Any, **extra: Any) -> dict[str, Any]:
    content = f"Quark or gluon?\n\n{render_jet(jet)}"
    return {"messages": [{"role": "user", "content": content}], **extra}


async def fire(server: EmulatedServer, bodies: list[dict[str, Any]], limit: int = 0) -> list[Any]:
    """POST every body at once (at most ``limit`` open, 0: no limit); return
    ``(status, headers, json or None)`` or the exception of each."""
    gate = asyncio.Semaphore(limit or len(bodies))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: dict[str, Any]) -> Any:
            async with gate:
                try:
                    async with session.post(f"{server.base_url}/chat/completions", json=body) as r:
                        raw = await r.read()
                        return r.status, r.headers, json.loads(raw)
                except (aiohttp.ClientError, json.JSONDecodeError) as exc:
                    return exc

        return await asyncio.gather(*(one(b) for b in bodies))


# -- the batch and the queue -------------------------------------------------------------------


async def test_queue_bounds_concurrency(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(max_num_seqs=3, ttft=0.25)
    start = time.perf_counter()
    results = await fire(server, [body_for(make_jet("quark", i)) for i in range(10)])
    elapsed = time.perf_counter() - start
    assert [r[0] for r in results] == [200] * 10
    # Three at a time: at least four rounds of 0.25 s (a busy machine only adds to it).
    assert elapsed >= math.ceil(10 / 3) * 0.25
    stats = server.stats()
    assert stats["max_running"] == 3
    assert stats["max_waiting"] >= 5
    assert stats["running"] == stats["waiting"] == 0


async def test_latency_model(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(ttft=0.1, itl=0.0005)
    start = time.perf_counter()
    [(status, _, data)] = await fire(server, [body_for(make_jet(), reasoning_effort="high")])
    elapsed = time.perf_counter() - start
    expected = 0.1 + 0.0005 * data["usage"]["completion_tokens"]
    assert status == 200
    assert elapsed >= expected  # the emulator waits ttft + itl per token (a floor, no ceiling)


@pytest.mark.parametrize("status", [503, 429])
async def test_queue_limit(fresh_emulator, make_jet, status) -> None:
    server = fresh_emulator(max_num_seqs=1, max_queue=2, ttft=0.5, queue_full_status=status)
    results = await fire(server, [body_for(make_jet("gluon", i)) for i in range(6)])
    statuses = sorted(r[0] for r in results)
    assert statuses == sorted([200] * 3 + [status] * 3)
    refused = next(r[2] for r in results if r[0] == status)
    assert refused["error"]["code"] == status
    assert server.stats()["outcomes"] == {"ok": 3, "queue_full": 3}


def test_configure_at_run_time(fresh_emulator, make_jet) -> None:
    server = fresh_emulator()
    config = server.configure(max_num_seqs=2, ttft=0.01)
    assert config.max_num_seqs == 2
    assert httpx.get(f"{server.url}/admin/config").json()["max_num_seqs"] == 2
    with pytest.raises(ValueError, match="max_num_seqs"):
        server.configure(max_num_seqs=0)
    server.set_faults(server_error=1.0)
    assert (
        httpx.post(f"{server.base_url}/chat/completions", json=body_for(make_jet())).status_code
        == 500
    )
    server.set_faults(server_error=0.0)
    assert (
        httpx.post(f"{server.base_url}/chat/completions", json=body_for(make_jet())).status_code
        == 200
    )


# -- faults ------------------------------------------------------------------------------------


async def test_server_error_rate(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(faults={"server_error": 0.2})
    jet = make_jet()
    results = await fire(server, [body_for(jet, reasoning_effort="low")] * 400, limit=100)
    errors = [r for r in results if r[0] == 500]
    # The count is fixed by the seed (the draws don't depend on arrival order): 400 * 0.2 = 80.
    assert 60 <= len(errors) <= 100
    assert all(r[0] == 200 for r in results if r[0] != 500)
    assert set(errors[0][2]["error"]) == {"message", "type", "param", "code"}
    assert server.stats()["outcomes"] == {"server_error": len(errors), "ok": 400 - len(errors)}


def _classify(result: Any) -> str:
    if isinstance(result, Exception):
        return "disconnect"
    status, headers, data = result
    if status == 500:
        return "server_error"
    if status == 429:
        assert float(headers["Retry-After"]) >= 1
        return "rate_limit"
    assert status == 200
    choice = data["choices"][0]
    if choice["finish_reason"] == "length":
        return "truncation"
    try:
        json.loads(choice["message"]["content"])
    except json.JSONDecodeError:
        return "malformed_json"
    return "ok_or_stall"


# The faults _classify tells apart (the answer faults are checked against the parser in
# tests/unit/test_emulator_answers.py and tests/integration/test_faults.py).
CLASSIFIED = ("server_error", "rate_limit", "stall", "disconnect", "malformed_json", "truncation")


@pytest.mark.parametrize("stream", [False, True])
async def test_every_fault_at_its_rate(fresh_emulator, make_jet, stream) -> None:
    rate = 0.15
    server = fresh_emulator(faults=dict.fromkeys(CLASSIFIED, rate), stall_seconds=0.05)
    bodies = [
        body_for(make_jet("quark", i % 7), reasoning_effort="low",
                 response_format={"type": "json_object"})
        for i in range(400)
    ]  # fmt: skip
    if stream:
        results = await fire_stream(server, bodies)
    else:
        results = await fire(server, bodies, limit=100)
    seen: dict[str, int] = {}
    for result in results:
        kind = _classify(result)
        seen[kind] = seen.get(kind, 0) + 1
    outcomes = server.stats()["outcomes"]
    assert set(CLASSIFIED) <= set(FAULT_KINDS)
    for kind in CLASSIFIED:
        assert 35 <= outcomes[kind] <= 85, outcomes  # 400 * 0.15 = 60 expected
        if kind != "stall":
            assert seen[kind] == outcomes[kind], (kind, seen, outcomes)
    assert seen["ok_or_stall"] == outcomes["ok"] + outcomes["stall"]


async def fire_stream(server: EmulatedServer, bodies: list[dict[str, Any]]) -> list[Any]:
    """Stream every body; rebuild ``(status, headers, completion-like json)`` per request."""
    async with aiohttp.ClientSession() as session:

        async def one(body: dict[str, Any]) -> Any:
            try:
                url = f"{server.base_url}/chat/completions"
                async with session.post(url, json={**body, "stream": True}) as r:
                    if r.status != 200:
                        return r.status, r.headers, await r.json()
                    content, finish = "", None
                    async for line in r.content:
                        if line.startswith(b"data: {"):
                            choice = json.loads(line[6:])["choices"][0]
                            content += choice["delta"].get("content") or ""
                            finish = choice["finish_reason"] or finish
                    message = {"content": content}
                    return (
                        200,
                        r.headers,
                        {"choices": [{"finish_reason": finish, "message": message}]},
                    )
            except aiohttp.ClientError as exc:
                return exc

        return await asyncio.gather(*(one(b) for b in bodies))


def test_stall_outlasts_the_client_timeout(fresh_emulator, make_jet) -> None:
    # A stall far longer than the test's own time-out: only the client's time-out ends it.
    server = fresh_emulator(faults={"stall": 1.0}, stall_seconds=3600)
    messages = body_for(make_jet())["messages"]
    with OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=0.3) as client:
        with pytest.raises(APITimeoutError):
            client.chat.completions.create(model=server.model, messages=messages)
        server.set_faults(stall=0.0)
        assert client.chat.completions.create(model=server.model, messages=messages).choices
    while server.stats()["outcomes"].get("stall") != 1:
        time.sleep(0.05)  # the stalled handler ends when the server sees the client leave
    assert server.stats()["outcomes"] == {"stall": 1, "ok": 1}


def test_client_retries_get_through(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(faults={"rate_limit": 0.5}, retry_after=0.01)
    messages = body_for(make_jet())["messages"]
    with OpenAI(base_url=server.base_url, api_key="x", max_retries=8) as client:
        for _ in range(10):
            assert client.chat.completions.create(model=server.model, messages=messages).choices
    outcomes = server.stats()["outcomes"]
    assert outcomes["ok"] == 10
    assert outcomes["rate_limit"] > 0


def test_disconnect_through_the_openai_client(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(faults={"disconnect": 1.0})
    messages = body_for(make_jet())["messages"]
    with OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            client.chat.completions.create(model=server.model, messages=messages)
        with pytest.raises(httpx2.RemoteProtocolError):
            for _ in client.chat.completions.create(
                model=server.model, messages=messages, stream=True
            ):
                pass


# -- life cycle --------------------------------------------------------------------------------


def test_stop_mid_run_and_start_on_the_same_port(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(ttft=5.0)
    port = server.port
    url = f"{server.base_url}/chat/completions"
    failures: list[BaseException] = []

    def slow_request() -> None:
        try:
            httpx.post(url, json=body_for(make_jet()), timeout=20)
        except httpx.HTTPError as exc:
            failures.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    while server.stats()["running"] < 1:  # the request is in the server
        time.sleep(0.02)
    server.stop()  # cancels it (a stop that waited for the 5 s answer would fail below)
    thread.join()
    assert failures  # the in-flight request saw the server go away
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health")
    server.configure(ttft=0.0)
    server.start()
    assert server.port == port
    assert httpx.post(url, json=body_for(make_jet())).status_code == 200


async def test_async_context_manager(make_jet) -> None:
    async with EmulatedServer(seed=3) as server, httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.base_url}/chat/completions", json=body_for(make_jet())
        )
        assert response.status_code == 200
    assert not server.running


def test_subprocess_server(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(process=True, seed=4)
    url = f"{server.base_url}/chat/completions"
    first = httpx.post(url, json=body_for(make_jet())).json()
    server.set_faults(server_error=1.0)
    assert httpx.post(url, json=body_for(make_jet())).status_code == 500
    assert server.stats()["outcomes"] == {"ok": 1, "server_error": 1}
    port = server.port
    server.stop()
    server.set_faults(server_error=0.0)
    server.start()
    assert server.port == port
    again = httpx.post(url, json=body_for(make_jet())).json()
    assert again["choices"][0]["message"] == first["choices"][0]["message"]


def test_clean_stop_leaves_no_threads_or_warnings(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import threading, httpx, warnings
        from vibe_jet_tagging.emulator import EmulatedServer
        body = {"messages": [{"role": "user", "content": "3 constituents\\npt dy dphi\\n"
                              "100 0.01 0.02\\n50 0.03 0.01\\n5 0.1 0.2"}]}
        for _ in range(2):
            with EmulatedServer(faults={"disconnect": 0.5}, stall_seconds=0.2) as server:
                url = server.base_url + "/chat/completions"
                for stream in (False, True, False, True):
                    try:
                        httpx.post(url, json={**body, "stream": stream})
                    except httpx.HTTPError:
                        pass
                server.set_faults(disconnect=0.0, stall=1.0)
                try:
                    httpx.post(url, json=body, timeout=0.05)
                except httpx.TimeoutException:
                    pass
        assert threading.active_count() == 1, threading.enumerate()
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONASYNCIODEBUG": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
    assert result.stderr == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vjt() -> list[str]:
    script = Path(sys.executable).with_name("vjt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vibe_jet_tagging.cli"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_serve_emulate(sig) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*_vjt(), "serve", "--emulate", "--port", str(port), "--seed", "1", "--fail-rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while True:  # no deadline: pytest-timeout catches a server that never comes up
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.ConnectError:
                pass
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert models["data"][0]["id"] == "openai/gpt-oss-120b"
        proc.send_signal(sig)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "physics heuristic, not a language model" in err
    assert "Traceback" not in err


def test_cli_serve_without_emulate() -> None:
    result = subprocess.run([*_vjt(), "serve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "vllm serve openai/gpt-oss-120b" in result.stderr


# -- how much one process holds (measured, reported) --------------------------------------------


@pytest.mark.slow
async def test_thousand_concurrent_requests(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(process=True, ttft=1.0, max_num_seqs=1000)
    bodies = [body_for(make_jet("gluon", i), reasoning_effort="medium") for i in range(1000)]
    start = time.perf_counter()
    results = await fire(server, bodies)
    elapsed = time.perf_counter() - start
    assert [r[0] for r in results] == [200] * 1000
    assert server.stats()["max_running"] == 1000  # all at once, none queued
    print(f"\n1000 concurrent requests of 1 s each: {elapsed:.2f} s")
