"""Cache hits: jets per second through ``abatch`` when every jet is in the result cache.

N distinct jets (20,000) are tagged once against an instant emulated server (filling a fresh
cache folder: this pass's rate is reported too), then ``abatch`` runs again over the same
jets: every result comes from the cache, and the server must see no request. Then a new
Python process opens the same folder and does the same; the server still runs (the cache key
holds what the server is, read once from its /v1/models) and must see no chat request.
Target (issue 15): at least 20,000 jets/s from a warm cache. The passes above are given a
sequence that builds each ``Jet`` from its array when read (``PerturbedJets``: ~30 us of
validation and sorting per jet, inside the timing). Two more warm passes: given the same jets
as a ``JetDataset`` over one padded ``(N, M, 4)`` array, as a file gives them (``abatch``
builds them a block at a time, inside the timing), and given ``Jet`` objects already built,
which measures the cache-hit path alone.

Then the streaming paths over M = 100,000 cached jets, in a new process: the time to the
first result from ``abatch_as_completed`` (target < 50 ms), and the memory ``abatch`` adds
per result it returns (peak RSS during the call over RSS before it; target <= 2 KB). Filling
100,000 entries through the emulator would take ~13 minutes, so entries N..M are the fill
pass's real results stored again under the keys of jets N..M (each with its own jet's keys):
what is read back is the same kind of entry; only the labels are not those jets'.

Last, LangChain's own route for comparison: ``ChatOpenAI.with_structured_output(JetLabel,
method="json_schema")`` with LangChain's ``SQLiteCache`` (``langchain-community``), the same
prompts for 2,000 jets, asked once and then again (all hits; the prompt is the cache key, so
the hit pass formats it too).

    python benchmarks/cache_hits.py [--quick] [--jets N] [--stream-jets M] [--template NAME]
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import PerturbedJets, parser, peak_rss_mb, save, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.store.cache import ResultCache
from vibe_jet_tagging.tagging.gate import _signed

TARGET = 20_000.0
FIRST_TARGET_MS = 50.0
BYTES_TARGET = 2048.0
LANGCHAIN_JETS = 2000


def rss_mb() -> float:
    """This process's resident memory now [MB]."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def tagger_for(base_url: str, folder: str, template: str) -> JetTagger:
    return JetTagger(
        base_url=base_url,
        template=template,
        cache=ResultCache(folder),
        max_concurrency=256,
        max_retries=0,
    )


async def warm_pass(tagger: JetTagger, jets: PerturbedJets) -> tuple[float, int]:
    """Seconds for ``abatch`` over ``jets``, and how many came from the cache."""
    start = time.perf_counter()
    results = await tagger.abatch(jets, return_exceptions=True)
    seconds = time.perf_counter() - start
    return seconds, sum(bool(getattr(r, "cached", False)) for r in results)


def child(base_url: str, folder: str, template: str, n: int) -> None:
    """The new-process pass: print its numbers as JSON."""
    start = time.perf_counter()
    tagger = tagger_for(base_url, folder, template)
    jets = PerturbedJets(n)
    setup = time.perf_counter() - start
    seconds, hits = asyncio.run(warm_pass(tagger, jets))
    print(json.dumps({"setup_s": setup, "seconds": seconds, "hits": hits}))


def extend(tagger: JetTagger, filled: list[Any], total: int) -> float:
    """Store the fill pass's results again under the keys of jets ``len(filled)..total``."""
    jets, n = PerturbedJets(total), len(filled)
    store = tagger.cache
    assert store is not None and store._cache is not None
    start = time.perf_counter()
    for low in range(n, total, 5000):
        with store._cache.transact():  # one transaction per 5,000 entries
            for i in range(low, min(low + 5000, total)):
                jet = jets[i]
                copy = {"key": tagger.key_for(jet), "jet_key": jet.key, "index": jet.index}
                entry = filled[i % n].model_copy(update=copy)
                entry.signature = tagger.gate.signer.sign(_signed(entry))  # its own keys, signed
                assert store.put(entry)
    return time.perf_counter() - start


def stream_child(base_url: str, folder: str, template: str, total: int) -> None:
    """Time to the first result and memory per result over ``total`` cached jets (JSON)."""
    tagger = tagger_for(base_url, folder, template)
    jets = PerturbedJets(total)
    tagger.settings_key  # noqa: B018 (reads the server's /v1/models once, as any first call)

    async def first() -> tuple[float, bool]:
        start = time.perf_counter()
        stream = tagger.abatch_as_completed(jets)
        _, result = await anext(stream)
        seconds = time.perf_counter() - start
        await stream.aclose()
        return seconds, result.cached

    first_s, first_cached = asyncio.run(first())
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    results = asyncio.run(tagger.abatch(jets))
    seconds = time.perf_counter() - start
    peak, held = peak_rss_mb(), rss_mb()
    hits = sum(r.cached for r in results)
    print(
        json.dumps(
            {
                "first_result_ms": 1e3 * first_s,
                "first_cached": first_cached,
                "abatch_s": seconds,
                "hits": hits,
                "rss_before_mb": before,
                "peak_rss_mb": peak,
                "rss_holding_results_mb": held,
                "bytes_per_result_peak": (peak - before) * 2**20 / total,
                "bytes_per_result_held": (held - before) * 2**20 / total,
            }
        )
    )


async def langchain_route(server: EmulatedServer, folder: str, template: str, n: int) -> dict:
    """LangChain's route with its SQLiteCache: ``n`` jets asked, then asked again (all hits)."""
    try:
        from langchain_community.cache import SQLiteCache
    except ImportError:
        return {"skipped": "pip install langchain-community for LangChain's SQLiteCache"}
    from langchain_core.globals import set_llm_cache
    from langchain_openai import ChatOpenAI

    from vibe_jet_tagging.tagging.parsing.schema import JetLabel

    reference = JetTagger(server.model, base_url=server.base_url, template=template, cache=None)
    route = (
        ChatOpenAI(model=server.model, base_url=server.base_url, api_key="EMPTY", max_retries=0)
        .with_structured_output(JetLabel, method="json_schema")
        .with_config(max_concurrency=256)
    )
    jets = PerturbedJets(n, offset=500_000)
    set_llm_cache(SQLiteCache(database_path=f"{folder}/langchain.db"))
    try:
        start = time.perf_counter()
        answers = await route.abatch([reference.prompt.messages(j) for j in jets])
        fill = time.perf_counter() - start
        server.reset_stats()
        start = time.perf_counter()
        again = await route.abatch([reference.prompt.messages(j) for j in jets])
        seconds = time.perf_counter() - start
    finally:
        set_llm_cache(None)
    assert server.stats()["requests_total"] == 0, "LangChain's cache missed"
    assert again == answers
    return {"n": n, "fill_jets_per_s": n / fill, "hit_jets_per_s": n / seconds}


async def parent(
    n: int, template: str, folder: str, server: EmulatedServer
) -> tuple[list[Any], dict[str, Any]]:
    jets = PerturbedJets(n)
    tagger = tagger_for(server.base_url, folder, template)
    start = time.perf_counter()
    filled = await tagger.abatch(jets, return_exceptions=True)
    fill = time.perf_counter() - start
    assert all(getattr(r, "ok", False) for r in filled), "the fill pass had errors"
    server.reset_stats()
    seconds, hits = await warm_pass(tagger, jets)
    assert server.stats()["requests_total"] == 0
    base_url = server.base_url
    assert hits == n, f"only {hits} of {n} from the cache"
    built = list(jets)  # Jet objects, as a list of jets a user holds
    built_s, built_hits = await warm_pass(tagger, built)
    assert built_hits == n and server.stats()["requests_total"] == 0
    dataset = jets.dataset()  # the same jets as a data set over one padded array
    assert [j.key for j in dataset[:50]] == [j.key for j in built[:50]]
    dataset_s, dataset_hits = await warm_pass(tagger, dataset)
    assert dataset_hits == n and server.stats()["requests_total"] == 0
    return filled, {
        "warm_jet_objects_s": built_s,
        "warm_jet_objects_jets_per_s": n / built_s,
        "warm_dataset_s": dataset_s,
        "warm_dataset_jets_per_s": n / dataset_s,
        "template": template,
        "n": n,
        "fill_s": fill,
        "fill_jets_per_s": n / fill,
        "warm_s": seconds,
        "warm_jets_per_s": n / seconds,
        "base_url": base_url,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--child", "--stream-child"):
        _, mode, url, cache_folder, name, count = sys.argv
        (child if mode == "--child" else stream_child)(url, cache_folder, name, int(count))
        sys.exit(0)
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=20_000)
    p.add_argument("--stream-jets", type=int, default=100_000)
    p.add_argument("--template", default="few_shot")
    args = p.parse_args()
    n = 2000 if args.quick else args.jets
    m = 10_000 if args.quick else max(args.stream_jets, n)
    lc_n = 300 if args.quick else LANGCHAIN_JETS

    def in_child(mode: str, url: str, folder: str, count: int) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, str(Path(__file__)), mode, url, folder, args.template, str(count)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as folder, EmulatedServer(process=True) as server:
        filled, row = asyncio.run(parent(n, args.template, folder, server))
        base_url = row.pop("base_url")
        new = in_child("--child", base_url, folder, n)
        assert server.stats()["requests_total"] == 0  # the new process asked nothing either
        extend_s = extend(tagger_for(base_url, folder, args.template), filled, m)
        del filled
        stream = in_child("--stream-child", base_url, folder, m)
        assert server.stats()["requests_total"] == 0
        langchain = asyncio.run(langchain_route(server, folder, args.template, lc_n))
    assert new["hits"] == n, new
    assert stream["hits"] == m and stream["first_cached"], stream
    row.update(
        new_process_setup_s=new["setup_s"],
        new_process_s=new["seconds"],
        new_process_jets_per_s=n / new["seconds"],
        met=row["warm_jet_objects_jets_per_s"] >= TARGET,
        stream_jets=m,
        stream_extend_s=extend_s,
        **{f"stream_{k}": v for k, v in stream.items()},
        first_result_met=stream["first_result_ms"] < FIRST_TARGET_MS,
        bytes_per_result_met=stream["bytes_per_result_peak"] <= BYTES_TARGET,
        langchain=langchain,
    )
    if "hit_jets_per_s" in langchain:
        row["hits_vs_langchain"] = row["warm_jets_per_s"] / langchain["hit_jets_per_s"]
    print(
        table(
            [
                "template",
                "jets",
                "fill jets/s",
                "warm, Jet objects",
                "warm, data set",
                "warm jets/s",
                "new process jets/s",
                "target",
            ],
            [
                [
                    row["template"],
                    n,
                    row["fill_jets_per_s"],
                    row["warm_jet_objects_jets_per_s"],
                    row["warm_dataset_jets_per_s"],
                    row["warm_jets_per_s"],
                    row["new_process_jets_per_s"],
                    f">= {TARGET:,.0f}: {'met' if row['met'] else 'missed'}",
                ]
            ],
        )
    )
    print(
        table(
            ["cached jets", "first result [ms]", "abatch s", "bytes/result (peak)", "(held)"],
            [
                [
                    m,
                    stream["first_result_ms"],
                    stream["abatch_s"],
                    stream["bytes_per_result_peak"],
                    stream["bytes_per_result_held"],
                ]
            ],
        )
    )
    print(f"LangChain route ({lc_n} jets): {langchain}")
    targets = {
        "target": TARGET,
        "first_result_target_ms": FIRST_TARGET_MS,
        "bytes_per_result_target": BYTES_TARGET,
    }
    print(f"results: {save(f'cache_hits_{args.template}', targets, [row])}")
