"""A stand-in for a vLLM server with real weights, over real HTTP on loopback.

The emulated server always says it is the emulator (``/version`` "emulated ...", ``root`` of
no weights), as it must. Tests of whose answer is whose need a second kind of server: this one
answers ``/v1/models`` and ``/version`` as vLLM 0.32 serving ``openai/gpt-oss-120b`` from
weights ``/models/gpt-oss-120b`` does, and forwards each chat completion to an emulated server
(``upstream``), optionally making the answer ``pad`` bytes longer (an oversized answer).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
from aiohttp import web

MODEL = "openai/gpt-oss-120b"
WEIGHTS = "/models/gpt-oss-120b"


class ModelStandIn:
    """A vLLM-shaped server (see the module doc); a context manager, started on enter."""

    def __init__(self, upstream: str, *, pad: int = 0, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.pad = pad
        self.port = port
        self.chat_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _models(self, request: web.Request) -> web.Response:
        card = {"id": MODEL, "object": "model", "owned_by": "vllm", "root": WEIGHTS,
                "max_model_len": 131072}  # fmt: skip
        return web.json_response({"object": "list", "data": [card]})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.32.0"})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.chat_requests += 1
        body = await request.json()
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.post(f"{self.upstream}/chat/completions", json=body)
        data: dict[str, Any] = answer.json()
        if answer.status_code == 200 and self.pad:
            message = data["choices"][0]["message"]
            message["reasoning"] = (message.get("reasoning") or "") + "x" * self.pad
        return web.Response(
            body=json.dumps(data).encode(), status=answer.status_code,
            content_type="application/json",
        )  # fmt: skip

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=1 << 30)
        app.add_routes([
            web.get("/v1/models", self._models),
            web.get("/version", self._version),
            web.post("/v1/chat/completions", self._chat),
        ])  # fmt: skip

        async def start() -> None:
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._started.set()

        loop.run_until_complete(start())
        loop.run_forever()

    def __enter__(self) -> ModelStandIn:
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._started.wait(30), "the model stand-in did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
