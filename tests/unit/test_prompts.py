"""Templates, jet formats and few-shot example selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from vibe_jet_tagging.errors import VJTError
from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.jets.formats import DEFAULT_MAX_PARTICLES, FORMAT_NAMES, JetFormat, render_jet
from vibe_jet_tagging.tagging.examples import BalancedExampleSelector, NearestExampleSelector
from vibe_jet_tagging.tagging.prompt import JetPrompt
from vibe_jet_tagging.tagging.templates import TemplateNotFoundError, list_templates, load_template

SHIPPED = {"zero_shot", "few_shot", "few_shot_nearest", "observables_guided", "physics_primer"}


def test_shipped_templates_are_found_by_name_with_metadata():
    templates = {t.name: t for t in list_templates()}
    assert set(templates) >= SHIPPED
    for t in templates.values():
        assert t.version and t.description and "{jet}" in t.human
    assert templates["zero_shot"].shots == 0 and templates["few_shot"].shots > 0


@pytest.mark.parametrize("name", sorted(SHIPPED))
@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_every_template_renders_every_format(name, fmt, labelled_pool):
    prompt = JetPrompt(name, examples=labelled_pool, format=JetFormat(name=fmt))
    target = labelled_pool[0][0]
    messages = prompt.as_runnable().invoke(target).to_messages()
    assert isinstance(messages[0], SystemMessage)
    assert isinstance(messages[-1], HumanMessage)
    assert render_jet(target, JetFormat(name=fmt)) in messages[-1].content
    # Few-shot examples come as (human jet, assistant JSON answer) pairs.
    turns = messages[1:-1]
    assert len(turns) == 2 * prompt.shots
    for human, ai in zip(turns[::2], turns[1::2], strict=True):
        assert isinstance(human, HumanMessage) and isinstance(ai, AIMessage)
        answer = json.loads(ai.content)
        assert answer["label"] in ("quark", "gluon")
        assert answer["quark_probability"] == float(answer["label"] == "quark")
    # No template leaks a fitted cut on the multiplicity into the system message.
    assert "fewer than" not in messages[0].content.lower()


@pytest.mark.parametrize("name", ["few_shot", "few_shot_nearest", "zero_shot"])
def test_messages_equal_the_langchain_template_for_every_jet(name, labelled_pool):
    prompt = JetPrompt(name, examples=labelled_pool)
    for jet, _ in labelled_pool:  # the targets among the examples get other examples
        expected = prompt.chat_template.format_messages(**prompt.inputs(jet))
        assert prompt.messages(jet) == expected


def test_format_options(labelled_pool):
    jet = labelled_pool[-1][0]  # 64 constituents
    capped = render_jet(jet, JetFormat(max_particles=10))
    assert capped.startswith(f"{len(jet)} constituents, showing the 10 hardest")
    assert len(capped.splitlines()) == 11
    assert "pid=" not in capped and "pid=" in render_jet(jet, JetFormat(pdgid=True))
    relative = render_jet(jet, JetFormat(name="compact"))
    absolute = render_jet(jet, JetFormat(name="compact", relative=False))
    assert relative.splitlines()[1] == "pt dy dphi" and absolute.splitlines()[1] == "pt y phi"
    assert "1.0" in absolute.splitlines()[2]  # absolute phi ~ 1.0; relative ~ 0
    assert "| # | pt | dy | dphi |" in render_jet(jet, JetFormat(name="table"))
    row = render_jet(jet, JetFormat(decimals=1)).splitlines()[1]
    assert all(len(v.split(".")[1]) == 1 for v in row.split()[1:])
    obs = render_jet(jet, JetFormat(name="observables"))
    assert f"constituent multiplicity: {len(jet)}" in obs and "girth:" in obs


@pytest.mark.parametrize("name", ["particles", "compact"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"relative": False},
        {"decimals": 1},
        {"decimals": 6},
        {"max_particles": 7},
        {"max_particles": None},
    ],
)
def test_the_line_by_line_formats_write_what_the_column_path_writes(name, options, labelled_pool):
    """``particles`` and ``compact`` (no pdgid) are written one format string a line; the text
    is the column path's, byte for byte, for sample jets and odd ones (one particle, phi near
    pi, negative zero)."""
    from vibe_jet_tagging.jets.formats import _render_columns

    fmt = JetFormat(name=name, **options)
    odd = [
        Jet.from_array(np.array([[12.5, -0.0, np.pi - 1e-12, 22.0]])),
        Jet.from_array(np.array([[30.0, 0.1, 3.1, 211.0], [0.0004999, -0.2, -3.1, 22.0]])),
    ]
    sample = load_sample()
    jets = [*(j for j, _ in labelled_pool), *odd, *(sample[i] for i in range(0, len(sample), 97))]
    for jet in jets:
        assert render_jet(jet, fmt) == _render_columns(jet, fmt)


@pytest.mark.slow
def test_a_jet_of_a_million_constituents_makes_a_prompt_of_the_hardest_200():
    rng = np.random.default_rng(0)
    n = 1_000_000
    huge = Jet.from_array(
        np.column_stack(
            [rng.uniform(0.1, 5.0, n), rng.normal(0, 0.1, n), rng.normal(1, 0.1, n), np.zeros(n)]
        )
    )
    for name in ("zero_shot", "physics_primer"):  # templates that set no cap of their own
        content = JetPrompt(name).messages(huge)[-1].content
        assert f"{n} constituents, showing the {DEFAULT_MAX_PARTICLES} hardest" in content
        assert content.count("pt=") == DEFAULT_MAX_PARTICLES
        assert len(content) < 50_000
    assert JetFormat(max_particles=None).render(huge).count("pt=") == n  # only when asked for


def test_examples_never_include_the_target(labelled_pool):
    for selector_cls in (BalancedExampleSelector, NearestExampleSelector):
        selector = selector_cls(labelled_pool, 4, format=JetFormat())
        for jet, _ in labelled_pool:
            chosen = selector.select(jet)
            assert len(chosen) == 4
            assert jet.key not in {e.jet.key for e in chosen}
            if selector_cls is BalancedExampleSelector:
                assert sorted(e.label for e in chosen) == [0, 0, 1, 1]


def test_balanced_draw_is_seeded_and_balanced(labelled_pool):
    target = labelled_pool[0][0]
    a = BalancedExampleSelector(labelled_pool, 4, format=JetFormat(), seed=1)
    b = BalancedExampleSelector(labelled_pool, 4, format=JetFormat(), seed=1)
    c = BalancedExampleSelector(labelled_pool, 4, format=JetFormat(), seed=2)
    keys = lambda s: [e.jet.key for e in s.select(target)]  # noqa: E731
    assert keys(a) == keys(b) != keys(c)
    assert [e.label for e in a.select(target)] == [1, 0, 1, 0]


def test_nearest_examples_are_the_most_similar(labelled_pool):
    selector = NearestExampleSelector(labelled_pool, 3, format=JetFormat())
    quark_like, gluon_like = labelled_pool[0][0], labelled_pool[-1][0]
    assert all(e.label == 1 for e in selector.select(quark_like))
    assert all(e.label == 0 for e in selector.select(gluon_like))


def test_pool_too_small_is_a_clear_error(labelled_pool):
    with pytest.raises(VJTError, match="at least 3 quark"):
        BalancedExampleSelector(labelled_pool[:2] + labelled_pool[10:], 4, format=JetFormat())


def test_user_template_by_path_and_by_folder(tmp_path, monkeypatch, labelled_pool):
    path = tmp_path / "mine.yaml"
    path.write_text(
        'name: mine\nversion: "3"\ndescription: test\nsystem: "Answer {{\\"label\\": ...}}"\n'
        "human: |\n  JET\n  {jet}\n"
    )
    spec = load_template(path)
    assert (spec.name, spec.version) == ("mine", "3")
    messages = JetPrompt(path).as_runnable().invoke(labelled_pool[0][0]).to_messages()
    assert messages[0].content == 'Answer {"label": ...}'
    monkeypatch.setenv("VJT_PROMPTS", str(tmp_path))
    assert load_template("mine").path == path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\nversion: 1\ndescription: d\nsystem: s\nhuman: no jet here\n", "must contain"),
        (
            "name: x\nversion: 1\ndescription: d\nsystem: 'JSON {\"a\": 1}'\nhuman: '{jet}'\n",
            "literal braces",
        ),
        ("name: x\nversion: 1\nsystem: s\nhuman: '{jet}'\n", "description"),
        ("- a list\n", "YAML mapping"),
    ],
)
def test_bad_templates_name_the_file_and_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(VJTError, match=match) as info:
        load_template(path)
    assert str(path) in str(info.value)


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(TemplateNotFoundError, match="few_shot"):
        load_template("no_such_template")


def test_fingerprint_tracks_everything_that_shapes_the_messages(labelled_pool):
    base = JetPrompt("few_shot", examples=labelled_pool)
    same = JetPrompt("few_shot", examples=labelled_pool)
    assert base.fingerprint == same.fingerprint
    others = [
        JetPrompt("zero_shot"),
        JetPrompt("few_shot", examples=labelled_pool, shots=2),
        JetPrompt("few_shot", examples=labelled_pool, seed=5),
        JetPrompt("few_shot", examples=labelled_pool, format=JetFormat(decimals=2)),
        JetPrompt("few_shot", examples=labelled_pool[1:]),
        JetPrompt("few_shot", examples=labelled_pool, format=JetFormat(max_particles=50)),
        JetPrompt("few_shot", examples=labelled_pool, format=JetFormat(max_particles=None)),
    ]
    assert len({base.fingerprint, *(p.fingerprint for p in others)}) == 8
    # The default cap is part of it: a prompt that shows every particle is another prompt.
    assert base.format.max_particles == DEFAULT_MAX_PARTICLES
