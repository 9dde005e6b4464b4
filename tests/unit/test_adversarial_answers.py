"""Adversarial answers, generated with known ground truth: the reader gives it or no label.

Each answer is composed of pieces whose meaning the generator knows: reasoning (anything: physics
with digits, hedges, both classes, negations, quoted examples, earlier decisions later
superseded, markup, sometimes longer than the part the reader reads), one final decision (an
explicit prose decision, a JSON object, or a lone value), then what may follow it:
remarks, restatements, probabilities, doubts, retractions, negations, stray values, quoted
examples, other-class remarks and later decisions.

The ground truth is computed from the pieces alone, by the issue's rule: the last explicit
decision (prose or JSON) gives the label; a doubt, retraction, negation of it, contradicting
probability or later lone value of the other class voids it; a later explicit decision gives its
own label; a lone value as the final decision does not override an earlier decision of the
other class. Remarks, digits in text and quoted examples after the decision leave the label
standing, but the reader may decline them (no label is never wrong).

What must hold, for every generated answer: the reader gives the ground truth or no label (0
wrong labels); and a clean answer (an explicit or JSON decision followed only by neutral remarks
or an agreeing probability) always gives its label.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibe_jet_tagging.tagging.parsing import LabelParseError, read_label

GENERATED = settings(
    # VJT_ADVERSARIAL_EXAMPLES=100000 for a long search (the fast tier runs 3,000).
    max_examples=int(os.environ.get("VJT_ADVERSARIAL_EXAMPLES", "3000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

LABELS = ("quark", "gluon")
DIGIT = {"quark": "1", "gluon": "0"}


def other(label: str) -> str:
    return "gluon" if label == "quark" else "quark"


@dataclass(frozen=True)
class Piece:
    """Text and what it means: its kind and, for decisions and values, the label."""

    text: str
    kind: str
    label: str | None = None
    newline: bool = False
    """Must start its own line (lone values, fixed last lines)."""
    explicit: bool = False
    """A retraction that states the other class in an explicit decision."""

    @property
    def decides(self) -> bool:
        """Whether it is a decision a later lone value must agree with."""
        return self.kind in ("decide", "json", "lone") or self.explicit


# -- how a label is written -------------------------------------------------------------------

_WORD_FORMS = [
    "{w}", "{W}", "{WW}", "**{w}**", "**{W}**", "`{w}`", '"{w}"', "a {w} jet", "{w}-initiated",
    "a {W} jet", "*{w}*", "the {w} class",
]  # fmt: skip
_DIGIT_FORMS = ["{d}", "**{d}**", "`{d}`", "{d} ({w})", "{d} - {w}"]


def written(label: str, form: str) -> str:
    return form.format(w=label, W=label.capitalize(), WW=label.upper(), d=DIGIT[label])


@st.composite
def value_text(draw: st.DrawFn, label: str, digits: bool = True) -> str:
    forms = _WORD_FORMS + (_DIGIT_FORMS if digits else [])
    text = written(label, draw(st.sampled_from(forms)))
    if text == f"the {label} class":  # "the quark class" closes no decision: use a plain one
        text = label
    return text


# -- final decisions --------------------------------------------------------------------------

_LEADS = [
    "Final answer: {v}", "**Final answer:** {v}", "Final answer - {v}", "Final: {v}",
    "**Final:** {v}", "Final verdict: {v}", "Final label = {v}", "The answer is {v}.",
    "So the answer is {v}.", "Therefore, {v}.", "Thus {v}.", "Hence the label is {v}.",
    "I'd say {v}.", "I'll go with {v}.", "I'm going with {v}.", "Answer: {v}", "ANSWER: {v}",
    "My prediction: {v}", "Classification: {v}", "Conclusion: {v}.", "Overall: {v}.",
    "In conclusion, {v}.", "Decision = {v}", "Label: {v}", "## Answer: {v}", "> Final answer: {v}",
    "The final answer is {v}.", "\\boxed{{{v}}}", "$\\boxed{{{v}}}$", "Verdict — {v}",
]  # fmt: skip
_DECLARATIVE = [
    "It is a {w} jet.", "This jet is {w}-initiated.", "That's a {w}.", "It's a {w} jet.",
    "I classify this jet as {w}.", "Classified as {w}.", "The jet is tagged as {w}.",
    "I conclude it is a {w} jet.", "Not a {o} jet: it is a {w} jet.",
    "This is a {w} jet rather than a {o}.", "The answer is {w}, not {o}.",
    "Final answer: {d} (not {od})", "So the answer is {d} ({w}), not {od} ({o}).",
    "Between {od} and {d}, the answer is {d}.", "It doesn't look like a {o}, so it's a {w} jet.",
    "Final answer: {w}, since the multiplicity settles it.",
    "The answer is {w} because the width agrees.", "Answer: {w} (P(quark) = {p})",
]  # fmt: skip


@st.composite
def explicit_decision(draw: st.DrawFn, label: str) -> Piece:
    p = draw(agreeing_probability(label))
    if draw(st.booleans()):
        lead = draw(st.sampled_from(_LEADS))
        value = draw(value_text(label, digits="boxed" not in lead))
        text = lead.format(v=value)
    else:
        text = draw(st.sampled_from(_DECLARATIVE)).format(
            w=label, o=other(label), d=DIGIT[label], od=DIGIT[other(label)], p=p
        )
    return Piece(text, "decide", label)


@st.composite
def json_decision(draw: st.DrawFn, label: str) -> Piece:
    p = draw(agreeing_probability(label))
    written_label = draw(st.sampled_from([label, label.capitalize(), label.upper()]))
    blob = {"label": written_label, "quark_probability": p}
    text = draw(
        st.sampled_from(
            [
                json.dumps(blob),
                json.dumps(blob, separators=(",", ":")),
                json.dumps(blob, indent=2),
                f"```json\n{json.dumps(blob)}\n```",
                f"Answer: {json.dumps(blob)}",
                f"Final answer:\n```json\n{json.dumps(blob, indent=2)}\n```",
            ]
        )
    )
    return Piece(text, "json", label, newline=True)


@st.composite
def lone_value(draw: st.DrawFn, label: str) -> Piece:
    form = draw(st.sampled_from(["{W}", "**{W}**", "{w}", "`{w}`", "{W}.", "{d}", "**{d}**"]))
    return Piece(written(label, form), "lone", label, newline=True)


@st.composite
def agreeing_probability(draw: st.DrawFn, label: str) -> float:
    if label == "quark":
        return draw(st.sampled_from([0.5, 0.55, 0.62, 0.7, 0.81, 0.93, 1.0]))
    return draw(st.sampled_from([0.0, 0.07, 0.2, 0.31, 0.44, 0.49]))


@st.composite
def probability_line(draw: st.DrawFn, label: str, agree: bool) -> Piece:
    p = draw(agreeing_probability(label if agree else other(label)))
    form = draw(
        st.sampled_from(
            ["P(quark) = {p}", "p(quark)={p}", "Quark probability: {p}", "quark_probability: {p}",
             "P(gluon) = {q}", "Probability of a quark jet: {p}", "**P(quark) = {p}**"]
        )
    )  # fmt: skip
    text = form.format(p=p, q=round(1 - p, 2))
    if "{q}" in form and p in (0.5,):  # P(gluon) = 0.5 means quark probability 0.5: quark
        text = form.format(q=0.5)
    return Piece(text, "prob_ok" if agree else "prob_bad", label, newline=True)


# -- what may follow a decision ---------------------------------------------------------------

_NEUTRAL = [
    "Hope this helps.", "The multiplicity drives this call.", "Girth 0.061, pTD 0.27.",
    "That settles it.", "---", "**Done.**", "Based mainly on the 54 constituents.",
    "The width agrees with the count.", "I am confident.", "No doubt about it.",
]  # fmt: skip
_DOUBTS = [
    "But I am not sure.", "It may well be a {o}.", "I cannot be completely certain.",
    "I'm not 100% confident.", "Maybe.", "Perhaps not.", "Could be either.",
    "Though it might be a {o} jet.", "Not sure though.", "Hard to say.", "50/50 really.",
    "Or perhaps {o}?", "I don't know for sure.", "Unless the width misleads me.",
    "If the multiplicity is right, that is.", "This is a guess.", "Probably.",
    "Likely, but uncertain.", "I could be wrong.", "It is unclear.", "Honestly it's a toss-up.",
    "I am not entirely certain of this.", "Low certainty, I can't really tell.",
    "Of course, this is debatable?", "Neither is clearly favoured.", "It depends on the tune.",
    "I doubt it, to be honest.", "It's borderline.", "Not confident at all.",
]  # fmt: skip
_RETRACTIONS = [
    "Scratch that.", "That is incorrect.", "Wait, that's wrong.", "Actually, no.",
    "Hmm, let me reconsider.", "I take that back.", "I was wrong.", "That's not right.",
    "Let me double-check that.", "Oops.", "Hmm.", "Wait.", "I made a mistake.",
    "Let me rethink this.", "Not quite.", "That isn't correct.", "No.", "Revised below.",
]  # fmt: skip
# A retraction that names the other class: the other class, or no label (never the first).
# True where it names it in an explicit decision ("it's a gluon"), which a later lone value
# must agree with.
_RETRACT_TO_OTHER = [
    ("On second thought, {o}.", False), ("No, {o}.", False), ("Correction: {o}.", False),
    ("Actually, it's {o}.", True), ("No wait, {od}.", False),
    ("That was a mistake; it's {o}.", True), ("I'll revise that: {o}.", False),
    ("Actually the answer is {o}.", True), ("I change my answer to {o}.", False),
    ("Scratch that: {O}.", False), ("Wait, {o}!", False), ("Hmm, no: {o} jet.", False),
    ("Oops, I meant {o}.", False),
]  # fmt: skip
_NEGATE_OWN = [
    "It is not a {w} jet.", "Not {w}.", "{W} isn't right.", "It's definitely not {d}.",
    "The answer is not {w}.", "I don't think it is a {w} jet.", "It can't be a {w}.",
    "That {w} label isn't right.", "Not a {w} at all.",
]  # fmt: skip
_AGREE = [
    "Not a {o} jet.", "Definitely not {od}.", "It is clearly not a {o}.", "({w})",
    "Rather than {o}.",
]  # fmt: skip
_OTHER_REMARKS = [
    "A {o} jet would have fewer constituents.", "{O} jets are narrower.",
    "The {o} hypothesis is weaker.", "So {o} jets would look different.",
    "Therefore {o}-like features are absent.", "Hence {o}s radiate less.",
    "For a {o} jet I'd expect a harder core.", "Typical {o} jets have about 40 constituents.",
    "{O}-initiated jets tend to look different.", "The label {o} would need a narrower jet.",
]  # fmt: skip
_DIGIT_TEXT = [
    "It has {x} hard prong.", "Step {x} is done.", "Only {x} particle dominates.",
    "Confidence: {x}", "Score {x} of 2.", "Feature #{x} decided it.", "Output layer: node_{x}.",
]  # fmt: skip
_QUOTES = [
    'For example: "Final answer: {x}".', "e.g. Final answer: {x}.",
    '(The format asked for is "Final answer: {x}".)', "The expected format is:\nFinal answer: {x}",
    'e.g. {{"label": "{x}", "quark_probability": 0.5}}.',
    'For example:\n```json\n{{"label": "{x}", "quark_probability": 0.9}}\n```',
    'Such as "the answer is {x}".', "An example answer would be `Final answer: {x}`.",
    'Format: {{"label": "{x}", "quark_probability": 0.5}}.', "as in: the answer is {x}.",
    "For instance, `\\boxed{{{x}}}`.", "(e.g. the label is {x})",
]  # fmt: skip


def fill(template: str, label: str, x: str | None = None) -> str:
    x = x or label
    return template.format(
        w=label, W=label.capitalize(), o=other(label), O=other(label).capitalize(),
        d=DIGIT[label], od=DIGIT[other(label)], x=x,
    )  # fmt: skip


@st.composite
def after_piece(draw: st.DrawFn, label: str) -> Piece:
    """Something that follows a decision of ``label``."""
    kind = draw(
        st.sampled_from(
            ["neutral", "doubt", "retract", "retract_to_other", "negate_own", "agree",
             "remark_other", "digit_text", "quote", "prob_ok", "prob_bad", "restate",
             "decide_new", "lone_same", "lone_other", "json_new"]
        )
    )  # fmt: skip
    if kind == "neutral":
        return Piece(draw(st.sampled_from(_NEUTRAL)), "neutral")
    if kind in ("doubt", "retract", "negate_own", "agree", "remark_other"):
        pool = {"doubt": _DOUBTS, "retract": _RETRACTIONS, "negate_own": _NEGATE_OWN,
                "agree": _AGREE, "remark_other": _OTHER_REMARKS}[kind]  # fmt: skip
        return Piece(fill(draw(st.sampled_from(pool)), label), kind, label)
    if kind == "retract_to_other":
        template, explicit = draw(st.sampled_from(_RETRACT_TO_OTHER))
        return Piece(fill(template, label), kind, other(label), explicit=explicit)
    if kind == "digit_text":
        text = draw(st.sampled_from(_DIGIT_TEXT)).format(x=draw(st.sampled_from("01")))
        return Piece(text, kind)
    if kind == "quote":
        text = fill(draw(st.sampled_from(_QUOTES)), label, draw(st.sampled_from(LABELS)))
        return Piece(text, kind, newline="\n" in text)
    if kind in ("prob_ok", "prob_bad"):
        return draw(probability_line(label, agree=kind == "prob_ok"))
    if kind == "restate":
        return draw(explicit_decision(label))
    if kind == "decide_new":
        return draw(explicit_decision(draw(st.sampled_from(LABELS))))
    if kind == "json_new":
        return draw(json_decision(draw(st.sampled_from(LABELS))))
    target = label if kind == "lone_same" else other(label)
    return draw(lone_value(target))


# -- reasoning before the decision: anything ------------------------------------------------------

_REASONING = [
    "We need to classify the jet as quark or gluon.", "The jet has 41 constituents.",
    "Step 1: count the particles.", "There is 1 hard prong and 0 isolated photons.",
    "Its girth is 0.052, in between.", "Gluons radiate more (C_A = 3 versus C_F = 4/3).",
    "Quark jets are narrower than gluon jets.", "I'm not sure yet.", "Maybe it's a quark jet.",
    "It could be either.", "It is not obviously a gluon jet.", "Hmm, wait, let me recount.",
    "Is it 1 or 0?", "1 would mean quark, 0 gluon.",
    "If it were a quark jet, it would be narrower.",
    "- multiplicity: 41\n- girth: 0.052", "### Analysis", "> Note: the pT is 520 GeV.",
    "Not a clear case.", "Options:\n1. quark\n2. gluon", "So gluon jets have more constituents.",
    "**Observation**: the leading particle carries 30% of the pT.",
]  # fmt: skip


@st.composite
def reasoning_piece(draw: st.DrawFn) -> Piece:
    kind = draw(
        st.sampled_from(["text", "text", "text", "quote", "decide", "json", "lone", "remark"])
    )
    label = draw(st.sampled_from(LABELS))
    if kind == "text":
        return Piece(draw(st.sampled_from(_REASONING)), "reason")
    if kind == "quote":
        text = fill(draw(st.sampled_from(_QUOTES)), label)
        return Piece(text, "reason", newline="\n" in text)
    if kind == "remark":
        return Piece(fill(draw(st.sampled_from(_OTHER_REMARKS + _NEGATE_OWN)), label), "reason")
    if kind == "decide":
        return draw(explicit_decision(label))
    if kind == "json":
        return draw(json_decision(label))
    return draw(lone_value(label))


# -- composing an answer ------------------------------------------------------------------------


class Answer:
    """A generated answer and its ground truth. ``clean``: an explicit or JSON decision
    followed only by neutral remarks or agreeing probabilities: the reader must give its
    label."""

    def __init__(self, text: str, truth: str | None, clean: bool) -> None:
        self.text, self.truth, self.clean = text, truth, clean

    def __repr__(self) -> str:  # the end is what counts (long reasoning is cut)
        end = self.text if len(self.text) < 600 else "…" + self.text[-600:]
        return f"Answer(truth={self.truth!r}, clean={self.clean}, text={end!r})"


def ground_truth(reasoning: list[Piece], final: Piece, after: list[Piece]) -> str | None:
    """The issue's rule, computed from what the pieces mean (never from the reader)."""
    pieces = [*reasoning, final, *after]
    truth: str | None = None
    for i in range(len(reasoning), len(pieces)):
        piece = pieces[i]
        if piece.kind in ("decide", "json", "retract_to_other"):
            truth = piece.label  # a later decision gives its own label (or none: never the first)
        elif piece.kind == "lone":  # unless the decision before it states the other class
            earlier = [p.label for p in pieces[:i] if p.decides]
            truth = None if earlier and earlier[-1] != piece.label else piece.label
        elif piece.kind in ("doubt", "retract", "negate_own", "prob_bad"):
            truth = None
        # neutral, agree, remark_other, digit_text, quote, prob_ok: the label stands
    return truth


def join(pieces: list[Piece], separators: list[str]) -> str:
    """The pieces' texts; a piece that must be its own line (lone values...) is one."""
    out = ""
    for i, piece in enumerate(pieces):
        if i:
            sep = separators[i % len(separators)]
            own_line = piece.newline or pieces[i - 1].newline
            out += "\n" if own_line and "\n" not in sep else sep
        out += piece.text
    return out


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    label = draw(st.sampled_from(LABELS))
    reasoning = draw(st.lists(reasoning_piece(), max_size=8))
    if draw(st.integers(0, 9)) == 0:  # long reasoning: past the part the reader reads
        filler = Piece(" ".join([draw(st.sampled_from(_REASONING))] * 200), "reason")
        reasoning.insert(draw(st.integers(0, len(reasoning))), filler)
    final = draw(st.one_of(explicit_decision(label), json_decision(label), lone_value(label)))
    after: list[Piece] = []
    for _ in range(draw(st.integers(0, 3))):
        current = ground_truth(reasoning, final, after)
        after.append(draw(after_piece(current or label)))
    separators = draw(st.lists(st.sampled_from(["\n", "\n\n", " "]), min_size=1, max_size=3))
    text = join([*reasoning, final, *after], separators)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["", "\n", "  ", "\n\n"]))
    truth = ground_truth(reasoning, final, after)
    # Clean: nothing but neutral remarks or agreeing probabilities after a decision that ends
    # its sentence ("Final answer: quark Hope this helps." runs on: no decision).
    ends = final.text.rstrip().endswith((".", "!", "}", "}$")) or final.newline
    sep = separators[(len(reasoning) + 1) % len(separators)]
    after_break = not after or ends or "\n" in sep or after[0].newline
    # ...and that starts its own sentence ("Answer: 1 It is a quark jet." runs on too).
    sep = separators[len(reasoning) % len(separators)]
    previous = reasoning[-1] if reasoning else None
    before_break = (
        previous is None
        or "\n" in sep
        or final.newline
        or previous.newline
        or previous.text.rstrip().endswith((".", "!", "?", ";"))
    )
    clean = (
        final.kind in ("decide", "json")
        and all(p.kind in ("neutral", "prob_ok") for p in after)
        and after_break
        and before_break
    )
    return Answer(text, truth, clean)


def read(text: str) -> str | None:
    try:
        return read_label(text).label
    except LabelParseError:
        return None


@GENERATED
@given(answers())
def test_the_reader_gives_the_ground_truth_or_no_label(answer: Answer) -> None:
    got = read(answer.text)
    assert got in (answer.truth, None), f"{got!r} for an answer whose truth is {answer.truth!r}"
    if answer.clean:
        assert got == answer.truth, "a clean decision gave no label"


@settings(GENERATED, max_examples=min(GENERATED.max_examples, 500))
@given(st.sampled_from(LABELS), st.data())
def test_a_clean_decision_always_gives_its_label(label: str, data: st.DataObject) -> None:
    """Reasoning of any kind, then an explicit or JSON decision, then only neutral remarks or
    an agreeing probability: the label, always (not merely 'no label')."""
    reasoning = data.draw(st.lists(reasoning_piece(), max_size=6))
    reasoning = [p for p in reasoning if p.kind == "reason"]
    final = data.draw(st.one_of(explicit_decision(label), json_decision(label)))
    after = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(_NEUTRAL).map(lambda t: Piece(t, "neutral")),
                probability_line(label, agree=True),
            ),
            max_size=2,
        )
    )
    text = join([*reasoning, final, *after], ["\n"])
    assert read(text) == label, text
