"""``ChatVLLM.with_structured_output`` behaves like ``ChatOpenAI``'s, on both servers.

The ``server`` fixture is the emulated server and, under ``pytest -m real_vllm``, a real vLLM
(tests/conftest.py). Each case runs the same request through ``ChatVLLM`` and through
``ChatOpenAI`` pointed at the same server, greedy, and expects the same outcome: the same
parsed value, or the same kind of failure. Neither server was started with a tool-call parser
(the real tier's vLLM has none), so ``function_calling`` must fail with an error saying so,
never return ``None``; the emulated server started with one shows that method working.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any, Literal

import openai
import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.tagging.model import ChatVLLM, ToolCallingUnavailableError, reasoning_of

QUESTION = (
    "Jet observables:\nconstituent multiplicity: 60\ngirth: 0.07\n"
    'Is it a quark or a gluon jet? Answer in JSON: {"label": "quark" or "gluon", '
    '"quark_probability": number}.'
)
MAX_TOKENS = 300
"""Room for a low-effort reasoning (~120 tokens on gpt-oss and the emulator) and the JSON
answer; a small model in JSON mode may run on, and is cut here."""


class Answer(BaseModel):
    """The jet's label."""

    label: Literal["quark", "gluon"]
    quark_probability: float = Field(ge=0, le=1)


class AnswerDict(TypedDict):
    """The jet's label."""

    label: Annotated[Literal["quark", "gluon"], ..., "quark or gluon"]
    quark_probability: Annotated[float, ..., "probability of quark, 0 to 1"]


ANSWER_SCHEMA: dict[str, Any] = {
    "title": "Answer",
    "description": "The jet's label.",
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["quark", "gluon"]},
        "quark_probability": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["label", "quark_probability"],
    "additionalProperties": False,
}
SCHEMAS = {"pydantic": Answer, "typeddict": AnswerDict, "json_schema": ANSWER_SCHEMA}


def models(server: Any, **options: Any) -> tuple[ChatVLLM, ChatOpenAI]:
    """``ChatVLLM`` and ``ChatOpenAI`` with the same settings against ``server``."""
    common = {
        "base_url": server.base_url,
        "api_key": server.api_key,
        "model": server.model,
        "temperature": 0,
        "seed": 0,
        "max_tokens": MAX_TOKENS,
        "max_retries": 0,
        "reasoning_effort": "low",
        **options,
    }
    return ChatVLLM(**common), ChatOpenAI(**common)


def sent_format(structured: Any) -> str:
    """The ``response_format`` type a ``with_structured_output`` chain sends."""
    sent = structured.first.kwargs["response_format"]
    return "json_schema" if isinstance(sent, type) else sent["type"]


def outcome(runnable: Any, question: str = QUESTION) -> Any:
    """What ``invoke`` gave: the value, or ``("error", type name)``."""
    try:
        return runnable.invoke(question)
    except Exception as exc:
        return ("error", type(exc).__name__)


def comparable(value: Any) -> Any:
    """An ``include_raw`` result with the raw message reduced to its content."""
    if isinstance(value, dict) and "raw" in value:
        error = value["parsing_error"]
        return {
            "raw": value["raw"].content,
            "parsed": value["parsed"],
            "parsing_error": None if error is None else type(error).__name__,
        }
    return value


def check_parsed(value: Any, schema: Any) -> None:
    """``value`` is what ``schema`` describes, with a label."""
    if schema is Answer:
        assert isinstance(value, Answer)
        value = value.model_dump()
    assert isinstance(value, dict)
    assert value["label"] in ("quark", "gluon")
    assert 0 <= value["quark_probability"] <= 1


# -- json_schema: the default, enforced by the server's grammar ---------------------------------


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_json_schema_parses_like_chat_openai(server, kind) -> None:
    schema = SCHEMAS[kind]
    vllm, reference = models(server)
    ours = vllm.with_structured_output(schema)  # json_schema is the default method
    assert sent_format(ours) == "json_schema"
    got = ours.invoke(QUESTION)
    check_parsed(got, schema)
    assert got == reference.with_structured_output(schema).invoke(QUESTION)


def test_json_schema_include_raw(server) -> None:
    vllm, reference = models(server)
    got = vllm.with_structured_output(Answer, include_raw=True).invoke(QUESTION)
    assert set(got) == {"raw", "parsed", "parsing_error"}
    assert isinstance(got["raw"], AIMessage)
    assert got["parsing_error"] is None
    check_parsed(got["parsed"], Answer)
    assert Answer.model_validate_json(got["raw"].content) == got["parsed"]
    if server.kind == "emulated":  # SmolLM2 is not a reasoning model
        assert reasoning_of(got["raw"])  # ChatVLLM keeps the reasoning beside the answer
    expected = reference.with_structured_output(Answer, include_raw=True).invoke(QUESTION)
    assert comparable(got) == comparable(expected)


async def test_json_schema_async_and_streamed(server) -> None:
    vllm, _ = models(server)
    structured = vllm.with_structured_output(Answer)
    got = await structured.ainvoke(QUESTION)
    check_parsed(got, Answer)
    chunks = [chunk async for chunk in structured.astream(QUESTION)]
    assert chunks
    assert chunks[-1] == got


def test_json_schema_strict(server) -> None:
    vllm, reference = models(server)
    got = vllm.with_structured_output(ANSWER_SCHEMA, strict=True).invoke(QUESTION)
    check_parsed(got, ANSWER_SCHEMA)
    assert got == reference.with_structured_output(ANSWER_SCHEMA, strict=True).invoke(QUESTION)


# -- json_mode: any JSON object; the schema is checked on the client ----------------------------


@pytest.mark.parametrize("include_raw", [False, True])
def test_json_mode_like_chat_openai(server, include_raw) -> None:
    vllm, reference = models(server)
    ours = vllm.with_structured_output(Answer, method="json_mode", include_raw=include_raw)
    assert sent_format(vllm.with_structured_output(Answer, method="json_mode")) == "json_object"
    got = comparable(outcome(ours))
    theirs = reference.with_structured_output(Answer, method="json_mode", include_raw=include_raw)
    assert got == comparable(outcome(theirs))
    if server.kind == "emulated":  # the emulator reads the jet and answers the asked JSON
        parsed = got["parsed"] if include_raw else got
        check_parsed(parsed, Answer)


def test_json_mode_schema_failure_is_reported_not_guessed(server) -> None:
    """A JSON object that fails the schema: ``parsing_error`` (include_raw) or an exception."""
    vllm, reference = models(server)
    question = "Reply with a JSON object that has one key, colour, whose value is blue."
    with_raw = vllm.with_structured_output(Answer, method="json_mode", include_raw=True)
    got = outcome(with_raw, question)
    expected = outcome(
        reference.with_structured_output(Answer, method="json_mode", include_raw=True), question
    )
    assert comparable(got) == comparable(expected)
    if isinstance(got, dict):
        assert got["parsed"] is None or isinstance(got["parsed"], Answer)
        if got["parsed"] is None:
            assert got["parsing_error"] is not None
            with pytest.raises(OutputParserException):
                vllm.with_structured_output(Answer, method="json_mode").invoke(question)


# -- function_calling: needs vLLM's --tool-call-parser ------------------------------------------


@pytest.mark.parametrize("include_raw", [False, True])
@pytest.mark.parametrize("kind", ["pydantic", "json_schema"])
def test_function_calling_without_a_tool_parser_says_so(server, kind, include_raw) -> None:
    vllm, reference = models(server)
    structured = vllm.with_structured_output(
        SCHEMAS[kind], method="function_calling", include_raw=include_raw
    )
    with pytest.raises(ToolCallingUnavailableError) as raised:
        structured.invoke(QUESTION)
    message = str(raised.value)
    assert "--tool-call-parser" in message
    assert "method='json_schema'" in message
    assert server.base_url in message
    assert isinstance(raised.value, openai.BadRequestError)  # still what openai code catches
    if server.kind == "real":
        server.expected_400 += 2
    # ChatOpenAI fails the same way, with the server's bare message.
    with pytest.raises(openai.BadRequestError, match="--tool-call-parser"):
        reference.with_structured_output(
            SCHEMAS[kind], method="function_calling", include_raw=include_raw
        ).invoke(QUESTION)


def test_function_calling_streamed_without_a_tool_parser_says_so(server) -> None:
    vllm, _ = models(server)
    structured = vllm.with_structured_output(Answer, method="function_calling")
    with pytest.raises(ToolCallingUnavailableError):
        list(structured.stream(QUESTION))
    if server.kind == "real":
        server.expected_400 += 1


# -- function_calling on an emulated server with a tool parser ----------------------------------


@pytest.fixture(scope="module")
def tool_server() -> Any:
    """The emulated server started as vLLM with ``--tool-call-parser``."""
    with EmulatedServer(models=["smollm2"], tool_call_parser="openai") as emulated:
        yield SimpleNamespace(
            kind="emulated", base_url=emulated.base_url, model="smollm2", api_key="EMPTY"
        )


@pytest.mark.parametrize("kind", list(SCHEMAS))
@pytest.mark.parametrize("include_raw", [False, True])
def test_function_calling_with_a_tool_parser(tool_server, kind, include_raw) -> None:
    schema = SCHEMAS[kind]
    vllm, reference = models(tool_server)
    got = vllm.with_structured_output(
        schema, method="function_calling", include_raw=include_raw
    ).invoke(QUESTION)
    parsed = got["parsed"] if include_raw else got
    check_parsed(parsed, schema)
    if include_raw:
        assert got["parsing_error"] is None
        [call] = got["raw"].tool_calls
        assert call["name"] == ("AnswerDict" if kind == "typeddict" else "Answer")
        assert got["raw"].response_metadata["finish_reason"] == "tool_calls"
    expected = reference.with_structured_output(
        schema, method="function_calling", include_raw=include_raw
    ).invoke(QUESTION)
    assert comparable(got) == comparable(expected)


async def test_function_calling_streamed_and_strict(tool_server) -> None:
    vllm, _ = models(tool_server)
    structured = vllm.with_structured_output(Answer, method="function_calling", strict=True)
    got = await structured.ainvoke(QUESTION)
    check_parsed(got, Answer)
    chunks = [chunk async for chunk in structured.astream(QUESTION)]
    assert chunks[-1] == got


def test_bind_tools_named_choice(tool_server) -> None:
    vllm, _ = models(tool_server)
    message = vllm.bind_tools([Answer], tool_choice="Answer").invoke(QUESTION)
    [call] = message.tool_calls
    assert call["name"] == "Answer"
    Answer.model_validate(call["args"])
    assert call["id"].startswith("chatcmpl-tool-")
