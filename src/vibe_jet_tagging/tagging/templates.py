"""Prompt templates (data files in ``prompts/``), few-shot example selectors, and the prompt.

A template is a YAML file with a ``name``, ``version``, ``description``, a ``system`` message,
a ``human`` message holding ``{jet}`` (the jet rendered in the template's ``format``), and the
number of few-shot ``shots`` with the ``selector`` that picks them. Templates are LangChain
f-string templates: write a literal brace as ``{{`` or ``}}``.

:class:`JetPrompt` turns a template into LangChain prompt classes: a ``ChatPromptTemplate`` with
the system message, a ``FewShotChatMessagePromptTemplate`` (each example a human turn with the
example jet and an assistant turn with its JSON answer), then the jet to tag.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import typing
from collections.abc import Iterable, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate, FewShotChatMessagePromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import DEFAULT_TEMPLATE, SelectorName
from ..errors import ConfigError, VJTError
from ..jets.formats import JetFormat
from ..jets.jet import OBSERVABLES, Jet

__all__ = [
    "DEFAULT_TEMPLATE",
    "BalancedExampleSelector",
    "Example",
    "JetExampleSelector",
    "JetPrompt",
    "NearestExampleSelector",
    "PromptTemplateSpec",
    "TemplateNotFoundError",
    "list_templates",
    "load_template",
    "template_dirs",
]

logger = logging.getLogger(__name__)


class TemplateNotFoundError(VJTError):
    """No template of that name or path; the message lists the ones there are."""


class PromptTemplateSpec(BaseModel):
    """One template file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    description: str
    system: str
    human: str = Field(description="the message holding the jet; must contain {jet}")
    format: JetFormat = JetFormat()
    shots: int = Field(0, ge=0, description="few-shot examples, half quark, half gluon")
    selector: SelectorName = "balanced"
    path: Path | None = Field(None, exclude=True)

    @cached_property
    def content_hash(self) -> str:
        """Hash of everything that shapes the messages (not the path or description)."""
        content = self.model_dump(mode="json", exclude={"description"})
        blob = json.dumps(content, sort_keys=True).encode()
        return hashlib.blake2b(blob, digest_size=8).hexdigest()

    @classmethod
    def from_file(cls, path: Path) -> PromptTemplateSpec:
        """Read and check a template file; errors name the file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise VJTError(f"{path}: not a readable YAML template: {exc}") from None
        if not isinstance(data, dict):
            raise VJTError(f"{path}: a template is a YAML mapping with name, version, ...")
        data.setdefault("name", path.stem)
        data["version"] = str(data.get("version", ""))
        try:
            spec = cls(**data, path=path)
        except ValidationError as exc:
            raise VJTError(f"{path}: invalid template: {exc}") from None
        try:
            ChatPromptTemplate.from_messages(
                [("system", spec.system), ("human", spec.human)]
            ).format_messages(jet="")
        except (KeyError, ValueError, IndexError) as exc:
            raise VJTError(
                f"{path}: the messages may only use {{jet}} (write literal braces as {{{{ }}}}): "
                f"{exc!r}"
            ) from None
        if "{jet}" not in spec.human:
            raise VJTError(f"{path}: the human message must contain {{jet}}")
        return spec


def template_dirs() -> list[Path]:
    """Where templates are looked up by name: ``$VJT_PROMPTS`` dirs, then the shipped ones."""
    dirs = [Path(p) for p in os.environ.get("VJT_PROMPTS", "").split(os.pathsep) if p]
    package = Path(str(resources.files("vibe_jet_tagging")))
    # Installed wheel: inside the package. Source checkout (editable install): ../../prompts.
    dirs += [package / "templates", package.parents[1] / "prompts"]
    return [d for d in dirs if d.is_dir()]


def _template_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in template_dirs():
        for path in sorted(directory.glob("*.y*ml")):
            found.setdefault(path.stem, path)
    return found


def list_templates() -> list[PromptTemplateSpec]:
    """Every template found by name, sorted by name."""
    return [PromptTemplateSpec.from_file(p) for _, p in sorted(_template_files().items())]


def load_template(name_or_path: str | Path | PromptTemplateSpec) -> PromptTemplateSpec:
    """A template by name (``"few_shot"``) or by path to a YAML file."""
    if isinstance(name_or_path, PromptTemplateSpec):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise TemplateNotFoundError(f"template file {path} does not exist")
        return PromptTemplateSpec.from_file(path)
    files = _template_files()
    if str(name_or_path) not in files:
        known = ", ".join(sorted(files)) or "none found"
        raise TemplateNotFoundError(f"unknown template {str(name_or_path)!r}; known: {known}")
    return PromptTemplateSpec.from_file(files[str(name_or_path)])


# -- few-shot examples ------------------------------------------------------------------------


class Example(BaseModel):
    """A labelled jet shown to the model, with the answer it should give."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    jet: Jet
    label: int = Field(ge=0, le=1, description="1 quark, 0 gluon")

    @property
    def answer(self) -> str:
        """The assistant turn: the true label as the JSON the model is asked for."""
        name = "quark" if self.label else "gluon"
        return json.dumps({"label": name, "quark_probability": float(self.label)})


def _as_examples(pool: Any) -> list[Example]:
    """Examples from a labelled ``JetDataset``, or pairs ``(jet, label)``."""
    if pool is None:
        return []
    labels = getattr(pool, "labels", None)
    if labels is not None and hasattr(pool, "__getitem__"):
        return [Example(jet=pool[i], label=int(labels[i])) for i in range(len(pool))]
    if labels is None and hasattr(pool, "labels"):
        raise VJTError("few-shot examples need labelled jets; this dataset has no labels")
    return [
        e if isinstance(e, Example) else Example(jet=Jet.coerce(e[0]), label=e[1]) for e in pool
    ]


class JetExampleSelector(BaseExampleSelector):
    """A LangChain example selector over labelled jets; never selects the jet being tagged.

    ``select_examples`` takes the prompt's input variables, reads the target :class:`Jet` from
    ``"target"``, and returns example dicts ``{"jet": text, "answer": json}`` rendered with the
    selector's ``format``.
    """

    def __init__(self, pool: Iterable[Example] | Any, k: int, *, format: JetFormat) -> None:
        self.examples = _as_examples(pool)
        self.k = k
        self.format = format
        self._rendered: dict[str, str] = {}
        quarks = sum(e.label for e in self.examples)
        need_q, need_g = (k + 1) // 2, k // 2
        if quarks < need_q + 1 or len(self.examples) - quarks < need_g + 1:
            raise VJTError(
                f"{k} few-shot examples need at least {need_q + 1} quark and {need_g + 1} gluon "
                f"jets in the example pool (one spare in case the target is among them); "
                f"it has {quarks} quark and {len(self.examples) - quarks} gluon"
            )

    def add_example(self, example: dict[str, Any]) -> Any:
        """Add a labelled jet: ``{"jet": Jet or array, "label": 0 or 1}``."""
        self.examples.append(Example(jet=Jet.coerce(example["jet"]), label=example["label"]))
        self.__dict__.pop("fingerprint", None)

    def select(self, target: Jet) -> list[Example]:
        """The examples for ``target`` (never ``target`` itself)."""
        raise NotImplementedError

    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, str]]:
        """LangChain's hook: the examples for ``input_variables["target"]`` as message fields."""
        return [
            {"jet": self._render(e.jet), "answer": e.answer}
            for e in self.select(input_variables["target"])
        ]

    def _render(self, jet: Jet) -> str:
        text = self._rendered.get(jet.key)
        if text is None:
            text = self._rendered[jet.key] = self.format.render(jet)
        return text

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the selector's configuration and pool (part of the cache's settings key)."""
        h = hashlib.blake2b(digest_size=8)
        h.update(f"{type(self).__name__}:{self.k}:{self._config()}".encode())
        for e in self.examples:
            h.update(f"{e.jet.key}:{e.label}".encode())
        return h.hexdigest()

    def _config(self) -> str:
        return ""


class BalancedExampleSelector(JetExampleSelector):
    """``k`` examples, half quark and half gluon (the odd one a quark), drawn once with ``seed``.

    Every jet gets the same examples (which lets vLLM's prefix cache reuse them), except a
    target that is one of them: it is replaced by the next jet of the same label in the draw.
    """

    def __init__(self, pool: Any, k: int, *, format: JetFormat, seed: int = 0) -> None:
        super().__init__(pool, k, format=format)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self._order = {
            label: [
                self.examples[i]
                for i in rng.permutation(len(self.examples))
                if self.examples[i].label == label
            ]
            for label in (1, 0)
        }
        self._draw = self._select("")
        self._drawn = frozenset(e.jet.key for e in self._draw)

    def _config(self) -> str:
        return f"seed={self.seed}"

    def select(self, target: Jet) -> list[Example]:
        if target.key not in self._drawn:  # the draw itself: no scan per jet
            return list(self._draw)
        return self._select(target.key)

    def _select(self, key: str) -> list[Example]:
        chosen: list[Example] = []
        for label, n in ((1, (self.k + 1) // 2), (0, self.k // 2)):
            chosen += itertools.islice((e for e in self._order[label] if e.jet.key != key), n)
        return _interleave(chosen)


def _interleave(examples: list[Example]) -> list[Example]:
    """Quark, gluon, quark, ...: the order of the examples carries no hint."""
    quarks = [e for e in examples if e.label == 1]
    gluons = [e for e in examples if e.label == 0]
    out: list[Example] = []
    for i in range(max(len(quarks), len(gluons))):
        out += quarks[i : i + 1] + gluons[i : i + 1]
    return out


class NearestExampleSelector(JetExampleSelector):
    """The ``k`` labelled jets nearest to the target in standardised observable space.

    Distances use the observables of :func:`jet_observables` except the jet's pt, rapidity
    and azimuth, each scaled to unit variance over the pool; the target is excluded by key.
    The examples differ from jet to jet, so the prompt part every jet shares (what vLLM's
    prefix cache can serve) is only the system message.
    """

    _features = tuple(o for o in OBSERVABLES if o not in ("pt", "rapidity", "phi"))

    def __init__(self, pool: Any, k: int, *, format: JetFormat) -> None:
        super().__init__(pool, k, format=format)
        points = self._points([e.jet for e in self.examples])
        self._mean = points.mean(0)
        self._scale = points.std(0) + 1e-12
        self._pool = (points - self._mean) / self._scale
        self._keys = np.array([e.jet.key for e in self.examples])

    def _points(self, jets: Sequence[Jet]) -> np.ndarray:
        return np.array([[j.observables[o] for o in self._features] for j in jets])

    def select(self, target: Jet) -> list[Example]:
        point = (self._points([target])[0] - self._mean) / self._scale
        distance = ((self._pool - point) ** 2).sum(1)
        distance[self._keys == target.key] = np.inf
        nearest = np.argsort(distance, kind="stable")[: self.k]
        return [self.examples[i] for i in nearest]


# -- the prompt --------------------------------------------------------------------------------


def _check_choices(shots: Any, selector: Any) -> None:
    """One-line errors for a bad ``shots`` or ``selector`` (naming what is allowed)."""
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 0):
        raise ConfigError(f"shots={shots!r}: must be an integer >= 0")
    allowed = typing.get_args(SelectorName)
    if selector is not None and selector not in allowed:
        raise ConfigError(f"selector={selector!r}: must be one of {', '.join(allowed)}")


class JetPrompt:
    """A template made into LangChain prompt classes, for one format and set of examples.

    Args:
        template: a :class:`PromptTemplateSpec`, a template name or a path.
        examples: labelled jets for few-shot examples (a ``JetDataset`` or ``(jet, label)``
            pairs); when the template wants examples and none are given, the bundled sample.
        format: overrides the template's jet format.
        shots: overrides the template's number of examples.
        selector: overrides the template's selector (``"balanced"`` or ``"nearest"``).
        seed: seeds the balanced draw.
    """

    def __init__(
        self,
        template: str | Path | PromptTemplateSpec = DEFAULT_TEMPLATE,
        *,
        examples: Any = None,
        format: JetFormat | None = None,
        shots: int | None = None,
        selector: SelectorName | None = None,
        seed: int = 0,
    ) -> None:
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
