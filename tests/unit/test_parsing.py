"""The answer parser: schema first, then the regex rules, never a guess."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vibe_jet_tagging import LabelParseError, parse_label
from vibe_jet_tagging.parsing import (
    JetLabel,
    TruncatedAnswerError,
    label_response_format,
    read_answer,
    reask_messages,
    regex_label,
    validate_answer,
)


@pytest.mark.parametrize(
    ("text", "label", "probability"),
    [
        ('{"label": "quark", "quark_probability": 0.81}', "quark", 0.81),
        (
            '```json\n{"label": "gluon", "quark_probability": 0.2}\n```\nHope this helps!',
            "gluon",
            0.2,
        ),
        ('Reasoning aside, my answer: {"label": "quark", "quark_probability": 1}', "quark", 1.0),
        # The last JSON object is the answer, not one quoted earlier.
        (
            'Not {"label": "gluon", "quark_probability": 0.1} but {"label": "quark", '
            '"quark_probability": 0.9}',
            "quark",
            0.9,
        ),
    ],
)
def test_schema_step_reads_json_anywhere_in_the_answer(text, label, probability):
    parsed = parse_label(text)
    assert (parsed.label, parsed.quark_probability, parsed.step) == (label, probability, "schema")


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Final answer: 1", "quark"),
        ("**Gluon**", "gluon"),
        ("The jet has many soft constituents, so the answer is 0.", "gluon"),
        ("label = gluon", "gluon"),
        ("Therefore quark.", "quark"),
        ("Wide and busy.\n0", "gluon"),
        ("I would say 1", "quark"),
        # The earlier classifier's failures: the first 0/1 in prose is not the answer...
        ("At first 1 seemed right, with 0 or 1 hard prongs, but the answer is 0", "gluon"),
        ("Could be 0, could be 1. Looking again at the width: 1", "quark"),
        # ..."0" inside "0.67" is no answer, and "so" inside "also" is no "so"...
        ("It has quark probability 0.67 and I also see a hard core. Answer: 1", "quark"),
        ("Probability 0.67; also narrow. Quark", "quark"),
        # ...and keywords take the last one that is not negated.
        ("Not a quark jet: it is a gluon jet.", "gluon"),
        ("This is a gluon jet rather than a quark", "gluon"),
    ],
)
def test_regex_step_takes_the_last_answer(text, label):
    parsed = parse_label(text)
    assert parsed.label == label
    assert parsed.step == "regex"
    assert parsed.value == (label == "quark")


def test_regex_reads_a_stated_probability():
    parsed = parse_label("quark_probability: 0.73, so the label is quark")
    assert parsed.quark_probability == pytest.approx(0.73)
    assert parse_label("Answer: 1").quark_probability is None


@pytest.mark.parametrize(
    "text", ["", "   ", "0.67", "I also think so", "10 and 01", "v1 of the jet"]
)
def test_no_answer_raises_with_the_raw_text(text):
    with pytest.raises(LabelParseError) as info:
        parse_label(text)
    assert info.value.raw == text


def test_truncated_answer_is_reported_as_truncated_not_parsed():
    with pytest.raises(TruncatedAnswerError) as info:
        validate_answer('{"label": "quark", "quark_prob', "length")
    assert info.value.truncated
    with pytest.raises(TruncatedAnswerError, match="reasoning used the whole budget"):
        validate_answer("", "length")
    # Even a complete-looking label is not trusted when the server cut the output.
    with pytest.raises(TruncatedAnswerError):
        read_answer('{"label": "quark", "quark_probability": 0.9}', "length", allow_reask=True)


def test_schema_rejects_out_of_range_and_unknown_labels():
    with pytest.raises(ValidationError):
        validate_answer('{"label": "quark", "quark_probability": 1.5}')
    with pytest.raises(ValidationError):
        validate_answer('{"label": "maybe", "quark_probability": 0.5}')


def test_read_answer_reasks_malformed_json_but_reads_prose_first():
    malformed = '{"label": "quark", "quark_probability": '
    assert isinstance(read_answer(malformed, "stop", allow_reask=True), ValidationError)
    prose = read_answer("Final answer: 0", "stop", allow_reask=True)
    assert prose.label == "gluon" and prose.step == "regex"
    assert isinstance(read_answer("no idea", "stop", allow_reask=True), ValidationError)
    with pytest.raises(LabelParseError):
        read_answer("no idea", "stop", allow_reask=False)
    # Without a re-ask, malformed JSON still gets the regex (it names a label).
    assert read_answer(malformed, "stop", allow_reask=False).label == "quark"


def test_reask_shows_the_model_its_answer_and_the_error():
    from langchain_core.messages import HumanMessage

    error = read_answer('{"label": "maybe", "quark_probability": 0.5}', "stop", allow_reask=True)
    messages = reask_messages([HumanMessage("jet")], '{"label": "maybe"}', error)
    assert [m.type for m in messages] == ["human", "ai", "human"]
    assert messages[1].content == '{"label": "maybe"}'
    assert "Correct your JSON" in messages[2].content and "label" in messages[2].content


def test_response_format_is_a_plain_dict_schema():
    fmt = label_response_format()
    json.dumps(fmt)  # no pydantic objects inside
    schema = fmt["json_schema"]["schema"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert schema["properties"]["label"]["enum"] == ["quark", "gluon"]
    assert schema["additionalProperties"] is False
    assert JetLabel.model_validate({"label": "gluon", "quark_probability": 0}).label == "gluon"


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parser_never_crashes_with_anything_but_its_error(text):
    try:
        parsed = parse_label(text)
    except LabelParseError:
        return
    assert parsed.label in ("quark", "gluon")
    assert parsed.quark_probability is None or 0 <= parsed.quark_probability <= 1


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_characters="01{}"), max_size=200).filter(
        lambda t: "quark" not in t.lower() and "gluon" not in t.lower()
    )
)
def test_text_without_labels_never_yields_one(text):
    assert regex_label(text) is None


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["quark", "gluon"]),
    st.text(max_size=80),
    st.sampled_from(["Answer: ", "Final answer: ", "label = "]),
)
def test_an_explicit_final_answer_wins_over_any_preamble(label, preamble, lead):
    text = f"{preamble}\n{lead}{label}"
    assert parse_label(text).label == label
