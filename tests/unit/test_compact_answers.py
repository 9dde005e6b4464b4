"""The reader's shortcut for an answer that is one JSON object: the same outcome as instructor.

``read_label`` validates an answer that is exactly one flat JSON object (whitespace around it
allowed) with :class:`JetLabel`'s ``model_validate_json`` directly, and sends everything else,
and every failure, through the reader's rule and instructor. What must hold: for any answer
near that boundary (labels in any case, digits, extra, missing and repeated fields, nested
values, braces in strings, broken JSON, text or a fence around the object, unusual
whitespace, every finish reason, ``digit_labels`` on and off), ``read_label`` gives what the
instructor path gives: the same label, probability and step, or the same error and message.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibe_jet_tagging.tagging.parsing import LabelParseError, answer, read_label
from vibe_jet_tagging.tagging.parsing.prose import TAIL_CHARS

SAME = settings(
    max_examples=int(os.environ.get("VJT_COMPACT_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

_LABELS = st.sampled_from(
    [
        "quark", "gluon", "Quark", "GLUON", "gLuOn", " quark", "quark ", "\tgluon\n",
        "1", "0", "2", "q", "", "quarks", "maybe", "QUARK ",
    ]
) | st.sampled_from([1, 0, 1.0, 0.0, True, False, None, 2, -1, [], {}])  # fmt: skip
_PROBABILITIES = (
    st.floats(min_value=0.0, max_value=1.0)
    | st.sampled_from([0, 1, 0.5, 0.4999, 0.5001, 1e-9, -0.0, -0.1, 1.1, 2, True, False, None])
    | st.sampled_from(["0.7", "0.2", "1", "", "high", [0.7], {"p": 0.7}])
)
_EXTRA_KEYS = st.sampled_from(["answer", "reason", "x", "Label", "quark_probability ", "{", "["])
_EXTRA_VALUES = st.one_of(
    st.text(max_size=8),
    st.integers(-3, 3),
    st.sampled_from(["}", "{", "[1]", "quark", '"', "\\"]),
    st.just([1, 2]),
    st.just({"a": {"b": 1}}),
)
_SPACE = st.sampled_from(["", " ", "\n", "\n\n", "\t", "  \n", "\r\n", "\u2003", "\x1c", "\xa0"])
_FINISH = st.sampled_from(
    [None, "", "stop", "stop", "stop", "tool_calls", "content_filter", "abort"]
)


def _literal(value: Any) -> str:
    return json.dumps(value)


_VALID_LABELS = {
    "quark": ["quark", "Quark", "QUARK", " quark", "quark\n", "1", 1, 1.0, True],
    "gluon": ["gluon", "Gluon", "GLUON", "gLuOn", "\tgluon ", "0", 0, 0.0, False],
}


@st.composite
def agreeing(draw: st.DrawFn) -> tuple[str, str]:
    """A label as it may be written (digits included) and a probability that agrees."""
    label = draw(st.sampled_from(["quark", "gluon"]))
    written = _literal(draw(st.sampled_from(_VALID_LABELS[label])))
    if label == "quark":
        p = draw(st.floats(min_value=0.5, max_value=1.0) | st.sampled_from([0.5, 1, 0.9794]))
    else:
        p = draw(st.floats(min_value=0.0, max_value=0.4999) | st.sampled_from([0, 0.1, -0.0]))
    return written, _literal(p)


@st.composite
def objects(draw: st.DrawFn) -> str:
    """A JSON object (mostly valid JSON) around the label's two fields; half of them a valid
    label (in any case, or as a digit) with an agreeing probability."""
    pairs: list[tuple[str, str]] = []
    if draw(st.booleans()):
        label, p = draw(agreeing())
        pairs += [("label", label), ("quark_probability", p)]
    else:
        if draw(st.integers(0, 9)) > 0:
            pairs.append(("label", _literal(draw(_LABELS))))
        if draw(st.integers(0, 9)) > 0:
            raw = draw(st.sampled_from(["", "", "", "e", "exp", "nan", "inf"]))
            p = {"e": "7e-1", "exp": "1E0", "nan": "NaN", "inf": "Infinity"}.get(raw)
            pairs.append(("quark_probability", p or _literal(draw(_PROBABILITIES))))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        kind = draw(st.sampled_from(["extra", "repeat_label", "repeat_p", "deep"]))
        if kind == "extra":
            pairs.append((draw(_EXTRA_KEYS), _literal(draw(_EXTRA_VALUES))))
        elif kind == "repeat_label":
            pairs.append(("label", _literal(draw(_LABELS))))
        elif kind == "repeat_p":
            pairs.append(("quark_probability", _literal(draw(_PROBABILITIES))))
        else:  # a repeated key whose first value nests deeper than instructor reads
            depth = draw(st.sampled_from([2, 127, 130]))
            pairs.insert(0, ("label", "[" * depth + "]" * depth))
    pairs = draw(st.permutations(pairs))
    colon = draw(st.sampled_from([":", ": ", " : "]))
    comma = draw(st.sampled_from([",", ", ", ",\n  "]))
    quote = draw(st.sampled_from(['"'] * 9 + ["'"]))
    body = comma.join(f"{quote}{k}{quote}{colon}{v}" for k, v in pairs)
    inner = draw(st.sampled_from(["", "", " ", "\n  "]))
    text = "{" + inner + body + inner.rstrip(" ") + "}"
    damage = draw(st.sampled_from(["none"] * 12 + ["cut", "trailing_comma", "double_close"]))
    if damage == "cut":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    elif damage == "trailing_comma":
        text = text[:-1] + ",}"
    elif damage == "double_close":
        text += "}"
    return text


@st.composite
def compact_answers(draw: st.DrawFn) -> str:
    """An object, mostly alone between whitespace; sometimes with text, a fence or a long
    preamble around it."""
    text = draw(objects())
    around = draw(st.sampled_from(["alone"] * 6 + ["fence", "lead", "after", "two", "long"]))
    if around == "fence":
        text = f"```json\n{text}\n```"
    elif around == "lead":
        text = draw(st.sampled_from(["Answer: ", "e.g. ", "The format is:\n", "Final: "])) + text
    elif around == "after":
        text += draw(st.sampled_from([" not sure", "\nP(quark) = 0.1", " Hope this helps.", "?"]))
    elif around == "two":
        text = draw(objects()) + draw(_SPACE) + text
    elif around == "long":
        text = "x" * (TAIL_CHARS - len(text) + draw(st.integers(-2, 2))) + text
    return draw(_SPACE) + text + draw(_SPACE)


def outcome(read: Any, content: str, finish: str | None, digits: bool) -> tuple[Any, ...]:
    try:
        parsed = read(content, finish, digit_labels=digits)
    except LabelParseError as error:
        reask = error.reask
        return (type(error), str(error), error.raw, type(reask), str(reask))
    return ("label", parsed.label, parsed.quark_probability, parsed.step)


def by_rule(content: str, finish: str | None, *, digit_labels: bool) -> Any:
    return answer._read_by_rule(content, finish, digit_labels)


@SAME
@given(compact_answers(), _FINISH, st.booleans())
def test_the_shortcut_gives_what_instructor_gives(
    content: str, finish: str | None, digits: bool
) -> None:
    assert outcome(read_label, content, finish, digits) == outcome(by_rule, content, finish, digits)


@pytest.mark.parametrize(
    ("content", "digits", "label", "p"),
    [
        ('{"label":"quark","quark_probability":0.9794}', False, "quark", 0.9794),
        ('\n  {"label": "GLUON", "quark_probability": 0.1}\n', False, "gluon", 0.1),
        ('{"quark_probability": 1, "label": " Quark "}', False, "quark", 1.0),
        ('{"label":"0","quark_probability":0.25}', True, "gluon", 0.25),
    ],
)
def test_a_lone_object_is_read_without_instructor(
    monkeypatch: pytest.MonkeyPatch, content: str, digits: bool, label: str, p: float
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("instructor was asked")

    monkeypatch.setattr(answer, "process_response", refuse)
    parsed = read_label(content, "stop", digit_labels=digits)
    assert (parsed.label, parsed.quark_probability, parsed.step) == (label, p, "schema")


@pytest.mark.parametrize(
    ("content", "finish"),
    [
        ('{"label":"quark","quark_probability":0.2}', "stop"),  # a contradiction: the error
        ('{"label":"1","quark_probability":0.9}', "stop"),  # a digit without digit_labels
        ('Answer: {"label":"quark","quark_probability":0.9}', "stop"),  # text around it
        ('{"label":"quark","quark_probability":0.9,"x":[1]}', "stop"),  # nested
        ('{"label":"quark","quark_probability":0.9}', "abort"),  # an unknown finish reason
    ],
)
def test_anything_else_goes_through_instructor(
    monkeypatch: pytest.MonkeyPatch, content: str, finish: str
) -> None:
    asked: list[str] = []
    original = answer.process_response

    def counted(response: Any, **kwargs: Any) -> Any:
        asked.append(response.choices[0].message.content)
        return original(response, **kwargs)

    monkeypatch.setattr(answer, "process_response", counted)
    assert outcome(read_label, content, finish, False) == outcome(by_rule, content, finish, False)
    if finish != "abort":  # the completion instructor reads cannot be built for "abort"
        assert asked, "the reader's rule and instructor were skipped"
