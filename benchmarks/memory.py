"""Peak memory tagging many jets with the results streamed to disk, as ``vjt tag`` does.

N distinct jets (the bundled sample's 4,000, perturbed; built when read, as a file-backed
data set would be) go through ``abatch_as_completed`` against an instant emulated server,
with the result cache on (it stores every result) and each row appended to a JSONL file by
``report.JsonlWriter`` as it finishes. Reported: this process's peak resident memory
(``ru_maxrss``) before, at checkpoints and at the end. Target: under 1 GB for 100,000 jets.

    python benchmarks/memory.py [--quick] [--jets N]
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import PerturbedJets, parser, peak_rss_mb, save, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.evaluation.report import JsonlWriter, result_row
from vibe_jet_tagging.store.cache import ResultCache

TARGET_MB = 1000.0


async def main(n: int, folder: Path, concurrency: int) -> dict[str, Any]:
    jets = PerturbedJets(n)
    checkpoints: list[dict[str, float]] = [{"jets": 0, "peak_rss_mb": peak_rss_mb(), "s": 0.0}]
    every = max(n // 10, 1)
    errors = 0
    with EmulatedServer(process=True) as server:
        tagger = JetTagger(
            server.model,
            base_url=server.base_url,
            cache=ResultCache(folder / "cache"),
            max_concurrency=concurrency,
        )
        start = time.perf_counter()
        with JsonlWriter(folder / "results.jsonl") as writer:
            done = 0
            async for i, outcome in tagger.abatch_as_completed(jets, return_exceptions=True):
                row = result_row(outcome, index=i, truth=jets.label(i), source="perturbed")
                writer.write(row)
                errors += row["error"] is not None
                done += 1
                if done % every == 0:
                    checkpoints.append(
                        {
                            "jets": done,
                            "peak_rss_mb": peak_rss_mb(),
                            "s": time.perf_counter() - start,
                        }
                    )
                    print(
                        f"{done:7,d} jets  peak RSS {checkpoints[-1]['peak_rss_mb']:.0f} MB  "
                        f"{done / checkpoints[-1]['s']:.0f} jets/s",
                        flush=True,
                    )
        seconds = time.perf_counter() - start
        peak = peak_rss_mb()  # before anything below reads the results back
        entries = len(tagger.cache)
    with (folder / "results.jsonl").open() as f:
        indices = [json.loads(line)["index"] for line in f]
    assert len(indices) == len(set(indices)) == n, "rows lost or duplicated"
    growth = (checkpoints[-1]["peak_rss_mb"] - checkpoints[1]["peak_rss_mb"]) / max(
        checkpoints[-1]["jets"] - checkpoints[1]["jets"], 1
    )
    return {
        "n": n,
        "concurrency": concurrency,
        "seconds": seconds,
        "jets_per_s": n / seconds,
        "errors": errors,
        "cache_entries": entries,
        "results_file_mb": (folder / "results.jsonl").stat().st_size / 2**20,
        "peak_rss_mb": peak,
        "growth_mb_per_10k_after_first_checkpoint": 1e4 * growth,
        "extrapolated_peak_rss_mb_at_100k": peak + growth * max(100_000 - n, 0),
        "checkpoints": checkpoints,
        "met": peak + growth * max(100_000 - n, 0) < TARGET_MB,
    }


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    n = 5000 if args.quick else args.jets
    with tempfile.TemporaryDirectory() as tmp:
        row = asyncio.run(main(n, Path(tmp), args.concurrency))
    print(
        table(
            [
                "jets",
                "s",
                "jets/s",
                "cache entries",
                "rows MB",
                "peak RSS MB",
                "MB per 10k after 1st 10 %",
                "at 100k (extrapolated if N < 100k)",
            ],
            [
                [
                    row["n"],
                    row["seconds"],
                    row["jets_per_s"],
                    row["cache_entries"],
                    row["results_file_mb"],
                    row["peak_rss_mb"],
                    row["growth_mb_per_10k_after_first_checkpoint"],
                    row["extrapolated_peak_rss_mb_at_100k"],
                ]
            ],
        )
    )
    print(f"results: {save('memory', {'target_mb': TARGET_MB}, [row])}")
