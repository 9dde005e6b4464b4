"""The emulator's prefix cache: vLLM's automatic prefix caching over blocks of prompt tokens.

vLLM keeps the KV cache in blocks of ``block_size`` tokens (16 on a GPU, 128 in the CPU
build). A full block is identified by a hash chained over every block before it, so a block
hits only if the whole prefix up to its end hits; a partial last block is never cached. When
the whole prompt hits, vLLM still computes the last token (it needs its logits), so at most
``floor((n - 1) / block_size)`` blocks of an ``n``-token prompt come from the cache. Blocks are
evicted least recently used first when the cache is full.

The emulator does the same over its own tokens (:func:`.tokens.prompt_pieces`: the chat framing of
each message around its token pieces), looked up and stored when a request is
scheduled; only prompt blocks are cached (vLLM also caches the blocks it generates, which a
later prompt rarely repeats byte for byte). Nothing is computed, so a hit saves no time here:
the counts are what the emulator reports.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PrefixCache", "PrefixHit"]


@dataclass(frozen=True)
class PrefixHit:
    """What one prompt found in the cache, in tokens (vLLM's ``prompt_tokens_details``)."""

    cached_tokens: int
    """Prompt tokens served from the cache."""
    created_cache_tokens: int
    """Prompt tokens of the full blocks this prompt added to the cache."""


class PrefixCache:
    """Least-recently-used set of block hashes; ``block_size`` tokens per block."""

    def __init__(self, block_size: int = 16, max_blocks: int = 8192) -> None:
        if block_size < 1 or max_blocks < 0:
            raise ValueError("block_size must be >= 1 and max_blocks >= 0")
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def clear(self) -> None:
        """Forget every block (vLLM's ``POST /reset_prefix_cache``)."""
        self._blocks.clear()

    def _hashes(self, pieces: Sequence[str], salt: str) -> list[int]:
        size, parent, out = self.block_size, hash(salt), []
        for start in range(0, len(pieces) - size + 1, size):
            parent = hash((parent, tuple(pieces[start : start + size])))
            out.append(parent)
        return out

    def query(self, pieces: Sequence[str], salt: str = "") -> PrefixHit:
        """Look the prompt up and store its full blocks; ``salt`` parts caches (the model)."""
        hashes = self._hashes(pieces, salt)
        limit = max(len(pieces) - 1, 0) // self.block_size  # the last token is always computed
        hit = 0
        while hit < min(len(hashes), limit) and hashes[hit] in self._blocks:
            hit += 1
        created = 0
        # Tail first, so that the head of a prompt is the most recently used: when the cache
        # is full, other prompts' tails go before this one's shared head (as in vLLM).
        for h in reversed(hashes):
            if h in self._blocks:
                self._blocks.move_to_end(h)
            else:
                created += 1
                self._blocks[h] = None
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)
        return PrefixHit(hit * self.block_size, min(created, self.max_blocks) * self.block_size)
