"""The emulated server's answers and answer faults, read by the package's parser.

What the emulator records as *stated* (``Completion.stated``) must be exactly what a correct
parser reads: the integration test under faults relies on it to check every label.
"""

from __future__ import annotations

import random

import pytest

from vibe_jet_tagging.emulator.config import FAULT_KINDS, FaultRates
from vibe_jet_tagging.emulator.faults import ANSWER_FAULTS, corrupt, decide_fault
from vibe_jet_tagging.emulator.model import Completion, generate
from vibe_jet_tagging.emulator.tokens import split_tokens
from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.jets.formats import render_jet
from vibe_jet_tagging.tagging.parsing import (
    COMPACT_LABEL_REGEX,
    LabelParseError,
    label_response_format,
    read_label,
)

JETS = load_sample()[:60]
FORMATS = [
    None,
    {"type": "json_object"},
    {"type": "json_schema", "schema": label_response_format()["json_schema"]["schema"]},
    {"type": "regex", "pattern": COMPACT_LABEL_REGEX},
]
FORMAT_IDS = ["text", "json_object", "json_schema", "regex"]


def stated_by_parser(content: str, finish: str) -> str | None:
    try:
        return read_label(content, finish).label
    except LabelParseError:
        return None


def completion(jet_index: int, response_format: dict | None, seed: int = 0) -> Completion:
    return generate(
        [{"role": "user", "content": f"Classify:\n{render_jet(JETS[jet_index])}"}],
        seed=seed,
        request_seed=None,
        effort_tokens=20,
        effort_spread=0.2,
        noise=0.5,
        response_format=response_format,
    )


@pytest.mark.parametrize("response_format", FORMATS, ids=FORMAT_IDS)
def test_every_clean_answer_states_its_label_and_the_parser_reads_it(response_format):
    styles = set()
    for i in range(len(JETS)):
        for seed in range(3):
            c = completion(i, response_format, seed)
            styles.add(c.style)
            assert c.stated == c.label
            assert stated_by_parser(c.content_text, "stop") == c.stated, c.content_text
    if response_format is None:
        assert styles == {"final_answer", "bold", "json_fence", "so_answer", "hedged"}


@pytest.mark.parametrize("response_format", FORMATS, ids=FORMAT_IDS)
def test_a_request_without_a_jet_states_what_the_parser_reads(response_format):
    # Free text refuses; a constrained format forces a coin-flip label, which is stated.
    for seed in range(10):
        c = generate(
            [{"role": "user", "content": "Hello"}],
            seed=seed,
            request_seed=None,
            effort_tokens=20,
            effort_spread=0.2,
            noise=0.5,
            response_format=response_format,
        )
        assert stated_by_parser(c.content_text, "stop") == c.stated, c.content_text
        if response_format is None or response_format["type"] == "json_object":
            assert c.stated is None


@pytest.mark.parametrize("fault", sorted(ANSWER_FAULTS))
def test_each_answer_fault_states_what_the_parser_reads(fault):
    texts: dict[str, str | None] = {}
    for seed in range(300):
        label = random.Random(seed).choice(["quark", "gluon"])
        p = random.Random(seed).uniform(0.5, 1) if label == "quark" else 0.3
        c = Completion(
            reasoning=[],
            content=split_tokens(f'{{"label": "{label}", "quark_probability": {p:.2f}}}'),
            label=label,
            quark_probability=p,
            rng=random.Random(seed),
            stated=label,
        )
        finish = corrupt(c, fault)
        assert finish == ("length" if fault == "truncation" else "stop")
        texts[c.content_text] = c.stated
        assert stated_by_parser(c.content_text, finish) == c.stated, c.content_text
    if fault == "distracted_answer":
        assert set(texts.values()) == {"quark", "gluon"}
    else:
        assert set(texts.values()) == {None}
    assert len(texts) >= (2 if fault == "truncation" else 6)  # the pools were exercised


def test_the_issues_non_answers_are_among_the_faults():
    texts = set()
    for seed in range(400):
        c = Completion(reasoning=[], content=[], label="quark", rng=random.Random(seed))
        ANSWER_FAULTS["non_answer"](c)
        texts.add(c.content_text)
    for example in ("Step 1", "#1", "Feature: SkipQA #1", "I cannot decide between 0 and 1."):
        assert example in texts


def test_answer_fault_kinds_are_drawn_like_the_others():
    rates = FaultRates(**{kind: 1 / len(FAULT_KINDS) for kind in FAULT_KINDS})
    drawn = {decide_fault(rates, 5, n) for n in range(2000)}
    assert set(ANSWER_FAULTS) <= drawn
