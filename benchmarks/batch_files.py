"""Batch files at scale: ``vjt batch export`` and ``vjt batch import`` of N jets (100,000).

Builds an EnergyFlow-format ``.npz`` of N distinct jets (the bundled sample, perturbed as in
``PerturbedJets`` does), exports it (``vjt batch export FILE -o DIR --emulated``, default few-shot
template), answers every request line with the emulated server in a child process (a streaming
stand-in of ``vllm run-batch``; not measured), then imports the output files (``vjt batch
import``, which also fills the cache). Export and import each run as their own ``vjt`` process;
reported: wall time, jets per second, and that process's peak resident memory (``wait4``'s
``ru_maxrss``), beside the peak of a process that only reads the same jets (what the data
layer needs by itself) and the sizes of the files. Streaming keeps the peaks far below the
files' sizes.

    python benchmarks/batch_files.py [--quick] [--jets N]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import parser, save, table

from vibe_jet_tagging.data import load_sample
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.jets import PT

READ_ONLY = "from vibe_jet_tagging.data import load_jets; import sys; print(sum(1 for _ in load_jets(sys.argv[1])))"  # noqa: E501


def write_jets(n: int, path: Path) -> None:
    """An EnergyFlow-format file of ``n`` distinct jets (compressed, as EnergyFlow's are).

    Jet ``i`` is sample jet ``i % 4000`` with its pts scaled by ``1 + 1e-6 i`` (as
    ``PerturbedJets``): its own cache key, a real quark or gluon jet to the emulated server.
    """
    sample = load_sample()
    rows, labels = sample.padded(), np.asarray(sample.labels, dtype=np.float64)
    i = np.arange(n)
    X = rows[i % len(rows)]
    X[:, :, PT] *= (1 + 1e-6 * i)[:, None]
    np.savez_compressed(path, X=X, y=labels[i % len(rows)])


def run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command; its wall time and peak resident memory (this child only)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(args)} failed:\n{err}")
    return {"s": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": out, "stderr": err}


async def answer(requests: Path, output: Path, base_url: str, concurrency: int) -> int:
    """``vllm run-batch -i requests -o output`` against the emulated server, streamed."""
    root = base_url.removesuffix("/v1")
    limits = httpx.Limits(max_connections=concurrency)
    n = 0
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(line: str) -> str:
            request = json.loads(line)
            reply = await client.post(root + request["url"], json=request["body"])
            body = reply.json()
            return json.dumps(
                {
                    "id": f"vllm-{n}",
                    "custom_id": request["custom_id"],
                    "response": {"status_code": reply.status_code, "request_id": "r",
                                 "body": body if reply.status_code == 200 else None},
                    "error": None if reply.status_code == 200 else body,
                }
            )  # fmt: skip

        pending: set[asyncio.Task[str]] = set()
        with requests.open() as lines, output.open("w") as out:
            for line in lines:
                pending.add(asyncio.create_task(one(line)))
                if len(pending) >= concurrency:
                    done, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
                    for task in done:
                        out.write(task.result() + "\n")
                        n += 1
            for task in asyncio.as_completed(pending):
                out.write(await task + "\n")
                n += 1
    return n


def main(n: int, folder: Path, shard_size: int, concurrency: int) -> dict[str, Any]:
    jets_file = folder / "QG_jets_perturbed.npz"
    start = time.perf_counter()
    write_jets(n, jets_file)
    print(f"wrote {n:,} jets in {time.perf_counter() - start:.0f} s", flush=True)
    env = {**os.environ, "VJT_CACHE_DIR": str(folder / "cache"), "COLUMNS": "200"}
    vjt = [sys.executable, "-m", "vibe_jet_tagging.cli"]

    read_only = run([sys.executable, "-c", READ_ONLY, str(jets_file)], env)
    assert int(read_only["stdout"]) == n
    print(f"reading the jets alone: {read_only['s']:.0f} s, {read_only['peak_rss_mb']:.0f} MB")

    export_dir = folder / "export"
    export = run(
        [*vjt, "batch", "export", str(jets_file), "-o", str(export_dir), "--emulated",
         "--shard-size", str(shard_size)],
        env,
    )  # fmt: skip
    manifest = json.loads((export_dir / "manifest.json").read_text())
    assert manifest["requests"] == n, manifest
    request_bytes = sum((export_dir / f).stat().st_size for f in manifest["request_files"])
    print(f"export: {export['s']:.0f} s, {export['peak_rss_mb']:.0f} MB", flush=True)

    outputs = []
    start = time.perf_counter()
    with EmulatedServer(process=True) as server:
        for name in manifest["request_files"]:
            output = export_dir / f"out-{name}"
            asyncio.run(answer(export_dir / name, output, server.base_url, concurrency))
            outputs.append(output)
            print(f"answered {name} ({time.perf_counter() - start:.0f} s)", flush=True)
    answer_s = time.perf_counter() - start
    output_bytes = sum(o.stat().st_size for o in outputs)

    results = folder / "results.jsonl"
    imported = run([*vjt, "batch", "import", *map(str, outputs), "-o", str(results)], env)
    print(f"import: {imported['s']:.0f} s, {imported['peak_rss_mb']:.0f} MB", flush=True)
    labelled = 0
    with results.open() as f:
        rows = 0
        for line in f:
            rows += 1
            labelled += json.loads(line)["label"] is not None
    assert rows == n, (rows, n)
    return {
        "n": n,
        "shard_size": shard_size,
        "request_files": len(manifest["request_files"]),
        "request_mb": request_bytes / 2**20,
        "output_mb": output_bytes / 2**20,
        "results_mb": results.stat().st_size / 2**20,
        "read_only_s": read_only["s"],
        "read_only_peak_rss_mb": read_only["peak_rss_mb"],
        "export_s": export["s"],
        "export_jets_per_s": n / export["s"],
        "export_peak_rss_mb": export["peak_rss_mb"],
        "answer_s": answer_s,
        "import_s": imported["s"],
        "import_jets_per_s": n / imported["s"],
        "import_peak_rss_mb": imported["peak_rss_mb"],
        "labelled": labelled,
        "import_summary": imported["stderr"].strip().splitlines()[0],
    }


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=100_000)
    p.add_argument("--shard-size", type=int, default=25_000)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    n = 5000 if args.quick else args.jets
    with tempfile.TemporaryDirectory() as tmp:
        row = main(n, Path(tmp), min(args.shard_size, n), args.concurrency)
    steps = [
        ["read jets only", row["read_only_s"], row["read_only_peak_rss_mb"], "-"],
        ["export", row["export_s"], row["export_peak_rss_mb"], row["request_mb"]],
        ["import (+ cache fill)", row["import_s"], row["import_peak_rss_mb"], row["output_mb"]],
    ]
    print(
        table(
            ["jets", "step", "s", "jets/s", "peak RSS MB", "files MB"],
            [[n, step, s, n / s, rss, mb] for step, s, rss, mb in steps],
        )
    )
    print(row["import_summary"])
    print(f"results: {save('batch_files', {'jets': n}, [row])}")
