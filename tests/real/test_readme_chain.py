"""The README's LangChain chain on a real vLLM server (``pytest -m real_vllm``).

``prompt | parser.constrain(ChatVLLM(...)) | parser``, as the README writes it, must give a
probability for every jet it answers: the constraint reaches vLLM as the tagger sends it. The
real tier's SmolLM2-135M labels poorly and often contradicts itself (counted, never a label):
this checks the plumbing, on a handful of short zero-shot prompts (a few-shot one costs it
~50 s of CPU prefill).
"""

from __future__ import annotations

import re

import pytest

from vibe_jet_tagging import ChatVLLM, JetLabelParser, JetPromptTemplate, load_sample
from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX, LabelParseError, ParsedLabel

pytestmark = pytest.mark.real_vllm


async def test_the_readme_chain_gives_a_probability_for_every_answered_jet(real_vllm) -> None:
    jets = list(load_sample().balanced(4, seed=11))
    model = ChatVLLM(
        base_url=real_vllm.base_url, model=real_vllm.model, api_key=real_vllm.api_key,
        reasoning_effort="low",
    )  # fmt: skip
    parser = JetLabelParser()
    constrained = parser.constrain(model)
    chain = JetPromptTemplate("zero_shot") | constrained | parser
    results = await chain.abatch(jets, return_exceptions=True)
    answered = [r for r in results if isinstance(r, ParsedLabel)]
    errors = [r for r in results if not isinstance(r, ParsedLabel)]
    for r in answered:
        real_vllm.tagged["readme chain: labelled"] += 1
        assert r.step == "schema" and r.quark_probability is not None
        assert (r.label == "quark") == (r.quark_probability >= 0.5)
    for error in errors:
        real_vllm.tagged[f"readme chain: {getattr(error, 'kind', type(error).__name__)}"] += 1
        assert isinstance(error, LabelParseError), error
        assert error.kind in ("contradiction", "parse"), error
        assert re.fullmatch(COMPACT_LABEL_REGEX, error.raw), error.raw  # constrained JSON
    # The constraint the tagger sends to this server: the compact-JSON regex.
    assert constrained.bound().kwargs["extra_body"]["structured_outputs"] == {
        "regex": COMPACT_LABEL_REGEX
    }
