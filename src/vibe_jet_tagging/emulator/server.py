"""The HTTP side of the emulated vLLM server (aiohttp): routes, queue, latency, faults, stats.

Routes, shaped like vLLM's OpenAI-compatible server serving gpt-oss:

- ``POST /v1/chat/completions``: plain JSON or ``stream: true`` server-sent events
- ``GET /v1/models``, ``GET /health`` (200, empty), ``GET /version``
- ``GET /metrics``: Prometheus text with vLLM's names (``vllm:num_requests_running`` ...)
- ``GET /stats`` (JSON counters), ``POST /stats/reset`` (also clears the answers)
- ``POST /reset_prefix_cache``: empties the prefix cache (vLLM's route, there in dev mode)
- ``GET /answers``: the last answers sent (up to ``ANSWER_LOG``), each with the label it states
- ``GET /admin/config``, ``POST /admin/config`` (partial settings, merged; ``faults`` merges
  key by key): change latency, faults, queue size at run time.

Prompts go through a prefix cache over token blocks like vLLM's
(:mod:`vibe_jet_tagging.emulator.prefix_cache`): usage reports ``prompt_tokens_details``
with ``cached_tokens``, ``/metrics`` vLLM's ``vllm:prefix_cache_queries`` and ``_hits``.

The answers come from a physics heuristic (:mod:`vibe_jet_tagging.emulator.model`), not from a
language model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from aiohttp import web

from .config import EmulatorConfig
from .faults import corrupt, decide_fault, malformed_body
from .model import AnswerRecord, generate
from .prefix_cache import PrefixCache, PrefixHit
from .protocol import ApiError, ChatRequest, effort_tokens, logprobs_for, parse_chat_request

__all__ = ["EMULATED_ROOT", "EMULATED_VERSION", "EmulatorApp", "SlotQueue", "serve", "start_site"]

EMULATED_VERSION = "emulated (vibe-jet-tagging)"
"""What ``GET /version`` answers: a client tells the emulator from vLLM by it."""
EMULATED_ROOT = "vibe-jet-tagging/emulated-heuristic"
"""The ``root`` of every model card: no weights, a physics heuristic."""

logger = logging.getLogger(__name__)

ANSWER_LOG = 100_000
"""Answers kept for ``GET /answers`` (the oldest go first)."""


class SlotQueue:
    """At most ``size`` holders at once; the others wait first come, first served."""

    def __init__(self, size: int, on_change: Callable[[], None]) -> None:
        self.size = size
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_change = on_change

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def must_wait(self) -> bool:
        return self.running >= self.size or bool(self._waiters)

    async def acquire(self) -> None:
        if not self.must_wait():
            self.running += 1
            self._on_change()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._on_change()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just before the cancellation
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
                self._on_change()
            raise

    def release(self) -> None:
        self.running -= 1
        self._wake()

    def resize(self, size: int) -> None:
        self.size = size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.running < self.size:
            future = self._waiters.popleft()
            if not future.done():
                self.running += 1
                future.set_result(None)
        self._on_change()


@dataclass
class Stats:
    """Counters since the last reset."""

    requests_total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    status_codes: Counter[int] = field(default_factory=Counter)
    finish_reasons: Counter[str] = field(default_factory=Counter)
    max_running: int = 0
    max_waiting: int = 0
    prompt_tokens: int = 0
    prefix_cache_queries: int = 0
    """Prompt tokens looked up in the prefix cache."""
    prefix_cache_hits: int = 0
    """Prompt tokens served from the prefix cache."""
    generation_tokens: int = 0
    reasoning_tokens: int = 0
    started: float = field(default_factory=time.time)
    first_request_at: float | None = None
    """When the first chat request since the reset came in (``time.time()``)."""
    last_answer_at: float | None = None
    """When the last chat request since the reset ended (answered or failed)."""


class EmulatorApp:
    """State and handlers of one emulated server; :meth:`make_app` builds the aiohttp app."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.stats = Stats()
        self.queue = SlotQueue(self.config.max_num_seqs, self._observe_queue)
        self.started = int(time.time())
        self._request_number = 0
        self._dead = False  # the engine died (crash_on_seed)
        self.answers: deque[AnswerRecord] = deque(maxlen=ANSWER_LOG)
        self.prefix_cache = PrefixCache(self.config.block_size, self.config.kv_cache_blocks)

    # -- plumbing ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.add_routes(
            [
                web.post("/v1/chat/completions", self.chat_completions),
                web.get("/v1/models", self.models),
                web.get("/health", self.health),
                web.get("/version", self.version),
                web.get("/metrics", self.metrics),
                web.get("/stats", self.get_stats),
                web.post("/stats/reset", self.reset_stats),
                web.post("/reset_prefix_cache", self.reset_prefix_cache),
                web.get("/answers", self.get_answers),
                web.get("/admin/config", self.get_config),
                web.post("/admin/config", self.set_config),
            ]
        )
        return app

    def _observe_queue(self) -> None:
        self.stats.max_running = max(self.stats.max_running, self.queue.running)
        self.stats.max_waiting = max(self.stats.max_waiting, self.queue.waiting)

    def _finish(self, outcome: str, status: int) -> None:
        self.stats.outcomes[outcome] += 1
        self.stats.status_codes[status] += 1
        self.stats.last_answer_at = time.time()

    def stats_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "requests_total": s.requests_total,
            "first_request_at": s.first_request_at,
            "last_answer_at": s.last_answer_at,
            "outcomes": dict(s.outcomes),
            "status_codes": {str(k): v for k, v in s.status_codes.items()},
            "finish_reasons": dict(s.finish_reasons),
            "running": self.queue.running,
            "waiting": self.queue.waiting,
            "max_running": s.max_running,
            "max_waiting": s.max_waiting,
            "prompt_tokens": s.prompt_tokens,
            "prefix_cache_queries": s.prefix_cache_queries,
            "prefix_cache_hits": s.prefix_cache_hits,
            "prefix_cache_blocks": len(self.prefix_cache),
            "generation_tokens": s.generation_tokens,
            "reasoning_tokens": s.reasoning_tokens,
            "since": s.started,
        }

    # -- small routes ------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=503 if self._dead else 200)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": EMULATED_VERSION})

    async def models(self, request: web.Request) -> web.Response:
        # vLLM's card; ``root`` (the weights behind the name) says that no weights are.
        data = [
            {
                "id": name,
                "object": "model",
                "created": self.started,
                "owned_by": "vllm",
                "root": EMULATED_ROOT,
                "parent": None,
                "max_model_len": self.config.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:16]}",
                        "object": "model_permission",
                        "created": self.started,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in self.config.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats_dict())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats = Stats(max_running=self.queue.running, max_waiting=self.queue.waiting)
        self.answers.clear()
        return web.json_response(self.stats_dict())

    async def reset_prefix_cache(self, request: web.Request) -> web.Response:
        self.prefix_cache.clear()
        return web.Response(status=200)

    async def get_answers(self, request: web.Request) -> web.Response:
        return web.json_response([a.as_dict() for a in self.answers])

    async def get_config(self, request: web.Request) -> web.Response:
        return web.json_response(self.config.model_dump(mode="json"))

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            overrides = await request.json()
            if not isinstance(overrides, dict):
                raise ValueError("the body must be a JSON object of settings")
            self.config = self.config.merged(overrides)
        except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError too
            return ApiError(400, f"Invalid settings: {exc}").response()
        self.queue.resize(self.config.max_num_seqs)
        size = (self.config.block_size, self.config.kv_cache_blocks)
        if size != (self.prefix_cache.block_size, self.prefix_cache.max_blocks):
            self.prefix_cache = PrefixCache(*size)  # another cache layout starts empty
        logger.info("emulator settings changed: %s", sorted(overrides))
        return web.json_response(self.config.model_dump(mode="json"))

    async def metrics(self, request: web.Request) -> web.Response:
        s, label = self.stats, f'model_name="{self.config.models[0]}"'
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, values: Mapping[str, float]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in values.items():
                lines.append(f"{name}{{{labels}}} {float(value)}")

        running, waiting = self.queue.running, self.queue.waiting
        by_finish = {f'{label},finished_reason="{k}"': v for k, v in s.finish_reasons.items()}
        by_outcome = {f'{label},outcome="{k}"': v for k, v in s.outcomes.items()}
        for name, kind, help_, values in [
            ("vllm:num_requests_running", "gauge", "Requests in execution.", {label: running}),
            ("vllm:num_requests_waiting", "gauge", "Requests waiting.", {label: waiting}),
            ("vllm:prompt_tokens_total", "counter", "Prefill tokens.", {label: s.prompt_tokens}),
            (
                "vllm:prefix_cache_queries_total",
                "counter",
                "Prefix cache queries, in terms of number of queried tokens.",
                {label: s.prefix_cache_queries},
            ),
            (
                "vllm:prefix_cache_hits_total",
                "counter",
                "Prefix cache hits, in terms of number of cached tokens.",
                {label: s.prefix_cache_hits},
            ),
            (
                "vllm:cache_config_info",
                "gauge",
                "Information of the LLMEngine CacheConfig",
                {self._cache_config_labels(): 1},
            ),
            (
                "vllm:generation_tokens_total",
                "counter",
                "Generated tokens.",
                {label: s.generation_tokens},
            ),
            ("vllm:request_success_total", "counter", "Finished requests.", by_finish),
            ("vjt_emulator:requests_total", "counter", "Chat requests by outcome.", by_outcome),
            (
                "vjt_emulator:max_num_requests_running",
                "gauge",
                "Most running at once.",
                {label: s.max_running},
            ),
            (
                "vjt_emulator:max_num_requests_waiting",
                "gauge",
                "Most waiting at once.",
                {label: s.max_waiting},
            ),
        ]:
            metric(name, kind, help_, values)
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def _cache_config_labels(self) -> str:
        c = self.config
        labels = {
            "block_size": c.block_size,
            "enable_prefix_caching": c.enable_prefix_caching,
            "num_gpu_blocks": c.kv_cache_blocks,
        }
        return ",".join(f'{k}="{v}"' for k, v in labels.items())

    # -- chat completions --------------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests_total += 1
        if self.stats.first_request_at is None:
            self.stats.first_request_at = time.time()
        config = self.config
        try:
            try:
                body = await request.json()
            except ValueError as exc:
                raise ApiError(400, f"Invalid JSON body: {exc}") from None
            req = parse_chat_request(body, config)
        except ApiError as exc:
            self._finish(exc.outcome, exc.status)
            return exc.response()

        if config.crash_on_seed and body.get("seed") is not None:
            self._dead = True  # vLLM CPU 0.32: "CPU Generator does not use offset"
        if self._dead:
            self._finish("server_error", 500)
            return ApiError(500, "EngineCore encountered an issue (engine dead).").response()
        number = self._request_number
        self._request_number += 1
        fault = decide_fault(config.faults, config.seed, number)
        if fault == "server_error":
            self._finish("server_error", 500)
            return ApiError(500, "Internal server error (injected fault).").response()
        if fault == "rate_limit":
            self._finish("rate_limit", 429)
            wait = config.retry_after
            headers = {
                "Retry-After": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(int(wait * 1000)),
            }
            return ApiError(429, "Too many requests (injected fault).").response(headers)
        if fault == "malformed_body":
            self._finish("malformed_body", 200)
            text, content_type = malformed_body(number)
            return web.Response(text=text, content_type=content_type)
        outcome = fault or "ok"
        try:
            if fault == "stall":
                await asyncio.sleep(config.stall_seconds)
            max_queue = config.max_queue
            if self.queue.must_wait() and max_queue is not None and self.queue.waiting >= max_queue:
                status = config.queue_full_status
                outcome = "queue_full"
                self._finish(outcome, status)
                message = f"The waiting queue is full ({max_queue} requests); try again later."
                return ApiError(status, message, outcome=outcome).response()
            await self.queue.acquire()
            try:
                return await self._complete(request, req, fault, config)
            finally:
                self.queue.release()
        except (asyncio.CancelledError, ConnectionError) as exc:
            # The client went away (or a "disconnect" fault dropped it): aiohttp stays quiet
            # about a cancelled handler, not about a ConnectionError.
            self._finish("cancelled" if outcome == "ok" else outcome, 499)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise asyncio.CancelledError from None

    async def _complete(
        self, request: web.Request, req: ChatRequest, fault: str | None, config: EmulatorConfig
    ) -> web.StreamResponse:
        completion = generate(
            req.messages,
            seed=config.seed,
            request_seed=req.seed,
            effort_tokens=effort_tokens(req.effort, config),
            effort_spread=config.effort_spread,
            noise=config.noise,
            response_format=req.response_format,
        )
        finish = corrupt(completion, fault)
        if req.tool_call and finish == "stop":
            finish = "tool_calls"
        reasoning, content = completion.reasoning, completion.content
        content_missing = False
        if req.max_tokens is not None and len(reasoning) + len(content) > req.max_tokens:
            finish = "length"
            if len(reasoning) >= req.max_tokens:
                reasoning, content, content_missing = reasoning[: req.max_tokens], [], True
            else:
                content = content[: req.max_tokens - len(reasoning)]
        stated = completion.stated if finish == "stop" else None
        self.answers.append(AnswerRecord("".join(content), stated, fault, finish))
        generated = len(reasoning) + len(content)
        itl = config.itl * (1 + config.itl_load_factor * max(0, self.queue.running - 1))
        usage = self._usage(req, self._prefix_lookup(req, config), reasoning, content, config)
        logprobs = (
            logprobs_for(completion, len(content), req.top_logprobs) if req.logprobs else None
        )
        meta = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": req.model,
        }
        # A tool call carries the answer as its arguments (vLLM: content null, finish
        # "tool_calls"); the id is vLLM's shape.
        tool = (
            None
            if req.tool_call is None
            else (f"chatcmpl-tool-{uuid.uuid4().hex[:16]}", req.tool_call)
        )
        s = self.stats
        s.prompt_tokens += req.prompt_tokens
        s.generation_tokens += generated
        s.reasoning_tokens += len(reasoning)
        if req.stream:
            response = await self._stream(
                request,
                req,
                meta,
                reasoning,
                content,
                logprobs,
                finish,
                usage,
                itl,
                disconnect=fault == "disconnect",
                config=config,
                tool=tool,
            )
        else:
            await asyncio.sleep(config.ttft + itl * generated)
            text = None if content_missing else "".join(content)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": text if tool is None else None,
                "refusal": None,
                "annotations": None,
                "audio": None,
                "function_call": None,
                "tool_calls": [] if tool is None else [_tool_call(tool, text or "")],
            }
            message.update(self._reasoning_fields("".join(reasoning) or None, config))
            body = {
                **meta,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None if logprobs is None else {"content": logprobs},
                        "finish_reason": finish,
                        "stop_reason": None,
                    }
                ],
                "service_tier": None,
                "system_fingerprint": None,
                "usage": usage,
                "prompt_logprobs": None,
                "kv_transfer_params": None,
            }
            if fault == "disconnect":
                await _drop_mid_body(request, json.dumps(body).encode())
            response = web.json_response(body)
        s.finish_reasons[finish] += 1
        self._finish(fault or "ok", 200)
        return response

    def _prefix_lookup(self, req: ChatRequest, config: EmulatorConfig) -> PrefixHit:
        """The prompt's blocks looked up and stored in the prefix cache (when it is on)."""
        if not config.enable_prefix_caching:
            return PrefixHit(0, 0)
        hit = self.prefix_cache.query(req.prompt, salt=req.model)
        self.stats.prefix_cache_queries += req.prompt_tokens
        self.stats.prefix_cache_hits += hit.cached_tokens
        return hit

    @staticmethod
    def _usage(
        req: ChatRequest,
        hit: PrefixHit,
        reasoning: list[str],
        content: list[str],
        config: EmulatorConfig,
    ) -> dict[str, Any]:
        prompt, generated = req.prompt_tokens, len(reasoning) + len(content)
        details = {"reasoning_tokens": len(reasoning)} if config.report_reasoning_tokens else None
        prompt_details: dict[str, Any] | None = None
        if config.enable_prompt_tokens_details:
            prompt_details = {
                "cached_tokens": hit.cached_tokens,
                "created_cache_tokens": hit.created_cache_tokens,
            }
            if not req.stream:  # vLLM's stream leaves out what is null
                prompt_details["multimodal_tokens"] = None
        return {
            "prompt_tokens": prompt,
            "total_tokens": prompt + generated,
            "completion_tokens": generated,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": details,
        }

    @staticmethod
    def _reasoning_fields(text: str | None, config: EmulatorConfig) -> dict[str, str | None]:
        if config.reasoning_field == "both":
            return {"reasoning": text, "reasoning_content": text}
        return {config.reasoning_field: text}

    async def _stream(
        self,
        request: web.Request,
        req: ChatRequest,
        meta: dict[str, Any],
        reasoning: list[str],
        content: list[str],
        logprobs: list[dict[str, Any]] | None,
        finish: str,
        usage: dict[str, Any],
        itl: float,
        *,
        disconnect: bool,
        config: EmulatorConfig,
        tool: tuple[str, str] | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        if config.ttft:
            await asyncio.sleep(config.ttft)
        step = config.stream_chunk_tokens
        groups: list[tuple[str, int, int]] = [
            ("reasoning", i, min(i + step, len(reasoning))) for i in range(0, len(reasoning), step)
        ] + [("content", i, min(i + step, len(content))) for i in range(0, len(content), step)]
        drop_at = len(groups) // 2 if disconnect else -1

        # Chunks differ only in delta, logprobs and finish_reason: serialize the rest once.
        head = json.dumps({**meta, "object": "chat.completion.chunk"})[:-1].encode()
        head = b"data: " + head + b', "choices": [{"index": 0, "delta": '
        ends = {
            reason: f', "finish_reason": {json.dumps(reason)}}}]}}\n\n'.encode()
            for reason in (None, finish)
        }

        def chunk(delta: dict[str, Any], lp: Any = None, finish_reason: str | None = None) -> bytes:
            middle = (
                b', "logprobs": null' if lp is None else b', "logprobs": ' + json.dumps(lp).encode()
            )
            return head + json.dumps(delta).encode() + middle + ends[finish_reason]

        await response.write(chunk({"role": "assistant", "content": ""}))
        for n, (kind, lo, hi) in enumerate(groups):
            if n == drop_at:
                _abort(request)
            if itl:
                await asyncio.sleep(itl * (hi - lo))
            last = n == len(groups) - 1
            if kind == "reasoning":
                delta: dict[str, Any] = self._reasoning_fields("".join(reasoning[lo:hi]), config)
                lp = None
            elif tool is not None:  # the arguments, after a first delta with id and name
                call = {"index": 0, **_tool_call(tool, "".join(content[lo:hi]))}
                delta = {
                    "tool_calls": [
                        call
                        if lo == 0
                        else {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
                    ]
                }
                lp = None
            else:
                delta = {"content": "".join(content[lo:hi])}
                lp = None if logprobs is None else {"content": logprobs[lo:hi]}
            await response.write(chunk(delta, lp, finish if last else None))
        if not groups:
            await response.write(chunk({}, None, finish))
        if req.include_usage:
            data = {**meta, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await response.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _tool_call(tool: tuple[str, str], arguments: str) -> dict[str, Any]:
    """One entry of ``message.tool_calls`` (or its first streamed delta)."""
    call_id, name = tool
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _abort(request: web.Request) -> NoReturn:
    """Drop the connection; the handler ends as if the client had gone away."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


async def _drop_mid_body(request: web.Request, body: bytes) -> NoReturn:
    """Send the headers and half the body, then drop the connection."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    _abort(request)


async def start_site(emulator: EmulatorApp, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving ``emulator`` on ``host:port`` (0: a free port); return the runner and port."""
    runner = web.AppRunner(
        emulator.make_app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=4096)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


def serve(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run the emulated server in this thread until SIGINT or SIGTERM, then stop cleanly.

    ``on_ready`` gets the base URL (``http://HOST:PORT``) once the port is bound.
    """
    asyncio.run(_serve(config, host, port, on_ready))


async def _serve(
    config: EmulatorConfig | None,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None,
) -> None:
    emulator = EmulatorApp(config)
    runner, bound = await start_site(emulator, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = f"http://{host}:{bound}"
    logger.info("emulated vLLM server (physics heuristic, not a language model) on %s", url)
    try:
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        logger.info("emulated vLLM server on %s stopped", url)
