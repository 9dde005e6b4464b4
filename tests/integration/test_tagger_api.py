"""The Python API against the emulated server: configuration, the prompt template, retries."""

from __future__ import annotations

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

from vibe_jet_tagging import ChatVLLM, JetTagger, TaggingError, load_sample
from vibe_jet_tagging.tagging.parsing import parse_label
from vibe_jet_tagging.tagging.prompt import JetPromptTemplate
from vibe_jet_tagging.tagging.results import TransientTaggingError

SAMPLE = load_sample()
JET = SAMPLE[17]
EXAMPLES = SAMPLE[3000:3400]


def test_jet_tagger_with_no_arguments_talks_to_the_configured_server(emulator, monkeypatch):
    monkeypatch.setenv("VJT_BASE_URL", emulator.base_url)
    monkeypatch.setenv("VJT_EFFORT", "low")
    monkeypatch.setenv("VJT_TEMPLATE", "zero_shot")
    emulator.reset_stats()
    result = JetTagger().invoke(JET)
    assert result.ok
    assert (result.effort, result.template) == ("low", "zero_shot")
    assert emulator.stats()["requests_total"] == 1


@pytest.mark.parametrize("structured_output", [False, True])
def test_prompt_template_chain_gives_the_taggers_result(emulator, structured_output):
    """``prompt | ChatVLLM | parser`` and ``JetTagger`` read the same label from the same jet."""
    tagger = JetTagger(
        base_url=emulator.base_url, reasoning_effort="low", examples=EXAMPLES,
        structured_output=structured_output, cache=None,
    )  # fmt: skip
    chain = (
        tagger.prompt_template
        | ChatVLLM(base_url=emulator.base_url, reasoning_effort="low")
        | StrOutputParser()
        | RunnableLambda(parse_label)
    )
    for jet in (JET, SAMPLE[3900]):
        expected = tagger.invoke(jet)
        label = chain.invoke(jet)
        assert label.label == expected.label
        if not structured_output:  # the very same request: the very same answer
            assert label.quark_probability == expected.quark_probability


def test_prompt_template_works_with_any_chat_model(emulator):
    prompt = JetPromptTemplate("few_shot", examples=EXAMPLES)
    messages = prompt.invoke({"jet": JET}).to_messages()
    assert messages == prompt.invoke(JET).to_messages()
    assert [m.type for m in messages] == ["system"] + ["human", "ai"] * 6 + ["human"]
    common = {"base_url": emulator.base_url, "api_key": "EMPTY", "reasoning_effort": "low"}
    theirs = (prompt | ChatOpenAI(model=emulator.model, **common)).invoke(JET)
    ours = (prompt | ChatVLLM(**common)).invoke(JET)
    assert theirs.content == ours.content  # the same messages reach the server
    assert parse_label(ours.content).label in ("quark", "gluon")


def test_with_retry_retries_only_errors_that_can_pass(emulator, fresh_emulator):
    failing = fresh_emulator(faults={"server_error": 1.0})
    flaky = JetTagger(base_url=failing.base_url, max_retries=0, template="zero_shot", cache=None)
    with pytest.raises(TransientTaggingError, match="HTTP 500"):
        flaky.with_retry(stop_after_attempt=3, wait_exponential_jitter=False).invoke(JET)
    assert failing.stats()["requests_total"] == 3

    unknown = JetTagger(
        "no-such-model", base_url=emulator.base_url, max_retries=0, template="zero_shot",
        cache=None,
    )  # fmt: skip
    with pytest.raises(TaggingError, match="does not serve 'no-such-model'") as raised:
        unknown.with_retry(stop_after_attempt=3, wait_exponential_jitter=False).invoke(JET)
    assert not raised.value.transient
    assert raised.value.result.error.status == 404

    emulator.reset_stats()
    refused = JetTagger(  # vLLM refuses max_tokens beyond the context: HTTP 400
        base_url=emulator.base_url, max_tokens=10**7, max_retries=0, template="zero_shot",
        cache=None,
    )  # fmt: skip
    with pytest.raises(TaggingError, match="HTTP 400") as raised:
        refused.with_retry(stop_after_attempt=3, wait_exponential_jitter=False).invoke(JET)
    assert not raised.value.transient
    assert emulator.stats()["requests_total"] == 1  # asked once: it cannot pass

    everything = refused.with_retry(
        retry_if_exception_type=(TaggingError,), stop_after_attempt=2,
        wait_exponential_jitter=False,
    )  # fmt: skip
    with pytest.raises(TaggingError):
        everything.invoke(JET)
    assert emulator.stats()["requests_total"] == 3
