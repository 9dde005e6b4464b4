"""The big picture on one machine: several servers, shard processes, one merge.

Starts ``S`` emulated vLLM servers (4; each in its own process, ``max_num_seqs = k``, a fixed
latency ``L``: ``ttft = L``, ``itl = 0``) and tags ``N`` distinct jets (20,000, an
EnergyFlow-format file) as a Slurm array would: ``P`` shard processes (4), each
``vjt tag JETS -o part-K.jsonl --shard K/P`` with every server given by a repeated
``--base-url`` and its own node-local cache folder (README, "Scaling out"); then
``vjt merge part-*.jsonl``. The servers together run ``S·k`` requests at once, so the run
cannot take less than ``ideal = ceil(N / (S·k)) · L``; achieved = ideal / wall, with wall from
launching the shard processes to the last one's exit (their start-up included). Reported
beside it: the span the servers were busy (first request in to last answer out, polled), the
requests each server answered (fairness), rows out and that every jet is there exactly once
after the merge, errors, the shard processes' CPU per jet and peak memory, the servers' CPU per
jet, and how busy the machine's two cores were (all processes, others' too), so the reader sees
whether the machine was the limit.

The batch-file route at 100,000 jets (export and import: time and memory) is measured by
``batch_files.py``; its last saved figures are copied into the results here, not measured again.

    python benchmarks/scale.py [--quick] [--jets N] [--k K] [--latency L] [--cache per-shard]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _common import RESULTS, parser, save, server_cpu, server_pid, table
from batch_files import _PEAK, write_jets

from vibe_jet_tagging.emulator import EmulatedServer

VJT = ["-m", "vibe_jet_tagging.cli"]


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


class Poller:
    """Polls the servers' ``/stats`` to find when the first request came in and the last left."""

    def __init__(self, servers: list[EmulatedServer], n: int, every: float = 0.25) -> None:
        self.servers, self.n, self.every = servers, n, every
        self.first: float | None = None
        self.last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            stats = [s.stats() for s in self.servers]
            now = time.perf_counter()
            total = sum(s["requests_total"] for s in stats)
            if total and self.first is None:
                self.first = now
            done = total >= self.n and not any(s["running"] or s["waiting"] for s in stats)
            if self.first is not None and self.last is None and done:
                self.last = now


def launch(args: list[str], env: dict[str, str], folder: Path, name: str) -> dict[str, Any]:
    """Start ``python ARGS`` with its peak memory recorded at exit; stdout/err to files."""
    peak = folder / f"{name}.peak_kib"
    out, err = (folder / f"{name}.out").open("w"), (folder / f"{name}.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", _PEAK, str(peak), *args], env=env, stdout=out, stderr=err
    )
    return {
        "name": name,
        "proc": proc,
        "peak": peak,
        "err": folder / f"{name}.err",
        "files": [out, err],
    }


def reap(job: dict[str, Any], start: float) -> None:
    """Wait for ``job``'s process: exit time, CPU (its own ``rusage``), peak memory."""
    proc: subprocess.Popen[bytes] = job["proc"]
    _, status, usage = os.wait4(proc.pid, 0)
    job["wall_s"] = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    for f in job["files"]:
        f.close()
    job["cpu_s"] = usage.ru_utime + usage.ru_stime
    job["returncode"] = proc.returncode
    job["peak_rss_mb"] = int(job["peak"].read_text()) / 1024 if job["peak"].exists() else None
    job["stderr"] = job["err"].read_text()


def run_all(jobs: list[dict[str, Any]], start: float) -> None:
    """Reap every job in its own thread (each shard's own exit time)."""
    threads = [threading.Thread(target=reap, args=(job, start)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [j for j in jobs if j["returncode"]]
    if failed:
        raise RuntimeError("\n".join(f"{j['name']} failed:\n{j['stderr']}" for j in failed))


def read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f]


def main(
    n: int, servers_n: int, shards: int, k: int, latency: float, concurrency: int, cache: str
) -> dict[str, Any]:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vjt-scale-")))
        jets_file = folder / f"QG_jets_perturbed_{n}.npz"
        write_jets(n, jets_file)
        servers = [
            stack.enter_context(EmulatedServer(process=True, max_num_seqs=k, ttft=latency, itl=0.0))
            for _ in range(servers_n)
        ]
        urls = [s.base_url for s in servers]
        env = {**os.environ, "COLUMNS": "200", "VJT_CACHE_DIR": str(folder / "cache")}
        env.pop("VJT_BASE_URL", None)
        env.pop("OPENAI_BASE_URL", None)
        tag = [*VJT, "tag", str(jets_file), "--concurrency", str(concurrency)]
        tag += [arg for url in urls for arg in ("--base-url", url)]
        if cache == "none":
            tag.append("--no-cache")
        # One shard process tagging a single jet: its start-up CPU and memory (the rest of a
        # shard's CPU is per jet); this also warms the page cache for the imports.
        probe = launch(
            [*tag, "-o", str(folder / "probe.jsonl"), "--limit", "1"],
            {**env, "VJT_CACHE_DIR": str(folder / "cache-probe")},
            folder,
            "probe",
        )
        run_all([probe], time.perf_counter())
        for s in servers:
            s.reset_stats()
        pids = [server_pid(s) for s in servers]
        server0 = [server_cpu(p) for p in pids]
        busy0, total0 = machine_busy()
        load = os.getloadavg()
        jobs = []
        start = time.perf_counter()
        with Poller(servers, n) as poller:
            for K in range(shards):
                shard_env = env
                if cache == "per-shard":  # a node-local cache per array task
                    shard_env = {**env, "VJT_CACHE_DIR": str(folder / f"cache-{K}")}
                part = folder / f"part-{K}.jsonl"
                jobs.append(
                    launch(
                        [*tag, "-o", str(part), "--shard", f"{K}/{shards}"],
                        shard_env,
                        folder,
                        f"shard-{K}",
                    )
                )
            run_all(jobs, start)
            wall = time.perf_counter() - start
        busy1, total1 = machine_busy()
        server_seconds = [server_cpu(p) - c for p, c in zip(pids, server0, strict=True)]
        stats = [s.stats() for s in servers]

        parts = [folder / f"part-{K}.jsonl" for K in range(shards)]
        part_rows = [read_rows(p) for p in parts]
        merged_path = folder / "merged.jsonl"
        merge_job = launch(
            [*VJT, "merge", *map(str, parts), "-o", str(merged_path)], env, folder, "merge"
        )
        merge_start = time.perf_counter()
        run_all([merge_job], merge_start)
        merged = read_rows(merged_path)

    indices = [r["index"] for r in merged]
    per_part = [sorted(r["index"] for r in rows) for rows in part_rows]
    overlap = sum(len(a) for a in per_part) - len({i for a in per_part for i in a})
    ideal = math.ceil(n / (servers_n * k)) * latency
    span = poller.last - poller.first if poller.first and poller.last else None
    client_cpu = sum(j["cpu_s"] for j in jobs)
    cores = os.cpu_count() or 1
    per_server_rows: dict[str, int] = {}
    for r in merged:
        per_server_rows[r.get("server") or "-"] = per_server_rows.get(r.get("server") or "-", 0) + 1
    requests = [s["requests_total"] for s in stats]
    return {
        "n": n,
        "servers": servers_n,
        "shards": shards,
        "k": k,
        "latency_s": latency,
        "concurrency_per_shard": concurrency,
        "cache": cache,
        "ideal_s": ideal,
        "wall_s": wall,
        "achieved_over_ideal": ideal / wall,
        "serving_span_s": span,
        "achieved_over_ideal_serving_span": ideal / span if span else None,
        "first_request_after_s": poller.first - start if poller.first else None,
        "load_average_at_start": load,
        "requests_per_server": requests,
        "ok_per_server": [s["outcomes"].get("ok", 0) for s in stats],
        "max_running_per_server": [s["max_running"] for s in stats],
        "max_waiting_per_server": [s["max_waiting"] for s in stats],
        "fairness_min_over_max": min(requests) / max(requests) if max(requests) else None,
        "rows_per_server_field": per_server_rows,
        "rows_per_shard": [len(r) for r in part_rows],
        "shard_overlap": overlap,
        "rows_out": len(merged),
        "distinct_jets_out": len(set(indices)),
        "every_jet_once": sorted(indices) == list(range(n)),
        "labelled": sum(r["label"] is not None for r in merged),
        "errors": sum(r["label"] is None for r in merged),
        "error_kinds": sorted({str(r.get("error_kind")) for r in merged if r["label"] is None}),
        "shard_wall_s": [j["wall_s"] for j in jobs],
        "shard_cpu_s": [j["cpu_s"] for j in jobs],
        "shard_peak_rss_mb": [j["peak_rss_mb"] for j in jobs],
        "client_cpu_ms_per_jet": 1e3 * client_cpu / n,
        "startup_cpu_s": probe["cpu_s"],
        "startup_peak_rss_mb": probe["peak_rss_mb"],
        "client_cpu_ms_per_jet_after_startup": 1e3 * (client_cpu - shards * probe["cpu_s"]) / n,
        "client_cores": client_cpu / wall,
        "server_cpu_ms_per_jet": 1e3 * sum(server_seconds) / n,
        "server_cores": sum(server_seconds) / wall,
        "machine_busy_cores": cores * (busy1 - busy0) / (total1 - total0),
        "cores": cores,
        "merge_s": merge_job["wall_s"],
        "merge_cpu_s": merge_job["cpu_s"],
        "merge_peak_rss_mb": merge_job["peak_rss_mb"],
        "merge_summary": merge_job["stderr"].strip().splitlines(),
        "shard_summaries": [j["stderr"].strip().splitlines()[-2:] for j in jobs],
    }


def batch_files_reference() -> dict[str, Any] | None:
    """The last saved ``batch_files.py`` figures (100,000 jets), copied, not measured here."""
    path = RESULTS / "batch_files.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    row = doc["rows"][0]
    keys = (
        "n",
        "export_s",
        "export_jets_per_s",
        "export_peak_rss_mb",
        "import_s",
        "import_jets_per_s",
        "import_peak_rss_mb",
        "request_mb",
        "output_mb",
    )
    return {"measured_at": doc["measured_at"], "file": "results/batch_files.json"} | {
        key: row[key] for key in keys
    }


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, help="jets to tag (20,000; --quick 2,000)")
    p.add_argument("--servers", type=int, default=4)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--k", type=int, default=64, help="max_num_seqs of each server")
    p.add_argument("--latency", type=float, default=2.0, help="L: seconds per request")
    p.add_argument("--concurrency", type=int, help="requests in flight per shard (default k)")
    p.add_argument("--cache", choices=["per-shard", "shared", "none"], default="per-shard")
    args = p.parse_args()
    n = args.jets or (2_000 if args.quick else 20_000)
    concurrency = args.concurrency or args.k
    row = main(n, args.servers, args.shards, args.k, args.latency, concurrency, args.cache)
    print(
        table(
            [
                "jets",
                "servers x k",
                "shards",
                "L [s]",
                "ideal [s]",
                "wall [s]",
                "achieved/ideal",
                "serving span [s]",
                "span/ideal",
                "rows out",
                "errors",
            ],
            [
                [
                    n,
                    f"{args.servers} x {args.k}",
                    args.shards,
                    args.latency,
                    row["ideal_s"],
                    row["wall_s"],
                    f"{row['achieved_over_ideal']:.1%}",
                    row["serving_span_s"] or "-",
                    f"{row['achieved_over_ideal_serving_span']:.1%}"
                    if row["achieved_over_ideal_serving_span"]
                    else "-",
                    row["rows_out"],
                    row["errors"],
                ]
            ],
        )
    )
    print()
    print(
        table(
            ["server", "requests", "ok", "max running", "max waiting"],
            [
                [i, r, o, m, w]
                for i, (r, o, m, w) in enumerate(
                    zip(
                        row["requests_per_server"],
                        row["ok_per_server"],
                        row["max_running_per_server"],
                        row["max_waiting_per_server"],
                        strict=True,
                    )
                )
            ],
        )
    )
    print()
    print(
        table(
            ["shard", "rows", "wall [s]", "CPU [s]", "CPU ms/jet", "peak RSS MB"],
            [
                [i, rows, w, c, 1e3 * c / rows, m]
                for i, (rows, w, c, m) in enumerate(
                    zip(
                        row["rows_per_shard"],
                        row["shard_wall_s"],
                        row["shard_cpu_s"],
                        row["shard_peak_rss_mb"],
                        strict=True,
                    )
                )
            ],
        )
    )
    print(
        f"\nclient CPU {row['client_cpu_ms_per_jet']:.2f} ms/jet ({row['client_cores']:.2f} cores; "
        f"{row['client_cpu_ms_per_jet_after_startup']:.2f} ms/jet without each shard's start-up "
        f"of {row['startup_cpu_s']:.1f} s), "
        f"servers {row['server_cpu_ms_per_jet']:.2f} ms/jet ({row['server_cores']:.2f} cores); "
        f"machine busy {row['machine_busy_cores']:.2f} of {row['cores']} cores (all processes); "
        f"load average at start {row['load_average_at_start'][0]:.2f}"
    )
    print(
        f"merge: {row['merge_s']:.1f} s, {row['merge_peak_rss_mb']:.0f} MB; "
        f"every jet exactly once: {row['every_jet_once']} "
        f"({row['distinct_jets_out']:,} distinct of {row['rows_out']:,} rows, "
        f"{row['shard_overlap']} jets in two parts)"
    )
    reference = batch_files_reference()
    if reference:
        print(
            f"batch files ({reference['n']:,} jets, batch_files.py, {reference['measured_at']}): "
            f"export {reference['export_s']:.0f} s, {reference['export_peak_rss_mb']:.0f} MB; "
            f"import {reference['import_s']:.0f} s, {reference['import_peak_rss_mb']:.0f} MB"
        )
    params = {
        "jets": n,
        "servers": args.servers,
        "shards": args.shards,
        "k": args.k,
        "latency_s": args.latency,
        "itl": 0.0,
        "concurrency_per_shard": concurrency,
        "cache": args.cache,
        "template": "few_shot (default)",
    }
    path = save("scale", params, [row], batch_files_reference=reference)
    print(f"results: {path}")
