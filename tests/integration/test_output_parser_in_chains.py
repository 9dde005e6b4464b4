"""``JetLabelParser`` in ordinary LangChain chains against the emulated vLLM server."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.runnables import RunnableLambda

from vibe_jet_tagging import ChatVLLM, JetLabelParser, JetTagger, load_sample
from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX, LabelParseError

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
