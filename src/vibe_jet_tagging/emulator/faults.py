"""Injected faults: which request gets one, and what it does to an answer.

Each valid chat request takes the next number of a per-server counter; the fault is decided by
one uniform draw from ``random.Random(f"{seed}:{number}")`` against the stacked rates of
:class:`~vibe_jet_tagging.emulator.config.FaultRates`. So N requests get exactly the same number
of faults of each kind for a given seed, whatever order they arrive in, and a retry (a new
request, a new number) can succeed where the first attempt failed.

Answer faults (:func:`corrupt`) rewrite the answer and set what it states
(``Completion.stated``), so a test can check that a client labels a jet only with what the
server stated:

- ``malformed_json``, ``truncation``: broken or cut JSON (states nothing);
- ``contradiction``: valid JSON whose label disagrees with its quark probability (nothing);
- ``wrong_type``: JSON with wrong types (``"quark_probability": "high"``, the label a number);
- ``non_answer``: prose that hedges, refuses, names both classes or holds stray digits ("I am
  not sure whether this is a quark or a gluon jet.", "Step 1", "Feature: SkipQA #1");
- ``digit_field``: JSON or prose whose only 0/1 is in a field's name or another field;
- ``distracted_answer``: prose that states a label (drawn at random, not the heuristic's)
  among distractors: doubts before the decision, both classes named, digits in the text.
"""

from __future__ import annotations

import json
import random

from .config import FAULT_KINDS, FaultRates
from .model import Completion
from .tokens import split_tokens

__all__ = ["ANSWER_FAULTS", "corrupt", "decide_fault", "malform", "malformed_body", "truncate"]


def decide_fault(rates: FaultRates, seed: int, number: int) -> str | None:
    """The fault of request ``number`` (None for no fault)."""
    if rates.total <= 0:
        return None
    u = random.Random(f"{seed}:{number}").random()
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += getattr(rates, kind)
        if u < edge:
            return kind
    return None


def _replace(completion: Completion, text: str, stated: str | None) -> None:
    completion.content = split_tokens(text)
    completion.decisions = {}
    completion.stated = stated


def malform(completion: Completion) -> None:
    """Replace the answer by broken JSON: cut before the last value, or not JSON at all."""
    text = completion.content_text
    start = text.find("{")
    if start >= 0 and "}" in text[start:]:
        body = text[start : text.rindex("}") + 1]
    elif completion.label is not None:
        body = f'{{"label": "{completion.label}", "quark_probability": 0.5}}'
    else:
        body = '{"label": "'
    if completion.rng.random() < 0.5 and ": " in body:
        broken = body[: body.rindex(": ") + 2]  # {"label": "quark", "quark_probability":
    else:
        broken = body.replace('"', "'")[:-1] + ",}"  # {'label': 'quark', ...,}
    _replace(completion, broken, None)


def truncate(completion: Completion) -> None:
    """Cut the answer to about half its tokens (the server then reports finish 'length')."""
    keep = len(completion.content) // 2
    completion.content = completion.content[:keep]
    completion.decisions = {i: t for i, t in completion.decisions.items() if i < keep}
    completion.stated = None


def _facts(completion: Completion) -> tuple[str, str, float]:
    """(label, other label, quark probability) of the completion, or a made-up jet's."""
    label = completion.label or completion.rng.choice(["quark", "gluon"])
    other = "gluon" if label == "quark" else "quark"
    p = completion.quark_probability
    if p is None:
        p = 0.7 if label == "quark" else 0.3
    return label, other, round(p, 2)


def contradict(completion: Completion) -> None:
    """Valid JSON whose label disagrees with its probability (quark needs p >= 0.5)."""
    label, other, p = _facts(completion)
    if completion.rng.random() < 0.3:
        p = 1.0 if label == "quark" else 0.0  # {"label": "gluon", "quark_probability": 1.0}
    _replace(completion, json.dumps({"label": other, "quark_probability": p}), None)


def wrong_type(completion: Completion) -> None:
    """JSON with the right names and wrong types."""
    label, _, p = _facts(completion)
    digit = int(label == "quark")
    body = completion.rng.choice(
        [
            {"label": label, "quark_probability": "high" if digit else "low"},
            {"label": digit, "quark_probability": p},
            {"label": label, "quark_probability": [p]},
            {"label": label == "quark", "quark_probability": p},
            {"label": label, "quark_probability": None},
            {"label": [label], "quark_probability": p},
        ]
    )
    _replace(completion, json.dumps(body), None)


_NON_ANSWERS = [
    "I am not sure whether this is a quark or a gluon jet.",
    "Neither quark nor gluon; could be 1 of many.",
    "I cannot decide between 0 and 1.",
    "Step 1",
    "#1",
    "Feature: SkipQA #1",
    "It could be a {label} jet, or a {other} jet.",
    "Maybe {label}.",
    "Perhaps a {label}, perhaps a {other}: the evidence is mixed.",
    "Quark or gluon? Hard to say with {m} constituents.",
    "I'm sorry, but I can't classify this jet.",
    "The answer is {label} or {other}.",
    "Final answer: 0/1",
    "If I had to guess, {label}.",
    "It is not a {label} jet.",
    "The jet has {m} constituents. Step 1: count them. Step 2: compare. 1 of 2 checks passed.",
    "Answer: {label}. But I might be wrong; it could be a {other}.",
    "Options:\n1. quark\n2. gluon",
    "It's a toss-up between {label} and {other}.",
]


def non_answer(completion: Completion) -> None:
    """Prose that states no decision: hedges, refusals, both classes, stray digits."""
    label, other, _ = _facts(completion)
    m = completion.rng.randint(20, 70)
    text = completion.rng.choice(_NON_ANSWERS).format(label=label, other=other, m=m)
    _replace(completion, text, None)


def digit_field(completion: Completion) -> None:
    """An answer whose only 0/1 sits in a field's name or in another field."""
    label, _, p = _facts(completion)
    rng = completion.rng
    text = rng.choice(
        [
            json.dumps({"label": label, "quark_probability": p, "confidence": 1}),
            json.dumps({"class_1": p, "class_0": round(1 - p, 2)}),
            json.dumps({"p1": p, "label_1": "see p1"}),
            f"class_1 score: {p}; class_0 score: {round(1 - p, 2)}",
            f"Feature_1 (multiplicity) = {rng.randint(20, 70)}; feature_0 (girth) = {p}",
            "Output layer: node_1 = high, node_0 = low",
        ]
    )
    _replace(completion, text, None)


_DISTRACTED = [
    "I'm not sure at first: a {other} is possible. Counting again, {m} constituents.\n"
    "Final answer: {digit}",
    "Not a {other} jet: it is a {label} jet.",
    "Step 1: count the constituents ({m}). Step 2: compare with typical values.\nAnswer: {label}",
    "Quark or gluon? The width settles it.\n**{Label}**",
    "{Other} jets usually have more particles than {m}, or fewer.\nFinal answer - **{label}**",
    "With 0 or 1 hard prongs both hypotheses fit, but the answer is {digit}.",
    "The {other} hypothesis is weaker. Therefore {label}.",
    "Not sure yet. Looking at the girth too, I'd say {digit}",
]


def distracted_answer(completion: Completion) -> None:
    """Prose that states a label (drawn at random) among distractors."""
    rng = completion.rng
    label = rng.choice(["quark", "gluon"])
    other = "gluon" if label == "quark" else "quark"
    text = rng.choice(_DISTRACTED).format(
        label=label,
        other=other,
        Label=label.capitalize(),
        Other=other.capitalize(),
        digit=int(label == "quark"),
        m=rng.randint(20, 70),
    )
    _replace(completion, text, label)


ANSWER_FAULTS = {
    "malformed_json": malform,
    "truncation": truncate,
    "contradiction": contradict,
    "wrong_type": wrong_type,
    "non_answer": non_answer,
    "digit_field": digit_field,
    "distracted_answer": distracted_answer,
}
"""Faults that rewrite the answer (the others act on the HTTP exchange)."""


def corrupt(completion: Completion, fault: str | None) -> str:
    """Apply an answer fault (if ``fault`` is one); return the finish reason to report."""
    rewrite = ANSWER_FAULTS.get(fault or "")
    if rewrite is not None:
        rewrite(completion)
    return "length" if fault == "truncation" else "stop"


_MALFORMED_BODIES = (
    ("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    ('{"id": "chatcmpl-1", "object": "chat.comp', "application/json"),
    ('{"object": "error", "message": "overloaded", "code": 503}', "application/json"),
    ('{"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "choices": []}',
     "application/json"),
)  # fmt: skip


def malformed_body(number: int) -> tuple[str, str]:
    """The body and content type of a ``malformed_body`` fault: HTTP 200 but no chat
    completion (an HTML page, JSON cut short, an error object, no choices), by turns."""
    return _MALFORMED_BODIES[number % len(_MALFORMED_BODIES)]
