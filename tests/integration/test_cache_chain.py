"""The result cache through the tagger: what hits, what misses, across processes and kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vibe_jet_tagging import ChatVLLM, JetTagger, load_sample
from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.jets.formats import JetFormat
from vibe_jet_tagging.store.cache import ResultCache, stored_modes
from vibe_jet_tagging.tagging.usage import usage_totals

SAMPLE = load_sample()
EXAMPLES = SAMPLE[3000:3200]

RUNNER = textwrap.dedent(
    """
    import asyncio, json, sys
    from vibe_jet_tagging import JetTagger, load_sample
    base_url, cache_dir, start, stop, out = sys.argv[1:6]
    sample = load_sample()
    tagger = JetTagger(base_url=base_url, cache=cache_dir, examples=sample[3000:3200],
                       max_concurrency=4)
    jets = sample[int(start):int(stop)]

    async def main():
        with open(out, "a") as f:
            async for i, r in tagger.abatch_as_completed(jets, return_exceptions=True):
                f.write(json.dumps({"index": r.index, "label": r.label,
                                    "p": r.quark_probability, "cached": r.cached,
                                    "reasoning": r.reasoning}) + "\\n")
                f.flush()

    asyncio.run(main())
    """
)


def run_tagger(tmp_path: Path, server, cache: Path, start: int, stop: int, out: Path):
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    args = [
        sys.executable,
        str(script),
        server.base_url,
        str(cache),
        str(start),
        str(stop),
        str(out),
    ]
    return subprocess.Popen(args, stderr=subprocess.PIPE, text=True)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_a_rerun_in_a_new_process_makes_no_request_and_returns_equal_results(
    tmp_path, fresh_emulator
):
    server = fresh_emulator()
    cache = tmp_path / "cache"
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert run_tagger(tmp_path, server, cache, 0, 30, first).wait() == 0
    assert server.stats()["requests_total"] == 30
    server.reset_stats()
    assert run_tagger(tmp_path, server, cache, 0, 30, second).wait() == 0
    assert server.stats()["requests_total"] == 0
    a = {r["index"]: r for r in rows(first)}
    b = {r["index"]: r for r in rows(second)}
    assert set(a) == set(b) == set(range(30))
    for i in a:
        assert not a[i]["cached"]
        assert b[i]["cached"]
        assert (b[i]["label"], b[i]["p"], b[i]["reasoning"]) == (
            a[i]["label"],
            a[i]["p"],
            a[i]["reasoning"],
        )
    assert 4 not in stored_modes(cache)  # nothing pickled


@pytest.mark.slow
def test_two_processes_tagging_overlapping_jets_at_once_lose_nothing(tmp_path, fresh_emulator):
    server = fresh_emulator(ttft=0.01)
    cache = tmp_path / "cache"
    procs = [
        run_tagger(tmp_path, server, cache, 0, 40, tmp_path / "a.jsonl"),
        run_tagger(tmp_path, server, cache, 20, 60, tmp_path / "b.jsonl"),
    ]
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    stored = ResultCache(cache)
    assert len(stored) == 60
    # A third run finds every jet.
    server.reset_stats()
    assert run_tagger(tmp_path, server, cache, 0, 60, tmp_path / "c.jsonl").wait() == 0
    assert server.stats()["requests_total"] == 0
    assert all(r["cached"] for r in rows(tmp_path / "c.jsonl"))


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_asking_only_for_the_rest(tmp_path, fresh_emulator):
    server = fresh_emulator(ttft=0.15)
    cache = tmp_path / "cache"
    out = tmp_path / "killed.jsonl"
    proc = run_tagger(tmp_path, server, cache, 0, 48, out)
    # No clock: wait for 12 rows, then freeze the server (an hour to the first token) so the
    # run is still partway when it is killed, however slow the machine is.
    while not out.exists() or len(rows(out)) < 12:
        assert proc.poll() is None, "the run ended before it was killed"
        time.sleep(0.05)
    server.configure(ttft=3600.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    server.configure(ttft=0.15)
    done = len(ResultCache(cache))
    assert 12 <= done < 48
    asked_before = server.stats()["requests_total"]
    # Requests in flight at the kill (at most max_concurrency = 4) were paid but not stored.
    assert done <= asked_before <= done + 4
    server.reset_stats()
    assert run_tagger(tmp_path, server, cache, 0, 48, tmp_path / "resumed.jsonl").wait() == 0
    assert server.stats()["requests_total"] == 48 - done
    resumed = rows(tmp_path / "resumed.jsonl")
    assert sorted(r["index"] for r in resumed) == list(range(48))
    assert sum(r["cached"] for r in resumed) == done


def tagger_with(server, cache: ResultCache, **options) -> JetTagger:
    model_options = {
        k: options.pop(k)
        for k in ("model", "reasoning_effort", "temperature", "seed", "base_url")
        if k in options
    }
    model_options.setdefault("base_url", server.base_url)
    options.setdefault("examples", EXAMPLES)
    return JetTagger(ChatVLLM(**model_options), cache=cache, **options)


async def test_every_key_component_invalidates_and_nothing_else_does(
    tmp_path, fresh_emulator, monkeypatch
):
    server = fresh_emulator(models=["openai/gpt-oss-120b", "openai/gpt-oss-20b"])
    other_server = fresh_emulator(models=["openai/gpt-oss-120b", "openai/gpt-oss-20b"])
    cache = ResultCache(tmp_path)
    jets = [SAMPLE[i] for i in (0, 1, 2, 3)]
    base = tagger_with(server, cache)
    await base.abatch(jets)
    assert server.stats()["requests_total"] == 4

    async def requests_for(tagger: JetTagger, inputs=jets) -> int:
        before = server.stats()["requests_total"] + other_server.stats()["requests_total"]
        results = await tagger.abatch(inputs)
        assert all(r.ok for r in results)
        after = server.stats()["requests_total"] + other_server.stats()["requests_total"]
        return after - before

    # Nothing else: another server URL, the order of jets, the padding and row order of input.
    assert await requests_for(tagger_with(server, cache, base_url=other_server.base_url)) == 0
    assert await requests_for(base, jets[::-1]) == 0
    shuffled = [
        np.vstack([np.random.default_rng(1).permutation(j.constituents), np.zeros((9, 4))])
        for j in jets
    ]
    assert await requests_for(base, shuffled) == 0

    # Each component: a miss for every jet.
    changed = {
        "jet": (base, [Jet.from_array(j.constituents * [1.0 + 1e-9, 1, 1, 1]) for j in jets]),
        "template": (tagger_with(server, cache, template="physics_primer"), jets),
        "format": (tagger_with(server, cache, format=JetFormat(decimals=2)), jets),
        "examples": (tagger_with(server, cache, examples=SAMPLE[3200:3400]), jets),
        "shots": (tagger_with(server, cache, shots=2), jets),
        "model": (tagger_with(server, cache, model="openai/gpt-oss-20b"), jets),
        "effort": (tagger_with(server, cache, reasoning_effort="high"), jets),
        "temperature": (tagger_with(server, cache, temperature=0.7), jets),
        "seed": (tagger_with(server, cache, seed=11), jets),
        "schema off": (tagger_with(server, cache, structured_output=False), jets),
    }
    for name, (tagger, inputs) in changed.items():
        assert await requests_for(tagger, inputs) == 4, name

    import vibe_jet_tagging.tagging.parsing as parsing  # the key reads them from here

    for version in ("SCHEMA_VERSION", "PARSER_VERSION"):
        with monkeypatch.context() as bumped:  # undo() would undo the isolated settings too
            bumped.setattr(parsing, version, "test-bump")
            assert await requests_for(tagger_with(server, cache)) == 4, version
    # And the original settings still hit.
    assert await requests_for(tagger_with(server, cache)) == 0


async def test_hits_add_no_tokens_to_the_totals_but_keep_their_usage(tmp_path, emulator):
    cache = ResultCache(tmp_path)
    tagger = tagger_with(emulator, cache, template="zero_shot")
    jets = [SAMPLE[i] for i in range(10)]
    paid = await tagger.abatch(jets)
    again = await tagger.abatch(jets + jets[:2])
    first, second = usage_totals(paid), usage_totals(again)
    assert first.usage.output_tokens > 0
    assert first.cache_hits == 0
    assert second.cache_hits == 12
    assert second.usage.total_tokens == 0
    assert second.cost == 0
    assert [r.usage for r in again[:10]] == [r.usage for r in paid]


async def test_refresh_asks_again_and_overwrites(tmp_path, fresh_emulator):
    server = fresh_emulator()
    cache = ResultCache(tmp_path)
    jets = [SAMPLE[i] for i in range(3)]
    await tagger_with(server, cache).abatch(jets)
    refreshed = await tagger_with(server, cache, refresh=True).abatch(jets)
    assert server.stats()["requests_total"] == 6
    assert not any(r.cached for r in refreshed)


@pytest.mark.skipif(os.name != "posix", reason="folder modes are POSIX")
def test_cache_folder_is_private(tmp_path, emulator):
    tagger = tagger_with(emulator, ResultCache(tmp_path / "private"), template="zero_shot")
    tagger.invoke(SAMPLE[0])
    assert (tmp_path / "private").stat().st_mode & 0o077 == 0
