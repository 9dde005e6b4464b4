"""``JetPromptTemplate``: the jet prompt as a LangChain chat prompt template.

It takes a jet (a :class:`~vibe_jet_tagging.jets.Jet`, an ``(n, 4)`` array, or ``{"jet": ...}``)
and gives the chat messages of a template from ``prompts/``: the system message, the few-shot
examples its selector picks for that jet (never the jet itself), then the jet. It composes with
any chat model and parser::

    prompt = JetPromptTemplate("few_shot")
    chain = prompt | ChatVLLM(reasoning_effort="low") | StrOutputParser() | parse_label
    chain.invoke(jet)                # or prompt | ChatOpenAI(...), prompt | ChatAnthropic(...)

It formats through :class:`~.templates.JetPrompt`, which renders the few-shot head
(system message and examples) once per set of examples: every jet of a balanced draw shares it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts.chat import BaseChatPromptTemplate
from pydantic import ConfigDict, Field

from ..config import DEFAULT_TEMPLATE, SelectorName
from ..jets.formats import JetFormat
from ..jets.jet import Jet
from .templates import Example, JetPrompt, PromptTemplateSpec

__all__ = ["JetPromptTemplate"]


class JetPromptTemplate(BaseChatPromptTemplate):
    """A template from ``prompts/`` as a LangChain chat prompt template; input: one jet.

    Args:
        template: a template name (``"few_shot"``), a path to a YAML file, or a
            :class:`~vibe_jet_tagging.tagging.templates.PromptTemplateSpec`.
        examples: labelled jets for the few-shot examples (a ``JetDataset`` or
            ``(jet, label)`` pairs); default: the bundled sample.
        format, shots, selector: override the template's jet format, number of examples and
            example selector (``"balanced"`` or ``"nearest"``).
        seed: seeds the balanced draw of examples.
        jet_prompt: an existing :class:`~.templates.JetPrompt` to wrap instead.

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
        examples: Any = None,
        format: JetFormat | None = None,
        shots: int | None = None,
        selector: SelectorName | None = None,
        seed: int = 0,
        jet_prompt: JetPrompt | None = None,
        **kwargs: Any,
    ) -> None:
        if jet_prompt is None:
            jet_prompt = JetPrompt(
                template, examples=examples, format=format, shots=shots, selector=selector,
                seed=seed,
            )  # fmt: skip
        kwargs.setdefault("input_variables", ["jet"])
        kwargs.setdefault("input_types", {"jet": Any})
        super().__init__(jet_prompt=jet_prompt, **kwargs)  # type: ignore[call-arg]  # our field

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
