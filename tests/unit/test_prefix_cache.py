"""The emulator's prefix cache: full blocks, chained, bounded, least recently used first."""

from __future__ import annotations

import pytest

from vibe_jet_tagging.emulator.prefix_cache import PrefixCache, PrefixHit
from vibe_jet_tagging.emulator.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    PREAMBLE_TOKENS,
    count_tokens,
    prompt_pieces,
)


def tokens(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_a_repeated_prompt_hits_its_full_blocks_but_never_its_last_token() -> None:
    cache = PrefixCache(block_size=4)
    prompt = tokens("t", 10)  # 2 full blocks and a partial one
    assert cache.query(prompt) == PrefixHit(cached_tokens=0, created_cache_tokens=8)
    assert cache.query(prompt) == PrefixHit(cached_tokens=8, created_cache_tokens=0)
    # A prompt of whole blocks: the last one is computed again (vLLM needs its logits).
    whole = tokens("w", 12)
    cache.query(whole)
    assert cache.query(whole).cached_tokens == 8
    assert cache.query(whole[:1]).cached_tokens == 0


def test_a_block_hits_only_if_every_block_before_it_hit() -> None:
    cache = PrefixCache(block_size=4)
    cache.query(tokens("t", 16))
    changed = tokens("t", 16)
    changed[5] = "other"  # the second block differs; the third and fourth are as before
    hit = cache.query(changed)
    assert hit.cached_tokens == 4
    assert hit.created_cache_tokens == 12  # its own second, third and fourth blocks
    longer = tokens("t", 16) + tokens("u", 6)
    assert cache.query(longer) == PrefixHit(16, 4)


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    cache = PrefixCache(block_size=2, max_blocks=5)
    shared = tokens("s", 4)  # two blocks every prompt starts with
    a, b, c = (shared + tokens(x, 5) for x in "abc")  # 4 full blocks each
    cache.query(a)
    cache.query(b)
    assert len(cache) == 5
    assert cache.query(b).cached_tokens == 8
    # a's tail block went first; the head every prompt shares is the most recently used.
    assert cache.query(a) == PrefixHit(cached_tokens=6, created_cache_tokens=2)
    cache.query(c)
    assert len(cache) == 5
    assert cache.query(c).cached_tokens == 8
    assert cache.query(b).cached_tokens == 4  # b's own blocks are gone, the shared head not


def test_nothing_is_kept_without_room_and_salts_keep_caches_apart() -> None:
    assert PrefixCache(block_size=2, max_blocks=0).query(tokens("t", 9)) == PrefixHit(0, 0)
    cache = PrefixCache(block_size=2)
    cache.query(tokens("t", 9), salt="model-a")
    assert cache.query(tokens("t", 9), salt="model-b").cached_tokens == 0
    assert cache.query(tokens("t", 9), salt="model-a").cached_tokens == 8
    cache.clear()
    assert len(cache) == 0 and cache.query(tokens("t", 9), salt="model-a").cached_tokens == 0
    with pytest.raises(ValueError, match="block_size"):
        PrefixCache(block_size=0)


def test_prompt_pieces_are_the_tokens_the_emulator_counts() -> None:
    messages = [
        {"role": "system", "content": "You are an expert.\n\nAnswer in JSON."},
        {"role": "user", "content": [{"type": "text", "text": "pt=15.234 GeV"}]},
        {"role": "assistant", "content": None},
    ]
    pieces = prompt_pieces(messages)
    texts = ["You are an expert.\n\nAnswer in JSON.", "pt=15.234 GeV", ""]
    expected = PREAMBLE_TOKENS + sum(MESSAGE_OVERHEAD_TOKENS + count_tokens(t) for t in texts)
    assert len(pieces) == expected
    assert "".join(pieces).count("pt=15.234 GeV") == 1
    # Two prompts that share their first message share the pieces up to its end.
    other = prompt_pieces([messages[0], {"role": "user", "content": "another jet"}])
    shared = PREAMBLE_TOKENS + MESSAGE_OVERHEAD_TOKENS + count_tokens(texts[0])
    assert other[:shared] == pieces[:shared] and other[shared] == pieces[shared]
    assert other[shared + 2] == "<|message|>" and other[shared + 3] != pieces[shared + 3]
