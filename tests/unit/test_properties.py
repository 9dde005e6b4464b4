"""Property-based tests of the answer parser and jet validation (hypothesis).

Extends the parser properties of ``test_parsing.py`` (which fuzzes ``parse_label`` with plain
text): answers built from JSON, code fences, numbers and keywords, ``read_answer`` with every
finish reason, and jets and data sets from arbitrary input. What must hold:

- nothing crashes them with anything but their typed errors (``LabelParseError``,
  ``ValueError``);
- no label ever comes from an answer that states none, nor from a truncated one, nor from
  JSON by any other way than the schema; hedges, refusals, both classes without a decision
  and stray digits never give one; an explicit "answer: X" ending any preamble gives X;
- a valid jet has one key, whatever its row order, padding or input form.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vibe_jet_tagging import parse_label
from vibe_jet_tagging.jets import Jet, jet_observables
from vibe_jet_tagging.jets.dataset import JetDataset, dataset_from_arrays
from vibe_jet_tagging.tagging.parsing import (
    LabelParseError,
    ParsedLabel,
    TruncatedAnswerError,
    read_answer,
    regex_label,
)

pytestmark = pytest.mark.filterwarnings("ignore:Casting complex values to real")

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- answers -----------------------------------------------------------------------------------

LABELS = st.sampled_from(["quark", "gluon"])
PROBABILITIES = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
FINISH = st.sampled_from([None, "stop", "length", "tool_calls", "content_filter", ""])

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | LABELS
    | st.sampled_from(["Quark", "GLUON", "maybe", "1", "0"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["label", "quark_probability", "answer", "x"]) | st.text(max_size=6),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
FRAGMENTS = st.one_of(
    st.text(max_size=24),
    JSON_VALUES.map(json.dumps),
    st.builds(
        lambda label, p: json.dumps({"label": label, "quark_probability": p}), LABELS, PROBABILITIES
    ),
    st.sampled_from(
        [
            "```json\n",
            "```",
            "\n",
            "{",
            "}",
            '"',
            "Answer: ",
            "Final answer - **",
            "**",
            "label = ",
            "therefore ",
            "not a ",
            "rather than ",
            "quark",
            "Gluon",
            "0",
            "1",
            "0.67",
            " ",
        ]
    ),
)
ANSWERS = st.lists(FRAGMENTS, max_size=8).map("".join)

# Fragments that state no label: no quark/gluon word, no standalone 0 or 1 (digits inside
# numbers and words, JSON with wrong labels, negations and answer lead-ins are fine).
_WORDS = st.sampled_from(
    [
        "the jet",
        "is wide",
        "has many constituents",
        "quarkonium",
        "gluonic",
        "quark_probability",
        "Answer:",
        "label =",
        "therefore",
        "not",
        "**maybe**",
        "v1",
        "x0",
        "10",
        "01",
        "2",
        "0.67",
        "1.5",
        "-0.25",
        "```",
        "\n",
        "so",
        "also",
    ]
)
_NUMBERS = st.one_of(
    st.integers().filter(lambda i: abs(i) >= 2).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.3f}"),
)
_WRONG_JSON = st.builds(
    lambda label, p, key: json.dumps({key: label, "quark_probability": p}),
    st.sampled_from(["maybe", "unknown", "up", "top", "", "q", "g"]),
    st.one_of(PROBABILITIES, st.floats(min_value=1.5, max_value=9.0)),
    st.sampled_from(["label", "answer", "class"]),
)
LABEL_FREE = st.lists(
    st.one_of(_WORDS, _NUMBERS, _WRONG_JSON, st.text(alphabet="abcdefhijkmnprstvwxyz ,.;:!?-")),
    max_size=10,
).map(" ".join)


def check_parsed(parsed: ParsedLabel) -> None:
    assert parsed.label in ("quark", "gluon")
    assert parsed.step in ("schema", "reask", "regex")
    p = parsed.quark_probability
    assert p is None or (0.0 <= p <= 1.0 and not math.isnan(p))


@FUZZ
@given(ANSWERS)
def test_parse_label_gives_a_label_or_its_error_for_any_answer(text: str) -> None:
    try:
        parsed = parse_label(text)
    except LabelParseError as exc:
        error = exc
    else:
        check_parsed(parsed)
        assert parsed.step in ("schema", "regex")
        return
    assert error.raw == text and not error.truncated


@FUZZ
@given(ANSWERS, FINISH, st.booleans())
def test_read_answer_gives_a_label_an_error_to_reask_with_or_raises(
    text: str, finish: str | None, allow_reask: bool
) -> None:
    error: LabelParseError | None = None
    try:
        outcome = read_answer(text, finish, allow_reask=allow_reask)
    except LabelParseError as exc:
        error = exc
    if error is not None:
        assert error.raw == text
        assert error.truncated == (finish == "length")
        return
    assert finish != "length", "a truncated answer gave a label"
    if isinstance(outcome, Exception):
        assert allow_reask, "an error to re-ask with, though re-asking is off"
        assert isinstance(outcome, ValueError)
        return
    check_parsed(outcome)
    p = outcome.quark_probability
    assert p is None or (outcome.label == "quark") == (p >= 0.5), "a contradiction was taken"
    # Without a re-ask, read_answer and parse_label read the same label.
    if not allow_reask:
        assert parse_label(text).label == outcome.label


@FUZZ
@given(ANSWERS)
def test_a_truncated_answer_never_gives_a_label(text: str) -> None:
    for allow_reask in (True, False):
        with pytest.raises(TruncatedAnswerError) as info:
            read_answer(text, "length", allow_reask=allow_reask)
        assert info.value.truncated and info.value.raw == text


@FUZZ
@given(LABEL_FREE, FINISH.filter(lambda f: f != "length"))
def test_no_label_from_an_answer_that_states_none(text: str, finish: str | None) -> None:
    with pytest.raises(LabelParseError):
        parse_label(text)
    with pytest.raises(LabelParseError):
        read_answer(text, finish, allow_reask=False)
    assert isinstance(read_answer(text, finish, allow_reask=True), ValueError)


_PROSE = st.text(
    alphabet=st.characters(blacklist_characters="{}[]`\"'", blacklist_categories=["Cs"]),
    max_size=60,
)


_REMARKS = st.lists(
    st.sampled_from(
        [
            "Hope this helps.",
            "Based mainly on the 54 constituents.",
            "The multiplicity drives this call; the width agrees.",
            "",
            "**Done**",
            "```",
            "Girth 0.061, pTD 0.27.",
        ]
    ),
    max_size=3,
).map("\n".join)


@FUZZ
@given(_PROSE, PROBABILITIES, _REMARKS, st.booleans())
def test_a_valid_json_answer_after_any_reasoning_is_read_exactly_by_the_schema(
    before: str, p: float, after: str, fenced: bool
) -> None:
    """Anything before the answer is reasoning; remarks after it that name no label stand."""
    label = "quark" if p >= 0.5 else "gluon"
    blob = json.dumps({"label": label, "quark_probability": p})
    if fenced:
        blob = f"```json\n{blob}\n```"
    text = f"{before}\n{blob}\n{after}"
    parsed = parse_label(text)
    assert (parsed.label, parsed.quark_probability, parsed.step) == (label, p, "schema")
    again = read_answer(text, "stop", allow_reask=True)
    assert isinstance(again, ParsedLabel)
    assert (again.label, again.quark_probability, again.step) == (label, p, "schema")


@FUZZ
@given(_PROSE, PROBABILITIES, _PROSE)
def test_a_json_answer_followed_by_anything_gives_its_own_label_or_none(
    before: str, p: float, after: str
) -> None:
    """What follows the JSON may take it back (no label) or decide anew, never relabel it."""
    label = "quark" if p >= 0.5 else "gluon"
    text = f"{before}\n{json.dumps({'label': label, 'quark_probability': p})}\n{after}"
    try:
        parsed = parse_label(text)
    except LabelParseError:
        return
    if parsed.step == "schema":
        assert (parsed.label, parsed.quark_probability) == (label, p)
    else:  # a later prose decision of its own
        assert parsed.step == "regex" and parse_label(after).label == parsed.label


def contradicting(label: str, p: float) -> str:
    """A JSON answer whose label disagrees with its probability."""
    if (label == "quark") == (p >= 0.5):
        label = "gluon" if label == "quark" else "quark"
    return json.dumps({"label": label, "quark_probability": p})


@FUZZ
@given(LABELS, PROBABILITIES, _PROSE, _REMARKS)
def test_a_json_answer_that_contradicts_itself_is_a_contradiction(
    label: str, p: float, before: str, after: str
) -> None:
    with pytest.raises(LabelParseError) as info:
        parse_label(f"{before}\n{contradicting(label, p)}\n{after}")
    assert info.value.kind == "contradiction"


@FUZZ
@given(LABELS, PROBABILITIES, _PROSE, _PROSE)
def test_a_json_answer_that_contradicts_itself_never_gives_a_label(
    label: str, p: float, before: str, after: str
) -> None:
    try:
        parsed = parse_label(f"{before}\n{contradicting(label, p)}\n{after}")
    except LabelParseError:
        return
    # Only a later decision of the prose's own can give a label, never the JSON.
    assert parsed.step == "regex" and parse_label(after).label == parsed.label


# -- prose: explicit decisions, nothing else -----------------------------------------------------

_LABEL_TOKENS = st.sampled_from(
    ["quark", "gluon", "Quark", "GLUON", "0", "1", "a quark jet", "the gluon", "quark-initiated"]
)
_NEUTRAL = st.sampled_from(
    [
        "The jet has 41 constituents.",
        "Its girth is 0.052, in between.",
        "Gluons radiate more (C_A = 3 versus C_F = 4/3).",
        "Multiplicity is the strongest handle",
        "Let me weigh the evidence",
        "Step 1: count the particles.",
        "Answer: quark.",
        "Final answer: 0",
        "Therefore gluon.",
        "**Quark**",
        "",
    ]
)
_HEDGES = st.sampled_from(
    [
        "I am not sure whether this is {a} or {b}.",
        "Neither {a} nor {b}; could be {a}.",
        "I cannot decide between {a} and {b}.",
        "Maybe {a}.",
        "Perhaps {a}, perhaps {b}.",
        "It could be {a}.",
        "It is either {a} or {b}.",
        "{a} or {b}?",
        "Hard to say: {a} or {b}.",
        "If I had to guess: {a}.",
        "I can't tell whether it is {a}.",
        "I'm sorry, I cannot classify this jet as {a} or {b}.",
        "Answer: {a}?",
        "It's a toss-up, {a} vs {b}.",
        "I don't know if the answer is {a}.",
        "The answer is {a} or {b}.",
        "Final answer: {a}/{b}",
    ]
)


@FUZZ
@given(st.lists(_NEUTRAL, max_size=4), _HEDGES, _LABEL_TOKENS, _LABEL_TOKENS)
def test_a_hedge_or_refusal_at_or_after_the_decision_never_gives_a_label(
    before: list[str], hedge: str, a: str, b: str
) -> None:
    text = "\n".join([*before, hedge.format(a=a, b=b)])
    assert regex_label(text) is None
    with pytest.raises(LabelParseError):
        read_answer(text, "stop", allow_reask=False)


_ORDINARY = st.sampled_from(
    ["the", "jet", "has", "step", "#1", "width", "constituents", "many", "of", "with", "wide",
     "narrow", "count", "feature:", "SkipQA", "prong", "0.5", "10", "x1", "(1)", "item", "v0",
     "page", "case", "figure", "1", "0", "1,", "0.", "#0", "no.", "and"]
)  # fmt: skip


@FUZZ
@given(st.lists(st.lists(_ORDINARY, min_size=1, max_size=8), min_size=1, max_size=5))
def test_a_bare_digit_inside_ordinary_text_is_never_a_decision(lines: list[list[str]]) -> None:
    # Every line has a word besides its digits: no line is a lone 0 or 1.
    text = "\n".join(" ".join([*words, "words"]) for words in lines)
    assert regex_label(text) is None


_LEADS = st.sampled_from(
    ["Answer: ", "Final answer: ", "label = ", "The answer is ", "So the answer is ",
     "Final answer - ", "Therefore ", "I'd say ", "**Answer:** ", "Prediction: "]
)  # fmt: skip
_VALUES = st.sampled_from(
    [("quark", "quark"), ("gluon", "gluon"), ("1", "quark"), ("0", "gluon"),
     ("**Gluon**", "gluon"), ("a quark jet", "quark"), ("`0`", "gluon"),
     ("Quark.", "quark"), ("gluon-initiated", "gluon"), ("1 (quark)", "quark")]
)  # fmt: skip


@FUZZ
@given(st.text(max_size=200).filter(lambda t: "{" not in t), _LEADS, _VALUES)
def test_an_explicit_answer_ending_any_preamble_gives_its_label(
    preamble: str, lead: str, value: tuple[str, str]
) -> None:
    written, label = value
    parsed = parse_label(f"{preamble}\n{lead}{written}")
    assert (parsed.label, parsed.step) == (label, "regex")


# -- jets --------------------------------------------------------------------------------------

PIDS = st.sampled_from([0, 11, -11, 13, 22, 130, 211, -211, 321, -321, 2112, 2212, -2212])


@st.composite
def constituents(draw: Any, min_rows: int = 1, max_rows: int = 25) -> np.ndarray:
    """Valid ``(n, 4)`` constituents: positive pt, finite y and phi, integral PDG ids."""
    n = draw(st.integers(min_rows, max_rows))
    finite = {"allow_nan": False, "allow_infinity": False}
    pt = draw(hnp.arrays(np.float64, n, elements=st.floats(1e-3, 1e3, **finite)))
    y = draw(hnp.arrays(np.float64, n, elements=st.floats(-5, 5, **finite)))
    phi = draw(hnp.arrays(np.float64, n, elements=st.floats(-7, 7, **finite)))
    pid = np.array(draw(st.lists(PIDS, min_size=n, max_size=n)), dtype=np.float64)
    return np.stack([pt, y, phi, pid], axis=1)


@st.composite
def shuffled_and_padded(draw: Any, rows: np.ndarray) -> np.ndarray:
    """``rows`` in another order with zero rows (padding) inserted anywhere."""
    order = draw(st.permutations(range(len(rows))))
    padding = draw(st.integers(0, 10))
    out = np.concatenate([rows[list(order)], np.zeros((padding, 4))])
    return out[draw(st.permutations(range(len(out))))]


@FUZZ
@given(st.data(), constituents())
def test_a_jets_key_ignores_row_order_padding_and_input_form(data: Any, rows: np.ndarray) -> None:
    jet = Jet.from_array(rows)
    other = data.draw(shuffled_and_padded(rows))
    assert Jet.from_array(other).key == jet.key
    assert Jet.from_array(other.tolist()).key == jet.key  # nested lists, not an array
    pt, y, phi, pid = rows.T
    assert Jet.from_mapping({"pt": pt, "y": y, "phi": phi, "pdgid": pid}) == jet
    assert Jet.from_mapping({"pt": pt, "rapidity": y, "phi": phi, "pid": pid}) == jet
    assert Jet.coerce({"jet": other}) == jet
    assert Jet.coerce(jet) is jet
    # Canonical form: pt descending, padding gone, read-only, and a fixed point.
    c = jet.constituents
    assert len(jet) == len(rows) and not c.flags.writeable
    assert (np.diff(c[:, 0]) <= 0).all()
    assert Jet.from_array(c).key == jet.key
    # -0.0 and 0.0 are the same value.
    signed = rows.copy()
    signed[:, 1:3][signed[:, 1:3] == 0] = -0.0
    assert Jet.from_array(signed).key == jet.key


@FUZZ
@given(
    constituents(),
    st.integers(0, 24),
    st.sampled_from([(0, 1.5), (1, 0.25), (2, -0.125), (3, 1.0)]),
)
def test_any_changed_value_changes_the_key(
    rows: np.ndarray, row: int, change: tuple[int, float]
) -> None:
    column, amount = change
    row %= len(rows)
    changed = rows.copy()
    if column == 0:
        changed[row, 0] *= amount
    else:
        changed[row, column] += amount
    assert Jet.from_array(changed).key != Jet.from_array(rows).key


@FUZZ
@given(st.lists(constituents(max_rows=12), min_size=1, max_size=6), st.data())
def test_a_data_set_reads_back_the_jets_it_was_given(jets: list[np.ndarray], data: Any) -> None:
    labels = data.draw(
        st.lists(
            st.sampled_from([0, 1, 0.0, 1.0, True, False]), min_size=len(jets), max_size=len(jets)
        )
    )
    expected = [Jet.from_array(j).key for j in jets]
    ragged = dataset_from_arrays(jets, labels)
    padded = np.zeros((len(jets), max(len(j) for j in jets) + 10, 4))
    for i, j in enumerate(jets):
        block = data.draw(shuffled_and_padded(j))  # other order, padding rows anywhere
        padded[i, : len(block)] = block
    for ds in (ragged, dataset_from_arrays(padded, np.asarray(labels, dtype=float))):
        assert len(ds) == len(jets)
        assert [jet.key for jet in ds] == expected
        assert [ds[i].index for i in range(len(ds))] == list(range(len(jets)))
        assert ds.labels.tolist() == [int(v) for v in labels]
        assert [jet.key for jet in dataset_from_arrays(ds.padded())] == expected


# -- arbitrary input: ValueError or a result, nothing else ---------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(),
    st.text(max_size=4),
    st.complex_numbers(max_magnitude=10),
    st.integers(min_value=10**308, max_value=10**400),
)
_NESTED = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=5), max_leaves=30)
_ARRAYS = hnp.arrays(
    st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
)
ANY_JET_INPUT = st.one_of(
    _ARRAYS,
    _NESTED,
    st.lists(st.lists(st.floats() | st.integers(-(2**63), 2**63), min_size=4, max_size=4)),
    constituents().map(lambda r: r.tolist()),
)


def valid_or_value_error(build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(*args)``, or ``None`` when it raised ``ValueError`` (anything else fails)."""
    try:
        return build(*args, **kwargs)
    except ValueError as exc:
        message = str(exc)
    assert message, "a ValueError without a message"
    return None


@FUZZ
@given(ANY_JET_INPUT, st.none() | st.integers(0, 10**6))
def test_from_array_accepts_or_raises_value_error(data: Any, index: int | None) -> None:
    jet = valid_or_value_error(Jet.from_array, data, index=index)
    if jet is None:
        return
    c = jet.constituents
    assert c.ndim == 2 and c.shape[1] == 4 and len(c) >= 1
    assert np.isfinite(c).all() and (c[:, 0] > 0).all()
    assert (c[:, 3] == np.round(c[:, 3])).all()
    assert jet.index == index


_COLUMN = st.one_of(_SCALARS, st.lists(st.floats() | st.integers(-100, 100), max_size=6), _ARRAYS)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["pt", "y", "rapidity", "phi", "pdgid", "pid", "other"]),
        _COLUMN,
        max_size=6,
    )
)
def test_from_mapping_and_coerce_accept_or_raise_value_error(mapping: dict[str, Any]) -> None:
    jet = valid_or_value_error(Jet.from_mapping, mapping)
    via_coerce = valid_or_value_error(Jet.coerce, {"jet": mapping})
    assert (jet is None) == (via_coerce is None)
    if jet is not None:
        assert jet == via_coerce


@FUZZ
@given(ANY_JET_INPUT | st.lists(ANY_JET_INPUT, max_size=4), st.none() | _NESTED)
def test_dataset_from_arrays_accepts_or_raises_value_error(X: Any, y: Any) -> None:
    ds = valid_or_value_error(dataset_from_arrays, X, y)
    if ds is None:
        return
    assert isinstance(ds, JetDataset)
    for i in range(len(ds)):
        jet = valid_or_value_error(ds.__getitem__, i)
        assert jet is None or jet.index == i
    valid_or_value_error(ds.padded)


# -- found by the properties above: regressions ----------------------------------------------

_ESCAPES = [
    pytest.param(lambda: Jet.from_array([[10**400, 0.0, 0.0, 22]]), id="from_array-huge-int"),
    pytest.param(
        lambda: Jet.from_mapping({"pt": {"a": 1}, "y": [0.0], "phi": [0.0]}), id="mapping-dict"
    ),
    pytest.param(
        lambda: Jet.from_mapping({"pt": [10**400], "y": [0.0], "phi": [0.0]}), id="mapping-huge"
    ),
    pytest.param(
        lambda: Jet.from_mapping({"pt": [1.0], "y": [0.0], "phi": 0j}), id="mapping-complex"
    ),
    pytest.param(lambda: Jet.coerce({"pt": None, "y": {}, "phi": 0}), id="coerce-mapping-dict"),
    pytest.param(
        lambda: dataset_from_arrays([np.ones((2, 4)), {"pt": 1}]), id="dataset-dict-in-list"
    ),
    pytest.param(lambda: dataset_from_arrays([[[10**400, 0, 0, 0]]]), id="dataset-huge-int"),
    pytest.param(lambda: dataset_from_arrays(0j), id="dataset-complex"),
]


@pytest.mark.parametrize("build", _ESCAPES)
def test_numpy_errors_do_not_escape_validation(build: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (any ValueError is the contract)
        build()


@pytest.mark.parametrize(
    "text",
    [
        "so quarkonium",
        "Answer: quark_probability",
        'Therefore: {"label": "unsure", "quark_probability": 0.5}',
        "The answer is gluonic radiation, hard to say.",
    ],
)
def test_no_label_read_from_inside_a_word(text: str) -> None:
    assert regex_label(text) is None


_ROW_VALUES = st.sampled_from([0.0, -0.0, 1.0, 2.0, -1.0, 0.5, 211.0, 22.5, np.nan, np.inf])


@given(
    st.lists(st.one_of(constituents(max_rows=8), st.just(None)), min_size=1, max_size=6),
    st.data(),
)
def test_from_rows_builds_each_jet_as_from_array_does(jets: list[Any], data: Any) -> None:
    """Jets built a block at a time (data sets, (N, M, 4) arrays in abatch) are the jets
    from_array builds one by one, or the same ValueError: padding anywhere, equal pts (ties
    broken by the other columns), -0.0, and bad values (drawn from a few, so ties happen)."""
    width = 10
    block = np.zeros((len(jets), width, 4))
    for j, rows in enumerate(jets):
        if rows is None:  # rows of a few values: ties, -0.0, nan, inf, negative pt, 22.5 ids
            n = data.draw(st.integers(0, width))
            values = data.draw(st.lists(_ROW_VALUES, min_size=4 * n, max_size=4 * n))
            rows = np.array(values, dtype=np.float64).reshape(n, 4)
        block[j, : len(rows)] = rows
        block[j] = block[j][data.draw(st.permutations(range(width)))]
    indices = data.draw(
        st.lists(st.none() | st.integers(0, 99), min_size=len(jets), max_size=len(jets))
    )
    for j, built in enumerate(Jet.from_rows(block, indices)):
        one = valid_or_value_error(Jet.from_array, block[j], index=indices[j])
        if one is None:
            assert isinstance(built, ValueError)
            with pytest.raises(ValueError, match=f"^{re.escape(str(built))}$"):
                Jet.from_array(block[j], index=indices[j])
            continue
        assert isinstance(built, Jet) and built.index == indices[j]
        assert built.constituents.tobytes() == one.constituents.tobytes()
        assert not built.constituents.flags.writeable


@given(constituents())
def test_the_jet_axis_alone_is_the_axis_of_all_observables(rows: np.ndarray) -> None:
    """A prompt's relative coordinates use the axis computed alone (cheaper): it must be the
    bits jet_observables gives, so a prompt never depends on what was computed first."""
    alone = Jet.from_array(rows)
    axis = (alone.rapidity, alone.phi)  # before anything else is computed
    obs = jet_observables(alone.constituents)
    assert axis == (float(obs["rapidity"]), float(obs["phi"]))
    with_all = Jet.from_array(rows)
    assert with_all.observables["rapidity"] == axis[0] and with_all.phi == axis[1]
