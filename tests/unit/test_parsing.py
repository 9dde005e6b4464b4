"""The answer parser: JSON as JSON, prose by its explicit decision, never a guess."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from vibe_jet_tagging import LabelParseError, parse_label
from vibe_jet_tagging.tagging.parsing import (
    PARSER_VERSION,
    SCHEMA_VERSION,
    TAIL_CHARS,
    ContradictionError,
    JetLabel,
    TruncatedAnswerError,
    label_response_format,
    read_answer,
    read_label,
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
        # 0.5 is the edge: quark.
        ('{"label": "quark", "quark_probability": 0.5}', "quark", 0.5),
    ],
)
def test_schema_step_reads_json_anywhere_in_the_answer(text, label, probability):
    parsed = parse_label(text)
    assert (parsed.label, parsed.quark_probability, parsed.step) == (label, probability, "schema")


# -- JSON is read as JSON only -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # Today's main read the 1 of "confidence" and returned quark.
        '{"label": "gluon", "quark_probability": 0.2, "confidence": 1}',
        '{"label": "unknown", "quark_probability": 0.5}',
        '{"label": "quark", "quark_probability": "high"}',
        '{"label": 1, "quark_probability": 0.8}',
        '{"p_class_1": 0.8, "p_class_0": 0.2}',
        '{"label": "quark", "quark_probability": ',
        "{'label': 'quark', 'quark_probability': 0.5,}",
        'Final answer: quark {"label": "quark"}',
    ],
)
def test_json_failing_the_schema_is_never_searched_with_the_regex(text):
    with pytest.raises(LabelParseError) as info:
        read_answer(text, "stop", allow_reask=False)
    assert info.value.raw == text and info.value.kind == "parse"
    assert info.value.reask is not None  # what the model would be re-asked with
    assert isinstance(read_answer(text, "stop", allow_reask=True), ValueError)
    assert regex_label(text) is None
    with pytest.raises(LabelParseError):
        parse_label(text)


def test_json_error_messages_say_what_was_wrong():
    with pytest.raises(LabelParseError, match=r"confidence: Extra inputs are not permitted"):
        parse_label('{"label": "gluon", "quark_probability": 0.2, "confidence": 1}')
    with pytest.raises(LabelParseError, match=r"quark_probability: Input should be a valid number"):
        parse_label('{"label": "quark", "quark_probability": "high"}')


# -- consistency -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "probability"),
    [("gluon", 1.0), ("gluon", 0.5), ("quark", 0.49), ("quark", 0.0), ("gluon", 0.9)],
)
def test_a_json_answer_that_contradicts_itself_is_an_error_of_its_own_kind(label, probability):
    text = json.dumps({"label": label, "quark_probability": probability})
    with pytest.raises(ContradictionError) as info:
        read_answer(text, "stop", allow_reask=False)
    assert info.value.kind == "contradiction" and info.value.raw == text
    assert f"contradicts quark_probability {probability}" in str(info.value)
    reask = read_answer(text, "stop", allow_reask=True)
    assert isinstance(reask, ValidationError)
    assert reask.errors()[0]["type"] == "contradiction"
    with pytest.raises(ValidationError):
        JetLabel(label=label, quark_probability=probability)


def test_prose_that_contradicts_its_stated_probability_is_a_contradiction():
    with pytest.raises(ContradictionError):
        parse_label("The quark probability is 0.2, so the answer is quark.")
    assert parse_label("The quark probability is 0.8, so the answer is quark.").label == "quark"


def test_versions_are_bumped_so_old_cached_answers_miss():
    assert (SCHEMA_VERSION, PARSER_VERSION) == ("2", "3")


# -- prose: explicit decisions only --------------------------------------------------------------


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
        ("**Answer:** Gluon", "gluon"),
        ("Final answer - **gluon**", "gluon"),
        ("Answer: 1 (quark)", "quark"),
        ("```\nquark\n```", "quark"),
        ("Thus it is a gluon jet.", "gluon"),
        ("I classify this jet as quark-initiated.", "quark"),
        # The earlier classifier's failures: the first 0/1 in prose is not the answer...
        ("At first 1 seemed right, with 0 or 1 hard prongs, but the answer is 0", "gluon"),
        # ..."0" inside "0.67" is no answer, and "so" inside "also" is no "so"...
        ("It has quark probability 0.67 and I also see a hard core. Answer: 1", "quark"),
        ("Probability 0.67; also narrow. Quark", "quark"),
        # ...a negation of the other class agrees with the decision...
        ("Not a quark jet: it is a gluon jet.", "gluon"),
        ("This is a gluon jet rather than a quark", "gluon"),
        ("It doesn't look like a gluon, so it's a quark jet.", "quark"),
        # ...doubts before the decision are reasoning, and the last decision wins.
        ("I'm not sure at first.\nFinal answer: quark", "quark"),
        ("Answer: 1. On reflection the width decides it.\nFinal answer: 0", "gluon"),
        # The emulated server's hedged style.
        (
            "A gluon (0) is not excluded: the width alone would give it about 0.35. But with 40 "
            "constituents against about 54 typical for a gluon, I'll go with quark: 1",
            "quark",
        ),
    ],
)
def test_prose_gives_the_label_of_its_explicit_decision(text, label):
    parsed = parse_label(text)
    assert parsed.label == label
    assert parsed.step == "regex"
    assert parsed.value == (label == "quark")


def test_regex_reads_a_stated_probability():
    parsed = parse_label("quark_probability: 0.73, so the label is quark")
    assert parsed.quark_probability == pytest.approx(0.73)
    assert parse_label("Answer: 1").quark_probability is None


@pytest.mark.parametrize(
    "text",
    [
        # The reproductions of issue 11 (today's main: gluon, quark, quark, quark x3).
        "I am not sure whether this is a quark or a gluon jet.",
        "Neither quark nor gluon; could be 1 of many.",
        "I cannot decide between 0 and 1.",
        "Step 1",
        "#1",
        "Feature: SkipQA #1",
        # Both classes or digits without a decision.
        "Quark or gluon.",
        "The answer is quark or gluon.",
        "Final answer: 0/1",
        "Options:\n1. quark\n2. gluon",
        "* quark\n* gluon",
        "Could be 0, could be 1. Looking again at the width: 1",
        # Hedges and refusals, also after a decision.
        "Maybe quark.",
        "It is either a quark or a gluon jet.",
        "Perhaps a gluon jet.",
        "Answer: quark?",
        "Answer: quark. But I might be wrong.",
        "I can't classify this jet without its constituents.",
        "I'm sorry, but I cannot help with that.",
        "If I had to guess, quark.",
        "It's a toss-up between quark and gluon.",
        # Conditionals.
        "It is a quark jet if the multiplicity is low; here it is high.",
        "Answer: quark; otherwise gluon",
        "Quark, depending on the width.",
        "Suppose it is a quark jet.",
        # Negated or ambiguous decisions.
        "It is not a quark jet.",
        "Answer: quark. Hmm, the answer is not quark.",
        "I'll go with quark: 0",
        "The answer is quark-like.",
        "Answer: 1 of 2",
        # Stray digits and words inside ordinary text.
        "The width: 1",
        "the count for this is 1.",
        "There is 1 hard prong.",
        "so quarkonium",
        "Answer: quark_probability",
        "The answer is gluonic radiation, hard to say.",
        "",
        "   ",
        "0.67",
        "I also think so",
        "10 and 01",
        "v1 of the jet",
    ],
)
def test_non_answers_give_no_label(text):
    with pytest.raises(LabelParseError) as info:
        parse_label(text)
    assert info.value.raw == text and info.value.kind == "parse"
    assert regex_label(text) is None
    assert isinstance(read_answer(text, "stop", allow_reask=True), ValueError)


# -- truncation, re-asks, the schema ------------------------------------------------------------


def test_truncated_answer_is_reported_as_truncated_not_parsed():
    with pytest.raises(TruncatedAnswerError) as info:
        validate_answer('{"label": "quark", "quark_prob', "length")
    assert info.value.truncated and info.value.kind == "truncated"
    with pytest.raises(TruncatedAnswerError, match="reasoning used the whole budget"):
        validate_answer("", "length")
    # Even a complete-looking label is not trusted when the server cut the output.
    for text in ('{"label": "quark", "quark_probability": 0.9}', "Final answer: 1"):
        with pytest.raises(TruncatedAnswerError) as info:
            read_answer(text, "length", allow_reask=True)
        assert info.value.reask is None  # asking again with the same budget cannot help


def test_schema_rejects_out_of_range_and_unknown_labels():
    with pytest.raises(ValidationError):
        validate_answer('{"label": "quark", "quark_probability": 1.5}')
    with pytest.raises(ValidationError):
        validate_answer('{"label": "maybe", "quark_probability": 0.5}')


def test_read_answer_reasks_json_and_prose_without_decision():
    malformed = '{"label": "quark", "quark_probability": '
    assert isinstance(read_answer(malformed, "stop", allow_reask=True), ValidationError)
    prose = read_answer("Final answer: 0", "stop", allow_reask=True)
    assert prose.label == "gluon" and prose.step == "regex"
    no_idea = read_answer("no idea", "stop", allow_reask=True)
    assert isinstance(no_idea, ValueError) and "Reply with only a JSON object" in str(no_idea)
    with pytest.raises(LabelParseError):
        read_answer("no idea", "stop", allow_reask=False)
    with pytest.raises(LabelParseError):
        read_answer(malformed, "stop", allow_reask=False)


def test_reask_shows_the_model_its_answer_and_the_error():
    from langchain_core.messages import HumanMessage

    error = read_answer('{"label": "maybe", "quark_probability": 0.5}', "stop", allow_reask=True)
    messages = reask_messages([HumanMessage("jet")], '{"label": "maybe"}', error)
    assert [m.type for m in messages] == ["human", "ai", "human"]
    assert messages[1].content == '{"label": "maybe"}'
    assert "Correct your JSON" in messages[2].content and "label" in messages[2].content
    # A huge answer is shown as the parser read it: its tail.
    huge = "x" * (3 * TAIL_CHARS) + "Step 1"
    shown = reask_messages([HumanMessage("jet")], huge, ValueError("no decision"))[1].content
    assert len(shown) == TAIL_CHARS and shown.endswith("Step 1")


def test_response_format_is_a_plain_dict_schema():
    fmt = label_response_format()
    json.dumps(fmt)  # no pydantic objects inside
    schema = fmt["json_schema"]["schema"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert schema["properties"]["label"]["enum"] == ["quark", "gluon"]
    assert schema["additionalProperties"] is False
    assert JetLabel.model_validate({"label": "gluon", "quark_probability": 0}).label == "gluon"


def test_parse_errors_are_langchain_output_parser_exceptions_and_package_errors():
    from langchain_core.exceptions import OutputParserException

    from vibe_jet_tagging import VJTError

    with pytest.raises(LabelParseError) as info:
        parse_label("Step 1")
    error = info.value
    assert isinstance(error, OutputParserException) and isinstance(error, VJTError)
    assert error.llm_output == "Step 1"
    assert "\n" not in str(error) and "troubleshooting" not in str(error)
    # It crosses process boundaries (Dask, Ray, multiprocessing) as itself.
    import pickle

    for raised in (error, ContradictionError("c", raw="x"), TruncatedAnswerError("t", raw="")):
        again = pickle.loads(pickle.dumps(raised))
        assert type(again) is type(raised) and str(again) == str(raised)
        assert again.raw == raised.raw and again.kind == raised.kind


# -- only the end of an answer is read -----------------------------------------------------------


@pytest.mark.parametrize("size", [10**6, 10**7])
@pytest.mark.parametrize("filler", ["\n", "answer is ", "**", "1 ", "quark or ", "{", '{"'])
def test_a_huge_answer_is_read_from_its_tail_only(monkeypatch, size, filler):
    """The work is bounded by TAIL_CHARS whatever the answer's length (no timing asserted)."""
    from vibe_jet_tagging.tagging.parsing import answer

    seen: list[int] = []
    walk, validate = answer.read, answer.process_response

    def spy_walk(text, check, **kwargs):
        seen.append(len(text))
        return walk(text, check, **kwargs)

    def spy_validate(completion, **kwargs):
        seen.append(len(completion.choices[0].message.content))
        return validate(completion, **kwargs)

    monkeypatch.setattr(answer, "read", spy_walk)
    monkeypatch.setattr(answer, "process_response", spy_validate)
    text = filler * (size // len(filler)) + "\nFinal answer: gluon"
    if filler == '{"':
        with pytest.raises(LabelParseError):  # an open JSON object runs to the end
            read_label(text)
    else:  # "{{{{" opens no JSON object: it is prose
        assert read_label(text).label == "gluon"
    assert seen and max(seen) <= TAIL_CHARS


def test_the_compact_regex_leaves_the_model_free_to_contradict_itself():
    """vLLM's grammar must not choose the probability for the model: a contradiction is
    counted (after a re-ask), never hidden."""
    import re

    from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX

    assert re.fullmatch(COMPACT_LABEL_REGEX, '{"label":"gluon","quark_probability":0.9}')
    assert re.fullmatch(COMPACT_LABEL_REGEX, '{"label":"quark","quark_probability":0.0001}')
    assert not re.fullmatch(COMPACT_LABEL_REGEX, '{"label": "quark","quark_probability":1}')
    assert not re.fullmatch(COMPACT_LABEL_REGEX, '{"label":"quark","quark_probability":0.12345}')
