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
import json
import math
import os
import subprocess
import sys
import tempfile
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
    busy = (stats.get("last_answer_at") or 0) - (stats.get("first_request_at") or 0)
    return {
        "server_busy_s": busy,
        "busy_over_ideal": ideal / busy if busy > 0 else None,
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


_PROBE = """
import atexit, json, os, socket, sys, time
noted = {}
def first_chat(data):
    if "first" not in noted and bytes(data[:200]).startswith(b"POST ") and (
        b"/chat/completions" in bytes(data[:200])
    ):
        noted["first"] = (time.process_time(), time.perf_counter())
for name in ("send", "sendall"):
    original = getattr(socket.socket, name)
    def patched(self, data, *args, _original=original):
        first_chat(data)
        return _original(self, data, *args)
    setattr(socket.socket, name, patched)
def report():
    cpu, wall = noted.get("first", (0.0, 0.0))
    print("PROBE " + json.dumps({"first_cpu_s": cpu, "cpu_s": time.process_time() - cpu,
                                 "wall_s": time.perf_counter() - wall}),
          file=sys.stderr, flush=True)
atexit.register(report)
from vibe_jet_tagging.cli import main
sys.exit(main(sys.argv[1:]))
"""


def measure_cli(
    server: EmulatedServer, template: str, k: int, n: int, latency: float
) -> dict[str, Any]:
    """``vjt tag`` over ``n`` sample jets at ``--concurrency k`` (start-up subtracted)."""
    server.configure(max_num_seqs=k, ttft=latency, itl=0.0)
    server.reset_stats()
    pid = server_pid(server)
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "VJT_CACHE_DIR": f"{folder}/cache",
            "VJT_KEY_FILE": f"{folder}/key",
            "VJT_CONFIG": f"{folder}/none.toml",
            "COLUMNS": "100",
        }
        args = ["tag", "sample", "--limit", str(n), "--template", template, "--base-url",
                server.base_url, "--concurrency", str(k), "--no-cache",
                "-o", f"{folder}/out.jsonl"]  # fmt: skip
        server0 = server_cpu(pid)
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
        server_seconds = server_cpu(pid) - server0
        rows = [json.loads(line) for line in open(f"{folder}/out.jsonl")]  # noqa: SIM115
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PROBE "))
    probe = json.loads(line.removeprefix("PROBE "))
    stats = server.stats()
    ideal = math.ceil(n / k) * latency
    busy = stats["last_answer_at"] - stats["first_request_at"]
    labelled = sum(row.get("label") is not None for row in rows)
    target = TARGETS.get((k, latency))
    return {
        "template": f"{template} (vjt tag)",
        "k": k,
        "n": n,
        "latency_s": latency,
        "ideal_s": ideal,
        "wall_s": busy,
        "achieved_over_ideal": ideal / busy,
        "server_busy_s": busy,
        "busy_over_ideal": ideal / busy,
        "labelled": labelled,
        "requests": stats["requests_total"],
        "max_running": stats["max_running"],
        "client_cpu_ms_per_jet": 1e3 * probe["cpu_s"] / n,
        "client_startup_cpu_s": probe["first_cpu_s"],
        "client_cpu_share": probe["cpu_s"] / max(probe["wall_s"], 1e-9),
        "server_cpu_ms_per_jet": 1e3 * server_seconds / n,
        "exit_status": proc.returncode,
        "met": None if target is None else ideal / busy >= target,
    }


async def main(quick: bool) -> list[dict[str, Any]]:
    rounds = 2 if quick else 8
    runs = [
        ("few_shot", 64, 0.25),
        ("few_shot (vjt tag)", 64, 0.25),
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
            if template.endswith(" (vjt tag)"):
                name = template.removesuffix(" (vjt tag)")
                row = measure_cli(server, name, k, rounds * k, latency)
                rows.append(row)
                print(
                    f"{row['template']:9s} k={k:3d} N={row['n']:5d} L={latency:.2f}s: "
                    f"{row['achieved_over_ideal']:.1%} of the bound (server's window)",
                    flush=True,
                )
                continue
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
