"""Async against sequential: the same jets through ``abatch`` at once and one at a time.

The emulated server uses the gpt-oss-120b-on-H100 latency preset (``ttft`` 50 ms, 6.5 ms per
token, a 10 % slowdown per extra running request) at medium effort, so a jet takes about
2.5 s alone. Sequential is ``abatch`` with ``max_concurrency=1``; async lets every jet be in
flight at once. No cache: both passes ask the server for every jet. (The earlier classifier
measured 5.1x on 5 jets at medium effort.)

    python benchmarks/async_speedup.py [--quick]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _common import PerturbedJets, parser, save, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import LATENCY_PRESETS, EmulatedServer

PRESET = "gpt-oss-120b-h100"


async def timed(tagger: JetTagger, jets: list[Any], limit: int) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    results = await tagger.abatch(jets, {"max_concurrency": limit})
    return time.perf_counter() - start, results


async def main(n: int, effort: str) -> dict[str, Any]:
    jets = list(PerturbedJets(n, offset=3))
    with EmulatedServer(process=True, **LATENCY_PRESETS[PRESET]) as server:
        tagger = JetTagger(server.model, base_url=server.base_url, effort=effort, cache=None)
        await tagger.abatch(jets[:2])  # connections and first-call imports
        concurrent, results = await timed(tagger, jets, n)
        sequential, again = await timed(tagger, jets, 1)
    assert [r.label for r in results] == [r.label for r in again]
    tokens = sum(r.usage.output_tokens for r in results) / n
    return {
        "preset": PRESET,
        "effort": effort,
        "n": n,
        "sequential_s": sequential,
        "async_s": concurrent,
        "speedup": sequential / concurrent,
        "sequential_s_per_jet": sequential / n,
        "output_tokens_per_jet": tokens,
    }


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=20)
    p.add_argument("--effort", default="medium")
    args = p.parse_args()
    n = 5 if args.quick else args.jets
    row = asyncio.run(main(n, args.effort))
    print(
        table(
            ["jets", "effort", "sequential [s]", "async [s]", "speedup", "s/jet alone"],
            [
                [
                    row["n"],
                    row["effort"],
                    row["sequential_s"],
                    row["async_s"],
                    f"{row['speedup']:.1f}x",
                    row["sequential_s_per_jet"],
                ]
            ],
        )
    )
    print(f"results: {save('async_speedup', {'preset': LATENCY_PRESETS[PRESET]}, [row])}")
