"""Few-shot examples: labelled jets, and the selectors that pick a jet's examples.

:class:`BalancedExampleSelector` draws a seeded balanced set (as many quark as gluon jets),
the same for every jet; :class:`NearestExampleSelector` picks the labelled jets nearest the
jet in observable space. A jet is never its own example (selectors leave out its key).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from langchain_core.example_selectors import BaseExampleSelector
from pydantic import BaseModel, ConfigDict, Field

from ..errors import VJTError
from ..jets.formats import JetFormat
from ..jets.jet import OBSERVABLES, Jet

__all__ = ["BalancedExampleSelector", "Example", "JetExampleSelector", "NearestExampleSelector"]


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
    if labels is not None and hasattr(pool, "jets_or_errors"):
        # A data set: its jets read a block at a time (the same jets as one by one, ~7x
        # less CPU), each label checked once here rather than by pydantic per example.
        values = np.asarray(labels).tolist()
        if not set(values) <= {0, 1}:
            raise VJTError("few-shot examples need labels 0 (gluon) or 1 (quark)")
        out = []
        for jet, label in zip(pool.jets_or_errors(), values, strict=True):
            if isinstance(jet, ValueError):
                raise jet
            out.append(Example.model_construct(jet=jet, label=int(label)))
        return out
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
