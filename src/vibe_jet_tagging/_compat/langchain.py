"""LangChain internals the package builds on, each behind one name here.

- :class:`ChatOpenAIHooks`: ``ChatOpenAI`` with its private response-conversion and payload
  methods routed to two public hooks (:meth:`~ChatOpenAIHooks.message_extras`,
  :meth:`~ChatOpenAIHooks.adjust_payload`). langchain-openai drops provider fields such as
  vLLM's ``message.reasoning`` and declined to keep them (see STACK_NOTES); a subclass that
  overrides these conversions is the only way in.
- :func:`request_payload` and :func:`message_of_response`: the body ``ChatOpenAI`` would send
  and the message it would make of a response body (offline batch files use both).
- :func:`llm_string`: how LangChain's caches name a chat model's settings.
- :data:`LangChainBetaWarning`: the warning ``langchain_core.load`` raises on every call.
"""

from __future__ import annotations

from typing import Any

import openai
from langchain_core._api.beta_decorator import LangChainBetaWarning
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import _gen_info_and_msg_metadata
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

__all__ = [
    "ChatOpenAIHooks",
    "LangChainBetaWarning",
    "llm_string",
    "message_of_response",
    "request_payload",
]

HOOKED = (
    "_get_request_payload",
    "_create_chat_result",
    "_convert_chunk_to_generation_chunk",
    "_get_generation_chunk_from_completion",
)
"""The private ``ChatOpenAI`` methods :class:`ChatOpenAIHooks` overrides (contract-tested)."""


def _field(payload: Any, name: str) -> Any:
    """A field of a message or delta, given as a dict or as the SDK's object."""
    if payload is None:
        return None
    if isinstance(payload, dict):
        return payload.get(name)
    return getattr(payload, name, None)  # the SDK's objects keep unknown fields as attributes


class ChatOpenAIHooks(ChatOpenAI):
    """``ChatOpenAI`` whose response conversions call :meth:`message_extras`.

    Subclasses override the two hooks, never ChatOpenAI's private methods.
    """

    def message_extras(self, message: Any) -> dict[str, Any]:
        """Extra ``additional_kwargs`` for a response's message or a stream's delta.

        ``message`` is a dict or the SDK's object; ``field(message, name)`` reads either.
        """
        return {}

    def adjust_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The request payload ``ChatOpenAI`` built, as it should be sent."""
        return payload

    @staticmethod
    def field(message: Any, name: str) -> Any:
        """A field of a message or delta (a dict or the SDK's object), or ``None``."""
        return _field(message, name)

    # -- ChatOpenAI's private methods, overridden here only ----------------------------------

    def _get_request_payload(
        self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return self.adjust_payload(super()._get_request_payload(input_, stop=stop, **kwargs))

    def _create_chat_result(
        self,
        response: dict[str, Any] | openai.BaseModel,
        generation_info: dict[str, Any] | None = None,
    ) -> ChatResult:
        # The typed response goes to ChatOpenAI as it came: with_structured_output's
        # json_schema mode reads ``message.parsed`` from it.
        result = super()._create_chat_result(response, generation_info)
        choices = _field(response, "choices") or []
        for generation, choice in zip(result.generations, choices, strict=False):
            extras = self.message_extras(_field(choice, "message"))
            if extras and isinstance(generation.message, AIMessage):
                generation.message.additional_kwargs.update(extras)
        return result

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict[str, Any],
        default_chunk_class: type,
        base_generation_info: dict[str, Any] | None,
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        choices = chunk.get("choices") or chunk.get("chunk", {}).get("choices") or []
        if generation is not None and choices:
            extras = self.message_extras(choices[0].get("delta"))
            if extras:
                generation.message.additional_kwargs.update(extras)
        return generation

    def _get_generation_chunk_from_completion(
        self, completion: openai.BaseModel
    ) -> ChatGenerationChunk:
        # The closing chunk of a structured-output stream repeats the whole completion; its
        # extras already arrived delta by delta.
        generation = super()._get_generation_chunk_from_completion(completion)
        choices = _field(completion, "choices") or []
        for name in self.message_extras(_field(choices[0], "message") if choices else None):
            generation.message.additional_kwargs.pop(name, None)
        return generation


def request_payload(
    model: ChatOpenAI, messages: list[BaseMessage], **options: Any
) -> dict[str, Any]:
    """The payload ``model`` builds for ``messages`` and call ``options`` (not sent)."""
    return model._get_request_payload(messages, **options)


def message_of_response(model: ChatOpenAI, body: dict[str, Any]) -> AIMessage:
    """The message ``model`` makes of a Chat Completions response body, with its metadata
    (finish reason, usage, model) as after an HTTP call."""
    result = model._create_chat_result(dict(body))
    [generation] = result.generations
    message = generation.message
    if not isinstance(message, AIMessage):  # pragma: no cover - ChatOpenAI makes AIMessages
        raise TypeError(f"expected an AIMessage, got {type(message).__name__}")
    message.response_metadata = {
        **(result.llm_output or {}),
        **_gen_info_and_msg_metadata(generation),
    }
    return message


def llm_string(model: BaseChatModel) -> str:
    """The string LangChain's caches key a chat model's settings by."""
    return model._get_llm_string()
