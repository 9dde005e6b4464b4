"""LangChain internals the package builds on, each behind one name here.

- :class:`ChatOpenAIHooks`: ``ChatOpenAI`` with its private response-conversion and payload
  methods routed to two public hooks (:meth:`~ChatOpenAIHooks.message_extras`,
  :meth:`~ChatOpenAIHooks.adjust_payload`). langchain-openai drops provider fields such as
  vLLM's ``message.reasoning`` and declined to keep them (see STACK_NOTES); a subclass that
  overrides these conversions is the only way in.
- :meth:`ChatOpenAIHooks.adirect`: ``ainvoke``'s message for a call nobody watches, made
  without LangChain's run machinery and the SDK's per-call models (~2 ms of CPU per call): the
  payload is ``ChatOpenAI``'s own, sent byte for byte as the SDK sends it
  (:mod:`.openai`), and the answer is converted by ``ChatOpenAI``'s own conversion, from the
  JSON body rather than from the SDK's ``ChatCompletion`` model. Errors are the ones
  ``ChatOpenAI`` raises (its ``_handle_openai_*`` conversions).
- :func:`request_payload` and :func:`message_of_response`: the body ``ChatOpenAI`` would send
  and the message it would make of a response body (offline batch files use both).
- :func:`llm_string` and :data:`LangChainBetaWarning`, from :mod:`.langchain_core` (which
  needs no langchain-openai: the store and the cache keys import them from there).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import openai
import orjson
from langchain_core.globals import get_llm_cache
from langchain_core.language_models.chat_models import _gen_info_and_msg_metadata
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models import base as _openai_base
from pydantic import PrivateAttr

from .langchain_core import LangChainBetaWarning, llm_string
from .openai import chat_body, direct_fields, plain_client, send_chat

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

USED = (
    "_agenerate",
    "_use_responses_api",
    "root_async_client",
    "_handle_openai_bad_request",
    "_handle_openai_api_error",
)
"""Other private names of ``ChatOpenAI`` (and its module) :meth:`ChatOpenAIHooks.adirect`
relies on (contract-tested)."""


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

    # -- ainvoke for a call nobody watches ------------------------------------------------------

    _direct_heads: dict[tuple[int, ...], tuple[list[BaseMessage], list[Any]]] = PrivateAttr(
        default_factory=dict
    )
    """Leading messages (a few-shot head: the same objects for every jet of a draw) as
    ``ChatOpenAI`` converts them, by the messages' identities."""

    direct_agenerate: ClassVar[Any] = None
    """The ``_agenerate`` whose behaviour :meth:`adirect` stands for: a subclass that overrides
    ``_agenerate`` otherwise (or the conversions) gets ``ainvoke`` (``None``: ChatOpenAI's)."""

    def direct_possible(self) -> bool:
        """Whether :meth:`adirect` may answer for ``ainvoke`` with this model's settings: no
        LangChain cache, rate limiter or streaming in play, Chat Completions as ``ChatOpenAI``
        converts them, and no subclass conversion :meth:`adirect` would skip."""
        cls = type(self)
        expected = cls.direct_agenerate or _openai_base.BaseChatOpenAI._agenerate
        return (
            (self.cache is False or (self.cache is None and get_llm_cache() is None))
            and self.rate_limiter is None
            and not self.streaming
            and self.output_version in (None, "v0")
            and self.use_responses_api is not True
            and getattr(cls, "_agenerate", None) is expected
            and cls._create_chat_result is ChatOpenAIHooks._create_chat_result
            and cls._get_request_payload is ChatOpenAIHooks._get_request_payload
            and plain_client(self.root_async_client)
        )

    def direct_transport(self) -> Any:
        """The transport under the async HTTP client, when the model made that client itself
        (:meth:`adirect` then hands it the request, unless the client has hooks since)."""
        return None

    async def adirect(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage | None:
        """The message ``ainvoke(messages, **kwargs)`` gives, for a call no callback handler
        watches; ``None`` when this call must go through ``ainvoke`` (see
        :meth:`direct_possible`, and a payload with fields the SDK would transform).

        The caller checks that no callback handler watches (LangChain's runs, tracing and
        usage callbacks see nothing of this call).
        """
        if not self.direct_possible():
            return None
        payload = self._direct_payload(messages, kwargs)
        if (
            not direct_fields(payload)
            or "response_format" in payload
            or self._use_responses_api(payload)
        ):
            return None
        try:
            response, content = await send_chat(
                self.root_async_client, chat_body(payload), transport=self.direct_transport()
            )
        except openai.BadRequestError as exc:
            _openai_base._handle_openai_bad_request(exc)
            raise  # pragma: no cover - the handler always raises
        except openai.APIError as exc:
            _openai_base._handle_openai_api_error(exc)
            raise  # pragma: no cover
        body = orjson.loads(content)  # not JSON: a ValueError, as ChatOpenAI's
        info: dict[str, Any] = {}
        if self.include_response_headers:
            info["headers"] = dict(response.headers)
        result = self._create_chat_result(body, info)
        generation = result.generations[0] if result.generations else None
        message = None if generation is None else generation.message
        if generation is None or not isinstance(message, AIMessage):
            raise ValueError("the response has no message")
        # As the SDK's ChatCompletionMessage gives it to ChatOpenAI.
        sent = ((body.get("choices") or [{}])[0] or {}).get("message")
        if isinstance(sent, dict):
            message.additional_kwargs.setdefault("refusal", sent.get("refusal"))
        message.id = f"lc_run--{uuid.uuid4()}-0"
        message.response_metadata = {
            **(result.llm_output or {}),
            **_gen_info_and_msg_metadata(generation),
        }
        return message

    def _direct_payload(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        """``self._get_request_payload(messages, **kwargs)``, the leading messages converted
        once while the same message objects come again (ChatOpenAI converts each message
        on its own: the same dicts; the wire contract tests compare the bytes)."""
        if len(messages) < 3:
            return self._get_request_payload(messages, **kwargs)
        head = messages[:-1]
        key = tuple(map(id, head))
        found = self._direct_heads.get(key)
        if found is None or any(a is not b for a, b in zip(found[0], head, strict=True)):
            converted = ChatOpenAI._get_request_payload(self, head, **kwargs)["messages"]
            found = (list(head), converted)
            if len(self._direct_heads) >= 64:
                self._direct_heads.clear()
            self._direct_heads[key] = found
        payload = ChatOpenAI._get_request_payload(self, messages[-1:], **kwargs)
        payload["messages"] = [*found[1], *payload["messages"]]
        return self.adjust_payload(payload)

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
