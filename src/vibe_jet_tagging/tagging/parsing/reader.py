"""The reader's rule: an answer's label is its last decision, if nothing after it takes it back.

:func:`read` splits the end of an answer (its last :data:`~.prose.TAIL_CHARS` characters)
into statements: JSON objects (an object that opens with ``{"``, ``{'`` or ``{}``, to its
matching brace or, if it has none, to the end) and the sentences of the prose around them.
It walks them from the last one back:

- a statement that **doubts** (:func:`~.prose.doubts`: a hedge, refusal, supposition,
  retraction or question) before any decision is found: no label;
- a **JSON object** that is not a quoted example: the decision, validated against
  :class:`~.schema.JetLabel` (label case-insensitive; 1/0 only with ``digit_labels``); one
  that fails is an error to re-ask with, never searched for a label;
- a sentence with an **explicit decision** (:func:`~.prose.decide`): the decision; an
  ambiguous one: no label;
- a **lone value** (a label word that is a whole sentence, 0/1 that is a whole line): the
  decision too, unless the decision before it states the other class ("The answer is
  gluon.\\n1": no label), and not at the end of an answer longer than the part read (what
  came before it is unknown);
- anything else is read for the labels it names or negates; reasoning is skipped.

A decision stands only if no statement after it names the other class (not negated:
"not a quark" agrees with gluon) or negates its own. Decisions in quotation marks or after
"e.g.", "for example", "format", "such as" are quoted examples: they name labels but decide
nothing, and a JSON object introduced that way is no answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .prose import (
    alternatives,
    decide,
    decided_labels,
    doubts,
    example_prefix,
    mentions,
    other,
    quoted_line,
    stated_probabilities,
    stated_probability,
    tail,
)

__all__ = ["ProseReading", "Reading", "Statement", "prose_decision", "read", "statements"]

# A JSON object's opening: "{" then a key's quote or the closing brace (not "{1, 2}", "\frac{a}").
_JSON_OPEN = re.compile(r"(?<![A-Za-z\\])\{\s*(?:[\"'}]|$)")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}]', re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?;])(?<!e\.g\.)(?<!i\.e\.)[ \t]+")
_LIST_MARKER = re.compile(r"\(?\d{1,3}[.)]")
_FENCE = re.compile(r"\s*```\w*\s*")
_CONTENT = re.compile(r"[^\W_]|\?")
_BLANK = re.compile(r"[^\n]")


@dataclass(frozen=True)
class Statement:
    """One statement of an answer's end: a prose sentence (lowercased) or a JSON object."""

    text: str
    json: bool
    start: int
    """Offset in the text read."""
    lone: str = ""
    """Which lone values the sentence may be: ``"any"`` (a whole line), ``"word"`` (a whole
    sentence) or ``""``."""
    quoted: bool = False
    """Introduced as an example ("The format is:", "e.g. {...}"): it decides nothing."""


Validate = Callable[[str], tuple[str, float | None]]
"""Validates a JSON answer: its (label, quark probability), or raises ``ValueError``."""


@dataclass(frozen=True)
class Reading:
    """What an answer states: a label and where it came from, or why there is none."""

    label: str | None
    step: Literal["schema", "regex"] | None = None
    quark_probability: float | None = None
    why: str = ""
    error: Exception | None = None
    """Why the JSON answer failed validation (what the model is re-asked with)."""
    contradiction: bool = False
    """The JSON answer's label disagrees with a probability the prose after it states
    (``quark_probability``)."""


def _json_end(text: str, start: int) -> int:
    """The end of the JSON object opening at ``start``: after its matching brace, else the end."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text, start):
        brace = token.group()
        if brace == "{":
            depth += 1
        elif brace == "}":
            depth -= 1
            if depth == 0:
                return token.end()
    return len(text)


def _json_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    at = text.find("{")
    while at >= 0:
        if _JSON_OPEN.match(text, at):
            end = _json_end(text, at)
            spans.append((at, end))
            at = text.find("{", end)
        else:
            at = text.find("{", at + 1)
    return spans


def _is_markup(line: str) -> bool:
    """Whether a line or sentence says nothing: no word, digit or question mark ("---",
    "**", a code fence)."""
    return _CONTENT.search(line) is None or _FENCE.fullmatch(line) is not None


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` lowercased, its JSON objects blanked (newlines kept: offsets stay)."""
    parts: list[str] = []
    at = 0
    for a, b in spans:
        parts += [text[at:a], _BLANK.sub(" ", text[a:b])]
        at = b
    parts.append(text[at:])
    return "".join(parts).lower()


def statements(text: str) -> tuple[list[Statement], str]:
    """The statements of ``text`` in order (JSON objects and prose sentences, module doc),
    and ``text`` lowercased with its JSON objects blanked."""
    spans = _json_spans(text)
    masked = _masked(text, spans)
    out: list[Statement] = []
    offset = 0
    previous = ""  # the last line with content before this one
    span_index = 0
    for line in masked.split("\n"):
        line_start, offset = offset, offset + len(line) + 1
        jsons = []
        while span_index < len(spans) and spans[span_index][0] < offset:
            jsons.append(spans[span_index])
            span_index += 1
        for a, b in jsons:
            prefix = masked[line_start:a]
            quoted = example_prefix(prefix) or (_is_markup(prefix) and quoted_line(previous))
            out.append(Statement(text[a:b], json=True, start=a, quoted=quoted))
        if _is_markup(line):
            if jsons:
                previous = "{}"  # an object ends the line: it introduces nothing
            continue
        quoted_block = quoted_line(previous)
        previous = line + " {}" if jsons else line
        parts: list[tuple[int, str]] = []
        cut = 0
        for sep in _SENTENCE_END.finditer(line):
            parts.append((cut, line[cut : sep.start()]))
            cut = sep.end()
        parts.append((cut, line[cut:]))
        parts = [(at, p.strip()) for at, p in parts if not _is_markup(p)]
        whole_line = len(parts) == 1 and not jsons
        for k, (at, part) in enumerate(parts):
            after_marker = k > 0 and _LIST_MARKER.fullmatch(parts[k - 1][1]) is not None
            lone = "any" if whole_line else ("" if after_marker else "word")
            quoted = quoted_block and k == 0
            out.append(Statement(part, json=False, start=line_start + at, lone=lone, quoted=quoted))
    out.sort(key=lambda s: s.start)
    return out, masked


def _none(why: str) -> Reading:
    return Reading(None, why=why)


def read(text: str, validate: Validate, *, whole: bool = True) -> Reading:
    """What ``text`` (an answer's end) states, by the rule of the module doc.

    ``validate`` reads a JSON object found as the answer; its ``ValueError`` comes back as
    :attr:`Reading.error`. ``whole`` says whether ``text`` is the whole answer: a lone value
    decides only when nothing before it can state the other class, so not at the end of an
    answer longer than the part read.
    """
    named: set[str] = set()  # labels named after the current statement
    negated: set[str] = set()  # labels negated after it
    found, masked = statements(text)
    for i in range(len(found) - 1, -1, -1):
        st = found[i]
        if st.json and st.quoted:
            more, less = mentions(st.text.lower())
            named, negated = named | more, negated | less
            continue
        if st.json:
            try:
                label, probability = validate(st.text)
            except ValueError as error:
                return Reading(None, "schema", why="the answer's JSON is not a valid label",
                               error=error)  # fmt: skip
            why = _stands(label, named, negated)
            if why:
                return _none(why)
            return _json_answer(label, probability, masked, st)
        if doubts(st.text):
            return _none("the answer hedges, doubts or takes back its decision")
        decision = None if st.quoted else decide(st.text, st.lone)
        if decision is not None:
            if decision.label is None:
                return _none("the answer's decision is ambiguous")
            why = _stands(decision.label, named, negated)
            if why:
                return _none(why)
            if decision.explicit:
                return _prose(decision.label, masked, st.start, found[:i])
            return _lone(decision.label, found[:i], masked, st.start, validate, whole)
        if alternatives(st.text):
            return _none("the answer names both classes without deciding")
        more, less = mentions(st.text)
        named, negated = named | more, negated | less
    return _none("the answer states no explicit decision")


def _lone(
    label: str,
    before: list[Statement],
    masked: str,
    start: int,
    validate: Validate,
    whole: bool,
) -> Reading:
    """A lone value's reading: its label, unless the decision before it states the other one.

    Walking back from the lone value, doubts are reasoning (as before any decision); the first
    explicit or JSON decision of the same label confirms it; any statement that decides, or
    looks like it decides, the other class (even quoted or not closed) voids it.
    """
    if not whole:
        return _none("a lone value ends an answer longer than the part read")
    conflict = _none("the answer's last value contradicts an earlier decision")
    for st in reversed(before):
        if st.json:
            if st.quoted:
                if other(label) in mentions(st.text.lower())[0]:
                    return conflict
                continue
            try:
                earlier, probability = validate(st.text)
            except ValueError:
                return conflict
            if earlier != label:
                return conflict
            return _json_answer(label, probability, masked, st)
        if other(label) in decided_labels(st.text):
            return conflict
        decision = None if st.quoted or doubts(st.text) else decide(st.text, st.lone)
        if decision is None:
            continue
        if decision.label != label:
            return conflict
        if decision.explicit:
            break
    return _prose(label, masked, start, before)


def _stands(label: str, named: set[str], negated: set[str]) -> str:
    """Why a decision does not stand given what follows it ("" when it stands)."""
    if label in negated:
        return "the answer negates its decision afterwards"
    if other(label) in named:
        return "the answer names the other class after its decision"
    return ""


def _json_answer(label: str, probability: float | None, masked: str, st: Statement) -> Reading:
    """A JSON decision; a probability the prose after it states must agree with it."""
    disagree = _disagreeing(label, masked[st.start + len(st.text) :])
    if disagree is not None:
        return Reading(label, "schema", quark_probability=disagree, contradiction=True)
    return Reading(label, "schema", quark_probability=probability)


def _disagreeing(label: str, text: str) -> float | None:
    """The first quark probability ``text`` states that disagrees with ``label``, if any."""
    return next((p for p in stated_probabilities(text) if (label == "quark") != (p >= 0.5)), None)


def _prose(label: str, masked: str, start: int, before: list[Statement]) -> Reading:
    """A prose decision, with the probabilities stated from its line (or the line before, if
    that decides nothing), after any earlier decision, to the end: every one must agree with
    it; the last is the answer's."""
    line_start = masked.rfind("\n", 0, start) + 1
    previous = masked.rfind("\n", 0, max(line_start - 1, 0)) + 1
    if line_start and not decided_labels(masked[previous:line_start]):
        line_start = previous  # "P(quark) = 0.8\nFinal answer: quark"
    for st in before:  # "Answer: gluon (P(quark) = 0.1). It is a quark jet.": not its own
        if st.start >= line_start and (st.json or decided_labels(st.text)):
            line_start = max(line_start, st.start + len(st.text))
    region = masked[line_start:]
    disagree = _disagreeing(label, region)
    if disagree is not None:
        return Reading(label, "regex", quark_probability=disagree, contradiction=True)
    return Reading(label, "regex", quark_probability=stated_probability(region))


@dataclass(frozen=True)
class ProseReading:
    """What an answer's prose states: a label (or ``None``) and, when no label, why not."""

    label: str | None
    why: str


def _no_json(text: str) -> tuple[str, float | None]:
    raise ValueError("JSON")


def prose_decision(text: str) -> ProseReading:
    """The label an answer's prose decides by the reader's rule (a JSON decision gives None)."""
    end = tail(text)
    reading = read(end, _no_json, whole=len(end) == len(text))
    if reading.step == "schema":
        return ProseReading(None, reading.why or "the answer's decision is JSON")
    return ProseReading(reading.label, reading.why)
