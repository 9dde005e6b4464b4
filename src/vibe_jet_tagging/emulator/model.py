"""The emulated "model": a physics heuristic dressed up as a reasoning model's output.

**This is not a language model.** It reads the jet back out of the last user message
(:func:`~vibe_jet_tagging.emulator.reading.read_jet`), computes a quark probability from two
observables, and writes text that looks like gpt-oss output around that number:

- quark probability = logistic(logit), with
  ``logit = -(W_MULT * (m - 43.5) / 14.6 + W_GIRTH * (g - 0.053) / 0.04) + noise * N(0, 1)``
  (``W_MULT = 1.4``, ``W_GIRTH = 0.2``): ``m`` the multiplicity, ``g`` the girth (width),
  centred between the quark and gluon means of STACK_NOTES (multiplicity 33 vs 54, girth 0.039
  vs 0.067) and scaled by their spreads; the weights come from a logistic regression on the
  bundled Pythia sample. The seeded Gaussian noise (``EmulatorConfig.noise``, default 0.5)
  puts the AUC on real jets somewhat below the multiplicity's 0.84 (about 0.83). The label is
  quark when the probability is at least 0.5.
- reasoning text that mentions the multiplicity, the width, the typical quark and gluon values
  and hedges, padded with more such sentences to the effort's length (about 120, 370 and 2,000
  tokens for low, medium and high, +-20 % seeded spread).
- an answer in one of several free-text styles, or JSON for ``response_format``.
- no jet in the message: a refusal without a label, so a client sees a parse failure.

Each completion records the label its answer *states* (``Completion.stated``; ``None`` for a
refusal, and after an answer fault of :mod:`~vibe_jet_tagging.emulator.faults` that leaves no
decision): what a correct parser reads from it, and nothing else.

Everything is seeded by (emulator seed, request seed, messages): the same request always gets
the same answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from .reading import JetReading, read_jet
from .schema import Decisive, answer_for_schema, dump_json
from .tokens import split_tokens

__all__ = [
    "ANSWER_STYLES",
    "AnswerRecord",
    "Completion",
    "generate",
    "jet_to_tag",
    "last_user_text",
    "quark_logit",
]

# Quark and gluon means (STACK_NOTES, 500-550 GeV anti-kT R=0.4 Pythia jets).
QUARK_MULT, GLUON_MULT = 33.4, 53.6
QUARK_GIRTH, GLUON_GIRTH = 0.039, 0.067
MULT_SCALE, GIRTH_SCALE = 14.6, 0.04
# Fitted on the bundled Pythia sample: a logistic regression on the multiplicity alone gives
# 1.38; the girth adds almost nothing on top of it (it is correlated with the multiplicity), so
# it keeps a small weight of the physical sign.
W_MULT, W_GIRTH = 1.4, 0.2

ANSWER_STYLES: tuple[str, ...] = ("final_answer", "bold", "json_fence", "so_answer", "hedged")
"""Free-text answer styles (no ``response_format``), picked by the seeded RNG."""


def quark_logit(multiplicity: float, girth: float | None) -> float:
    """Noise-free logit of the quark probability (see the module doc)."""
    z_mult = (multiplicity - (QUARK_MULT + GLUON_MULT) / 2) / MULT_SCALE
    z_girth = 0.0 if girth is None else (girth - (QUARK_GIRTH + GLUON_GIRTH) / 2) / GIRTH_SCALE
    return -(W_MULT * z_mult + W_GIRTH * z_girth)


@dataclass
class Completion:
    """One generated completion, as token pieces (before any max_tokens cut)."""

    reasoning: list[str]
    content: list[str]
    decisions: dict[int, str] = field(default_factory=dict)
    """Content token index -> the token the other label would have produced there."""
    chosen_probability: float = 1.0
    """Probability of the chosen label (>= 0.5): the logprob of the decision tokens."""
    label: str | None = None
    quark_probability: float | None = None
    style: str = "refusal"
    rng: random.Random = field(default_factory=random.Random, repr=False)
    stated: str | None = None
    """The label the answer states ("quark"/"gluon"), or None when it states none."""

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def content_text(self) -> str:
        return "".join(self.content)


@dataclass(frozen=True)
class AnswerRecord:
    """What the server sent for one completion: the answer and the label it states.

    ``stated`` is None when the answer states no label (a refusal, a non-answer, JSON that
    fails the schema or contradicts itself, a cut answer: ``finish`` "length").
    """

    content: str
    stated: str | None
    fault: str | None
    finish: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "stated": self.stated,
            "fault": self.fault,
            "finish": self.finish,
        }


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message (content parts of type text joined)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


_CORRECTION = re.compile(r"\b(correct|fix|error|invalid|validation)\b", re.IGNORECASE)


def jet_to_tag(messages: list[dict[str, Any]]) -> JetReading | None:
    """The jet the conversation asks about: in the last user message, or, when that message
    only asks to correct the previous answer (a re-ask), in the user message before it."""
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    if not users:
        return None
    jet = read_jet(users[-1])
    if jet is None and len(users) > 1 and _CORRECTION.search(users[-1]):
        jet = read_jet(users[-2])
    return jet


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _rng(seed: int, request_seed: int | None, messages: list[dict[str, Any]]) -> random.Random:
    key = json.dumps([seed, request_seed, messages], sort_keys=True, default=str)
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


# -- text -----------------------------------------------------------------------------------


def _compare_mult(m: int) -> str:
    if m < 28:
        return "well below the gluon typical value and even below the usual quark value"
    if m < 40:
        return "close to what quark jets usually have"
    if m < 48:
        return "right between the two typical values, so it does not settle much"
    if m < 60:
        return "close to what gluon jets usually have"
    return "well above even the typical gluon value"


def _compare_girth(g: float | None) -> str:
    if g is None:
        return "I can't get the width from the listing, so I'll lean on the multiplicity"
    if g < 0.035:
        return "that's narrow, quark-like"
    if g < 0.05:
        return "that's on the narrow side, mildly quark-like"
    if g < 0.06:
        return "that's in between, not very informative"
    return "that's broad, gluon-like"


def _core_sentences(jet: JetReading, label: str, p: float) -> tuple[list[str], str]:
    g = "unknown" if jet.girth is None else f"{jet.girth:.3f}"
    opening = [
        "We need to classify the jet as quark or gluon.",
        f"The jet has {jet.multiplicity} constituents.",
        f"Quark jets here average about {QUARK_MULT:.0f} constituents, gluon jets about "
        f"{GLUON_MULT:.0f}; {jet.multiplicity} is {_compare_mult(jet.multiplicity)}.",
        f"Width: girth about {g}; {_compare_girth(jet.girth)}.",
    ]
    closing = f"So quark probability roughly {p:.2f}; answer {label}."
    return opening, closing


def _padding_sentences(jet: JetReading, label: str) -> list[str]:
    m, g = jet.multiplicity, jet.girth
    other = "gluon" if label == "quark" else "quark"
    width = "the width" if g is None else f"a girth of {g:.3f}"
    lead = (
        "the hardest constituent"
        if jet.leading_pt is None
        else f"the hardest constituent at {jet.leading_pt:.1f} GeV"
    )
    return [
        f"Let me double-check: {m} constituents.",
        "Gluons carry a larger colour charge (C_A = 3 versus C_F = 4/3), so they radiate more "
        "and give broader jets with more particles.",
        f"But the distributions overlap a lot; a {other} jet with these numbers is not impossible.",
        f"Hmm, {width} should be compared with about {QUARK_GIRTH} for quarks and "
        f"{GLUON_GIRTH} for gluons.",
        f"Also {lead} matters: a hard leading particle points to a quark.",
        "Multiplicity is the strongest single handle; width helps a little on top of it.",
        "Typical spreads are about 13 constituents for quarks and 16 for gluons, so one "
        "jet's count is only a rough guide.",
        "I shouldn't overthink; there is no certainty from one jet.",
        f"Wait, maybe I should reconsider the {other} hypothesis once more.",
        "Fragmentation fluctuates jet by jet, so any answer here is probabilistic.",
        f"Counting again, the number of constituents is {m}.",
        "Pythia quark and gluon jets at 500 GeV differ most in the soft, wide-angle radiation.",
        "Let me weigh the evidence instead of using a hard cut.",
        f"The {label} hypothesis still looks more likely than the {other} one.",
    ]


_REFUSAL_PADDING = [
    "The message has no list of constituents and no observables.",
    "Without the particles I cannot count the multiplicity or measure the width.",
    "I should not guess a label without data.",
    "Maybe the jet was meant to be attached but is missing.",
    "Let me look again for a table or a list of particles; I don't see one.",
    "The right move is to ask for the jet.",
]


def _pad(
    head: list[str], tail: str, target: int, fillers: list[str], rng: random.Random
) -> list[str]:
    """Token pieces of head + filler sentences + tail, about ``target`` tokens long.

    Fillers are drawn at random (never the same twice in a row), whole sentences only: one is
    added while that lands nearer the target than not adding it.
    """
    pieces = split_tokens(" ".join(head))
    tail_pieces = split_tokens(" " + tail) if tail else []
    pool = [split_tokens(" " + f) for f in fillers]
    previous = -1
    while True:
        pick = rng.randrange(len(pool) - 1)
        pick += pick >= previous >= 0  # skip the previous sentence
        extra = pool[pick]
        if len(pieces) + len(tail_pieces) + len(extra) / 2 > target:
            break
        pieces += extra
        previous = pick
    return pieces + tail_pieces


def _free_text(
    rng: random.Random, jet: JetReading, is_quark: bool, p: float
) -> tuple[str, list[tuple[int, int, str]], str]:
    """(answer text, decision spans, style) for a request without response_format."""
    label, other = ("quark", "gluon") if is_quark else ("gluon", "quark")
    digit, other_digit = ("1", "0") if is_quark else ("0", "1")
    style = rng.choice(ANSWER_STYLES)
    m = jet.multiplicity
    if style == "final_answer":
        prefix = rng.choice(["", f"The jet has {m} constituents.\n\n"])
        text = f"{prefix}Final answer: {digit}"
        return text, [(len(text) - 1, len(text), other_digit)], style
    if style == "bold":
        word, alt = label.capitalize(), other.capitalize()
        text = f"**{word}**"
        return text, [(2, 2 + len(word), alt)], style
    if style == "json_fence":
        body, spans = dump_json({"label": Decisive(label, other), "quark_probability": round(p, 2)})
        remark = rng.choice(
            [
                "The multiplicity drives this call; the width agrees.",
                "Moderate confidence: the two populations overlap.",
                f"Based mainly on the {m} constituents.",
            ]
        )
        offset = len("```json\n")
        text = f"```json\n{body}\n```\n{remark}"
        return text, [(a + offset, b + offset, alt) for a, b, alt in spans], style
    if style == "so_answer":
        girth = "" if jet.girth is None else f" and a girth of {jet.girth:.3f}"
        text = f"The jet has {m} constituents{girth}, so the answer is {digit}."
        return text, [(len(text) - 2, len(text) - 1, other_digit)], style
    # hedged: the other label and numbers first, the answer last.
    typical = GLUON_MULT if is_quark else QUARK_MULT
    text = (
        f"A {other} ({other_digit}) is not excluded: the width alone would give it about "
        f"{1 - p:.2f}. But with {m} constituents against about {typical:.0f} typical for a "
        f"{other}, I'll go with {label}: {digit}"
    )
    start = len(text) - len(f"{label}: {digit}")
    spans = [(start, start + len(label), other), (len(text) - 1, len(text), other_digit)]
    return text, spans, style


def _tokens_with_decisions(
    text: str, spans: list[tuple[int, int, str]]
) -> tuple[list[str], dict[int, str]]:
    pieces = split_tokens(text)
    starts: dict[int, str] = {}
    for start, _end, alternative in spans:
        alt_pieces = split_tokens(alternative)
        if alt_pieces:
            starts[start] = alt_pieces[0]
    decisions: dict[int, str] = {}
    pos = 0
    for i, piece in enumerate(pieces):
        core = pos + len(piece) - len(piece.lstrip())
        if core in starts:
            decisions[i] = piece[: core - pos] + starts[core]
        pos += len(piece)
    return pieces, decisions


def generate(
    messages: list[dict[str, Any]],
    *,
    seed: int,
    request_seed: int | None,
    effort_tokens: int,
    effort_spread: float,
    noise: float,
    response_format: dict[str, Any] | None,
) -> Completion:
    """The full completion for ``messages`` (see the module doc).

    ``response_format`` is None, ``{"type": "json_object"}``,
    ``{"type": "json_schema", "schema": {...}}`` or ``{"type": "regex", "pattern": ...}``
    (already checked by the server).
    """
    rng = _rng(seed, request_seed, messages)
    jet = jet_to_tag(messages)
    epsilon = rng.gauss(0.0, 1.0)
    target = max(1, round(effort_tokens * rng.uniform(1 - effort_spread, 1 + effort_spread)))
    if jet is None:
        head = [
            "The user wants a jet classified, but I can't find the jet's constituents or "
            "observables in the message."
        ]
        reasoning = _pad(head, "I'll ask for the jet.", target, _REFUSAL_PADDING, rng)
        if effort_tokens == 0:  # reasoning_effort "none"
            reasoning = []
        kind = (response_format or {}).get("type", "text")
        if kind == "text":
            text = (
                "I can't find a jet in your message: there is no list of constituents or jet "
                "observables I can read. Please include the jet and I'll classify it."
            )
            return Completion(reasoning, split_tokens(text), rng=rng)
        # Constrained decoding forces an answer of the asked shape even without a jet (as in
        # vLLM, where the grammar leaves no way out): a coin flip, not a reading.
        is_quark = rng.random() < 0.5
        p = 0.55 if is_quark else 0.45
        if kind == "json_object":
            text = '{"error": "no jet in the message"}'
        elif kind == "regex":
            text = dump_json({"label": "quark" if is_quark else "gluon", "quark_probability": p},
                             compact=True)[0]  # fmt: skip
        else:
            text = dump_json(
                answer_for_schema(
                    response_format["schema"],  # type: ignore[index]
                    is_quark=is_quark,
                    quark_probability=p,
                    multiplicity=0,
                )
            )[0]
        stated = None if kind == "json_object" else ("quark" if is_quark else "gluon")
        return Completion(reasoning, split_tokens(text), rng=rng, stated=stated)

    p = 1.0 / (1.0 + math.exp(-(quark_logit(jet.multiplicity, jet.girth) + noise * epsilon)))
    is_quark = p >= 0.5
    if not is_quark and round(p, 2) >= 0.5:
        p = 0.49  # answers state p to 2 decimals: keep it on the label's side of 0.5
    label = "quark" if is_quark else "gluon"
    head, tail = _core_sentences(jet, label, p)
    reasoning = _pad(head, tail, target, _padding_sentences(jet, label), rng)
    if effort_tokens == 0:  # reasoning_effort "none"
        reasoning = []

    kind = (response_format or {}).get("type", "text")
    if kind == "json_schema":
        value = answer_for_schema(
            response_format["schema"],  # type: ignore[index]
            is_quark=is_quark,
            quark_probability=p,
            multiplicity=jet.multiplicity,
        )
        text, spans = dump_json(value)
        style = "json_schema"
    elif kind == "regex":
        # The compact label JSON (the only regex answer the server accepted: see protocol).
        text, spans = dump_json(
            {
                "label": Decisive(label, "gluon" if is_quark else "quark"),
                "quark_probability": round(p, 4),
            },
            compact=True,
        )
        style = "regex"
    elif kind == "json_object":
        text, spans = dump_json(
            {
                "label": Decisive(label, "gluon" if is_quark else "quark"),
                "quark_probability": round(p, 2),
            }
        )
        style = "json_object"
    else:
        text, spans, style = _free_text(rng, jet, is_quark, p)
    content, decisions = _tokens_with_decisions(text, spans)
    return Completion(
        reasoning=reasoning,
        content=content,
        decisions=decisions,
        chosen_probability=max(p, 1 - p),
        label=label,
        quark_probability=p,
        style=style,
        rng=rng,
        stated=label,
    )
