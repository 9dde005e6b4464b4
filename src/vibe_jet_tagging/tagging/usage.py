"""Token usage and cost: a LangChain callback for any run, and totals over tag results.

Prices are per million tokens; reasoning tokens are billed as output (they are output tokens).
A self-hosted vLLM server costs nothing per token, so every price defaults to zero; pass a
price table to estimate what a hosted endpoint would charge.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook
from pydantic import BaseModel, Field

from .results import TagResult, Usage

__all__ = ["Price", "UsageCallback", "UsageTotals", "track_usage", "usage_totals"]


class Price(BaseModel):
    """USD per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs at this price."""
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6


def _price(prices: Mapping[str, Price | Mapping[str, float]] | None, model: str) -> Price:
    if not prices or model not in prices:
        return Price()
    price = prices[model]
    return price if isinstance(price, Price) else Price(**price)


class UsageCallback(BaseCallbackHandler):
    """Sums input, output and reasoning tokens per model over every chat-model call it sees.

    Safe across threads and asyncio tasks. Calls answered from :class:`DiskLLMCache` are
    counted in ``cache_hits``, not in the tokens (LangChain replays a hit's stored usage).

    Example:
        >>> usage = UsageCallback()
        >>> tagger.batch(jets, config={"callbacks": [usage]})  # doctest: +SKIP
        >>> usage.total, usage.cost()
    """

    run_inline = True

    def __init__(self, prices: Mapping[str, Price | Mapping[str, float]] | None = None) -> None:
        super().__init__()
        self.prices = dict(prices or {})
        self.by_model: dict[str, Usage] = {}
        self.cache_hits = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UsageCallback({self.by_model}, cache_hits={self.cache_hits})"

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        default_model = (response.llm_output or {}).get("model_name", "")
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                if message is None:
                    continue
                metadata = message.response_metadata or {}
                with self._lock:
                    if metadata.get("cache_hit"):
                        self.cache_hits += 1
                        continue
                    model = metadata.get("model_name") or default_model
                    self.by_model[model] = self.by_model.get(model, Usage()) + Usage.from_message(
                        message
                    )

    @property
    def total(self) -> Usage:
        """Usage summed over models."""
        with self._lock:
            return sum(self.by_model.values(), Usage())

    def cost(self) -> float:
        """USD at the configured prices (0 for models without one)."""
        with self._lock:
            return sum(_price(self.prices, m).cost(u) for m, u in self.by_model.items())

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.by_model.clear()
            self.cache_hits = 0


_tracked: ContextVar[UsageCallback | None] = ContextVar("vjt_track_usage", default=None)
register_configure_hook(_tracked, inheritable=True)


@contextmanager
def track_usage(
    prices: Mapping[str, Price | Mapping[str, float]] | None = None,
) -> Iterator[UsageCallback]:
    """Count the usage of every LangChain run inside the ``with`` block.

    Example:
        >>> with track_usage() as usage:  # doctest: +SKIP
        ...     tagger.batch(jets)
        >>> usage.total
    """
    callback = UsageCallback(prices)
    token = _tracked.set(callback)
    try:
        yield callback
    finally:
        _tracked.reset(token)


class UsageTotals(BaseModel):
    """Totals over tag results: what was paid for, and what the cache saved."""

    jets: int = 0
    labelled: int = 0
    errors: int = 0
    cache_hits: int = 0
    usage: Usage = Usage()
    cost: float = 0.0
    latency: float = Field(0.0, description="seconds in model requests, summed over jets")

    def per_jet(self) -> dict[str, float | None]:
        """Tokens, cost and request seconds per jet that was paid for (not a cache hit).

        ``cached_input_tokens`` (of the input tokens, those from the server's prefix cache)
        is ``None`` when no server said.
        """
        paid = max(self.jets - self.cache_hits, 1)
        cached = self.usage.cached_input_tokens
        return {
            "input_tokens": self.usage.input_tokens / paid,
            "cached_input_tokens": None if cached is None else cached / paid,
            "output_tokens": self.usage.output_tokens / paid,
            "reasoning_tokens": self.usage.reasoning_tokens / paid,
            "cost": self.cost / paid,
            "latency": self.latency / paid,
        }


def usage_totals(
    results: Iterable[TagResult],
    prices: Mapping[str, Price | Mapping[str, float]] | None = None,
) -> UsageTotals:
    """Sum results; cache hits add no tokens and no cost (their saved usage stays on them)."""
    totals = UsageTotals()
    for result in results:
        totals.jets += 1
        totals.labelled += result.ok
        totals.errors += not result.ok
        if result.cached:
            totals.cache_hits += 1
            continue
        totals.usage = totals.usage + result.usage
        totals.cost += _price(prices, result.model).cost(result.usage)
        totals.latency += result.latency
    return totals
