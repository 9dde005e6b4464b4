"""Throughput of ``JetTagger.abatch`` against the server's bound.

The emulated server runs at most ``k`` requests at once (``max_num_seqs``) and each takes a
fixed ``L`` seconds (``ttft = L``, ``itl = 0``), so ``N`` jets cannot take less than
``ceil(N / k) * L``. The client asks with ``max_concurrency = k`` and no cache (every jet is a
request). Reported: achieved / ideal, i.e. ideal time over measured time (targets: >= 90 % at
k = 64, L = 0.25 s; >= 95 % at k = 256, L = 1 s), with the client's and the server's CPU per
jet, and the same for a bare ``AsyncOpenAI`` loop sending the same requests.

    python benchmarks/throughput.py [--quick]
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai
from _common import PerturbedJets, parser, save, sdk_payload, server_cpu, server_pid, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import EmulatedServer

TARGET = 0.95
TARGETS = {(64, 0.25): 0.9, (256, 1.0): TARGET}
"""Share of the bound to reach per (k, L): issue 15's at k = 64, L = 0.25 s; the earlier one."""


async def timed(
    server: EmulatedServer,
    label: str,
    k: int,
    n: int,
    latency: float,
    warm_up: Callable[[], Awaitable[int]],
    run: Callable[[], Awaitable[int]],
) -> dict[str, Any]:
    """Warm up at no latency (connections, imports), then time ``run`` at ``latency``.

    ``warm_up`` and ``run`` return how many jets got an answer.
    """
    server.configure(max_num_seqs=k, ttft=0.0, itl=0.0)
    await warm_up()
    server.configure(ttft=latency)
    server.reset_stats()
    pid = server_pid(server)
    cpu0, server0, t0 = time.process_time(), server_cpu(pid), time.perf_counter()
    labelled = await run()
    wall = time.perf_counter() - t0
    cpu, server_seconds = time.process_time() - cpu0, server_cpu(pid) - server0
    stats = server.stats()
    ideal = math.ceil(n / k) * latency
    return {
        "template": label,
        "k": k,
        "n": n,
        "latency_s": latency,
        "ideal_s": ideal,
        "wall_s": wall,
        "achieved_over_ideal": ideal / wall,
        "labelled": labelled,
        "requests": stats["requests_total"],
        "max_running": stats["max_running"],
        "client_cpu_ms_per_jet": 1e3 * cpu / n,
        "client_cpu_share": cpu / wall,
        "server_cpu_ms_per_jet": 1e3 * server_seconds / n,
        "met": None,
    }


async def measure(
    server: EmulatedServer, template: str, k: int, n: int, latency: float, offset: int
) -> dict[str, Any]:
    """One run of ``n`` jets at ``max_num_seqs = k`` and latency ``latency``."""
    tagger = JetTagger(
        server.model, base_url=server.base_url, template=template, cache=None, max_concurrency=k
    )

    async def tag(jets: Any) -> int:
        results = await tagger.abatch(jets, return_exceptions=True)
        return sum(getattr(r, "ok", False) for r in results)

    jets = list(PerturbedJets(n, offset=offset))
    row = await timed(
        server,
        template,
        k,
        n,
        latency,
        lambda: tag(PerturbedJets(k, offset=offset + n)),
        lambda: tag(jets),
    )
    target = TARGETS.get((k, latency))
    row["met"] = None if target is None else row["achieved_over_ideal"] >= target
    return row


async def measure_bare(
    server: EmulatedServer, template: str, k: int, n: int, latency: float, offset: int
) -> dict[str, Any]:
    """The same run with a bare ``openai.AsyncOpenAI`` loop sending the chain's payloads."""
    reference = JetTagger(server.model, base_url=server.base_url, template=template, cache=None)
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
    gate = asyncio.Semaphore(k)

    async def one(payload: dict[str, Any]) -> bool:
        async with gate:
            completion = await client.chat.completions.create(**payload)
            return bool(completion.choices[0].message.content)

    async def send(bodies: list[dict[str, Any]]) -> int:
        return sum(await asyncio.gather(*(one(p) for p in bodies)))

    def payloads(jets: PerturbedJets) -> list[dict[str, Any]]:
        return [sdk_payload(reference, jet) for jet in jets]

    warm, bodies = (
        payloads(PerturbedJets(k, offset=offset + n)),
        payloads(PerturbedJets(n, offset=offset)),
    )
    row = await timed(
        server,
        f"{template} (bare openai)",
        k,
        n,
        latency,
        lambda: send(warm),
        lambda: send(bodies),
    )
    await client.close()
    return row


async def main(quick: bool) -> list[dict[str, Any]]:
    rounds = 2 if quick else 8
    runs = [
        ("few_shot", 64, 0.25),
        ("few_shot (bare)", 64, 0.25),
        ("few_shot", 16, 1.0),
        ("few_shot", 64, 1.0),
        ("few_shot", 256, 1.0),
        ("few_shot (bare)", 256, 1.0),
        ("zero_shot", 256, 1.0),
        ("few_shot", 256, 4.0),
    ]
    rows = []
    with EmulatedServer(process=True) as server:
        for j, (template, k, latency) in enumerate(runs):
            bare = template.endswith(" (bare)")
            run = measure_bare if bare else measure
            name = template.removesuffix(" (bare)")
            row = await run(server, name, k, rounds * k, latency, offset=10_000 * j)
            rows.append(row)
            print(
                f"{row['template']:9s} k={k:3d} N={row['n']:5d} L={latency:.0f}s: "
                f"{row['achieved_over_ideal']:.1%} of the bound",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = asyncio.run(main(args.quick))
    print(
        table(
            [
                "template",
                "k",
                "N",
                "L [s]",
                "ideal [s]",
                "wall [s]",
                "achieved/ideal",
                "client ms/jet",
                "server ms/jet",
                "max running",
            ],
            [
                [
                    r["template"],
                    r["k"],
                    r["n"],
                    r["latency_s"],
                    r["ideal_s"],
                    r["wall_s"],
                    f"{r['achieved_over_ideal']:.1%}",
                    r["client_cpu_ms_per_jet"],
                    r["server_cpu_ms_per_jet"],
                    r["max_running"],
                ]
                for r in rows
            ],
        )
    )
    path = save(
        "throughput",
        {
            "rounds": 2 if args.quick else 8,
            "itl": 0.0,
            "targets": [[*k, t] for k, t in TARGETS.items()],
        },
        rows,
    )
    print(f"results: {path}")
