"""Reading an explicit decision out of a prose answer, or nothing.

:func:`prose_decision` reads only the last :data:`TAIL_CHARS` characters of an answer (the
decision is at its end) and never text that holds a JSON object (``{``: that is read as JSON
or re-asked). It splits them into sentences and walks back from the last one:

- a sentence that **hedges, refuses or supposes** ("not sure", "cannot decide", "neither",
  "either", "maybe", "could be", "might", "guess", "if", "unless", "depends", "I'm sorry", a
  question mark...) ends the search with no label: a doubt at or after the decision voids it;
- a sentence that **names alternatives** ("quark or gluon", "0/1", "1 vs 0") after the last
  decision voids it too (before the decision's value, it is reasoning);
- a sentence with an **explicit decision** gives the label: "answer: 1", "the final answer
  is **gluon**", "label = quark", "so the answer is 0", "therefore quark", "it is a gluon jet",
  "I'd say 1", "I'll go with quark: 1", "classified as gluon"; or a lone label word that is
  the whole sentence ("Quark.", "**Gluon**") or a lone 0/1 that is the whole last line.
  A decision whose value is followed by an alternative ("quark or gluon", "1 of many", "1.5",
  "quark-like") or whose sentence holds a negation not aimed at the other class ("it is not
  a quark" gives nothing; "not a quark: it is a gluon jet" gives gluon) is ambiguous and
  gives nothing;
- other sentences (reasoning, remarks) are skipped.

A bare digit inside ordinary text ("Step 1", "#1", "1 of many", "the width: 1") is never a
decision. 1 means quark, 0 gluon. Every pattern is anchored on a keyword and has bounded
repetitions, and at most :data:`TAIL_CHARS` characters are read, so the work is linear in
that bound and constant in the answer's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TAIL_CHARS", "ProseReading", "prose_decision", "stated_probability", "tail"]

TAIL_CHARS = 4096
"""The parser reads at most this many characters: the end of the answer."""

_FLAGS = 0  # the text is lowercased once instead: 2-3x faster than IGNORECASE
_MARKUP = "*_`\"'"
_WORD = r"(?:quark|gluon)"
# A label word, optionally plural or followed by "jet"/"-initiated"; never inside a longer word.
_WORD_VALUE = r"(?P<word>quark|gluon)(?:s\b)?(?:[ \t-]{0,2}(?:initiated|jets?)\b){0,2}(?![\w-])"
_DIGIT_VALUE = r"(?P<digit>[01])(?![\w%/]|[.,]\d)"
_OPEN = rf"[\s{_MARKUP}(\[]{{0,6}}(?:(?:a|an|the)\s{{1,3}})?[{_MARKUP}]{{0,4}}"

# Lead-ins of an explicit decision; the value follows right after (see _OPEN).
_LEADS = "|".join(
    [
        # "final answer: 1", "the label is gluon", "my prediction = quark", "verdict - 0"
        r"\b(?:answer|label|prediction|classification|verdict|decision|conclusion|result"
        r"|output|tag|class|category|choice)s?[*_`]{0,4}"
        r"(?:\s{0,3}(?:is|was|would\s+be|will\s+be)\b[\s:]{0,3}|\s{0,3}(?::|=|->|=>)"
        r"|\s{1,3}[-–—])",
        # "therefore quark", "thus it is a gluon jet", "so it's 0", "in conclusion: quark"
        r"\b(?:therefore|thus|hence|so|overall|in\s+conclusion|in\s+summary|to\s+conclude)"
        r"[\s,:]{1,4}(?:(?:it|this|that|the\s+jet|this\s+jet)\s{0,2}"
        r"(?:'s|\s+is|\s+must\s+be)\s)?",
        # "I'd say 1", "I'll go with quark", "I classify it as gluon", "I conclude it is a quark"
        r"\bi(?:'d|'ll|\s+would|\s+will)?\s{1,2}(?:say|go\s+with|pick|choose|opt\s+for"
        r"|classify\s+(?:it|this|the\s+jet|this\s+jet)\s+as|label\s+(?:it|this|the\s+jet)\s+as"
        r"|conclude(?:\s+that)?(?:\s+(?:it|this|the\s+jet|this\s+jet)\s{0,2}(?:'s|\s+is))?)"
        r"[\s:]",
        # "classified as gluon", "tagged as a quark jet"
        r"\b(?:classified|labell?ed|tagged|identified)\s+as\s",
    ]
)
_DECISION = re.compile(rf"(?:{_LEADS}){_OPEN}(?:{_WORD_VALUE}|{_DIGIT_VALUE})", _FLAGS)
# "it is a gluon jet", "this jet is quark-initiated", "that's a quark": label words only
# ("the count for this is 1" is no decision).
_DECLARATIVE = re.compile(
    rf"\b(?:it|this|that|the\s+jet|this\s+jet)\s{{0,2}}(?:'s|\s+is|\s+must\s+be)\s{_OPEN}"
    rf"{_WORD_VALUE}",
    _FLAGS,
)

# The last line, or its last sentence, that is just a label word; the last line that is just
# 0 or 1. Markup may wrap the value ("**Gluon**"), but a bullet ("* gluon") is a list item.
_LONE_WORD = re.compile(
    rf"\s{{0,4}}(?:>\s{{0,2}})?[{_MARKUP}]{{0,4}}(?:(?:a|an|the)\s{{1,3}})?[{_MARKUP}]{{0,4}}"
    rf"{_WORD_VALUE}[\s{_MARKUP}.!]{{0,8}}",
    _FLAGS,
)
_LONE_DIGIT = re.compile(rf"\s{{0,4}}[{_MARKUP}]{{0,4}}(?P<digit>[01])[\s{_MARKUP}.]{{0,8}}")
_LIST_MARKER = re.compile(r"\(?\d{1,3}[.)]")

_HEDGE = re.compile(
    r"\bnot\s+(?:sure|certain|confident|clear|possible|able|decid\w*|know)"
    r"|\b(?:unsure|uncertain\w*|unclear|undecided|undetermined|inconclusive|ambiguous"
    r"|indeterminate|unknown|unable|impossible|maybe|perhaps|possibly|might|guess\w*"
    r"|if|unless|whether|suppos\w*|assum\w*|hypothetic\w*|otherwise|depend\w*"
    r"|neither|nor|either|refuse\w*|decline|apologi[sz]e|sorry)\b"
    r"|\b(?:can(?:no|')t|can\s+not|could(?:\s+not|n't)|won't|will\s+not|do(?:es)?(?:\s+not|n't)"
    r"|did(?:\s+not|n't))\s+(?:\w+\s+){0,2}?(?:decide|tell|determine|say|classify|know|answer"
    r"|distinguish|choose|be\s+sure|help|comply|find|see)\b"
    r"|\b(?:no\s+(?:idea|way|clear|definite|answer|label|decision|jet)|hard\s+to|difficult\s+to"
    r"|tough\s+to|could\s+be|may\s+be|can\s+be|coin[\s-]?flip|toss[\s-]?up|fifty[\s-]fifty"
    r"|as\s+an\s+ai|either\s+way)\b"
    r"|\b50\s*(?:/|-|%\s*/)\s*50\b|\?",
    _FLAGS,
)
# Two outcomes named as alternatives: "quark or gluon", "0/1", "1 vs 0", "or a gluon".
_ALTERNATIVES = re.compile(
    rf"(?:\b{_WORD}s?|(?<![\w.])[01](?!\w|[.,]\d))\s{{0,2}}(?:/|\bor\b|\bvs\b\.?|\bversus\b"
    rf"|\band\b|,)\s{{0,2}}(?:(?:a|an|the)\s{{1,3}})?(?:{_WORD}|[01](?!\w|[.,]\d))"
    rf"|\bor\s{{1,3}}(?:(?:a|an|the)\s{{1,3}})?(?:{_WORD}\b|[01](?!\w|[.,]\d))",
    _FLAGS,
)
_NEGATION = re.compile(r"\b(?:not|no|never)\b|n't\b", _FLAGS)
_NEGATED_OTHER = re.compile(
    r"(?:not|no|never|n't)\s{1,3}(?:(?:a|an|the|like|really|exactly|look|looks|seem|seems"
    r"|to|be)\s{1,3}){0,3}(?P<other>quark|gluon|[01](?!\w|[.,]\d))",
    _FLAGS,
)
_CONTRAST = re.compile(
    r"(?:rather\s+than|instead\s+of|not|over|than|and\s+not)\s{1,3}(?:(?:a|an|the)\s{1,3})?$",
    _FLAGS,
)
_OTHER_MENTION = re.compile(rf"\b{_WORD}|(?<![\w.])[01](?!\w|[.,]\d)", _FLAGS)
# A digit's companion label ("1 (quark)", "0 - gluon jet") or a word's digit ("quark: 1").
_DIGIT_COMPANION = re.compile(
    rf"[\s{_MARKUP}.,:;=(–—-]{{0,6}}(?:(?:a|an|the)\s{{1,3}})?{_WORD_VALUE}[\s{_MARKUP}).!]{{0,8}}",
    _FLAGS,
)
_WORD_COMPANION = re.compile(
    rf"[\s{_MARKUP}:=(,–—-]{{0,6}}(?P<digit>[01])(?!\w|[.,]\d)[\s{_MARKUP})]{{0,4}}", _FLAGS
)

_SENTENCE_END = re.compile(r"(?<=[.!?;])[ \t]+|\n")
_PROBABILITY = re.compile(
    r"(?:quark[_\s-]{0,3}probability|p\s{0,2}\(\s{0,2}quark\s{0,2}\))[\"'*\s]{0,4}"
    r"(?:is|:|=|≈|~|of)?[\"'*\s]{0,4}(?P<p>1(?:\.0+)?|0?\.\d+|0)(?!\d|\.\d)",
    _FLAGS,
)


@dataclass(frozen=True)
class ProseReading:
    """What the prose states: a label (or ``None``) and, when no label, why not."""

    label: str | None
    why: str


def tail(text: str) -> str:
    """The part of ``text`` the parser reads: its last :data:`TAIL_CHARS` characters."""
    return text[-TAIL_CHARS:]


def _value(match: re.Match[str]) -> str:
    word = match.groupdict().get("word")
    if word:
        return word.lower()
    return "quark" if match.group("digit") == "1" else "gluon"


def _other(label: str) -> tuple[str, str]:
    return ("gluon", "0") if label == "quark" else ("quark", "1")


def _follow_is_clean(label: str, is_digit: bool, follow: str) -> bool:
    """Whether the rest of the decision's sentence leaves the decision standing."""
    if is_digit:
        # After a bare digit only punctuation or a matching label may follow.
        if not follow.strip(f" \t{_MARKUP}.!)]"):
            return True
        companion = _DIGIT_COMPANION.fullmatch(follow)
        return companion is not None and _value(companion) == label
    stripped = follow.lstrip(f" \t{_MARKUP})]")
    if stripped.startswith(("-", "/", "–")) and stripped[1:2].isalpha():
        return False  # "quark-like", "quark/gluon"
    companion = _WORD_COMPANION.match(follow)
    if companion is not None:
        if _value(companion) != label:
            return False  # "quark: 0"
        follow = follow[companion.end() :]  # "quark: 1"
    if _ALTERNATIVES.search(follow) or _ALTERNATIVES.match(label + follow):
        return False
    other = _other(label)
    for mention in _OTHER_MENTION.finditer(follow):
        if mention.group().lower() in other and not _CONTRAST.search(
            follow[max(0, mention.start() - 24) : mention.start()]
        ):
            return False  # "quark and gluon"
    return True


def _negations_agree(sentence: str, label: str) -> bool:
    """Whether every negation in the decision's sentence is aimed at the other class."""
    other = _other(label)
    for negation in _NEGATION.finditer(sentence):
        aimed = _NEGATED_OTHER.match(sentence, negation.start())
        if aimed is None or aimed.group("other").lower() not in other:
            return False
    return True


def _negated_labels(sentence: str) -> set[str]:
    """Labels a sentence negates ("not a quark", "isn't 0")."""
    return {
        "quark" if m.group("other").lower() in ("quark", "1") else "gluon"
        for m in _NEGATED_OTHER.finditer(sentence)
    }


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - the last match wins
        pass
    return found


def _decide(sentence: str, lone: str) -> str | bool | None:
    """A sentence's decision: a label, ``False`` when it attempts an ambiguous one, else None.

    ``lone`` says which lone values count: ``"any"`` (the whole last line), ``"word"`` (a
    sentence of the last line) or ``""`` (elsewhere).
    """
    if lone:
        match = _LONE_WORD.fullmatch(sentence)
        if match is None and lone == "any":
            match = _LONE_DIGIT.fullmatch(sentence)
        if match is not None:
            return _value(match)
    found = [m for m in (_last(_DECISION, sentence), _last(_DECLARATIVE, sentence)) if m]
    if not found:
        return None
    last = max(found, key=lambda m: m.start())
    label = _value(last)
    is_digit = last.groupdict().get("digit") is not None
    if not _follow_is_clean(label, is_digit, sentence[last.end() :]):
        return False
    if not _negations_agree(sentence, label):
        return False
    return label


def _sentences(text: str) -> list[tuple[str, str]]:
    """The sentences of ``text``, last first, each with the lone values it may be (_decide)."""
    out: list[tuple[str, str]] = []
    lines = [line for line in text.split("\n") if line.strip(_MARKUP + " \t#>-")]
    for n, line in enumerate(reversed(lines)):
        parts = [p.strip() for p in _SENTENCE_END.split(line)]
        parts = [p for p in parts if p.strip(_MARKUP + " \t#>-")]
        for k, part in enumerate(reversed(parts)):
            lone = ""
            if n == 0 and len(parts) == 1:
                lone = "any"
            elif n == 0 and k == 0 and not _LIST_MARKER.fullmatch(parts[-2]):
                lone = "word"
            out.append((part, lone))
    return out


def prose_decision(text: str) -> ProseReading:
    """The label an answer's prose explicitly decides, or ``None`` and why (module doc)."""
    end = tail(text).replace("\u2019", "'").lower()
    if "{" in end:
        return ProseReading(None, "the answer holds JSON, which is read as JSON only")
    negated: set[str] = set()  # labels negated after the decision
    for sentence, lone in _sentences(end):
        if _HEDGE.search(sentence):
            return ProseReading(None, "the answer hedges or refuses")
        decision = _decide(sentence, lone)
        if decision is False:
            return ProseReading(None, "the answer's decision is ambiguous")
        if isinstance(decision, str):
            if decision in negated:
                return ProseReading(None, "the answer negates its decision afterwards")
            return ProseReading(decision, "")
        if _ALTERNATIVES.search(sentence):
            return ProseReading(None, "the answer names both classes without a decision")
        negated |= _negated_labels(sentence)
    return ProseReading(None, "the answer states no explicit decision")


def stated_probability(text: str) -> float | None:
    """The last quark probability the prose states ("quark probability 0.7", "P(quark) = .3")."""
    found = _last(_PROBABILITY, tail(text).lower())
    return None if found is None else float(found.group("p"))
