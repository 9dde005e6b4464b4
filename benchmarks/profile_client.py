"""Where the client's CPU per jet goes: ``cProfile`` of ``JetTagger.abatch`` (no cache).

An instant emulated server in its own process; ``N`` few-shot jets at ``k`` in flight (issue
23: 1,280 jets, 64 in flight). Prints CPU per jet (``time.process_time``, profiler off), then
the profile (profiler on: its own overhead inflates every figure, so read it as shares):
self time by library (the file's top-level package) and the functions that cost the most,
cumulative, per jet.

    python benchmarks/profile_client.py [--jets N] [--concurrency K] [--template NAME]
        [--cache] [--top 40] [--bare]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections import defaultdict
from typing import Any

from _common import PerturbedJets, sdk_payload

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.store.cache import ResultCache


def library(path: str) -> str:
    """The top-level package a profiled function's file belongs to."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "vibe_jet_tagging/" in path:
        rest = path.split("vibe_jet_tagging/", 1)[1]
        return "vibe_jet_tagging." + rest.split("/", 1)[0].removesuffix(".py")
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")


def by_library(stats: pstats.Stats, n: int) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (path, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[library(path)] += tottime
    return sorted(((k, 1e3 * v / n) for k, v in totals.items()), key=lambda kv: -kv[1])


async def main(args: argparse.Namespace) -> None:
    with EmulatedServer(process=True) as server, tempfile.TemporaryDirectory() as folder:
        cache = ResultCache(folder) if args.cache else None
        tagger = JetTagger(
            server.model,
            base_url=server.base_url,
            template=args.template,
            cache=cache,
            max_concurrency=args.concurrency,
        )
        if args.bare:
            import openai

            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
            gate = asyncio.Semaphore(args.concurrency)

            async def one(p: dict[str, Any]) -> None:
                async with gate:
                    await client.chat.completions.create(**p)

            async def run(jets: list[Any]) -> None:
                payloads = [sdk_payload(tagger, j) for j in jets]
                await asyncio.gather(*(one(p) for p in payloads))
        else:

            async def run(jets: list[Any]) -> None:
                results = await tagger.abatch(jets)
                assert all(r.ok for r in results)

        await run(list(PerturbedJets(args.concurrency, offset=50_000)))
        jets = list(PerturbedJets(args.jets, offset=0))
        start = time.process_time()
        await run(jets)
        cpu = time.process_time() - start
        print(f"CPU per jet, profiler off: {1e3 * cpu / args.jets:.3f} ms")
        jets = list(PerturbedJets(args.jets, offset=args.jets))
        profile = cProfile.Profile()
        start = time.process_time()
        profile.enable()
        await run(jets)
        profile.disable()
        cpu = time.process_time() - start
        print(f"CPU per jet, profiler on: {1e3 * cpu / args.jets:.3f} ms")
    stats = pstats.Stats(profile)
    print("\nself time by library [ms per jet, profiled]")
    for name, ms in by_library(stats, args.jets)[:25]:
        print(f"  {ms:7.3f}  {name}")
    print(f"\ncumulative, top {args.top} [ms per jet, profiled]")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])  # type: ignore[attr-defined]
    for (path, _line, name), (_, calls, _, cumtime, _) in rows[: args.top]:
        where = f"{library(path)}:{name}"
        print(f"  {1e3 * cumtime / args.jets:7.3f}  {calls / args.jets:6.1f}/jet  {where}")
    if args.dump:
        stats.dump_stats(args.dump)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=1280)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--template", default="few_shot")
    p.add_argument("--cache", action="store_true", help="with a result cache (a fresh folder)")
    p.add_argument("--bare", action="store_true", help="the bare openai SDK loop instead")
    p.add_argument("--top", type=int, default=45)
    p.add_argument("--dump", help="write the pstats file here")
    asyncio.run(main(p.parse_args()))
