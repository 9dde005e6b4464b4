"""The GPU's cost of a few-shot batch on a real vLLM: the prompt share its prefix cache serves.

Every jet of a ``few_shot`` batch starts with the same system message and examples; vLLM's
prefix cache prefills that head once and serves it from memory for the jets after. Jets go
one at a time (the first warms the cache), without re-asks (a re-ask repeats the whole prompt
and would flatter the share), drawn at random so that a server which served earlier runs has
none of their own parts cached. The share over the jets after the first is what a long batch
pays; the real tier's summary prints it against the target of 80 %. SmolLM2 on the CPU:
~5-6k prompt tokens a jet, ~50 s cold and 5-18 s warm, so four jets.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from langchain_core.messages import convert_to_openai_messages

from vibe_jet_tagging import JetTagger, load_sample

pytestmark = pytest.mark.real_vllm

SAMPLE = load_sample()
EXAMPLES = SAMPLE[2000:2400]
TARGET = 0.80


def block_size(server) -> int:
    """The KV-cache block size the server reports (vLLM's ``vllm:cache_config_info``)."""
    text = httpx.get(f"{server.url}/metrics", timeout=60).text
    match = re.search(r'^vllm:cache_config_info\{[^}]*block_size="(\d+)"', text, re.MULTILINE)
    assert match, "the server's /metrics has no vllm:cache_config_info with a block_size"
    return int(match.group(1))


def count_tokens(server, messages) -> int:
    """Tokens of ``messages`` under the server's chat template (vLLM's ``POST /tokenize``)."""
    body = {"model": server.model, "messages": messages, "add_generation_prompt": False}
    response = httpx.post(f"{server.url}/tokenize", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


async def test_a_few_shot_batch_is_served_from_the_prefix_cache(real_vllm) -> None:
    tagger = JetTagger(
        real_vllm.model, base_url=real_vllm.base_url, api_key=real_vllm.api_key,
        template="few_shot", examples=EXAMPLES, effort="low", reask=False, cache=None,
    )  # fmt: skip
    # Jets no earlier run on this server asked (their own parts must be new to its cache).
    seed = secrets.randbelow(2**31)
    jets = [j for j in SAMPLE.balanced(6, seed=seed) if not 2000 <= j.index < 2400][:4]
    results = await tagger.abatch(jets, {"max_concurrency": 1}, return_exceptions=True)
    real_vllm.record(results)
    outcomes = [getattr(r, "result", r) for r in results]
    for r in outcomes:  # each jet was asked once (a label, or the model's counted error)
        assert r.usage.requests == 1 and r.usage.input_tokens > 3000, r
    usages = [r.usage for r in outcomes]
    if usages[0].cached_input_tokens is None:
        pytest.skip("the server reports no cached tokens: start vLLM with "
                    "--enable-prompt-tokens-details")  # fmt: skip

    size = block_size(real_vllm)
    head = convert_to_openai_messages(
        tagger.prompt.messages(jets[0])[: 1 + 2 * tagger.prompt.shots]
    )
    head_tokens = count_tokens(real_vllm, head)
    for u in usages:
        assert u.cached_input_tokens % size == 0 and u.cached_input_tokens < u.input_tokens
    for u in usages[1:]:  # the head is in the cache: every full block of it is served
        assert u.cached_input_tokens >= head_tokens // size * size, (u, head_tokens)

    warm = usages[1:]
    share = sum(u.cached_input_tokens for u in warm) / sum(u.input_tokens for u in warm)
    share_all = sum(u.cached_input_tokens for u in usages) / sum(u.input_tokens for u in usages)
    head_share = head_tokens / (sum(u.input_tokens for u in usages) / len(usages))
    real_vllm.prefix_cache = (
        f"prefix cache, few_shot batch of {len(jets)} jets one at a time (balanced seed {seed}): "
        f"{share:.1%} of the prompt tokens of jets 2-{len(jets)} from the cache "
        f"({share_all:.1%} with the first); "
        f"target >= {TARGET:.0%}: {'met' if share >= TARGET else 'NOT met'} (shared head "
        f"{head_tokens:,} tokens = {head_share:.1%} of a prompt, blocks of {size}; per jet: "
        + ", ".join(f"{u.cached_input_tokens:,}/{u.input_tokens:,}" for u in usages)
        + ")"
    )
