"""The part of a prompt that every jet shares comes first, byte for byte the same.

vLLM's prefix cache serves a prompt's leading tokens from memory when an earlier request had
the same ones: what every jet shares (the system message and, for a balanced draw, the
few-shot examples) is prefilled once per batch, not once per jet, only if it comes first and
is byte-identical across jets. ``few_shot_nearest`` picks examples per jet, so it shares only
its system message.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import convert_to_openai_messages

from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.jets.formats import FORMAT_NAMES, JetFormat
from vibe_jet_tagging.tagging.prompt import JetPrompt
from vibe_jet_tagging.tagging.templates import list_templates

SAMPLE = load_sample()
POOL = SAMPLE[2000:2400]
TARGETS = [SAMPLE[i] for i in (0, 1, 2, 3, 7, 11)]
TEMPLATES = sorted(t.name for t in list_templates())


def shared_messages(prompt: JetPrompt) -> int:
    """How many leading messages the template promises every jet: system (+ examples)."""
    if prompt.selector is None or prompt.template.selector == "nearest":
        return 1
    return 1 + 2 * prompt.shots


def wire(prompt: JetPrompt, jet) -> list[bytes]:
    """Each message as the JSON the OpenAI client sends."""
    return [json.dumps(m).encode() for m in convert_to_openai_messages(prompt.messages(jet))]


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("name", TEMPLATES)
def test_the_shared_messages_lead_every_prompt_byte_for_byte(name, fmt) -> None:
    prompt = JetPrompt(name, examples=POOL, format=JetFormat(name=fmt))
    n = shared_messages(prompt)
    prompts = [wire(prompt, jet) for jet in TARGETS]
    head = prompts[0][:n]
    assert len(head) == n and json.loads(head[0])["role"] == "system"
    for messages in prompts:
        assert messages[:n] == head
        assert len(messages) == 2 + 2 * prompt.shots  # the jet's own message is the last
    # What follows the shared part is the jet's own: the jets differ there.
    assert len({m[-1] for m in prompts}) == len(TARGETS)
    # The LangChain prompt template renders the same head.
    runnable = prompt.as_runnable()
    for jet in TARGETS[:2]:
        rendered = convert_to_openai_messages(runnable.invoke(jet).to_messages())
        assert [json.dumps(m).encode() for m in rendered][:n] == head


def test_nearest_examples_differ_per_jet_so_only_the_system_message_is_shared() -> None:
    prompt = JetPrompt("few_shot_nearest", examples=POOL)
    prompts = [wire(prompt, jet) for jet in TARGETS]
    assert len({tuple(m[1:-1]) for m in prompts}) > 1


def test_a_balanced_draw_shares_its_examples_except_with_a_target_among_them() -> None:
    prompt = JetPrompt("few_shot", examples=POOL)
    example = prompt.examples_for(TARGETS[0])[0].jet
    usual, own = wire(prompt, TARGETS[0]), wire(prompt, example)
    assert usual[0] == own[0]  # the system message still leads
    assert usual[1:-1] != own[1:-1]  # the jet is never its own example
