"""Emulated effort levels: tokens and seconds per jet at low, medium and high effort.

The emulated server uses the gpt-oss-120b-on-H100 latency preset; jets go one at a time
(``max_concurrency=1``), so the seconds are a jet's latency alone. The reference column is
what STACK_NOTES measured with gpt-oss-120b on vLLM (simple prompt, one jet). The emulator's
reasoning lengths are settings (``effort_tokens``), so this checks the emulation is shaped
like the real thing, not anything about a language model.

    python benchmarks/effort.py [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from _common import PerturbedJets, parser, save, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import LATENCY_PRESETS, EmulatedServer

PRESET = "gpt-oss-120b-h100"
REFERENCE = {"low": (120, 0.8), "medium": (370, 2.6), "high": (2000, 12.0)}
"""STACK_NOTES: gpt-oss-120b on vLLM, one jet: output tokens and seconds."""


async def main(n: int) -> list[dict[str, Any]]:
    jets = list(PerturbedJets(n, offset=11))
    rows = []
    with EmulatedServer(process=True, **LATENCY_PRESETS[PRESET]) as server:
        for effort in ("low", "medium", "high"):
            tagger = JetTagger(server.model, base_url=server.base_url, effort=effort, cache=None)
            await tagger.ainvoke(jets[0])  # connections and first-call imports
            start = time.perf_counter()
            results = await tagger.abatch(jets, {"max_concurrency": 1})
            wall = time.perf_counter() - start
            ref_tokens, ref_seconds = REFERENCE[effort]
            rows.append(
                {
                    "effort": effort,
                    "n": n,
                    "input_tokens": statistics.mean(r.usage.input_tokens for r in results),
                    "output_tokens": statistics.mean(r.usage.output_tokens for r in results),
                    "reasoning_tokens": statistics.mean(r.usage.reasoning_tokens for r in results),
                    "seconds_per_jet": wall / n,
                    "latency_p50": statistics.median(r.latency for r in results),
                    "reference_output_tokens": ref_tokens,
                    "reference_seconds": ref_seconds,
                }
            )
            print(f"{effort}: {wall / n:.2f} s/jet", flush=True)
    return rows


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=4, help="jets per effort")
    args = p.parse_args()
    rows = asyncio.run(main(2 if args.quick else args.jets))
    print(
        table(
            [
                "effort",
                "jets",
                "input tok",
                "output tok",
                "reasoning tok",
                "s/jet",
                "vLLM ref tok",
                "vLLM ref s",
            ],
            [
                [
                    r["effort"],
                    r["n"],
                    r["input_tokens"],
                    r["output_tokens"],
                    r["reasoning_tokens"],
                    r["seconds_per_jet"],
                    r["reference_output_tokens"],
                    r["reference_seconds"],
                ]
                for r in rows
            ],
        )
    )
    print(f"results: {save('effort', {'preset': LATENCY_PRESETS[PRESET]}, rows)}")
