"""Contracts of the other libraries' private APIs the package uses (see ``_compat``).

Each test fails with a message naming the API when a library upgrade moves or reshapes it,
before a user's run meets it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import warnings

import diskcache
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from vibe_jet_tagging._compat import asyncio as compat_asyncio
from vibe_jet_tagging._compat import diskcache as compat_diskcache
from vibe_jet_tagging._compat import langchain as compat_langchain
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
