"""The reader's rule, case by case: issue 21's answers, and one case per rule that only it holds.

The rule: an answer's label is its last decision (a JSON object, an explicit prose decision,
or a lone value), if nothing after it doubts, retracts or negates it or names the other class;
quoted examples decide nothing. Each case below names the rule it holds: deleting that rule
from the reader makes the case fail (checked by deleting each once; see the issue's note).
"""

from __future__ import annotations

import json

import pytest

from vibe_jet_tagging import JetLabelParser, parse_label
from vibe_jet_tagging.tagging.parsing import (
    PARSER_VERSION,
    ContradictionError,
    LabelParseError,
    read_answer,
    read_label,
)
from vibe_jet_tagging.tagging.parsing.prose import DOUBT_RULES, QUOTE_RULES


def label_of(text: str, **options: bool) -> str | None:
    """The label the reader gives, or None when it gives none."""
    try:
        return read_label(text, **options).label
    except LabelParseError:
        return None


# -- issue 21 -----------------------------------------------------------------------------------

EXAMPLE_JSON = '{"label": "gluon", "quark_probability": 0.3}'

ISSUE_CASES = [
    # Wrong labels on main: a lone digit after the decision won over it.
    pytest.param("Final answer: gluon\nConfidence:\n1", None, id="confidence-digit-after"),
    pytest.param("The answer is gluon.\n\n1", None, id="lone-digit-after"),
    # A retraction naming the other class: never the first decision.
    pytest.param("Answer: quark. On second thought, gluon.", None, id="second-thought"),
    # An example JSON object quoted before the decision is not the answer.
    pytest.param(
        f"The answer should look like this: {EXAMPLE_JSON}\nFinal answer: quark",
        "quark",
        id="quoted-json-then-decision",
    ),
    pytest.param(
        f"For example:\n```json\n{EXAMPLE_JSON}\n```\nMy reading of this jet:\nFinal answer: quark",
        "quark",
        id="fenced-example-then-decision",
    ),
    # Doubt after the decision, labelled on main.
    pytest.param("Final answer: quark. It may well be a gluon.", None, id="may-well-be"),
    pytest.param(
        "Final answer: quark. I cannot be completely certain.", None, id="not-completely-certain"
    ),
    pytest.param("Final answer: gluon. I am not 100% confident.", None, id="not-100-confident"),
    pytest.param("Final answer: quark. Scratch that.", None, id="scratch-that"),
    pytest.param("Final answer: quark. That is incorrect.", None, id="that-is-incorrect"),
    pytest.param(
        '{"label": "quark", "quark_probability": 0.8}\nBut I am not sure.', None, id="json-not-sure"
    ),
    # Plain decisions main did not read.
    pytest.param("Final: gluon", "gluon", id="final-alone"),
    pytest.param("**Final:** quark", "quark", id="final-bold"),
    pytest.param("Final verdict: quark", "quark", id="final-verdict"),
    pytest.param(
        "1 would mean quark, 0 gluon.\nFinal answer: 0", "gluon", id="digit-mentioned-before"
    ),
    pytest.param("The answer is 0, not 1.", "gluon", id="digit-contrast-after"),
    pytest.param("Final answer: 0 (not 1)", "gluon", id="digit-negated-in-brackets"),
    pytest.param(
        "So the answer is 0 (gluon), not 1 (quark).", "gluon", id="digit-and-word-contrast"
    ),
    pytest.param(
        "Is it 1 or 0?\nStep 1: count.\nFinal answer: 0", "gluon", id="digits-in-reasoning"
    ),
    # JSON labels re-asked on main although they state a label.
    pytest.param('{"label": "Quark", "quark_probability": 0.8}', "quark", id="json-capitalised"),
    pytest.param('{"label": "GLUON", "quark_probability": 0.1}', "gluon", id="json-upper"),
    # The negation-agreement check: removing it made this quark on main, unnoticed.
    pytest.param("Final answer: quark isn't right", None, id="quark-isnt-right"),
    pytest.param("I don't think the answer is quark.", None, id="dont-think-quark"),
    # A later explicit decision gives its own label.
    pytest.param(
        "Answer: 1. On reflection the width decides it.\nFinal answer: 0",
        "gluon",
        id="later-explicit-decision",
    ),
    pytest.param(
        '{"label": "quark", "quark_probability": 0.7}\nWait, that is wrong.\nFinal answer: gluon',
        "gluon",
        id="json-retracted-then-decided",
    ),
]


@pytest.mark.parametrize(("text", "label"), ISSUE_CASES)
def test_the_issues_answers(text: str, label: str | None) -> None:
    assert label_of(text) == label


def test_json_digits_are_read_only_where_the_template_asks_for_digits() -> None:
    for text, label in [
        ('{"label": 1, "quark_probability": 0.8}', "quark"),
        ('{"label": "0", "quark_probability": 0.2}', "gluon"),
    ]:
        assert label_of(text) is None  # not asked for: re-asked
        assert label_of(text, digit_labels=True) == label
        assert JetLabelParser(digit_labels=True).parse(text).label == label
        assert isinstance(read_answer(text, "stop", allow_reask=True), ValueError)
    # A boolean is no digit; a digit label must still agree with the probability.
    assert label_of('{"label": true, "quark_probability": 0.8}', digit_labels=True) is None
    with pytest.raises(ContradictionError):
        read_label('{"label": 1, "quark_probability": 0.2}', digit_labels=True)


def test_the_rules_changed_so_the_version_moved() -> None:
    assert PARSER_VERSION == "3"


# -- one case per rule: deleting the rule makes its case fail ------------------------------------

DOUBT_CASES = {
    "negated_certainty": "Final answer: quark. I am not 100% confident.",
    "uncertain": "Final answer: gluon. That is unclear.",
    "modal": "Final answer: quark, probably.",
    "doubt": "Final answer: gluon. I doubt it.",
    "conditional": "Final answer: quark, assuming the count is right.",
    "undecided": "Final answer: gluon. Hard to say.",
    "refusal": "Final answer: gluon. Sorry.",
    "question": "Final answer: quark. Right?",
    "retraction": "Final answer: quark. Scratch that.",
    "correction": "Final answer: quark. That is incorrect.",
}


def test_every_doubt_rule_has_its_case() -> None:
    assert set(DOUBT_CASES) == set(DOUBT_RULES)


@pytest.mark.parametrize(("rule", "text"), sorted(DOUBT_CASES.items()))
def test_a_doubt_after_the_decision_voids_it(rule: str, text: str) -> None:
    assert label_of(text) is None
    decision = text.split(".")[0].split(",")[0].rstrip("?")
    assert label_of(decision) in ("quark", "gluon")  # the decision alone stands


def test_a_doubt_before_the_decision_is_reasoning() -> None:
    for doubt in DOUBT_CASES.values():
        remark = doubt.split(". ", 1)[-1] if ". " in doubt else "Hard to say."
        assert label_of(f"{remark}\nFinal answer: gluon") == "gluon", remark


QUOTE_CASES = {
    # rule -> (an answer whose quoted example comes after the decision, what it gives)
    "example_marker": ("It is a quark jet.\ne.g. Final answer: gluon", None),
    "open_quote": ('It is a quark jet. The prompt said to end with "Final answer: gluon".', None),
    "quoted_line": ("It is a quark jet.\nThe format is:\nFinal answer: gluon", None),
    "json_example": (f"Final answer: quark\nFor example: {EXAMPLE_JSON}", None),
}


def test_every_quote_rule_has_its_case() -> None:
    assert set(QUOTE_RULES) <= set(QUOTE_CASES)


@pytest.mark.parametrize(("rule", "case"), sorted(QUOTE_CASES.items()))
def test_a_quoted_example_decides_nothing(rule: str, case: tuple[str, str | None]) -> None:
    text, label = case
    assert label_of(text) == label


def test_a_quoted_example_before_the_decision_is_reasoning() -> None:
    for text, _ in QUOTE_CASES.values():
        example = text.split("\n", 1)[1] if "\n" in text else text.split(". ", 1)[1]
        assert label_of(f"{example}\nSo the answer is gluon.") == "gluon", example
    # A quotation that has closed leaves what follows it a decision.
    assert label_of('For example: "Final answer: quark" It is a gluon jet.') == "gluon"
    assert label_of("(e.g. the label is quark) It is a gluon jet.") == "gluon"
    # Quotation marks around the value alone are markup.
    assert label_of('The answer is "gluon".') == "gluon"


NEGATION_CASES = [
    # The decision's own sentence: every negation must be aimed at the other class.
    pytest.param("Final answer: quark, isn't it.", None, id="agreement-voids"),
    pytest.param("The answer is quark — not.", None, id="agreement-voids-2"),
    pytest.param("The answer is gluon, and no other", None, id="agreement-voids-3"),
    pytest.param("I don't think the answer is quark.", None, id="doubt-and-agreement"),
    pytest.param("Not a quark jet: it is a gluon jet.", "gluon", id="agreement-aimed"),
    pytest.param("It doesn't look like a gluon, so it's a quark jet.", "quark", id="aimed-2"),
    # After the decision: negating it voids it; negating the other class agrees.
    pytest.param("Final answer: quark. It is not a quark.", None, id="negated-after"),
    pytest.param("The answer is quark. Not!", None, id="bare-not-after"),
    pytest.param("Final answer: gluon. Definitely not a quark.", "gluon", id="other-negated-after"),
    pytest.param("Final answer: 0. Not 1.", "gluon", id="other-digit-negated-after"),
    pytest.param("Answer: gluon. Rather than quark.", "gluon", id="rather-than-after"),
]


@pytest.mark.parametrize(("text", "label"), NEGATION_CASES)
def test_negations(text: str, label: str | None) -> None:
    assert label_of(text) == label


STRUCTURE_CASES = [
    # The other class named after the decision (not negated) voids it.
    pytest.param("Final answer: quark. Gluon jets would look like this.", None, id="other-named"),
    pytest.param("Final answer: gluon. It has 1 hard prong.", None, id="other-digit-named"),
    # A value must close its decision: "so gluon jets ..." is a remark, not a decision.
    pytest.param("Final answer: quark. So gluon jets would look different.", None, id="closing"),
    pytest.param("Therefore quark jets are narrower.", None, id="closing-alone"),
    # Both classes as alternatives after the decision.
    pytest.param("Answer: quark.\nThe answer is quark or quark.", None, id="alternatives"),
    pytest.param("Final answer: gluon.\nNot quark or gluon.", None, id="alternatives-negated"),
    # What follows the value in its sentence.
    pytest.param("Answer: 1 (gluon)", None, id="companion-disagrees"),
    pytest.param("Final answer: quark, gluon", None, id="follow-names-other"),
    pytest.param(
        "Final answer: quark, since the multiplicity is low.", "quark", id="reason-clause"
    ),
    pytest.param("\\boxed{0}", "gluon", id="boxed"),
    # A lone value decides unless the decision before it states the other class.
    pytest.param("Wide and busy.\n0", "gluon", id="lone"),
    pytest.param("**Gluon**", "gluon", id="lone-bold"),
    pytest.param("Quark\nGluon", None, id="lone-after-lone"),
    pytest.param(
        "It is a gluon jet.\nMaybe a quark jet, who knows.\nQuark", None, id="lone-vs-earlier"
    ),
    pytest.param("Answer: quark. But I might be wrong.\nQuark", "quark", id="lone-agrees"),
    # ...even when that statement only leans (a hedge) or quotes a decision: a lone value after
    # something that looks like a decision for the other class is no decision of its own.
    pytest.param("Perhaps the answer is gluon.\n1", None, id="lone-vs-hedged"),
    pytest.param('The format is "Final answer: gluon".\n1', None, id="lone-vs-quoted"),
    pytest.param(
        "Quark or gluon? The width settles it.\n**Quark**", "quark", id="lone-after-doubt"
    ),
    pytest.param(
        "It is a gluon jet. " + "The jet is wide. " * 300 + "\nQuark", None, id="lone-long-answer"
    ),
]


@pytest.mark.parametrize(("text", "label"), STRUCTURE_CASES)
def test_structure(text: str, label: str | None) -> None:
    assert label_of(text) == label


PROBABILITY_CASES = [
    # Every probability stated after the decision must agree with it.
    pytest.param('{"label": "quark", "quark_probability": 0.8}\nP(quark) = 0.1', id="json-later"),
    pytest.param("Final answer: quark\nP(quark) = 0.1\nP(quark) = 0.9", id="prose-any"),
    pytest.param("P(gluon) = 0.8\nFinal answer: quark", id="gluon-probability-before"),
]


@pytest.mark.parametrize("text", PROBABILITY_CASES)
def test_a_probability_that_disagrees_is_a_contradiction(text: str) -> None:
    with pytest.raises(ContradictionError):
        read_label(text)


def test_the_fixed_last_lines_give_label_and_probability() -> None:
    parsed = parse_label("The jet is wide.\nFinal answer: gluon\nP(quark) = 0.21")
    assert (parsed.label, parsed.quark_probability, parsed.step) == ("gluon", 0.21, "regex")
    parsed = parse_label("P(quark) = 0.73\nFinal answer: quark")
    assert (parsed.label, parsed.quark_probability) == ("quark", 0.73)
    # A superseded decision's probability is not this one's.
    parsed = parse_label("Answer: gluon (P(quark) = 0.1)\nIt is a quark jet.")
    assert (parsed.label, parsed.quark_probability) == ("quark", None)
    parsed = parse_label("Final answer: quark\nP(gluon) = 0.25")
    assert parsed.quark_probability == pytest.approx(0.75)


def test_the_last_json_object_that_is_no_example_is_the_answer() -> None:
    first, second = (
        json.dumps({"label": "gluon", "quark_probability": 0.1}),
        json.dumps({"label": "quark", "quark_probability": 0.9}),
    )
    assert label_of(f"Not {first} but {second}") == "quark"
    assert label_of(f"{first}\nFor example: {second}") is None  # the example names quark
    assert label_of(f"{second}\nFor example: {second}") == "quark"
    # A brace that opens no JSON object is prose; one that does is read as JSON only.
    assert label_of("The set {1, 2} is small.\nFinal answer: 1") == "quark"
    assert label_of('Final answer: quark {"label": "quark"}') is None


# -- the reason a user reads ----------------------------------------------------------------------

REASON_CASES = [
    # Each rule that refuses a label says which one in the error: the reason is what a user
    # counts failures by. The ambiguous-decision rule is held only here: without it the label
    # is still None, but the error names the wrong reason.
    pytest.param("The answer is quark: 0", "the answer's decision is ambiguous", id="ambiguous"),
    pytest.param("Final answer: quark or gluon.", "names both classes without", id="both"),
    pytest.param("Answer: quark. Wait.", "hedges, doubts or takes back", id="doubt"),
    pytest.param("Answer: quark.\nIt is not a quark jet.", "negates its decision", id="negated"),
    pytest.param("Answer: quark.\nThe jet has a gluon.", "names the other class", id="other"),
    pytest.param("The jet is narrow.", "states no explicit decision", id="none"),
]


@pytest.mark.parametrize(("text", "reason"), REASON_CASES)
def test_an_answer_without_a_label_says_which_rule_refused_it(text: str, reason: str) -> None:
    with pytest.raises(LabelParseError) as error:
        read_label(text)
    assert f"({reason}" in str(error.value) or f" {reason}" in str(error.value)
