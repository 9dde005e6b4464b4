"""``JetLabelParser``: the answer reading as a LangChain output parser, in any chain."""

from __future__ import annotations

import json

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.prompts import ChatPromptTemplate

from vibe_jet_tagging import JetLabelParser, VJTError
from vibe_jet_tagging.tagging.parsing import (
    ContradictionError,
    LabelParseError,
    ParsedLabel,
    TruncatedAnswerError,
)

PROMPT = ChatPromptTemplate.from_messages([("human", "Tag this jet: {jet}\n{format}")])


def model(*answers: str | AIMessage) -> GenericFakeChatModel:
    messages = [AIMessage(a) if isinstance(a, str) else a for a in answers]
    return GenericFakeChatModel(messages=iter(messages))


def test_reads_json_and_prose_in_a_prompt_model_parser_chain():
    parser = JetLabelParser()
    chain = PROMPT | model('{"label": "gluon", "quark_probability": 0.3}') | parser
    out = chain.invoke({"jet": "...", "format": parser.get_format_instructions()})
    assert out == ParsedLabel(label="gluon", quark_probability=0.3, step="schema")
    prose = (PROMPT | model("Wide jet, many particles.\nFinal answer: 0") | parser).invoke(
        {"jet": "...", "format": ""}
    )
    assert (prose.label, prose.step) == ("gluon", "regex")


async def test_ainvoke_and_strings_work_too():
    parser = JetLabelParser()
    assert (await parser.ainvoke("**Quark**")).label == "quark"
    assert parser.invoke('{"label": "quark", "quark_probability": 0.9}').quark_probability == 0.9
    with pytest.raises(LabelParseError):
        await parser.ainvoke("Step 1")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("I am not sure whether this is a quark or a gluon jet.", LabelParseError),
        ('{"label": "gluon", "quark_probability": 0.2, "confidence": 1}', LabelParseError),
        ('{"label": "gluon", "quark_probability": 1.0}', ContradictionError),
    ],
)
def test_errors_are_output_parser_exceptions_and_package_errors(answer, error):
    with pytest.raises(error) as info:
        (model(answer) | JetLabelParser()).invoke("jet")
    assert isinstance(info.value, OutputParserException)
    assert isinstance(info.value, VJTError)
    assert info.value.llm_output == answer
    assert info.value.reask is not None


def test_a_message_cut_at_max_tokens_is_an_error_even_with_a_valid_label():
    cut = AIMessage(
        '{"label": "quark", "quark_probability": 0.9}',
        response_metadata={"finish_reason": "length"},
    )
    with pytest.raises(TruncatedAnswerError):
        (model(cut) | JetLabelParser()).invoke("jet")
    parser = JetLabelParser()
    with pytest.raises(TruncatedAnswerError):
        parser.parse_result([ChatGeneration(message=cut)])
    legacy = Generation(text="Final answer: 1", generation_info={"finish_reason": "length"})
    with pytest.raises(TruncatedAnswerError):
        parser.parse_result([legacy])
    done = AIMessage("Final answer: 1", response_metadata={"finish_reason": "stop"})
    assert parser.parse_result([ChatGeneration(message=done)]).label == "quark"


def test_with_fallbacks_moves_on_when_the_answer_states_no_label():
    parser = JetLabelParser()
    hedging = model("Maybe a quark, maybe a gluon.") | parser
    deciding = model('{"label": "quark", "quark_probability": 0.8}') | parser
    chain = hedging.with_fallbacks([deciding], exceptions_to_handle=(OutputParserException,))
    assert chain.invoke("jet").label == "quark"


def test_format_instructions_describe_the_json_schema():
    text = JetLabelParser().get_format_instructions()
    schema = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert set(schema["properties"]) == {"label", "quark_probability"}
    assert schema["properties"]["label"]["enum"] == ["quark", "gluon"]
    assert "at least 0.5 exactly when" in text


def test_output_type_and_name():
    parser = JetLabelParser()
    assert parser.OutputType is ParsedLabel
    assert parser.get_name() == "JetLabelParser"
    assert JetLabelParser(name="parse_label").get_name() == "parse_label"
    assert repr(JetLabelParser()) == "JetLabelParser()"
