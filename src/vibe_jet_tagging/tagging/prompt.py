"""The jet prompt: :class:`JetPromptTemplate`, a LangChain chat prompt template, and the
renderer under it, :class:`JetPrompt`.

It takes a jet (a :class:`~vibe_jet_tagging.jets.Jet`, an ``(n, 4)`` array, or ``{"jet": ...}``)
and gives the chat messages of a template from ``prompts/``: the system message, the few-shot
examples its selector picks for that jet (never the jet itself), then the jet. It composes with
any chat model and parser::

    prompt = JetPromptTemplate("few_shot")
    chain = prompt | ChatVLLM(reasoning_effort="low") | StrOutputParser() | parse_label
    chain.invoke(jet)                # or prompt | ChatOpenAI(...), prompt | ChatAnthropic(...)

It formats through :class:`JetPrompt`, which renders the few-shot head (system message and
examples) once per set of examples: every jet of a balanced draw shares it. Two classes for one
concept, for a reason: LangChain's prompt templates are pydantic models whose every call runs
the Runnable machinery, which costs more than formatting a jet; the tagger formats through the
plain renderer, and chains see the template. Their options are declared once
(:class:`PromptOptions`).
"""

from __future__ import annotations

import hashlib
import logging
import typing
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate, FewShotChatMessagePromptTemplate
from langchain_core.prompts.chat import BaseChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict, Field
from typing_extensions import TypedDict, Unpack

from ..config import DEFAULT_TEMPLATE, SelectorName
from ..errors import ConfigError
from ..jets.formats import JetFormat
from ..jets.jet import Jet
from .examples import (
    BalancedExampleSelector,
    Example,
    JetExampleSelector,
    NearestExampleSelector,
)
from .templates import PromptTemplateSpec, load_template

__all__ = ["JetPrompt", "JetPromptTemplate", "PromptOptions"]

logger = logging.getLogger(__name__)


class PromptOptions(TypedDict, total=False):
    """What shapes a jet prompt beside its template (declared once, for both classes)."""

    examples: Any
    """Labelled jets for the few-shot examples (a ``JetDataset`` or ``(jet, label)`` pairs);
    when the template wants examples and none are given, the bundled sample."""
    format: JetFormat | None
    """Overrides the template's jet format."""
    shots: int | None
    """Overrides the template's number of examples."""
    selector: SelectorName | None
    """Overrides the template's example selector (``"balanced"`` or ``"nearest"``)."""
    seed: int | None
    """Seeds the balanced draw of examples."""


def _check_choices(shots: Any, selector: Any) -> None:
    """One-line errors for a bad ``shots`` or ``selector`` (naming what is allowed)."""
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 0):
        raise ConfigError(f"shots={shots!r}: must be an integer >= 0")
    allowed = typing.get_args(SelectorName)
    if selector is not None and selector not in allowed:
        raise ConfigError(f"selector={selector!r}: must be one of {', '.join(allowed)}")


class JetPrompt:
    """The renderer under :class:`JetPromptTemplate`: a template made into LangChain prompt
    classes, for one format and set of examples.

    ``JetPrompt(template, **options)``: ``template`` a :class:`PromptTemplateSpec`, a
    template name or a path; ``options`` as :class:`PromptOptions`. Not a LangChain class:
    the tagger's fast path formats through it (the few-shot head once per set of examples),
    and :class:`JetPromptTemplate` wraps it for chains. Use that one in your own code.
    """

    def __init__(
        self,
        template: str | Path | PromptTemplateSpec = DEFAULT_TEMPLATE,
        **options: Unpack[PromptOptions],
    ) -> None:
        unknown = sorted(set(options) - set(PromptOptions.__annotations__))
        if unknown:
            raise TypeError(f"unexpected prompt option(s) {', '.join(unknown)}")
        examples, format = options.get("examples"), options.get("format")
        shots, selector = options.get("shots"), options.get("selector")
        seed = options.get("seed") or 0
        _check_choices(shots, selector)
        self.template = load_template(template)
        self.format = format or self.template.format
        self.shots = self.template.shots if shots is None else shots
        kind = selector or self.template.selector
        self.selector: JetExampleSelector | None = None
        if self.shots > 0:
            if examples is None:
                from ..jets.dataset import load_sample

                logger.info("few-shot examples drawn from the bundled sample")
                examples = load_sample()
            if kind == "nearest":
                self.selector = NearestExampleSelector(examples, self.shots, format=self.format)
            else:
                self.selector = BalancedExampleSelector(
                    examples, self.shots, format=self.format, seed=seed
                )
        messages: list[Any] = [("system", self.template.system)]
        if self.selector is not None:
            example_prompt = ChatPromptTemplate.from_messages(
                [("human", self.template.human), ("ai", "{answer}")]
            )
            messages.append(
                FewShotChatMessagePromptTemplate(
                    example_selector=self.selector,
                    example_prompt=example_prompt,
                    input_variables=["jet", "target"],
                )
            )
        jet_message = ("human", self.template.human)
        self.chat_template = ChatPromptTemplate.from_messages([*messages, jet_message])
        # The same messages in two parts for :meth:`messages`: the head (system and examples)
        # is the same for every jet with the same examples, so it is formatted once per set.
        self._head_template = ChatPromptTemplate.from_messages(messages)
        self._jet_template = ChatPromptTemplate.from_messages([jet_message])
        self._heads: dict[tuple[str, ...], list[BaseMessage]] = {}

    def inputs(self, jet: Jet) -> dict[str, Any]:
        """The prompt's input variables for ``jet``."""
        return {"jet": self.format.render(jet), "target": jet}

    def messages(self, jet: Jet, examples: Sequence[Example] | None = None) -> list[BaseMessage]:
        """The chat messages for ``jet``: system, few-shot turns, then the jet.

        Equal to ``chat_template.format_messages(**inputs(jet))``, with the head formatted
        once per set of examples (every jet of a balanced draw shares it). ``examples``:
        what :meth:`examples_for` gave for ``jet``, when the caller has it already.
        """
        inputs = self.inputs(jet)
        if examples is None:
            examples = self.examples_for(jet)
        keys = tuple(e.jet.key for e in examples)
        head = self._heads.get(keys)
        if head is None:
            head = self._head_template.format_messages(**inputs)
            if len(self._heads) < _HEADS_KEPT:
                self._heads[keys] = head
        return [*head, *self._jet_template.format_messages(jet=inputs["jet"])]

    def examples_for(self, jet: Jet) -> list[Example]:
        """The few-shot examples ``jet`` gets (empty for a zero-shot template)."""
        return [] if self.selector is None else self.selector.select(jet)

    def as_runnable(self) -> Runnable[Jet, Any]:
        """``Jet -> ChatPromptValue`` as a LangChain Runnable (steps ``format_jet`` | prompt)."""
        return RunnableLambda(self.inputs, name="format_jet") | self.chat_template

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the template content, format, shots and selector (with its pool)."""
        parts = [
            self.template.name,
            self.template.version,
            self.template.content_hash,
            self.format.model_dump_json(),
            str(self.shots),
            self.selector.fingerprint if self.selector else "-",
            # Catches changes in the rendering code itself.
            self.format.render(_REFERENCE_JET),
        ]
        return hashlib.blake2b("\n".join(parts).encode(), digest_size=8).hexdigest()


_HEADS_KEPT = 64  # example sets whose formatted head is kept (a balanced draw needs a few)

_REFERENCE_JET = Jet.from_array(
    [[210.0, 0.31, 1.22, 211], [95.5, 0.33, 1.18, 22], [12.25, 0.2, 1.4, -321]]
)


class JetPromptTemplate(BaseChatPromptTemplate):
    """A template from ``prompts/`` as a LangChain chat prompt template; input: one jet.

    ``JetPromptTemplate(template, **options)``: ``template`` a template name
    (``"few_shot"``), a path to a YAML file, or a
    :class:`~vibe_jet_tagging.tagging.templates.PromptTemplateSpec`; ``options`` as
    :class:`PromptOptions` (examples, format, shots, selector, seed); or ``jet_prompt``, an
    existing :class:`JetPrompt` to wrap instead.

    The single input variable is ``jet``; ``invoke(jet)`` and ``invoke({"jet": jet})`` both
    work and return a ``ChatPromptValue``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    jet_prompt: JetPrompt = Field(exclude=True)
    """The formatting underneath (template, format, example selector)."""

    def __init__(
        self,
        template: str | Path | PromptTemplateSpec = DEFAULT_TEMPLATE,
        *,
        jet_prompt: JetPrompt | None = None,
        **options: Unpack[PromptOptions],
    ) -> None:
        if jet_prompt is None:
            jet_prompt = JetPrompt(template, **options)
        elif any(value is not None for value in options.values()):
            raise ConfigError(f"{', '.join(options)}: set these on the JetPrompt passed in")
        super().__init__(  # type: ignore[call-arg]  # jet_prompt: our field
            jet_prompt=jet_prompt, input_variables=["jet"], input_types={"jet": Any}
        )

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Not serializable: it holds jets (the example pool)."""
        return False

    @property
    def _prompt_type(self) -> str:
        return "vibe-jet-tagging-jet"

    @property
    def spec(self) -> PromptTemplateSpec:
        """The template file's content (name, version, messages, format, shots, selector)."""
        return self.jet_prompt.template

    @property
    def fingerprint(self) -> str:
        """Hash of everything that shapes the messages (part of the result cache's key)."""
        return self.jet_prompt.fingerprint

    def messages(self, jet: Jet) -> list[BaseMessage]:
        """The chat messages for ``jet``: system, few-shot turns, then the jet."""
        return self.jet_prompt.messages(jet)

    def examples_for(self, jet: Jet) -> list[Example]:
        """The few-shot examples ``jet`` gets (empty for a zero-shot template)."""
        return self.jet_prompt.examples_for(jet)

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        """The messages for ``kwargs["jet"]`` (a ``Jet``, an array, or a mapping with ``jet``)."""
        return self.jet_prompt.messages(Jet.coerce(kwargs["jet"]))

    def pretty_repr(self, html: bool = False) -> str:
        """The template's messages, the jet and the examples shown as placeholders."""
        spec, shots = self.spec, self.jet_prompt.shots
        parts = [f"System: {spec.system}"]
        if shots:
            kind = self.jet_prompt.selector.__class__.__name__ if self.jet_prompt.selector else ""
            parts.append(f"[{shots} few-shot examples ({kind}): Human: <jet> / AI: <answer>]")
        parts.append(f"Human: {spec.human}")
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        p = self.jet_prompt
        return (
            f"JetPromptTemplate(template={p.template.name!r}, shots={p.shots}, "
            f"format={p.format.name!r})"
        )
