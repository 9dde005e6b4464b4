"""An answer cached from one server is never served as another's, whatever API wrote it.

The stand-in for a real model server is a small aiohttp server on loopback that says what it
is like vLLM does (``GET /v1/models`` with the weights as ``root``, ``GET /version``) and relays
the chat completions to an emulated server (so it answers, and counts what it was asked).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from vibe_jet_tagging import ChatVLLM, JetTagger, load_sample
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.store.cache import ResultCache

JETS = list(load_sample().head(4))


class StandIn:
    """A 'model server' with its own identity whose answers come from ``upstream``."""

    def __init__(self, upstream: EmulatedServer, *, root: str, version: str = "0.32.0") -> None:
        self.upstream, self.root, self.version = upstream, root, version
        self.asked = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()  # no deadline: pytest-timeout catches a hang

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _models(self, request: web.Request) -> web.Response:
        card = {"id": self.upstream.model, "object": "model", "owned_by": "vllm"}
        return web.json_response({"object": "list", "data": [{**card, "root": self.root}]})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.version})

    async def _chat(self, request: web.Request) -> web.Response:
        self.asked += 1
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.upstream.base_url}/chat/completions", json=await request.json()
            ) as answer,
        ):
            return web.json_response(await answer.json(), status=answer.status)

    def _run(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/version", self._version)
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture
def stand_in(emulator) -> Iterator[Any]:
    made: list[StandIn] = []

    def make(**identity: str) -> StandIn:
        made.append(StandIn(emulator, **identity))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def tag(base_url: str, **options: Any) -> list[Any]:
    """The issue's reproduction: the Python API with its default cache (cache=True)."""
    tagger = JetTagger(base_url=base_url, template="zero_shot", effort="low", **options)
    return tagger.batch(JETS)


def test_the_emulators_answers_are_never_served_for_a_real_server(emulator, stand_in):
    emulated = tag(emulator.base_url)
    assert not any(r.cached for r in emulated)
    assert len(ResultCache()) == len(JETS)  # the default cache, as a user's first run

    real = stand_in(root="openai/gpt-oss-120b")
    answers = tag(real.base_url)
    assert real.asked == len(JETS)  # asked, not "4 from the cache, 0 asked"
    assert not any(r.cached for r in answers)
    assert {r.key for r in answers}.isdisjoint({r.key for r in emulated})

    # Each server's own answers are still served to it.
    again = tag(real.base_url)
    assert real.asked == len(JETS) and all(r.cached for r in again)
    emulator.reset_stats()
    assert all(r.cached for r in tag(emulator.base_url))
    assert emulator.stats()["requests_total"] == 0


def test_other_weights_or_another_output_constraint_miss(emulator, stand_in):
    first = stand_in(root="openai/gpt-oss-120b")
    tag(first.base_url)
    same = stand_in(root="openai/gpt-oss-120b")
    assert all(r.cached for r in tag(same.base_url))
    assert same.asked == 0

    other_weights = stand_in(root="/models/gpt-oss-120b-finetuned")
    tag(other_weights.base_url)
    assert other_weights.asked == len(JETS)

    # vLLM before 0.10.2 gets response_format instead of the structured_outputs regex.
    older = stand_in(root="openai/gpt-oss-120b", version="0.9.2")
    tag(older.base_url)
    assert older.asked == len(JETS)


def test_the_server_is_asked_once_per_tagger_never_per_jet(emulator):
    tagger = JetTagger(
        ChatVLLM(base_url=emulator.base_url, reasoning_effort="low"), template="zero_shot"
    )
    emulator.reset_stats()
    keys = {tagger.key_for(jet) for jet in JETS}
    assert len(keys) == len(JETS)
    assert emulator.stats()["requests_total"] == 0  # GET /v1/models only, no chat request
    assert tagger.client.key_identity() == {
        "emulated": True,
        "root": "vibe-jet-tagging/emulated-heuristic",
        "constraint": "structured_outputs",
    }


def test_a_server_that_cannot_be_read_fails_each_jet_without_a_key(emulator):
    tagger = JetTagger(base_url="http://127.0.0.1:9/v1", template="zero_shot", max_retries=0)
    outcomes = tagger.batch(JETS, return_exceptions=True)
    assert [o.result.error.kind for o in outcomes] == ["connection"] * len(JETS)
    assert all("127.0.0.1:9" in o.result.error.message for o in outcomes)
    assert len(ResultCache()) == 0
