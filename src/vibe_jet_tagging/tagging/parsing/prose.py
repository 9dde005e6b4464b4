"""What one sentence of an answer says: a decision, a doubt, or labels it mentions.

The walk over a whole answer (:mod:`.reader`) asks three things of each sentence, all on
lowercased text:

- :func:`doubts`: does it hedge, refuse, suppose, retract or correct ("not sure", "may well
  be", "not 100% confident", "if", "?", "scratch that", "that is incorrect", "on second
  thought", "actually"...)? Each rule is a named entry of :data:`DOUBT_RULES`.
- :func:`decide`: does it state a decision, and which? An **explicit** decision is a lead and
  a value: "final answer: 1", "final: gluon", "the label is **gluon**", "so the answer is 0",
  "therefore quark", "it is a gluon jet", "i'd say 1", "i'll go with quark: 1", "classified
  as gluon", "\\boxed{0}". A **lone** value is a label word or 0/1 that is a whole line (or
  the last sentence of the last line): "**Gluon**", "0". A decision is **ambiguous** (no
  label at all) when its value is followed by an alternative ("quark or gluon", "1 of 2",
  "quark: 0") or by the other class not negated, or when its sentence holds a negation not
  aimed at the other class ("I don't think the answer is quark"; "not a quark: it is a gluon
  jet" is fine). A value followed by more words that do not close the decision ("so gluon
  jets radiate more", "therefore quark-like") is no decision, only a mention. A decision
  whose lead sits in quotes or after "e.g.", "for example", "format"... is a quoted example,
  not a decision (:data:`QUOTE_RULES`).
- :func:`mentions`: which labels it names, and which it negates ("not a quark", "rather than
  1"). Probability statements ("P(quark) = 0.2") name no label.

1 means quark, 0 gluon. Every pattern is anchored on a keyword and has bounded repetitions;
the walk reads at most :data:`TAIL_CHARS` characters, so the work is linear in that bound and
constant in the answer's length.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

__all__ = [
    "DOUBT_RULES",
    "QUOTE_RULES",
    "TAIL_CHARS",
    "Decision",
    "alternatives",
    "decide",
    "decided_labels",
    "doubts",
    "example_prefix",
    "mentions",
    "quoted_line",
    "stated_probabilities",
    "stated_probability",
    "tail",
]

TAIL_CHARS = 4096
"""The parser reads at most this many characters: the end of the answer."""

MARKUP = "*_`\"'"
_WORD = r"(?:quark|gluon)"
# A label value: the word, "quark jet", "quark-initiated (jet)"; never plural ("quarks",
# "gluon jets": a class, not this jet's label) nor inside a longer word ("quarkonium").
_WORD_VALUE = r"(?P<word>quark|gluon)(?:[ \t-]{0,2}(?:initiated|jet)(?![\w-])){0,2}(?![\w-])"
_DIGIT_VALUE = r"(?P<digit>[01])(?![\w%/]|[.,]\d)"
_OPEN = rf"[\s{MARKUP}(\[]{{0,6}}(?:(?:a|an|the)\s{{1,3}})?[{MARKUP}]{{0,4}}"

# Lead-ins of an explicit decision; the value follows right after (see _OPEN).
_LEADS = "|".join(
    [
        # "final answer: 1", "final: gluon", "the label is gluon", "my prediction = quark",
        # "verdict - 0"
        r"\b(?:answer|label|prediction|classification|verdict|decision|conclusion|result"
        r"|output|tag|class|category|choice|final)s?[*_`]{0,4}"
        r"(?:\s{0,3}(?:is|was|would\s+be|will\s+be)\b[\s:]{0,3}|\s{0,3}(?::|=|->|=>)"
        r"|\s{1,3}[-–—])",
        # "therefore quark", "thus it is a gluon jet", "so it's 0", "in conclusion: quark"
        r"\b(?:therefore|thus|hence|so|overall|finally|in\s+conclusion|in\s+summary"
        r"|in\s+short|to\s+conclude|to\s+summari[sz]e)"
        r"[\s,:]{1,4}(?:(?:it|this|that|the\s+jet|this\s+jet)\s{0,2}"
        r"(?:'s|\s+is|\s+must\s+be)\s)?",
        # "I'd say 1", "I'll go with quark", "I'm going with gluon", "I classify it as gluon"
        r"\bi(?:'d|'ll|'m|\s+would|\s+will|\s+am)?\s{1,2}(?:say|go(?:ing)?\s+with|pick|choose"
        r"|opt\s+for|classify\s+(?:it|this|the\s+jet|this\s+jet)\s+as"
        r"|label\s+(?:it|this|the\s+jet)\s+as"
        r"|conclude(?:\s+that)?(?:\s+(?:it|this|the\s+jet|this\s+jet)\s{0,2}(?:'s|\s+is))?)"
        r"[\s:]",
        # "classified as gluon", "tagged as a quark jet"
        r"\b(?:classified|labell?ed|tagged|identified)\s+as\s",
        # LaTeX: "\boxed{0}", "\boxed{\text{gluon}}"
        r"\\boxed\s{0,2}\{\s{0,2}(?:\\text(?:bf)?\s{0,2}\{\s{0,2})?",
    ]
)
_DECISION = re.compile(rf"(?:{_LEADS}){_OPEN}(?:{_WORD_VALUE}|{_DIGIT_VALUE})")
# "it is a gluon jet", "this jet is quark-initiated", "that's a quark": label words only
# ("the count for this is 1" is no decision).
_DECLARATIVE = re.compile(
    rf"\b(?:it|this|that|the\s+jet|this\s+jet)\s{{0,2}}(?:'s|\s+is|\s+must\s+be)\s{_OPEN}"
    rf"{_WORD_VALUE}"
)

# A line (or the last sentence of the last line) that is just a label word; a line that is
# just 0 or 1. Markup may wrap the value ("**Gluon**"), but a bullet ("* gluon") is a list item.
_LONE_WORD = re.compile(
    rf"\s{{0,4}}(?:>\s{{0,2}})?[{MARKUP}]{{0,4}}(?:(?:a|an|the)\s{{1,3}})?[{MARKUP}]{{0,4}}"
    rf"{_WORD_VALUE}[\s{MARKUP}.!]{{0,8}}"
)
_LONE_DIGIT = re.compile(rf"\s{{0,4}}[{MARKUP}]{{0,4}}(?P<digit>[01])[\s{MARKUP}.]{{0,8}}")

# What may follow a decision's value and leave it standing: the end of the sentence, a
# punctuation mark or bracket, or a clause giving a reason, a contrast or a probability.
# Anything else ("quark jets are narrower", "gluon hypothesis") makes the value a mention.
_CLOSES = re.compile(
    rf"[\s{MARKUP})\]}}$.!]*(?:$|[,;:(–—}}-]|(?:because|since|as|given|due\s+to|based\s+on"
    r"|with|rather\s+than|instead\s+of|over|not|and\s+not)\b)"
)

# -- doubts: hedges, refusals, suppositions, retractions ----------------------------------------

_NEG = r"(?:\bnot|n't|\bcannot|\bnever|\bno|\bhardly)"
DOUBT_RULES: dict[str, str] = {
    # "not sure", "not 100% confident", "cannot be completely certain", "I don't know",
    # "can't tell", "no way to tell", "not possible to decide"
    "negated_certainty": _NEG + r"(?:\s+[\w%]+){0,3}?\s+(?:sure|certain\w*|confident\w*"
    r"|definit\w*|decid\w*|clear\w*|know\w*|tell|determin\w*|distinguish\w*|say|choose"
    r"|classify|answer|help|comply|conclusive\w*|possible|able|find)\b",
    # "unsure", "uncertain", "unclear", "ambiguous", "inconclusive", "unable"
    "uncertain": r"\b(?:unsure|uncertain\w*|unclear|undecided|undetermined|inconclusive"
    r"|ambiguous|indeterminate|unknown|unable|impossible|borderline|tentative\w*)\b",
    # "maybe", "perhaps", "may well be", "might", "could", "probably", "likely"
    "modal": r"\b(?:maybe|perhaps|possibly|probabl[ey]|likely|unlikely|may|might|could"
    r"|guess\w*|lean\w*|suspect\w*)\b",
    # "doubt", "doubtful" (not "no doubt", "without a doubt", "beyond doubt")
    "doubt": r"(?<!\bno\s)(?<!without\s)(?<!without\sa\s)(?<!beyond\s)\bdoubt\w*",
    # "if", "unless", "whether", "suppose", "assuming", "otherwise", "depends"
    "conditional": r"\b(?:if|unless|whether|suppos\w*|assum\w*|hypothetic\w*|otherwise"
    r"|depend\w*)\b",
    # "neither", "either", "hard to say", "toss-up", "50/50", "coin flip"
    "undecided": r"\b(?:neither|nor|either|hard\s+to|difficult\s+to|tough\s+to|coin[\s-]?flip"
    r"|toss[\s-]?up|fifty[\s-]fifty|close\s+call|no\s+(?:idea|clear|definite|answer|label"
    r"|decision))\b|\b50\s*(?:/|-|%\s*/)\s*50\b",
    # "I'm sorry", "I refuse", "as an AI"
    "refusal": r"\b(?:refuse\w*|decline|apologi[sz]e|sorry|as\s+an\s+ai)\b",
    # any question: "Answer: quark?"
    "question": r"\?",
    # "scratch that", "on second thought", "actually", "wait", "correction", "I take it back",
    # "No.", "Not!"
    "retraction": r"\b(?:scratch\s+that|on\s+second\s+thoughts?|on\s+reflection|actually"
    r"|wait|correction|i\s+take\s+(?:it|that)\s+back|hmm+|oops|let\s+me\s+re\w+"
    r"|re-?consider\w*|re-?think\w*|revis\w*|re-?check\w*|double[\s-]?check\w*"
    r"|change\s+my\s+(?:mind|answer))\b|\bno\s*(?:[,!:;–—]|\.(?!\d)|$)"
    r"|^\W*(?:not|nope|nah)\W*$",
    # "that is incorrect", "I was wrong", "a mistake", "not quite"
    "correction": r"\b(?:incorrect\w*|wrong|mistake\w*|mistaken|erroneous)\b"
    r"|(?:\bnot|n't)\s+(?:quite|right|correct|true|accurate)\b",
}
"""Named rules of :func:`doubts`; a sentence matching any of them doubts."""


def _compile_doubts(rules: dict[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in rules.values()), re.MULTILINE)


_DOUBT = _compile_doubts(DOUBT_RULES)

# -- quoted examples --------------------------------------------------------------------------

QUOTE_RULES: dict[str, str] = {
    # "e.g. Final answer: quark", "for example: {...}", "the format is: ...", "such as ..."
    "example_marker": r"\b(?:e\.g\.|i\.e\.)|\b(?:for\s+(?:example|instance)|examples?"
    r"|such\s+as|as\s+in|formats?|formatted\s+as|templates?|schema)\b",
}
"""Named rules of what introduces a quoted example (besides quotation marks)."""

_EXAMPLE = re.compile("|".join(f"(?:{p})" for p in QUOTE_RULES.values()))
_QUOTE_OPEN = re.compile(r"[\"“”`]")
_FENCE_MARK = re.compile(r"`{3}\w*")

# -- mentions, negations, alternatives --------------------------------------------------------

_MENTION = re.compile(
    rf"(?<![\w-])(?P<word>quark|gluon)(?:s|[ \t-]?like|[ \t-]?ish)?(?![\w])"
    rf"|(?<![\w.\-+/]){_DIGIT_VALUE}"
)
# A mention is negated when one of these ends right before it: "not a quark", "isn't 1",
# "rather than a gluon", "instead of quark", "over gluon", "than a quark jet".
_NEGATOR_WORDS = (
    r"(?:\bnot|n't|\bno|\bnever|\brather\s+than|\binstead\s+of|\bover|\bthan|\bexcluding)"
)
_NEGATOR = re.compile(_NEGATOR_WORDS)
_NEGATION_REACH = 40  # characters between a negating word and what it negates, at most
_NEGATING = re.compile(
    _NEGATOR_WORDS
    + r"\s{1,3}(?:(?:a|an|the|like|really|exactly|look|looks|seem|seems|to|be|just|only"
    rf"|[01])\s{{1,3}}){{0,3}}[\s{MARKUP}(\[]{{0,4}}$"
)
# Two outcomes named as alternatives: "quark or gluon", "0/1", "1 vs 0", "or a gluon".
_ALTERNATIVES = re.compile(
    rf"(?:\b{_WORD}s?(?:[ \t-]{{0,2}}(?:jets?|initiated)\b)?|(?<![\w.])[01](?!\w|[.,]\d))"
    rf"\s{{0,2}}(?:/|\bor\b|\bvs\b\.?|\bversus\b"
    rf"|\band\b|,)\s{{0,2}}(?:(?:a|an|the)\s{{1,3}})?(?:{_WORD}|[01](?!\w|[.,]\d))"
    rf"|\bor\s{{1,3}}(?:(?:a|an|the)\s{{1,3}})?(?:{_WORD}\b|[01](?!\w|[.,]\d))"
)
_NEGATION = re.compile(r"\b(?:not|no|never)\b|n't\b")
_NEGATED_OTHER = re.compile(
    r"(?:not|no|never|n't)\s{1,3}(?:(?:a|an|the|like|really|exactly|look|looks|seem|seems"
    rf"|to|be)\s{{1,3}}){{0,3}}[\s{MARKUP}(\[]{{0,4}}(?P<other>quark|gluon|[01](?!\w|[.,]\d))"
)
# A digit's companion label ("1 (quark)", "0 - gluon jet") or a word's digit ("quark: 1").
_DIGIT_COMPANION = re.compile(
    rf"[\s{MARKUP}.,:;=(–—-]{{0,6}}(?:(?:a|an|the)\s{{1,3}})?{_WORD_VALUE}[\s{MARKUP})]{{0,4}}"
)
_WORD_COMPANION = re.compile(
    rf"[\s{MARKUP}:=(,–—-]{{0,6}}(?P<digit>[01])(?!\w|[.,]\d)[\s{MARKUP})]{{0,4}}"
)

# -- probabilities ----------------------------------------------------------------------------

_PROBABILITY = re.compile(
    r"(?:(?P<a>quark|gluon)[_\s-]{0,3}probability|p\s{0,2}\(\s{0,2}(?P<b>quark|gluon)"
    r"(?:[\s-]{0,2}jet)?\s{0,2}\)|probability\s{1,3}(?:of|that)\s{1,3}(?:(?:it|this|the\s+jet)"
    r"\s{1,3}(?:is|being)\s{1,3})?(?:an?\s{1,3})?(?P<c>quark|gluon)(?:[\s-]{0,2}(?:jet"
    r"|initiated))?)[\"'*\s]{0,4}(?:is|:|=|≈|~|of|was)?[\"'*\s]{0,4}"
    r"(?P<p>1(?:\.0+)?|0?\.\d+|0)(?!\d|\.\d)"
)


@dataclass(frozen=True)
class Decision:
    """What a sentence decides: ``label`` (``None`` when ambiguous) and how it says it.

    ``explicit`` is False for a lone value; ``start`` is where the decision begins.
    """

    label: str | None
    explicit: bool
    start: int = 0


def tail(text: str) -> str:
    """The part of ``text`` the parser reads: its last :data:`TAIL_CHARS` characters."""
    return text[-TAIL_CHARS:]


def value_of(match: re.Match[str]) -> str:
    """The label a value match names (a word, or 1 for quark and 0 for gluon)."""
    word = match.groupdict().get("word")
    if word:
        return word.lower()
    return "quark" if match.group("digit") == "1" else "gluon"


def other(label: str) -> str:
    """The other class."""
    return "gluon" if label == "quark" else "quark"


def _other_values(label: str) -> tuple[str, str]:
    return ("gluon", "0") if label == "quark" else ("quark", "1")


def doubts(sentence: str) -> bool:
    """Whether a (lowercased) sentence hedges, refuses, supposes or retracts."""
    return _DOUBT.search(sentence) is not None


def alternatives(sentence: str) -> bool:
    """Whether a (lowercased) sentence names two outcomes as alternatives ("quark or gluon")."""
    return _ALTERNATIVES.search(without_probabilities(sentence)) is not None


def without_probabilities(sentence: str) -> str:
    """``sentence`` with its probability statements blanked ("P(quark) = 0.2" names no label)."""
    return _PROBABILITY.sub(lambda m: " " * len(m.group()), sentence)


def mentions(sentence: str) -> tuple[set[str], set[str]]:
    """The labels a (lowercased) sentence names, and those it negates ("not a quark")."""
    text = without_probabilities(sentence)
    counts = {"quark": 0, "gluon": 0}
    for word, digit in _MENTION.findall(text):
        counts[word or ("quark" if digit == "1" else "gluon")] += 1
    negated_counts = {"quark": 0, "gluon": 0}
    seen = -1
    # Only mentions just after a negating word ("not a quark") can be negated.
    for negator in _NEGATOR.finditer(text):
        for m in _MENTION.finditer(text, max(negator.end(), seen + 1), negator.end() + 60):
            if m.start() - negator.end() > _NEGATION_REACH:
                break
            if _NEGATING.search(text, max(0, m.start() - _NEGATION_REACH), m.start()):
                negated_counts[value_of(m)] += 1
                seen = m.start()
    named = {label for label, n in counts.items() if n > negated_counts[label]}
    negated = {label for label, n in negated_counts.items() if n}
    return named, negated


class _Quotes:
    """Where a sentence's quotations and example markers leave it, for any position.

    Prefix counts over the sentence, built once: asking about every decision of a sentence
    costs one pass, not one per decision.
    """

    def __init__(self, text: str) -> None:
        def counts(chars: str) -> list[int]:
            return list(accumulate((c in chars for c in text), initial=0))

        self.straight = counts('"`')
        self.opening, self.closing = counts("“"), counts("”")
        self.paren_open, self.paren_close = counts("("), counts(")")
        self.closers = counts('"`”)')
        self.markers = [m.end() for m in _EXAMPLE.finditer(text)]

    def _open(self, a: int, b: int) -> bool:
        """Whether ``text[a:b]`` leaves a quotation open."""
        straight = self.straight[b] - self.straight[a]
        return straight % 2 == 1 or self.opening[b] - self.opening[a] > (
            self.closing[b] - self.closing[a]
        )

    def in_quotation(self, start: int) -> bool:
        """Whether ``start`` lies in an open quotation ("...", `...`, “...”)."""
        return self._open(0, start)

    def after_marker(self, start: int) -> bool:
        """Whether ``start`` follows an example marker ("e.g.", "for example", "format")
        whose quotation or bracket has not closed before it."""
        k = bisect_right(self.markers, start) - 1
        if k < 0:
            return False
        end = self.markers[k]
        closed = self.closers[start] > self.closers[end] and not self._open(end, start)
        unclosed_bracket = self.paren_open[start] - self.paren_open[end] > (
            self.paren_close[start] - self.paren_close[end]
        )
        return not closed or unclosed_bracket

    def quoted(self, start: int) -> bool:
        """Whether a decision starting at ``start`` is a quoted example, not a decision."""
        return self.in_quotation(start) or self.after_marker(start)


def example_prefix(prefix: str) -> bool:
    """Whether text before a JSON object on its line introduces it as an example or quote
    (a code fence does not)."""
    prefix = _FENCE_MARK.sub(" ", prefix)
    return _EXAMPLE.search(prefix) is not None or _QUOTE_OPEN.search(prefix) is not None


def quoted_line(line: str) -> bool:
    """Whether a line introduces a quoted example on the next line ("The format is:")."""
    stripped = line.strip(f" \t{MARKUP}#>")
    return stripped.endswith(":") and _EXAMPLE.search(stripped) is not None


def _follow_is_clean(label: str, is_digit: bool, follow: str) -> bool:
    """Whether the rest of the decision's sentence leaves the decision standing."""
    if is_digit:
        companion = _DIGIT_COMPANION.match(follow)
        if companion is not None:
            if value_of(companion) != label:
                return False  # "1 (gluon)"
            follow = follow[companion.end() :]
    else:
        companion = _WORD_COMPANION.match(follow)
        if companion is not None:
            if value_of(companion) != label:
                return False  # "quark: 0"
            follow = follow[companion.end() :]
    if _ALTERNATIVES.match(label + follow) or _ALTERNATIVES.search(follow):
        return False  # "quark or gluon", "1 of 2", "quark/gluon"
    named, _ = mentions(follow)
    return not (named & set(_other_values(label)) or named & {other(label)})


def _negations_agree(sentence: str, label: str) -> bool:
    """Whether every negation in the decision's sentence is aimed at the other class."""
    others = _other_values(label)
    for negation in _NEGATION.finditer(sentence):
        aimed = _NEGATED_OTHER.match(sentence, negation.start())
        if aimed is None or aimed.group("other").lower() not in others:
            return False
    return True


def decide(sentence: str, lone: str) -> Decision | None:
    """A (lowercased) sentence's decision, or ``None`` when it states none (module doc).

    ``lone`` says which lone values count: ``"any"`` (the sentence is a whole line),
    ``"word"`` (the last sentence of the answer's last line) or ``""``.
    """
    if lone:
        match = _LONE_WORD.fullmatch(sentence)
        if match is None and lone == "any":
            match = _LONE_DIGIT.fullmatch(sentence)
        if match is not None:
            return Decision(value_of(match), explicit=False)
    text = without_probabilities(sentence)
    # Only values that close the decision count: "so gluon jets radiate more" is a remark.
    found = [
        m
        for pattern in (_DECISION, _DECLARATIVE)
        for m in pattern.finditer(text)
        if _CLOSES.match(text, m.end())
    ]
    if not found:
        return None
    quotes = _Quotes(text)
    found = [m for m in found if not quotes.quoted(m.start())]
    if not found:
        return None
    last = max(found, key=lambda m: (m.end(), -m.start()))
    label = value_of(last)
    is_digit = last.groupdict().get("digit") is not None
    if not _follow_is_clean(label, is_digit, text[last.end() :]):
        return Decision(None, explicit=True, start=last.start())
    if not _negations_agree(sentence, label):
        return Decision(None, explicit=True, start=last.start())
    return Decision(label, explicit=True, start=last.start())


def decided_labels(sentence: str) -> set[str]:
    """Every label a (lowercased) sentence pairs with a decision's lead, closed or not,
    quoted or not: what it may be deciding."""
    text = without_probabilities(sentence)
    return {value_of(m) for pattern in (_DECISION, _DECLARATIVE) for m in pattern.finditer(text)}


def stated_probabilities(text: str) -> list[float]:
    """The quark probabilities (lowercased) ``text`` states, in order: "quark probability
    0.7", "P(quark) = .3", or one minus a stated gluon probability ("P(gluon) = 0.8")."""
    out: list[float] = []
    for m in _PROBABILITY.finditer(text):
        p = float(m.group("p"))
        out.append(p if (m.group("a") or m.group("b") or m.group("c")) == "quark" else 1.0 - p)
    return out


def stated_probability(text: str) -> float | None:
    """The last quark probability (lowercased) ``text`` states (:func:`stated_probabilities`)."""
    found = stated_probabilities(text)
    return None if not found else round(found[-1], 10)
