"""Cache hits: jets per second through ``abatch`` when every jet is in the result cache.

N distinct jets are tagged once against an instant emulated server (filling a fresh cache
folder: this pass's rate is reported too), then ``abatch`` runs again over the same jets:
every result comes from the cache, and the server must see no request. Then a new Python
process opens the same folder and does the same; the server still runs (the cache key holds
what the server is, read once from its /v1/models) and must see no chat request. Target: at
least 5,000 jets/s from a warm cache.

    python benchmarks/cache_hits.py [--quick] [--jets N] [--template NAME]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import PerturbedJets, parser, save, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.cache import ResultCache
from vibe_jet_tagging.emulator import EmulatedServer

TARGET = 5000.0


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


async def parent(n: int, template: str, folder: str, server: EmulatedServer) -> dict[str, Any]:
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
    return {
        "template": template,
        "n": n,
        "fill_s": fill,
        "fill_jets_per_s": n / fill,
        "warm_s": seconds,
        "warm_jets_per_s": n / seconds,
        "base_url": base_url,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, url, cache_folder, name, count = sys.argv
        child(url, cache_folder, name, int(count))
        sys.exit(0)
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=20_000)
    p.add_argument("--template", default="few_shot")
    args = p.parse_args()
    n = 2000 if args.quick else args.jets
    with tempfile.TemporaryDirectory() as folder, EmulatedServer(process=True) as server:
        row = asyncio.run(parent(n, args.template, folder, server))
        out = subprocess.run(
            [
                sys.executable,
                str(Path(__file__)),
                "--child",
                row.pop("base_url"),
                folder,
                args.template,
                str(n),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        new = json.loads(out.stdout.strip().splitlines()[-1])
        assert server.stats()["requests_total"] == 0  # the new process asked nothing either
    assert new["hits"] == n, new
    row.update(
        new_process_setup_s=new["setup_s"],
        new_process_s=new["seconds"],
        new_process_jets_per_s=n / new["seconds"],
        met=min(row["warm_jets_per_s"], n / new["seconds"]) >= TARGET,
    )
    print(
        table(
            ["template", "jets", "fill jets/s", "warm jets/s", "new process jets/s", "target"],
            [
                [
                    row["template"],
                    n,
                    row["fill_jets_per_s"],
                    row["warm_jets_per_s"],
                    row["new_process_jets_per_s"],
                    f">= {TARGET:,.0f}: {'met' if row['met'] else 'missed'}",
                ]
            ],
        )
    )
    print(f"results: {save(f'cache_hits_{args.template}', {'target': TARGET}, [row])}")
