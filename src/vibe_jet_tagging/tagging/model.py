"""``ChatVLLM``: LangChain's ``ChatOpenAI`` for a vLLM server running a reasoning model.

What it adds to ``ChatOpenAI``:

- the package's configuration: what is not given is read like ``vjt`` reads it
  (``VJT_BASE_URL``/``OPENAI_BASE_URL``, ``VJT_MODEL``, ``VJT_EFFORT``, ``VJT_MAX_TOKENS``,
  ``VJT_TIMEOUT``, ``VJT_MAX_RETRIES``, ``VJT_TEMPERATURE``, ``VJT_SEED``,
  ``VJT_API_KEY``/``OPENAI_API_KEY``, then the config file: see :mod:`vibe_jet_tagging.config`),
  else defaults for vLLM serving gpt-oss: ``base_url`` ``http://localhost:8000/v1``, model
  ``openai/gpt-oss-120b``, API key ``"EMPTY"``, ``reasoning_effort`` ``"medium"`` sent as the
  Chat Completions field, a timeout and retries that suit long reasoning;
- one-line errors for invalid arguments (:class:`~vibe_jet_tagging.errors.ConfigError`, a
  ``ValueError``), not a pydantic dump;
- the reasoning text: vLLM returns it in ``message.reasoning`` (older servers:
  ``reasoning_content``), which ``ChatOpenAI`` drops. ``ChatVLLM`` keeps it, from either name,
  in ``AIMessage.additional_kwargs["reasoning_content"]``, for ``invoke``, ``ainvoke`` and
  streaming (``delta.reasoning`` / ``delta.reasoning_content``);
- always the Chat Completions API (``reasoning=`` or ``use_responses_api=True`` would silently
  move every call to ``/v1/responses``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai.chat_models import base as _openai_base
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from .._compat.httpx import httpx
from .._compat.langchain import ChatOpenAIHooks
from ..config import DEFAULT_BASE_URL, DEFAULT_MODEL, Effort, Settings
from ..errors import ConfigError, VJTError, one_line
from ..servers.aio import AiohttpTransport
from ..servers.info import fetch_server_info
from ..servers.pool import EndpointPool
from ..servers.transport import DEFAULT_MAX_ANSWER_BYTES, PoolTransport
from .results import REASONING_KEY, reasoning_of

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "REASONING_KEY",
    "ChatVLLM",
    "Effort",
    "ToolCallingUnavailableError",
    "check_server",
    "reasoning_of",
    "served_models",
]

_REASONING_FIELDS = ("reasoning", "reasoning_content")


class _PerLoopTransport(httpx.AsyncBaseTransport):
    """Connection pools per event loop, each loop's split into a few shards.

    An async HTTP connection belongs to the loop that opened it. langchain-openai shares one
    client per process, so a second ``asyncio.run``, pytest's loop per test, or a notebook's
    loop beside the background one would reuse connections of a closed or foreign loop
    ("Event loop is closed"). Pools of loops that are gone are dropped with them.

    The pool scans all its connections (probing each idle socket) whenever a request starts
    or ends, so one pool of k connections costs O(k) per request; requests go round-robin to
    ``_SHARDS`` smaller pools instead (at 256 in flight: ~1.8 ms less CPU per request).
    """

    _SHARDS = 8

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[list[Any], Iterator[Any]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _pool(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._pools.get(loop)
            if entry is None:
                limits = httpx.Limits(
                    max_connections=1000,
                    max_keepalive_connections=1000 // self._SHARDS,
                    keepalive_expiry=5,
                )
                shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(self._SHARDS)]
                entry = self._pools[loop] = (shards, itertools.cycle(shards))
            return next(entry[1])

    async def handle_async_request(self, request: Any) -> Any:
        return await self._pool().handle_async_request(request)

    async def aclose(self) -> None:
        with self._lock:
            entry = self._pools.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            for shard in entry[0]:
                await shard.aclose()


def _loop_safe_async_client() -> Any:
    return openai.DefaultAsyncHttpxClient(transport=_PerLoopTransport())


class ToolCallingUnavailableError(
    getattr(_openai_base, "OpenAIInvalidRequestError", openai.BadRequestError),  # type: ignore[misc]
    VJTError,
):
    """HTTP 400: the vLLM server was started without tool calling (``--tool-call-parser``).

    Raised for ``bind_tools`` with a ``tool_choice`` and for
    ``with_structured_output(method="function_calling")``; the message says what works instead.
    An ``openai.BadRequestError`` still, so code that catches that keeps working.
    """


def _explained(exc: openai.BadRequestError, url: str | None) -> openai.BadRequestError:
    """``exc``, or a :class:`ToolCallingUnavailableError` saying what to do instead."""
    if "--tool-call-parser" not in exc.message:
        return exc
    said = exc.body.get("message") if isinstance(exc.body, dict) else None
    message = (
        f"HTTP 400 from {url}: {said or exc.message}. This vLLM server has no tool calling: "
        "use with_structured_output(..., method='json_schema') (the default) or 'json_mode', "
        "or start vLLM with --enable-auto-tool-choice --tool-call-parser <parser> (openai "
        "for gpt-oss)"
    )
    return ToolCallingUnavailableError(message, response=exc.response, body=exc.body)  # type: ignore[call-arg]  # a BadRequestError's arguments


# Settings (see ``config.Settings``) -> the ChatVLLM arguments that set them, first = alias.
_FROM_SETTINGS: dict[str, tuple[str, ...]] = {
    "base_url": ("base_url", "openai_api_base"),
    "model": ("model", "model_name"),
    "api_key": ("api_key", "openai_api_key"),
    "effort": ("reasoning_effort",),
    "max_tokens": ("max_completion_tokens", "max_tokens"),
    "timeout": ("timeout", "request_timeout"),
    "max_retries": ("max_retries",),
    "temperature": ("temperature",),
    "seed": ("seed",),
    "max_answer_bytes": ("max_answer_bytes",),
}


def _with_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` completed from the configuration (environment, then config file)."""
    missing = [k for k, names in _FROM_SETTINGS.items() if not any(n in kwargs for n in names)]
    if not missing:
        return kwargs
    from ..config import api_settings

    settings = api_settings()
    filled = dict(kwargs)
    for key in missing:
        filled[_FROM_SETTINGS[key][0]] = getattr(settings, key)
    if "base_url" in missing:  # one server, or several (VJT_BASE_URL="http://a/v1,http://b/v1")
        urls = settings.base_urls
        filled["base_url"] = urls[0] if len(urls) == 1 else urls
    return filled


class ChatVLLM(ChatOpenAIHooks):
    """``ChatOpenAI`` for vLLM reasoning models that keeps the reasoning text.

    Arguments not given come from the configuration (``VJT_*`` variables, ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY``, then the config file), like ``vjt`` reads them. Invalid arguments
    raise :class:`~vibe_jet_tagging.errors.ConfigError` (a ``ValueError``) in one line.

    Example:
        >>> model = ChatVLLM(reasoning_effort="low")  # doctest: +SKIP
        >>> message = model.invoke("Is a 20-constituent jet more quark- or gluon-like?")
        >>> message.additional_kwargs["reasoning_content"]
    """

    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    openai_api_base: str | None = Field(default=DEFAULT_BASE_URL, alias="base_url")
    openai_api_key: SecretStr | None = Field(
        default_factory=lambda: SecretStr(os.environ.get("OPENAI_API_KEY") or "EMPTY"),
        alias="api_key",
    )
    reasoning_effort: Effort | None = "medium"
    """How long gpt-oss reasons: ``"low"``, ``"medium"`` or ``"high"`` (sent as is)."""
    max_tokens: int | None = Field(default=None, alias="max_completion_tokens")
    """Reasoning plus answer. Unset by default: vLLM then allows the rest of the model's
    context, which a fixed number cannot promise for every server (vLLM answers HTTP 400 when
    ``max_tokens`` exceeds ``max_model_len``). High effort needs a few thousand tokens."""
    request_timeout: float | tuple[float, float] | Any | None = Field(
        default=600.0, alias="timeout"
    )
    max_retries: int | None = 4
    """Retries of connection errors, timeouts, 429 and 5xx, with the OpenAI SDK's backoff."""
    use_responses_api: bool | None = False
    stream_usage: bool | None = True
    http_async_client: Any | None = Field(default_factory=_loop_safe_async_client, exclude=True)
    """Default: connection pools per event loop (see ``_PerLoopTransport``)."""

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**_with_settings(kwargs))
        except ValidationError as exc:
            raise ConfigError(f"ChatVLLM: {one_line(exc)}") from None

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatVLLM:
        """A ``ChatVLLM`` configured by ``settings`` (what ``vjt`` and ``JetTagger`` read)."""
        values = {names[0]: getattr(settings, key) for key, names in _FROM_SETTINGS.items()}
        urls = settings.base_urls
        values["base_url"] = urls[0] if len(urls) == 1 else urls
        values["api_key"] = settings.api_key.get_secret_value()
        return cls(**values)

    @field_validator("temperature")
    @classmethod
    def _temperature_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 2:
            raise ValueError("must be between 0 and 2")
        return value

    endpoint_pool: EndpointPool | None = Field(default=None, exclude=True)
    """The server(s) the requests go to, each verified before it answers (see
    :class:`~vibe_jet_tagging.servers.pool.EndpointPool`); ``None`` when the caller gave HTTP
    clients of their own."""

    pool_transport: PoolTransport | None = Field(default=None, exclude=True)
    """The async client's transport over :attr:`endpoint_pool` (``None``: the caller's)."""

    max_answer_bytes: int | None = Field(default=DEFAULT_MAX_ANSWER_BYTES, ge=1)
    """The largest response body read (default 1 MiB): a larger one is never read whole and
    fails with :class:`~vibe_jet_tagging.servers.pool.AnswerTooLargeError`. ``None``: no bound."""

    @model_validator(mode="before")
    @classmethod
    def _servers(cls, values: Any) -> Any:
        """One server or several (``base_url=[...]``), each verified before it answers.

        The requests go through a :class:`~vibe_jet_tagging.servers.transport.PoolTransport`
        over the server(s), unless the caller gave HTTP clients of their own.
        """
        if not isinstance(values, dict):
            return values
        name = next((n for n in ("base_url", "openai_api_base") if n in values), None)
        urls = values.get(name) if name else None
        if isinstance(urls, list | tuple) and len(urls) == 1:
            urls = urls[0]
        if urls is None or "http_async_client" in values or "http_client" in values:
            if isinstance(urls, list | tuple):
                raise ValueError("several base URLs need the package's own HTTP clients")
            return values
        bound = values.get("max_answer_bytes", DEFAULT_MAX_ANSWER_BYTES)
        bound = bound if isinstance(bound, int) and bound > 0 else DEFAULT_MAX_ANSWER_BYTES
        pool = EndpointPool([urls] if isinstance(urls, str) else list(urls))
        values = {**values, "endpoint_pool": pool}
        if name is not None:
            values[name] = pool.base_urls[0]
        transport = PoolTransport(pool, AiohttpTransport(), max_answer_bytes=bound)
        values["http_async_client"] = openai.DefaultAsyncHttpxClient(transport=transport)
        values["pool_transport"] = transport
        values["http_client"] = openai.DefaultHttpxClient(
            transport=PoolTransport(pool, max_answer_bytes=bound)
        )
        if len(pool) > 1:
            values.setdefault("include_response_headers", True)  # which server answered
        return values

    @model_validator(mode="after")
    def _chat_completions_only(self) -> ChatVLLM:
        if self.use_responses_api or self.reasoning is not None:
            raise ValueError(
                "ChatVLLM talks to vLLM's /v1/chat/completions: set reasoning_effort instead "
                "of reasoning=..., and leave use_responses_api unset"
            )
        return self

    @property
    def _llm_type(self) -> str:
        return "vllm-chat"

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["vibe_jet_tagging", "tagging", "model"]

    # -- errors that say what to do -------------------------------------------------------------

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except openai.BadRequestError as exc:
            raise _explained(exc, self.openai_api_base) from exc

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except openai.BadRequestError as exc:
            raise _explained(exc, self.openai_api_base) from exc

    def direct_transport(self) -> Any:
        """The pool's transport, under the async client this model made itself."""
        return self.pool_transport

    async def adirect(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage | None:
        try:
            return await super().adirect(messages, **kwargs)
        except openai.BadRequestError as exc:
            raise _explained(exc, self.openai_api_base) from exc

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except openai.BadRequestError as exc:
            raise _explained(exc, self.openai_api_base) from exc

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except openai.BadRequestError as exc:
            raise _explained(exc, self.openai_api_base) from exc

    # -- the request body and the reasoning (ChatOpenAI's conversions call these hooks) -------

    def adjust_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """ChatOpenAI's payload, with the messages handed to the SDK in ``extra_body``.

        The openai SDK checks every request body against its TypedDicts before sending it,
        and for messages that check is most of its CPU per request (each message is walked
        against every member of the message-type union: ~0.15 ms per message, ~1.5 ms for a
        few-shot prompt). For the plain dicts ChatOpenAI builds it changes nothing (no
        message field has an alias or a format), so the messages go in ``extra_body``, which
        the SDK merges into the JSON body as given, over the empty ``messages`` argument: the
        same body reaches the server without that walk.
        """
        messages = payload.get("messages")
        if isinstance(messages, list) and messages:
            payload["extra_body"] = {**(payload.get("extra_body") or {}), "messages": messages}
            payload["messages"] = []
        return payload

    def message_extras(self, message: Any) -> dict[str, Any]:
        """The reasoning text of a message or delta, under :data:`REASONING_KEY`."""
        for name in _REASONING_FIELDS:
            text = self.field(message, name)
            if isinstance(text, str) and text:
                return {REASONING_KEY: text}
        return {}


ChatVLLM.direct_agenerate = ChatVLLM._agenerate  # adirect stands for its errors too


def served_models(base_url: str, api_key: str = "EMPTY", *, timeout: float = 10.0) -> list[str]:
    """The model names the server at ``base_url`` serves (``GET /v1/models``).

    Raises :class:`~vibe_jet_tagging.errors.ServerError` naming the URL when the server cannot
    be reached or does not answer like an OpenAI-compatible server.
    """
    return fetch_server_info(base_url, api_key, timeout=timeout).model_ids


def check_server(base_url: str, model: str, api_key: str = "EMPTY") -> list[str]:
    """Check that ``base_url`` is reachable and serves ``model``; returns the served models."""
    info = fetch_server_info(base_url, api_key)
    info.require(model)
    return info.model_ids
