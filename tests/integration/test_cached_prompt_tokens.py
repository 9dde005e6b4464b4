"""What the GPU prefilled and what came from its prefix cache, from the server to the report.

The emulated server caches prompt blocks like vLLM (``vibe_jet_tagging.emulator.prefix_cache``)
and reports ``usage.prompt_tokens_details.cached_tokens``; each result keeps it
(``Usage.cached_input_tokens``, summed over a re-ask), rows and reports carry it, and a
server that does not say leaves it unknown (``None``), never 0.
"""

from __future__ import annotations

from langchain_core.messages import convert_to_openai_messages

from vibe_jet_tagging import JetTagger, TaggingError, load_sample
from vibe_jet_tagging.emulator.tokens import prompt_pieces
from vibe_jet_tagging.evaluation.report import build_report, result_row
from vibe_jet_tagging.evaluation.report.table import fmt_input_tokens

SAMPLE = load_sample()
JETS = [SAMPLE[i] for i in (0, 1, 2, 3, 5, 8)]
EXAMPLES = SAMPLE[3000:3400]
BLOCK = 16


def tagger(server, **options) -> JetTagger:
    options.setdefault("examples", EXAMPLES)
    options.setdefault("effort", "low")
    return JetTagger(server.model, base_url=server.base_url, cache=None, **options)


def rows_of(results) -> list[dict]:
    return [
        result_row(r, index=i, truth=None, source="sample", backend="emulated")
        for i, r in enumerate(results)
    ]


async def test_a_few_shot_batch_prefills_its_shared_head_once(fresh_emulator) -> None:
    server = fresh_emulator(block_size=BLOCK)
    t = tagger(server)
    results = await t.abatch(JETS, {"max_concurrency": 1})
    head = convert_to_openai_messages(t.prompt.messages(JETS[0])[: 1 + 2 * t.prompt.shots])
    head_tokens = len(prompt_pieces(head))
    first, *rest = (r.usage for r in results)
    assert first.cached_input_tokens == 0  # a fresh server: nothing cached yet
    for usage in rest:
        # At least every full block of the shared head; never the jet's own last block.
        assert head_tokens // BLOCK * BLOCK <= usage.cached_input_tokens < usage.input_tokens
        assert usage.cached_input_tokens % BLOCK == 0
        assert usage.uncached_input_tokens == usage.input_tokens - usage.cached_input_tokens
    # The server counted the same tokens.
    stats = server.stats()
    assert stats["prefix_cache_queries"] == sum(r.usage.input_tokens for r in results)
    assert stats["prefix_cache_hits"] == sum(r.usage.cached_input_tokens for r in results)
    # Rows and the report carry it: cached tokens per jet asked, and the text says so.
    rows = rows_of(results)
    assert [row["cached_input_tokens"] for row in rows] == [
        r.usage.cached_input_tokens for r in results
    ]
    usage = build_report(rows, n_bootstrap=0)["usage"]
    assert usage["cached_input_tokens"] == stats["prefix_cache_hits"]
    per_jet = usage["per_jet"]
    assert per_jet["cached_input_tokens"] == stats["prefix_cache_hits"] / len(JETS)
    assert "from the prefix cache" in fmt_input_tokens(per_jet)


async def test_a_zero_shot_batch_shares_only_its_system_message(fresh_emulator) -> None:
    few = await tagger(fresh_emulator(block_size=BLOCK)).abatch(JETS, {"max_concurrency": 1})
    t = tagger(fresh_emulator(block_size=BLOCK), template="zero_shot")
    zero = await t.abatch(JETS, {"max_concurrency": 1})
    system = len(prompt_pieces(convert_to_openai_messages(t.prompt.messages(JETS[0])[:1])))
    for r in zero[1:]:
        assert system // BLOCK * BLOCK <= r.usage.cached_input_tokens < system + BLOCK * 2
    share = [r.usage.cached_input_tokens / r.usage.input_tokens for r in few[1:]]
    zero_share = [r.usage.cached_input_tokens / r.usage.input_tokens for r in zero[1:]]
    assert min(share) > 0.7 and max(zero_share) < 0.3


async def test_a_reask_sums_the_cached_tokens_of_both_requests(fresh_emulator) -> None:
    server = fresh_emulator(block_size=BLOCK, faults={"malformed_json": 1.0})
    try:
        result = await tagger(server).ainvoke(JETS[0])
    except TaggingError as exc:
        result = exc.result
    assert result.usage.requests == 2
    # The re-ask repeats the whole first prompt, so its cached part is at least that.
    stats = server.stats()
    assert result.usage.cached_input_tokens == stats["prefix_cache_hits"] > 0
    assert result.usage.input_tokens == stats["prefix_cache_queries"]


async def test_a_server_that_does_not_say_leaves_the_cached_tokens_unknown(fresh_emulator):
    server = fresh_emulator(enable_prompt_tokens_details=False)
    results = await tagger(server).abatch(JETS[:2], {"max_concurrency": 1})
    assert server.stats()["prefix_cache_hits"] > 0  # the server cached, but did not say
    assert [r.usage.cached_input_tokens for r in results] == [None, None]
    rows = rows_of(results)
    assert [row["cached_input_tokens"] for row in rows] == [None, None]
    report = build_report(rows, n_bootstrap=0)
    assert report["usage"]["cached_input_tokens"] is None
    assert report["usage"]["per_jet"]["cached_input_tokens"] is None
    assert report["usage"]["per_jet_recorded"]["cached_input_tokens"] is None
    assert "cache" not in fmt_input_tokens(report["usage"]["per_jet"])
