"""Contracts of the other libraries' private APIs the package uses (see ``_compat``).

Each test fails with a message naming the API when a library upgrade moves or reshapes it,
before a user's run meets it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import warnings

import diskcache
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from vibe_jet_tagging._compat import asyncio as compat_asyncio
from vibe_jet_tagging._compat import diskcache as compat_diskcache
from vibe_jet_tagging._compat import langchain as compat_langchain
from vibe_jet_tagging._compat import openai as compat_openai
from vibe_jet_tagging._compat.httpx import httpx, sdk_uses_httpx2


def test_asyncio_chains_a_task_into_a_concurrent_future():
    async def main() -> tuple[int, bool]:
        done: concurrent.futures.Future[int] = concurrent.futures.Future()
        compat_asyncio.chain_future(asyncio.ensure_future(asyncio.sleep(0, 7)), done)
        cancelled: concurrent.futures.Future[int] = concurrent.futures.Future()
        task = asyncio.ensure_future(asyncio.sleep(10))
        compat_asyncio.chain_future(task, cancelled)
        cancelled.cancel()
        await asyncio.sleep(0.01)
        return await asyncio.wrap_future(done), task.cancelled()

    assert asyncio.run(main()) == (7, True)


def test_diskcache_reads_many_keys_through_its_own_connection(tmp_path):
    cache = diskcache.Cache(str(tmp_path))
    cache.set("a", "1")
    cache.set("b", "2")
    assert not compat_diskcache.reads_update(cache)
    rows = compat_diskcache.query(
        cache, "SELECT key, mode, filename, value FROM Cache WHERE key IN (?, ?)", ("a", "b")
    )
    assert sorted((key, cache.disk.fetch(m, f, v, False)) for key, m, f, v in rows) == [
        ("a", "1"),
        ("b", "2"),
    ]
    lru = diskcache.Cache(str(tmp_path / "lru"), eviction_policy="least-recently-used")
    assert compat_diskcache.reads_update(lru)


@pytest.mark.parametrize("name", compat_langchain.HOOKED)
def test_chatopenai_still_has_each_method_the_hooks_override(name):
    method = getattr(ChatOpenAI, name, None)
    assert callable(method), f"langchain-openai no longer has ChatOpenAI.{name}"
    ours = inspect.signature(getattr(compat_langchain.ChatOpenAIHooks, name))
    theirs = inspect.signature(method)
    assert list(ours.parameters) == list(theirs.parameters), name


def test_langchain_still_has_the_generation_metadata_and_llm_string_helpers():
    from langchain_core.language_models.chat_models import _gen_info_and_msg_metadata

    assert callable(_gen_info_and_msg_metadata)
    assert callable(getattr(BaseChatModel, "_get_llm_string", None))
    assert issubclass(compat_langchain.LangChainBetaWarning, Warning)


def test_a_response_body_becomes_the_message_chatopenai_makes():
    model = ChatOpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1")
    body = {
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }  # fmt: skip
    message = compat_langchain.message_of_response(model, body)
    assert message.text == "hi"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata["input_tokens"] == 3
    payload = compat_langchain.request_payload(model, [message])
    assert payload["model"] == "m" and payload["messages"][0]["content"] == "hi"
    assert compat_langchain.llm_string(model)


def test_the_httpx_flavour_is_the_one_the_sdk_builds_its_clients_from():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = openai.DefaultAsyncHttpxClient()
    assert isinstance(client, httpx.AsyncClient)
    assert sdk_uses_httpx2() == (httpx.__name__ == "httpx2")


@pytest.mark.parametrize(
    ("owner", "name"),
    [(owner, name) for owner, names in compat_openai.PRIVATE.items() for name in names],
)
def test_the_openai_sdk_still_has_each_private_name_the_direct_call_uses(owner, name):
    import importlib

    module, _, cls = owner.rpartition(".")
    holder = getattr(importlib.import_module(module), cls)
    client = openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
    found = hasattr(holder, name) or (isinstance(client, holder) and hasattr(client, name))
    assert found, f"the openai SDK no longer has {owner}.{name}"


@pytest.mark.parametrize("name", compat_langchain.USED)
def test_langchain_openai_still_has_each_private_name_the_direct_call_uses(name):
    from langchain_openai.chat_models import base

    model = ChatOpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1")
    assert hasattr(model, name) or callable(getattr(base, name, None)), name


def test_the_body_is_built_in_the_order_create_builds_it():
    """create's body dict is written in its parameters' order (checked on its source)."""
    from openai.resources.chat.completions.completions import AsyncCompletions

    source = inspect.getsource(AsyncCompletions.create)
    body = source[source.index('"/chat/completions"') :]
    positions = [body.find(f'"{name}": {name}') for name in compat_openai._order()]
    assert -1 not in positions, "create no longer writes its body field by field"
    assert positions == sorted(positions), "create writes its body in another order"


def test_only_plain_payloads_take_the_direct_call():
    plain = {"model": "m", "stream": False, "messages": [], "reasoning_effort": "low",
             "extra_body": {"messages": [{"role": "user", "content": "x"}]}}  # fmt: skip
    assert compat_openai.direct_fields(plain)
    assert not compat_openai.direct_fields({**plain, "stream": True})
    assert not compat_openai.direct_fields({**plain, "tools": [{"type": "function"}]})
    assert not compat_openai.direct_fields({**plain, "response_format": {"type": "json"}})
    assert not compat_openai.direct_fields({**plain, "not_a_field": 1})
    assert not compat_openai.direct_fields({**plain, "temperature": float("nan")})
    body = compat_openai.chat_body({**plain, "temperature": 0.5})
    assert body.startswith(b'{"messages":[{"role":"user","content":"x"}],"model":"m",')


@pytest.mark.parametrize(
    "extra",
    [{"x": 1e-7}, {"a": [{"b": [1e-7]}]}, {"a": {"b": {"c": ["s", 2, True, None, 1e-7]}}}],
)
def test_a_float_anywhere_in_the_body_is_written_as_json_writes_it(extra):
    """orjson writes 1e-7 where the SDK's json writes 1e-07: a float at any depth sends the
    body through json."""
    messages = [{"role": "user", "content": "x"}]
    body = compat_openai.chat_body({"model": "m", "messages": messages, "extra_body": extra})
    expected = {"messages": messages, "model": "m", **extra}
    assert body == json.dumps(expected, separators=(",", ":")).encode()
    assert b"1e-07" in body


def test_aiohttp_connectors_still_close_at_once_without_a_loop_to_await():
    import aiohttp

    from vibe_jet_tagging._compat import aiohttp as compat_aiohttp

    async def make() -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector()

    connector = asyncio.run(make())  # its loop is closed now
    assert callable(getattr(aiohttp.TCPConnector, "_close", None)), "aiohttp lost _close"
    compat_aiohttp.close_now(connector)
    assert connector.closed
