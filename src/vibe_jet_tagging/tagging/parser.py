""":class:`JetLabelParser`: the package's answer reading as a LangChain output parser.

>>> parser = JetLabelParser()                                           # doctest: +SKIP
>>> chain = prompt | parser.constrain(ChatVLLM(...)) | parser           # doctest: +SKIP
>>> chain.invoke(jet)                                                   # doctest: +SKIP
ParsedLabel(label='gluon', quark_probability=0.23, step='schema')

**The rule.** The label is the answer's last decision, if nothing after it takes it back. A
decision is a JSON object (validated against :class:`~.parsing.JetLabel`: label and
probability must agree; the label is case-insensitive, and 1/0 with ``digit_labels``), an
explicit prose decision ("Final answer: quark", "final: 1", "so the answer is 0", "it is a
gluon jet"), or a lone label or 0/1 as a whole line (which does not override an earlier
decision of the other class). Anything after the decision that doubts, retracts or corrects
it ("not sure", "may well be", "scratch that", "that is incorrect", a question), negates it,
or names the other class voids it: no label, unless a later explicit decision gives its own.
Reasoning before the decision is never read for a label; quoted examples (in quotation marks,
or after "e.g.", "for example", "format"...) decide nothing. A probability stated with a
prose decision ("P(quark) = 0.73") must agree with it. A message cut at ``max_tokens``
(``finish_reason == "length"``) gives no label either. See :mod:`.parsing.reader`.

Errors are :class:`~vibe_jet_tagging.tagging.parsing.LabelParseError`, which is both this
package's :class:`~vibe_jet_tagging.errors.VJTError` and LangChain's ``OutputParserException``,
so ``RetryWithErrorOutputParser``, ``OutputFixingParser`` and ``with_fallbacks`` treat it as a
parse failure; its ``reask`` holds the error to show the model when asking again.

:meth:`JetLabelParser.constrain` binds a chat model to the constraint :class:`~.JetTagger`
sends (vLLM's compact-JSON regex, or the :class:`~.parsing.JetLabel` JSON schema as
``response_format``), so a chain built from the package's parts gets a JSON answer, with its
probability, as the tagger does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import BaseOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, PrivateAttr, SecretStr

if TYPE_CHECKING:
    from ..servers.info import ServerInfo

from .parsing import (
    COMPACT_LABEL_REGEX,
    ParsedLabel,
    format_instructions,
    label_response_format,
    read_label,
)

__all__ = ["ConstrainedChatModel", "JetLabelParser", "constraint_for", "label_constraint"]


def label_constraint(model: BaseChatModel) -> dict[str, Any]:
    """The call options that constrain ``model``'s answer to a :class:`~.parsing.JetLabel`.

    What :class:`~.JetTagger` sends: for an OpenAI-compatible client (``ChatVLLM``,
    ``ChatOpenAI``), the server is asked once what it is (``/v1/models``, ``/version``); a
    vLLM >= 0.10.2 (or the emulated server) gets the compact-JSON regex as
    ``structured_outputs`` (a JSON schema's grammar lets a small model fill ``max_tokens``
    with whitespace), any other server the JSON schema as ``response_format``, both in the
    request body beside the model's own ``extra_body``. Any other chat model gets
    ``response_format``. Raises :class:`~vibe_jet_tagging.errors.ServerError` when the
    server cannot be reached.
    """
    from langchain_openai.chat_models.base import BaseChatOpenAI

    if not isinstance(model, BaseChatOpenAI):
        return constraint_for(model, None)
    from ..servers.info import fetch_pool_info
    from .model import DEFAULT_BASE_URL

    pool = getattr(model, "endpoint_pool", None)
    urls = pool.base_urls if pool is not None else [model.openai_api_base or DEFAULT_BASE_URL]
    key = model.openai_api_key
    secret = key.get_secret_value() if isinstance(key, SecretStr) else None
    return constraint_for(model, fetch_pool_info(urls, secret, model.model_name))


def constraint_for(model: BaseChatModel, info: ServerInfo | None) -> dict[str, Any]:
    """The call options that constrain ``model``'s answer, the server being ``info``.

    One decision for the tagger (:class:`~.client.RequestClient`) and for chains
    (:func:`label_constraint`): vLLM >= 0.10.2 or the emulated server get the compact-JSON
    regex as ``structured_outputs``, any other server of an OpenAI-compatible client the JSON
    schema as ``response_format``, both in the body beside the model's ``extra_body``; a chat
    model that is no such client gets ``response_format`` as a call option.
    """
    from langchain_openai.chat_models.base import BaseChatOpenAI

    if not isinstance(model, BaseChatOpenAI):
        return {"response_format": label_response_format()}
    if info is not None and info.structured_outputs:
        # Not beside response_format: vLLM would count two constraints.
        constraint: dict[str, Any] = {"structured_outputs": {"regex": COMPACT_LABEL_REGEX}}
    else:
        constraint = {"response_format": label_response_format()}
    return {"extra_body": {**(model.extra_body or {}), **constraint}}


class ConstrainedChatModel(RunnableSerializable[LanguageModelInput, BaseMessage]):
    """A chat model whose answers are constrained to a :class:`~.parsing.JetLabel`.

    Made by :meth:`JetLabelParser.constrain`. The constraint (:func:`label_constraint`) is
    chosen at the first call, which asks the server once, as the tagger does; every call
    then runs ``model.bind(**constraint)``, so tracing, streaming, batching and caches see
    the model itself.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: BaseChatModel
    _bound: Runnable[LanguageModelInput, BaseMessage] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def bound(self) -> Runnable[LanguageModelInput, BaseMessage]:
        """The model bound to its constraint (chosen once, asking the server)."""
        bound = self._bound
        if bound is None:
            with self._lock:
                bound = self._bound
                if bound is None:
                    bound = self._bound = self.model.bind(**label_constraint(self.model))
        return bound

    async def _abound(self) -> Runnable[LanguageModelInput, BaseMessage]:
        bound = self._bound
        return bound if bound is not None else await asyncio.to_thread(self.bound)

    @property
    def InputType(self) -> Any:
        return self.model.InputType

    @property
    def OutputType(self) -> Any:
        return self.model.OutputType

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return self.model.get_name(suffix, name=name)

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        return self.bound().invoke(input, config, **kwargs)

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        return await (await self._abound()).ainvoke(input, config, **kwargs)

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        return self.bound().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        bound = await self._abound()
        return await bound.abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[BaseMessage]:
        yield from self.bound().stream(input, config, **kwargs)

    async def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseMessage]:
        async for chunk in (await self._abound()).astream(input, config, **kwargs):
            yield chunk

    def __repr__(self) -> str:
        return f"ConstrainedChatModel(model={self.model!r})"


def _finish_reason(generation: Generation) -> str | None:
    """The finish reason a generation carries: the message's metadata, else generation_info."""
    if isinstance(generation, ChatGeneration):
        finish = (generation.message.response_metadata or {}).get("finish_reason")
        if finish is not None:
            return str(finish)
    finish = (generation.generation_info or {}).get("finish_reason")
    return None if finish is None else str(finish)


class JetLabelParser(BaseOutputParser[ParsedLabel]):
    """Parse a chat model's answer into a :class:`~vibe_jet_tagging.tagging.parsing.ParsedLabel`.

    Reads the answer by the rule of the module doc. Raises
    :class:`~vibe_jet_tagging.tagging.parsing.LabelParseError` (an ``OutputParserException``)
    when the answer states no label, contradicts itself (``ContradictionError``) or was cut
    at ``max_tokens`` (``TruncatedAnswerError``). Reads at most the answer's last
    :data:`~.parsing.TAIL_CHARS` characters, so it is cheap on any answer and
    parses on the calling thread (also in ``ainvoke``).

    Args:
        digit_labels: read a JSON label of 1 or 0 as quark or gluon (for a template that
            asks for digits); otherwise such an answer is re-asked.
    """

    digit_labels: bool = False

    def parse(self, text: str) -> ParsedLabel:
        """The label in ``text`` (no finish reason is known for a bare string)."""
        return read_label(text, digit_labels=self.digit_labels)

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> ParsedLabel:
        """The label in the first generation, a truncated one (finish 'length') refused."""
        generation = result[0]
        return read_label(
            generation.text, _finish_reason(generation), digit_labels=self.digit_labels
        )

    async def aparse_result(
        self, result: list[Generation], *, partial: bool = False
    ) -> ParsedLabel:
        # Bounded work (the answer's tail): no executor hop.
        return self.parse_result(result, partial=partial)

    def read_message(self, message: BaseMessage) -> ParsedLabel:
        """The label in a chat message, with its finish reason (no Runnable machinery)."""
        finish = (message.response_metadata or {}).get("finish_reason")
        return read_label(
            message.text, None if finish is None else str(finish), digit_labels=self.digit_labels
        )

    def get_format_instructions(self) -> str:
        """How to answer: one JSON object following the ``JetLabel`` schema."""
        return format_instructions()

    @staticmethod
    def constrain(model: BaseChatModel) -> ConstrainedChatModel:
        """``model``, its answers constrained as :class:`~.JetTagger` constrains them.

        ``prompt | parser.constrain(ChatVLLM(...)) | parser`` then gives what the tagger
        gives: a JSON answer with its probability (see :func:`label_constraint`).
        """
        return ConstrainedChatModel(model=model)

    @property
    def _type(self) -> str:
        return "jet_label"

    def __repr__(self) -> str:
        args = [f"name={self.name!r}"] if self.name is not None else []
        args += ["digit_labels=True"] if self.digit_labels else []
        return f"JetLabelParser({', '.join(args)})"
