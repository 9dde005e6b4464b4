"""JetTagger and ChatVLLM against the emulated vLLM server, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import math
import re
import threading
from uuid import UUID, uuid4

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda

from vibe_jet_tagging import ChatVLLM, JetTagger, TaggingError, TagResult, load_sample
from vibe_jet_tagging.store.cache import ResultCache
from vibe_jet_tagging.tagging.model import REASONING_KEY
from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX
from vibe_jet_tagging.tagging.usage import UsageCallback, usage_totals

from .wire import Wire

SAMPLE = load_sample()
JETS = [SAMPLE[i] for i in range(0, 4000, 200)]  # 20 real jets, quark and gluon
EXAMPLES = SAMPLE[3000:3400]


def tagger_for(server, wire: Wire | None = None, **options) -> JetTagger:
    model_options = {
        k: options.pop(k)
        for k in ("reasoning_effort", "max_tokens", "max_retries", "timeout")
        if k in options
    }
    if wire is not None:
        model_options["http_async_client"] = wire.client()
    model = ChatVLLM(base_url=server.base_url, **model_options)
    options.setdefault("examples", EXAMPLES)
    options.setdefault("cache", None)
    return JetTagger(model, **options)


async def test_tags_real_jets_with_reasoning_usage_and_schema(emulator):
    wire = Wire()
    tagger = tagger_for(emulator, wire)
    result = await tagger.ainvoke(JETS[0])
    assert result.ok
    assert result.label in ("quark", "gluon")
    assert 0 <= result.quark_probability <= 1
    assert result.parsed_by == "schema"
    assert result.index == JETS[0].index
    assert len(result.reasoning) > 200  # the reasoning text is kept
    assert result.usage.input_tokens > 1000  # six examples and the jet
    assert 0 < result.usage.reasoning_tokens < result.usage.output_tokens
    assert not result.usage.reasoning_estimated
    [body] = wire.bodies
    assert body["reasoning_effort"] == "medium"
    # A vLLM server (the emulator says it emulates one) gets the compact-JSON regex, alone.
    assert body["structured_outputs"] == {"regex": COMPACT_LABEL_REGEX}
    assert "response_format" not in body
    assert re.fullmatch(COMPACT_LABEL_REGEX, result.answer)
    # System, six examples as (user, assistant JSON) turns, then the jet: and never the jet
    # being tagged among its own examples.
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system"] + ["user", "assistant"] * 6 + ["user"]
    target = body["messages"][-1]["content"]
    assert all(m["content"] != target for m in body["messages"][1:-1])


@pytest.mark.parametrize(
    ("owned_by", "version"), [("openai", None), ("vllm", "0.9.2"), ("vllm", None)]
)
async def test_servers_without_structured_outputs_get_response_format(
    emulator, monkeypatch, owned_by, version
):
    """Other servers, and vLLM before 0.10.2, get the portable JSON schema instead."""
    from vibe_jet_tagging.servers.info import ModelCard, ServerInfo
    from vibe_jet_tagging.tagging import client as tagger_requests

    def other_server(urls, key, **kwargs):
        card = ModelCard("openai/gpt-oss-120b", owned_by=owned_by)
        return {url: ServerInfo(url, (card,), version) for url in urls}

    monkeypatch.setattr(tagger_requests, "fetch_each", other_server)
    wire = Wire()
    result = await tagger_for(emulator, wire).ainvoke(JETS[1])
    assert result.parsed_by == "schema"
    [body] = wire.bodies
    assert "structured_outputs" not in body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == [
        "label",
        "quark_probability",
    ]
    assert result.answer.startswith('{"label": ')  # the emulator's schema answer


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content", "both"])
async def test_reasoning_kept_under_either_field_name_and_when_streaming(fresh_emulator, field):
    server = fresh_emulator(reasoning_field=field)
    model = ChatVLLM(base_url=server.base_url, reasoning_effort="low")
    message = await model.ainvoke("Jet to classify:\n12 constituents")
    assert len(message.additional_kwargs[REASONING_KEY]) > 50
    sync_message = await asyncio.to_thread(model.invoke, "Jet to classify:\n12 constituents")
    assert sync_message.additional_kwargs[REASONING_KEY] == message.additional_kwargs[REASONING_KEY]
    streamed = None
    async for chunk in model.astream("Jet to classify:\n12 constituents"):
        streamed = chunk if streamed is None else streamed + chunk
    # Deltas add up to the same reasoning, once (not doubled by the closing chunk).
    assert streamed.additional_kwargs[REASONING_KEY] == message.additional_kwargs[REASONING_KEY]
    assert streamed.content == message.content
    assert streamed.usage_metadata["output_tokens"] == message.usage_metadata["output_tokens"]


async def test_streaming_with_a_schema_keeps_the_reasoning_once(emulator):
    model = ChatVLLM(base_url=emulator.base_url).bind(response_format={"type": "json_object"})
    plain = await model.ainvoke("Jet to classify:\n30 constituents")
    streamed = None
    async for chunk in model.astream("Jet to classify:\n30 constituents"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.additional_kwargs[REASONING_KEY] == plain.additional_kwargs[REASONING_KEY]


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
async def test_effort_on_the_wire_sets_the_reasoning_length(emulator, effort):
    wire = Wire()
    tagger = tagger_for(emulator, wire, reasoning_effort=effort, template="zero_shot")
    result = await tagger.ainvoke(JETS[1])
    assert wire.bodies[0]["reasoning_effort"] == effort
    expected = {"low": 120, "medium": 370, "high": 2000}[effort]
    assert 0.7 * expected <= result.usage.reasoning_tokens <= 1.3 * expected
    assert result.effort == effort


async def test_schema_off_reads_prose_with_the_regex_and_agrees_with_schema_on(emulator):
    wire = Wire()
    free = tagger_for(emulator, wire, structured_output=False, template="zero_shot")
    strict = tagger_for(emulator, template="zero_shot")
    prose = await free.abatch(JETS)
    schema = await strict.abatch(JETS)
    assert "response_format" not in wire.bodies[0]
    steps = {r.parsed_by for r in prose}
    assert steps == {"regex", "schema"}  # the styles include prose and fenced JSON
    # The emulator decides the same label for the same prompt, whatever the answer's style:
    # the regex reads the last answer in prose that mentions the other label first.
    assert [r.label for r in prose] == [r.label for r in schema]
    assert all(r.quark_probability is None for r in prose if r.parsed_by == "regex")


async def test_a_malformed_answer_is_reasked_with_the_error(fresh_emulator):
    server = fresh_emulator(faults={"malformed_json": 0.5}, seed=3)
    wire = Wire()
    tagger = tagger_for(server, wire, template="zero_shot")
    results = await tagger.abatch(JETS, return_exceptions=True)
    reasked = [r for r in results if isinstance(r, TagResult) and r.parsed_by == "reask"]
    assert reasked, "some answers were malformed and fixed by the re-ask"
    assert all(r.usage.requests == 2 for r in reasked)
    reasks = [b for b in wire.bodies if len(b["messages"]) == 4]  # system, jet, answer, fix
    assert len(reasks) >= len(reasked)
    fix = reasks[0]["messages"]
    assert fix[2]["role"] == "assistant"
    assert fix[3]["role"] == "user"
    assert "Correct your JSON" in fix[3]["content"]
    # A re-ask changes the messages, so no cache could replay the bad answer.
    assert fix[:2] == next(b["messages"] for b in wire.bodies if b["messages"][1] == fix[1])


async def test_without_reask_broken_json_is_an_error_never_searched_for_a_label(fresh_emulator):
    server = fresh_emulator(faults={"malformed_json": 1.0})
    tagger = tagger_for(server, template="zero_shot", reask=False)
    results = await tagger.abatch(JETS, return_exceptions=True)
    assert server.stats()["requests_total"] == len(JETS)  # no re-ask
    for r in results:
        assert isinstance(r, TaggingError)
        assert (r.result.label, r.result.error.kind) == (None, "parse")
        # e.g. {'label': 'quark', 'quark_probability': 0.64,}: it names a label, read it never
        assert r.result.error.raw_answer.count("{") == 1


async def test_truncation_is_an_error_not_a_label(emulator):
    tagger = tagger_for(emulator, template="zero_shot", max_tokens=50)
    with pytest.raises(TaggingError) as info:
        await tagger.ainvoke(JETS[0])
    assert info.value.result.error.kind == "truncated"
    assert info.value.result.finish_reason == "length"
    assert "reasoning used the whole budget" in info.value.result.error.message


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [("server_error", "server", 500), ("rate_limit", "rate_limit", 429)],
)
async def test_server_errors_become_errors_not_labels(fresh_emulator, fault, kind, status):
    server = fresh_emulator(faults={fault: 1.0}, retry_after=0)
    tagger = tagger_for(server, template="zero_shot", max_retries=1)
    results = await tagger.abatch(JETS[:3], return_exceptions=True)
    assert all(isinstance(r, TaggingError) for r in results)
    for r in results:
        assert r.result.error.kind == kind
        assert r.result.error.status == status
        assert server.base_url in r.result.error.message
    assert server.stats()["requests_total"] == 3 * 2  # one retry each


async def test_unreachable_server_is_a_connection_error_naming_the_url():
    tagger = JetTagger(
        base_url="http://127.0.0.1:9/v1", cache=None, template="zero_shot", max_retries=0, timeout=5
    )
    with pytest.raises(TaggingError) as info:
        await tagger.ainvoke(JETS[0])
    assert info.value.result.error.kind == "connection"
    assert "http://127.0.0.1:9/v1" in info.value.result.error.message


async def test_abatch_never_exceeds_max_concurrency(fresh_emulator):
    server = fresh_emulator(ttft=0.05, itl=0.0002)
    tagger = tagger_for(server, template="zero_shot")
    results = await tagger.abatch(JETS, {"max_concurrency": 3})
    assert all(r.ok for r in results)
    stats = server.stats()
    assert stats["max_running"] == 3
    assert stats["requests_total"] == len(JETS)


async def test_duplicates_in_a_batch_make_one_request(fresh_emulator):
    server = fresh_emulator(ttft=0.05)
    tagger = tagger_for(server, template="zero_shot")
    inputs = [JETS[0], JETS[1], JETS[0].constituents, {"jet": JETS[0]}, JETS[1]]
    results = await tagger.abatch(inputs)
    assert server.stats()["requests_total"] == 2
    assert [r.label for r in results[:4:2]] == [results[0].label] * 2
    assert sum(not r.cached for r in results) == 2  # the copies are marked as not paid for
    assert usage_totals(results).usage.requests == 2


async def test_a_jet_asked_after_its_twin_was_stored_is_read_from_the_cache(
    fresh_emulator, tmp_path
):
    server = fresh_emulator()
    tagger = tagger_for(server, template="zero_shot", cache=ResultCache(tmp_path))
    # One at a time: the twin's look-up (with its chunk) is over before the first is stored.
    results = await tagger.abatch([JETS[0], JETS[1], JETS[0]], {"max_concurrency": 1})
    assert server.stats()["requests_total"] == 2
    assert [r.cached for r in results] == [False, False, True]
    assert results[2].index == JETS[0].index and results[2].label == results[0].label


class Runs(BaseCallbackHandler):
    """Records the run id of every JetTagger run that starts."""

    def __init__(self) -> None:
        self.ids: list[UUID] = []

    def on_chain_start(self, serialized, inputs, *, run_id, name=None, **kwargs) -> None:
        if name == "JetTagger":
            self.ids.append(run_id)


async def test_a_batch_run_id_goes_to_its_first_jet_with_a_warning(emulator):
    tagger = tagger_for(emulator, template="zero_shot")
    runs, given = Runs(), uuid4()
    with pytest.warns(RuntimeWarning, match="run_id"):
        results = await tagger.abatch(JETS[:3], {"run_id": given, "callbacks": [runs]})
    assert all(r.ok for r in results)
    assert len(runs.ids) == 3 and given in runs.ids and len(set(runs.ids)) == 3
    with pytest.warns(RuntimeWarning, match="run_id"):  # unwatched: the same warning
        await tagger.abatch(JETS[:2], {"run_id": uuid4()})


async def test_logprobs_give_a_probability_beside_the_stated_one(emulator):
    wire = Wire()
    tagger = tagger_for(emulator, wire, template="zero_shot", logprobs=True)
    results = await tagger.abatch(JETS[:6])
    assert wire.bodies[0]["logprobs"] is True
    for r in results:
        assert r.logprob_quark_probability is not None
        assert r.logprob_quark_probability == pytest.approx(r.quark_probability, abs=0.02)


async def test_missing_reasoning_tokens_are_estimated_and_say_so(fresh_emulator):
    reported = await tagger_for(fresh_emulator(), template="zero_shot").ainvoke(JETS[2])
    server = fresh_emulator(report_reasoning_tokens=False)
    estimated = await tagger_for(server, template="zero_shot").ainvoke(JETS[2])
    assert not reported.usage.reasoning_estimated
    assert estimated.usage.reasoning_estimated
    assert estimated.usage.output_tokens == reported.usage.output_tokens
    # The character-ratio estimate lands near the true count.
    assert estimated.usage.reasoning_tokens == pytest.approx(
        reported.usage.reasoning_tokens, rel=0.15
    )


async def test_usage_callback_sums_tokens_per_model_and_prices_them(emulator):
    usage = UsageCallback(prices={"openai/gpt-oss-120b": {"input": 0.1, "output": 0.5}})
    tagger = tagger_for(emulator, template="zero_shot")
    results = await tagger.abatch(JETS[:5], {"callbacks": [usage]})
    total = usage.total
    assert total.input_tokens == sum(r.usage.input_tokens for r in results)
    assert total.output_tokens == sum(r.usage.output_tokens for r in results)
    assert total.reasoning_tokens == sum(r.usage.reasoning_tokens for r in results)
    expected = (total.input_tokens * 0.1 + total.output_tokens * 0.5) / 1e6
    assert usage.cost() == pytest.approx(expected)
    assert set(usage.by_model) == {"openai/gpt-oss-120b"}


async def test_composes_inside_a_larger_chain_with_tracing_names(emulator):
    tagger = tagger_for(emulator, template="zero_shot")
    chain = (
        RunnableLambda(lambda event: event["jets"][0], name="pick")
        | tagger
        | RunnableLambda(lambda r: {"is_quark": r.label == "quark", "p": r.quark_probability})
    )
    out = await chain.ainvoke({"jets": JETS[:1]})
    assert set(out) == {"is_quark", "p"}
    names = [
        (e["event"], e["name"])
        async for e in chain.astream_events({"jets": JETS[:1]}, version="v2")
    ]
    # The answer is read by the tagger's JetLabelParser, a LangChain output parser.
    events = {"ChatVLLM": "on_chat_model_start", "parse_label": "on_parser_start"}
    for step in ("JetTagger", "prompt", "ChatVLLM", "parse_label"):
        assert (events.get(step, "on_chain_start"), step) in names


async def test_with_fallbacks_and_with_retry(fresh_emulator, emulator):
    broken = tagger_for(
        fresh_emulator(faults={"server_error": 1.0}), template="zero_shot", max_retries=0
    )
    working = tagger_for(emulator, template="zero_shot")
    result = await broken.with_fallbacks([working]).ainvoke(JETS[0])
    assert result.ok
    flaky_server = fresh_emulator(faults={"server_error": 0.5}, seed=1)
    flaky = tagger_for(flaky_server, template="zero_shot", max_retries=0)
    retried = flaky.with_retry(stop_after_attempt=8, wait_exponential_jitter=False)
    results = await retried.abatch(JETS[:6])
    assert all(r.ok for r in results)
    assert flaky_server.stats()["requests_total"] > 6


def test_sync_calls_work_in_scripts_and_inside_a_running_loop(emulator):
    tagger = tagger_for(emulator, template="zero_shot")
    first = tagger.invoke(JETS[0])
    batch = tagger.batch(JETS[:3])
    assert batch[0].label == first.label

    async def notebook_cell():  # a running loop, as in Jupyter
        return tagger.invoke(JETS[0]), [r for _, r in tagger.batch_as_completed(JETS[:3])]

    inside, streamed = asyncio.run(notebook_cell())
    assert inside.label == first.label
    assert sorted(r.jet_key for r in streamed) == sorted(r.jet_key for r in batch)
    # asyncio.run twice in one process: the HTTP client survives a closed loop.
    again = asyncio.run(tagger.ainvoke(JETS[1]))
    assert again.ok


def test_concurrent_threads_share_one_tagger(emulator):
    tagger = tagger_for(emulator, template="zero_shot")
    out: list[TagResult] = []
    threads = [threading.Thread(target=lambda j=j: out.append(tagger.invoke(j))) for j in JETS[:6]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 6
    assert all(r.ok for r in out)


async def test_bad_input_is_a_clear_error(emulator):
    tagger = tagger_for(emulator, template="zero_shot")
    with pytest.raises(ValueError, match="no constituents"):
        await tagger.ainvoke([[0.0, 0.0, 0.0, 0.0]])
    results = await tagger.abatch([JETS[0], [[1.0, math.nan, 0.0, 211]]], return_exceptions=True)
    assert results[0].ok
    assert isinstance(results[1], ValueError)
    assert "non-finite" in str(results[1])
