"""LangChain's standard integration tests for chat models (``langchain-tests``) on ``ChatVLLM``.

They run against the emulated vLLM server, started as vLLM with a tool-call parser, so the
whole client surface runs for real: invoke, stream, batch, events, usage, stop sequences, tool
calls, structured output, model override. The emulated server answers from a physics
heuristic, not a language model: it reads no question, so the tests that check what the answer
*says* cannot pass against it and are marked xfail (strict) below with the reason:

- ``test_tool_calling``, ``test_tool_calling_async``: want the argument ``input=3`` the
  question asks for; the emulator fills arguments from the schema (1 or 0 for an integer).
- ``test_unicode_tool_call_integration``: wants the Chinese text the question asks for in
  the arguments.
- ``test_json_mode``: wants a joke with ``setup`` and ``punchline``; the emulator answers
  JSON about a jet (or that there is none).

Skipped by the suite's own switches, as not applicable: image, audio and PDF inputs and tool
messages, and Anthropic-format blocks (vLLM serving gpt-oss takes text only), and
``test_stream_time`` (needs recorded VCR cassettes; these tests talk to a live server).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.tagging.model import ChatVLLM

NOT_A_LANGUAGE_MODEL = (
    "the emulated server is a physics heuristic, not a language model: it cannot answer what "
    "the test asks for (the test checks the content of the answer)"
)

_server: EmulatedServer | None = None
_MODELS = ["openai/gpt-oss-120b", "openai/gpt-oss-20b"]


def _xfail(name: str, reason: str) -> Callable[..., Any]:
    """The standard test ``name`` (its parameters kept), marked as failing for ``reason``."""
    base = getattr(ChatModelIntegrationTests, name)
    if inspect.iscoroutinefunction(base):

        async def test(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await base(self, *args, **kwargs)

    else:

        def test(self: Any, *args: Any, **kwargs: Any) -> Any:
            return base(self, *args, **kwargs)

    functools.update_wrapper(test, base)
    test.pytestmark = list(getattr(base, "pytestmark", []))  # type: ignore[attr-defined]
    return pytest.mark.xfail(reason=reason, strict=True)(test)


@pytest.fixture(scope="module", autouse=True)
def standard_server() -> Iterator[EmulatedServer]:
    """The emulated vLLM, with a tool-call parser and short reasoning (max_tokens is 100)."""
    global _server
    effort = {"low": 8, "medium": 12, "high": 20}
    with EmulatedServer(models=_MODELS, tool_call_parser="openai", effort_tokens=effort) as server:
        _server = server
        yield server
    _server = None


class TestChatVLLMIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatVLLM]:
        return ChatVLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        assert _server is not None
        return {"model": _MODELS[0], "base_url": _server.base_url, "api_key": "EMPTY"}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False  # vLLM serving gpt-oss takes text only

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return _MODELS[1]

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[str]]:
        return {"invoke": ["reasoning_output"], "stream": ["reasoning_output"]}

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        model = ChatVLLM(**self.chat_model_params, reasoning_effort="high")
        question = "Is a jet with 60 constituents more quark- or gluon-like?"
        if not stream:
            return model.invoke(question)
        chunks = list(model.stream(question))
        full = chunks[0]
        for chunk in chunks[1:]:
            full = full + chunk
        return full  # type: ignore[return-value]

    test_tool_calling = _xfail("test_tool_calling", NOT_A_LANGUAGE_MODEL)
    test_tool_calling_async = _xfail("test_tool_calling_async", NOT_A_LANGUAGE_MODEL)
    test_unicode_tool_call_integration = _xfail(
        "test_unicode_tool_call_integration", NOT_A_LANGUAGE_MODEL
    )
    test_json_mode = _xfail("test_json_mode", NOT_A_LANGUAGE_MODEL)
