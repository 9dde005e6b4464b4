"""``JetLabelParser`` in ordinary LangChain chains against the emulated vLLM server."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.runnables import RunnableLambda

from vibe_jet_tagging import ChatVLLM, JetLabelParser, JetTagger, load_sample
from vibe_jet_tagging.tagging.parsing import (
    COMPACT_LABEL_REGEX,
    LabelParseError,
    label_response_format,
)

from .wire import Wire

JETS = load_sample()[:8]


def chain_for(server, tagger: JetTagger):
    """prompt | ChatVLLM | JetLabelParser, written as a vLLM user would (the tagger sends the
    same compact-JSON regex to a vLLM server)."""
    model = ChatVLLM(
        base_url=server.base_url,
        reasoning_effort="low",
        max_retries=0,
        extra_body={"structured_outputs": {"regex": COMPACT_LABEL_REGEX}},
    )
    prompt = RunnableLambda(tagger.prompt.messages, name="prompt")
    return prompt | model | JetLabelParser()


async def test_prompt_model_parser_gives_what_the_tagger_gives(emulator):
    tagger = JetTagger(
        ChatVLLM(base_url=emulator.base_url, reasoning_effort="low"),
        template="zero_shot",
        cache=None,
    )
    chain = chain_for(emulator, tagger)
    for jet in JETS:
        result = await tagger.ainvoke(jet)
        parsed = await chain.ainvoke(jet)
        assert (parsed.label, parsed.quark_probability) == (result.label, result.quark_probability)
        assert parsed.step == result.parsed_by == "schema"


async def test_a_chain_falls_back_when_the_answer_states_no_label(fresh_emulator, emulator):
    hedging = fresh_emulator(faults={"non_answer": 1.0})
    tagger = JetTagger(
        ChatVLLM(base_url=emulator.base_url, reasoning_effort="low"),
        template="zero_shot",
        cache=None,
    )
    broken = chain_for(hedging, tagger)
    with pytest.raises(LabelParseError):
        await broken.ainvoke(JETS[0])
    chain = broken.with_fallbacks(
        [chain_for(emulator, tagger)], exceptions_to_handle=(OutputParserException,)
    )
    parsed = await chain.ainvoke(JETS[0])
    assert parsed.label == (await tagger.ainvoke(JETS[0])).label


async def test_a_truncated_answer_is_an_error_in_a_chain_too(emulator):
    # No response_format: with one bound, the OpenAI SDK's parse path raises its own
    # LengthFinishReasonError before any output parser sees the message.
    tagger = JetTagger(ChatVLLM(base_url=emulator.base_url), template="zero_shot", cache=None)
    prompt = RunnableLambda(tagger.prompt.messages)
    for max_tokens in (30, 5000):
        model = ChatVLLM(base_url=emulator.base_url, reasoning_effort="low", max_tokens=max_tokens)
        chain = prompt | model | JetLabelParser()
        if max_tokens == 30:  # the reasoning used the budget: finish_reason "length"
            with pytest.raises(LabelParseError) as info:
                await chain.ainvoke(JETS[0])
            assert info.value.kind == "truncated"
        else:  # a free-text answer with its decision
            assert (await chain.ainvoke(JETS[0])).step in ("regex", "schema")


# -- the README's chain -------------------------------------------------------------------------


def readme_chain(base_url: str, template: str = "few_shot"):
    """The chain as the README writes it: the prompt, the model constrained as the tagger
    constrains it, the parser."""
    from vibe_jet_tagging import JetPromptTemplate

    prompt = JetPromptTemplate(template)
    parser = JetLabelParser()
    return prompt | parser.constrain(ChatVLLM(base_url=base_url, reasoning_effort="low")) | parser


async def test_the_readme_chain_gives_a_probability_for_every_answered_jet(emulator):
    """Issue 21: without the constraint, 4 of 20 jets got a probability (prose answers)."""
    jets = list(load_sample().balanced(20, seed=4))
    results = await readme_chain(emulator.base_url).abatch(jets, return_exceptions=True)
    answered = [r for r in results if not isinstance(r, Exception)]
    assert len(answered) == 20, [r for r in results if isinstance(r, Exception)]
    assert all(r.quark_probability is not None for r in answered)
    assert all(r.step == "schema" for r in answered)
    assert all((r.label == "quark") == (r.quark_probability >= 0.5) for r in answered)
    # What the tagger reads from the same jets: the same labels and probabilities.
    tagger = JetTagger(
        ChatVLLM(base_url=emulator.base_url, reasoning_effort="low"), template="few_shot",
        cache=None,
    )  # fmt: skip
    tagged = await tagger.abatch(jets)
    assert [(r.label, r.quark_probability) for r in answered] == [
        (t.label, t.quark_probability) for t in tagged
    ]


async def test_without_the_constraint_the_chain_reads_prose_without_probabilities(emulator):
    """The same chain without ``constrain``: the emulated model answers in free text, which is
    read (or not) by the rule, mostly without a probability: why the README constrains it."""
    from vibe_jet_tagging import JetPromptTemplate

    jets = list(load_sample().balanced(20, seed=4))
    chain = (
        JetPromptTemplate("few_shot")
        | ChatVLLM(base_url=emulator.base_url, reasoning_effort="low")
        | JetLabelParser()
    )
    results = await chain.abatch(jets, return_exceptions=True)
    with_probability = [
        r for r in results if not isinstance(r, Exception) and r.quark_probability is not None
    ]
    assert len(with_probability) < 20


@pytest.mark.parametrize("vllm", [True, False], ids=["vllm", "other-server"])
async def test_the_chain_sends_the_constraint_the_tagger_sends(emulator, monkeypatch, vllm):
    """Byte for byte the same request body for the same jet, on a vLLM server (the regex) and
    on a server without structured_outputs (the JSON schema as response_format)."""
    from vibe_jet_tagging import JetPromptTemplate
    from vibe_jet_tagging.servers import info as server_info
    from vibe_jet_tagging.tagging import client as tagger_requests

    if not vllm:

        def other_server(urls, key, model, **kwargs):  # an OpenAI-compatible non-vLLM server
            return server_info.ServerInfo(urls[0], (server_info.ModelCard(model),), None)

        def each(urls, key, **kwargs):
            return {url: other_server([url], key, "openai/gpt-oss-120b") for url in urls}

        monkeypatch.setattr(server_info, "fetch_pool_info", other_server)
        monkeypatch.setattr(tagger_requests, "fetch_each", each)
    wires = Wire(), Wire()

    def model(wire: Wire) -> ChatVLLM:
        return ChatVLLM(
            base_url=emulator.base_url, reasoning_effort="low", extra_body={"top_k": 5},
            http_async_client=wire.client(),
        )  # fmt: skip

    tagger = JetTagger(model(wires[0]), template="zero_shot", cache=None)
    parser = JetLabelParser()
    chain = JetPromptTemplate("zero_shot") | parser.constrain(model(wires[1])) | parser
    tagged, parsed = await tagger.ainvoke(JETS[0]), await chain.ainvoke(JETS[0])
    assert (parsed.label, parsed.quark_probability) == (tagged.label, tagged.quark_probability)
    [sent_by_tagger], [sent_by_chain] = wires[0].bodies, wires[1].bodies
    assert sent_by_chain == sent_by_tagger
    assert sent_by_chain["top_k"] == 5  # the model's own extra_body is kept
    if vllm:
        assert sent_by_chain["structured_outputs"] == {"regex": COMPACT_LABEL_REGEX}
    else:
        assert sent_by_chain["response_format"]["json_schema"]["name"] == "JetLabel"


def test_any_other_chat_model_gets_response_format():
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from vibe_jet_tagging.tagging.parser import label_constraint

    fake = GenericFakeChatModel(messages=iter([AIMessage("{}")]))
    assert label_constraint(fake) == {"response_format": label_response_format()}


async def test_the_constrained_model_streams_batches_and_is_traced(emulator):
    from langchain_core.tracers.context import collect_runs

    chain = readme_chain(emulator.base_url, template="zero_shot")
    jet = JETS[0]
    with collect_runs() as runs:
        parsed = chain.invoke(jet)
    names = [child.name for child in runs.traced_runs[0].child_runs]
    assert names == ["JetPromptTemplate", "ChatVLLM", "JetLabelParser"]
    streamed = list(chain.stream(jet))
    assert streamed[-1] == parsed
    assert [p.label for p in chain.batch(JETS[:3])] == [
        p.label for p in [chain.invoke(j) for j in JETS[:3]]
    ]
