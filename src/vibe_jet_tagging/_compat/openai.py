"""The openai SDK's request loop for a Chat Completions body, without its per-call machinery.

``AsyncCompletions.create`` spends ~1 ms of CPU per request before and after the HTTP
exchange: request options as pydantic models copied twice, the body walked against the SDK's
TypedDicts, headers merged, and the answer built into a ``ChatCompletion`` model that
langchain-openai dumps back into a dict. No extension point of the SDK skips these
(``with_raw_response`` still builds the options and walks the body). :func:`send_chat` is the
same request made the SDK's way, from a body the caller already has:

- the same bytes: :func:`chat_body` orders and serializes the fields as ``create`` does (its
  parameters' order, ``extra_body`` merged over them, ``openapi_dumps``' JSON, written by
  orjson when no float is in it: the same bytes), for the
  fields whose values the SDK passes through unchanged (:func:`direct_fields`); the wire
  contract tests compare the two byte for byte;
- the same URL, headers and time-outs: built once per client by the SDK's own
  ``_build_request`` (``x-stainless-retry-count`` per attempt, as the SDK sends it);
- the same HTTP client (its transport, hooks and pool); when the caller made that client
  itself and it adds nothing to its transport (no hooks, auth or proxy mounts), the request
  goes to the transport directly, and an unencoded answer is read from its stream as is;
- the same retries (the SDK's ``_should_retry`` and ``_calculate_retry_timeout``: connection
  errors, time-outs, 408, 409, 429 and 5xx, ``Retry-After`` honoured) and the same typed
  errors (``APITimeoutError``, ``APIConnectionError``, the SDK's own status errors, and any
  ``OpenAIError`` a transport raises passed on as is).

Only for a plain client (:func:`plain_client`: no provider runtime, API-key provider or custom
auth, the SDK's own httpx flavour); anything else goes through ``create``. The private SDK
names used are listed in :data:`PRIVATE` and checked by ``tests/unit/test_compat.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import weakref
from collections.abc import Mapping
from typing import Any

import openai
import orjson

from .httpx import httpx

__all__ = ["PRIVATE", "chat_body", "direct_fields", "plain_client", "send_chat"]

PRIVATE = {
    "openai._base_client.BaseClient": (
        "_build_request",
        "_should_retry",
        "_calculate_retry_timeout",
        "_make_status_error_from_response",
    ),
    "openai.AsyncOpenAI": ("_prepare_options", "_provider_runtime", "_api_key_provider"),
    "openai._models.FinalRequestOptions": ("construct",),
}
"""The SDK's private names this module relies on (contract-tested)."""

_SCALAR = (str, int, float, bool, type(None))
_NOT_BODY = frozenset({"extra_headers", "extra_query", "extra_body", "timeout", "self"})
_ORDER: tuple[str, ...] | None = None
_TEMPLATES: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()


def _order() -> tuple[str, ...]:
    """The body fields of ``AsyncCompletions.create`` in the order it builds its body."""
    global _ORDER
    if _ORDER is None:
        from openai.resources.chat.completions.completions import AsyncCompletions

        names = inspect.signature(AsyncCompletions.create).parameters
        _ORDER = tuple(n for n in names if n not in _NOT_BODY)
    return _ORDER


def _plain(value: Any) -> bool:
    """A value the SDK's body transform passes through as it is."""
    if isinstance(value, _SCALAR):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return False


def direct_fields(payload: Mapping[str, Any]) -> bool:
    """Whether :func:`chat_body` makes ``create(**payload)``'s body: every field is one of
    ``create``'s, not streamed, with a value the SDK sends unchanged (``extra_body``: any
    JSON, sent as given)."""
    order = _order()
    for name, value in payload.items():
        if name == "extra_body":
            if value is not None and not isinstance(value, dict):
                return False
        elif name == "messages":
            if not isinstance(value, list):
                return False
        elif name not in order or not _plain(value):
            return False
    return payload.get("stream") in (None, False) and "model" in payload


def chat_body(payload: Mapping[str, Any]) -> bytes:
    """The body ``AsyncCompletions.create(**payload)`` sends (see :func:`direct_fields`).

    ``openapi_dumps`` is ``json.dumps`` (compact, UTF-8, no NaN); orjson writes the same bytes
    for strings, integers, booleans and null, at a fifth of the CPU, but floats its own way
    (``1e-7`` for ``1e-07``): a body with a float is written by ``json``.
    """
    body = {name: payload[name] for name in _order() if name in payload}
    extra = payload.get("extra_body")
    if extra:
        body.update(extra)
    if not _has_float(body):
        try:
            return orjson.dumps(body)
        except TypeError:  # what orjson cannot write (a big int, a non-str key): json says
            pass
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _has_float(value: Any) -> bool:
    """Whether a float is anywhere in ``value`` (dicts' values and lists, walked without
    recursion: a few-shot body is ~50 strings, checked a type at a time)."""
    pending = [value]
    pop, extend = pending.pop, pending.extend
    while pending:
        item = pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            extend(item.values())
        elif isinstance(item, list):
            extend(item)
    return False


def plain_client(client: Any) -> bool:
    """Whether ``client`` (an ``AsyncOpenAI``) sends requests as :func:`send_chat` does."""
    return (
        isinstance(client, openai.AsyncOpenAI)
        and isinstance(getattr(client, "_client", None), httpx.AsyncClient)
        and getattr(client, "_provider_runtime", None) is None
        and getattr(client, "_api_key_provider", None) is None
        and getattr(client, "custom_auth", None) is None
    )


async def _template(client: Any, retries_taken: int) -> Any:
    """The SDK's request for ``POST /chat/completions`` (URL, headers, time-out), built once
    per client and attempt number."""
    per_client = _TEMPLATES.get(client)
    if per_client is None:
        per_client = _TEMPLATES[client] = {}
    request = per_client.get(retries_taken)
    if request is None:
        from openai._models import FinalRequestOptions

        options = FinalRequestOptions.construct(
            method="post",
            url="/chat/completions",
            json_data={},
            # as ChatOpenAI's with_raw_response marks its requests (the SDK sends it on)
            headers={"X-Stainless-Raw-Response": "true"},
        )
        options = await client._prepare_options(options)
        request = client._build_request(options, retries_taken=retries_taken)
        del request.headers["Content-Length"]
        per_client[retries_taken] = request
    return request


def _request(template: Any, body: bytes) -> Any:
    """The SDK's request (``template``) with ``body``: the same headers, ``Content-Length``
    last as httpx adds it (given as a stream with its length, ~5x cheaper than ``content=``,
    which reads the body through a stream again)."""
    headers = httpx.Headers(template.headers)
    headers["Content-Length"] = str(len(body))
    request = httpx.Request(
        "POST",
        template.url,
        headers=headers,
        stream=httpx.ByteStream(body),
        extensions=template.extensions,
    )
    request.read()  # .content as with content= (the stream is the one bytes object)
    return request


def _bare(http: Any) -> bool:
    """Whether ``http`` (an httpx client) adds nothing to what its transport does: no event
    hooks, no auth, no transports mounted for proxies."""
    hooks = http.event_hooks
    return (
        not hooks.get("request")
        and not hooks.get("response")
        and http.auth is None
        and not getattr(http, "_mounts", True)
    )


async def _sent(http: Any, transport: Any, request: Any) -> tuple[Any, bytes]:
    """``http.send(request)`` and the body; straight to ``transport`` (the one under
    ``http``) when the client would add nothing (see :func:`_bare`): httpx's client costs
    ~0.15 ms a request. An answer that is not encoded is read from its stream as it is
    (httpx's decoding chain costs ~0.1 ms); any other the way httpx reads it."""
    if transport is None or not _bare(http):
        response = await http.send(request)
        return response, response.content
    response = await transport.handle_async_request(request)
    response.request = request
    try:
        if response.status_code < 300 and "content-encoding" not in response.headers:
            body = b"".join([chunk async for chunk in response.stream])
        else:
            body = await response.aread()
    finally:
        await response.aclose()
    if response.is_redirect and http.follow_redirects:  # as the client would: let it
        response = await http.send(request)
        return response, response.content
    return response, body


async def send_chat(client: Any, body: bytes, *, transport: Any = None) -> tuple[Any, bytes]:
    """POST ``body`` to ``client``'s ``/chat/completions`` as the SDK does; the response and
    its body (see the module doc for the retries and errors). ``transport``: the transport
    under ``client``'s HTTP client, when the caller made that client itself."""
    max_retries = client.max_retries
    http = client._client
    for retries_taken in range(max_retries + 1):
        remaining = max_retries - retries_taken
        request = _request(await _template(client, retries_taken), body)
        try:
            response, content = await _sent(http, transport, request)
        except httpx.TimeoutException as exc:
            if remaining > 0:
                await _sleep(client, remaining, None)
                continue
            raise openai.APITimeoutError(request=request) from exc
        except openai.OpenAIError:
            raise
        except Exception as exc:
            if remaining > 0:
                await _sleep(client, remaining, None)
                continue
            raise openai.APIConnectionError(request=request) from exc
        if response.status_code >= 400:
            if remaining > 0 and client._should_retry(response):
                await response.aclose()
                await _sleep(client, remaining, response.headers)
                continue
            if not response.is_closed:
                await response.aread()
            raise client._make_status_error_from_response(response) from None
        return response, content
    raise AssertionError("unreachable")  # pragma: no cover


async def _sleep(client: Any, remaining: int, headers: Any) -> None:
    from openai._models import FinalRequestOptions

    options = FinalRequestOptions.construct(method="post", url="/chat/completions")
    await asyncio.sleep(client._calculate_retry_timeout(remaining, options, headers))
