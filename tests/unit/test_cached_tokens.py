"""Cached prompt tokens in ``Usage``: read from the message, summed, unknown kept unknown."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from vibe_jet_tagging.evaluation.report import row_result
from vibe_jet_tagging.evaluation.report.table import fmt_input_tokens
from vibe_jet_tagging.tagging.results import Usage
from vibe_jet_tagging.tagging.usage import usage_totals


def message(cache_read: int | None) -> AIMessage:
    details = {} if cache_read is None else {"cache_read": cache_read}
    usage = {
        "input_tokens": 4000,
        "output_tokens": 10,
        "total_tokens": 4010,
        "input_token_details": details,
        "output_token_details": {"reasoning": 4},
    }
    return AIMessage(content='{"label": "quark"}', usage_metadata=usage)


def test_the_cached_count_comes_from_langchains_cache_read() -> None:
    usage = Usage.from_message(message(3456))
    assert (usage.input_tokens, usage.cached_input_tokens) == (4000, 3456)
    assert usage.uncached_input_tokens == 544
    assert Usage.from_message(message(0)).cached_input_tokens == 0
    unknown = Usage.from_message(message(None))
    assert unknown.cached_input_tokens is None
    assert unknown.uncached_input_tokens == 4000


def test_sums_keep_what_is_known_and_unknown_stays_unknown() -> None:
    known, unknown = Usage.from_message(message(3456)), Usage.from_message(message(None))
    assert (known + Usage.from_message(message(0))).cached_input_tokens == 3456
    assert (known + known).cached_input_tokens == 6912
    assert (unknown + unknown).cached_input_tokens is None
    assert (Usage() + unknown).cached_input_tokens is None
    assert (known + unknown).cached_input_tokens == 3456  # what the servers reported


def test_rows_without_the_field_read_as_unknown_and_per_jet_follows() -> None:
    old = {"index": 0, "label": "quark", "input_tokens": 4000, "output_tokens": 10}
    assert row_result(old).usage.cached_input_tokens is None
    new = {**old, "index": 1, "cached_input_tokens": 3200}
    totals = usage_totals([row_result(old), row_result(new)])
    assert totals.usage.cached_input_tokens == 3200
    per = usage_totals([row_result(new), row_result({**new, "index": 2})]).per_jet()
    assert per["cached_input_tokens"] == 3200
    assert fmt_input_tokens(per) == "4,000 input (800 prefilled, 3,200 from the prefix cache)"
    assert usage_totals([row_result(old)]).per_jet()["cached_input_tokens"] is None
