"""The tagger's direct call sends what ``ChatOpenAI`` sends, byte for byte, on both servers.

When no callback handler watches, the tagger asks through ``ChatVLLM.adirect`` (the openai
SDK's request loop without its per-call models, LangChain without its run machinery: see
``vibe_jet_tagging._compat.openai``). Here the same messages and call options go through
``ainvoke`` (the SDK's ``create``) and through ``adirect``, to the ``server`` fixture (the
emulated server and, under ``pytest -m real_vllm``, a real vLLM), each request recorded where
it leaves the client: the bodies must be the same bytes, the headers the same, and the two
messages the same message.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage

from vibe_jet_tagging import JetTagger, load_sample
from vibe_jet_tagging.tagging.model import ChatVLLM
from vibe_jet_tagging.tagging.parsing import label_response_format
from vibe_jet_tagging.tagging.results import SERVER_KINDS

SAMPLE = load_sample()
LOW = {"reasoning_effort": "low", "max_tokens": 300, "temperature": 0.0}


class Recorder:
    """An inner transport that records each chat request before the real one sends it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    async def handle_async_request(self, request: Any) -> Any:
        if request.url.path.endswith("/chat/completions"):
            self.sent.append((request.content, dict(request.headers)))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def recorded(tagger: JetTagger) -> Recorder:
    transport = tagger.model.pool_transport  # type: ignore[attr-defined]
    recorder = Recorder(transport._inner)
    transport._inner = recorder
    return recorder


def tagger_for(server, **options: Any) -> JetTagger:
    model = ChatVLLM(
        base_url=server.base_url, model=server.model, api_key=server.api_key, max_retries=0, **LOW
    )
    return JetTagger(model, cache=None, **options)


def known(value: Any) -> Any:
    """``value`` without the fields the SDK's models fill with ``None`` when not sent."""
    if isinstance(value, dict):
        return {k: known(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [known(v) for v in value]
    return value


def same_message(direct: AIMessage, invoked: AIMessage) -> None:
    """The same message (the second request of a pair finds more of its prompt in the
    server's prefix cache: the counts of cached tokens may differ)."""
    assert direct.content == invoked.content
    assert direct.additional_kwargs == invoked.additional_kwargs
    usage = [dict(m.usage_metadata or {}) for m in (direct, invoked)]
    assert [u.pop("input_token_details", {}).keys() for u in usage] == [{"cache_read"}] * 2
    assert usage[0] == usage[1]
    for key in ("finish_reason", "model_name", "token_usage", "logprobs", "model_provider"):
        got = [known(m.response_metadata.get(key)) for m in (direct, invoked)]
        if key == "token_usage":
            for u in got:
                for name in ("cached_tokens", "created_cache_tokens"):
                    u.get("prompt_tokens_details", {}).pop(name, None)
        assert got[0] == got[1], key


@pytest.mark.parametrize(
    ("template", "options"),
    [
        ("zero_shot", {}),
        ("few_shot", {}),
        ("zero_shot", {"logprobs": True}),
        ("zero_shot", {"structured_output": False}),
    ],
)
async def test_the_direct_call_sends_the_sdks_bytes_and_makes_its_message(
    server, template, options
):
    tagger = tagger_for(server, template=template, **options)
    messages = tagger.prompt.messages(SAMPLE[11])
    call = tagger.client.options()
    recorder = recorded(tagger)
    invoked = await tagger.model.ainvoke(messages, **call)
    direct = await tagger.model.adirect(messages, **call)  # type: ignore[attr-defined]
    assert direct is not None, "the direct call did not apply"
    [(sdk_body, sdk_headers), (body, headers)] = recorder.sent
    assert body == sdk_body
    assert headers == sdk_headers
    same_message(direct, invoked)


async def test_a_server_without_structured_outputs_gets_the_same_response_format(server):
    """The other constraint (``response_format`` in the body) is sent the same way too."""
    tagger = tagger_for(server, template="zero_shot")
    call = dict(tagger.client.options())
    call["extra_body"] = {"response_format": label_response_format()}
    messages = tagger.prompt.messages(SAMPLE[12])
    recorder = recorded(tagger)
    invoked = await tagger.model.ainvoke(messages, **call)
    direct = await tagger.model.adirect(messages, **call)  # type: ignore[attr-defined]
    [(sdk_body, _), (body, _)] = recorder.sent
    assert body == sdk_body and b'"response_format"' in body
    assert direct is not None
    same_message(direct, invoked)


async def test_the_tagger_asks_directly_when_nobody_watches_and_through_langchain_else(server):
    from langchain_core.callbacks import BaseCallbackHandler

    class Watcher(BaseCallbackHandler):
        def __init__(self) -> None:
            self.llm_runs = 0

        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            self.llm_runs += 1

    tagger = tagger_for(server, template="zero_shot")
    recorder = recorded(tagger)
    unwatched = await tagger.abatch([SAMPLE[13]], return_exceptions=True)
    before = len(recorder.sent)  # 2 when the answer had no label and was asked again
    watcher = Watcher()
    watched = await tagger.abatch([SAMPLE[13]], {"callbacks": [watcher]}, return_exceptions=True)
    # each watched model call was a LangChain run; the first request the same bytes
    assert watcher.llm_runs == len(recorder.sent) - before >= 1
    assert recorder.sent[0][0] == recorder.sent[before][0]
    for result in (*unwatched, *watched):  # a small model's answer may state no label
        result = getattr(result, "result", result)
        assert result.error is None or result.error.kind not in SERVER_KINDS, result.error
