"""Batch files at scale: ``vjt batch export`` and ``vjt batch import`` of N jets (100,000).

Builds an EnergyFlow-format ``.npz`` of N distinct jets (the bundled sample, perturbed as in
``PerturbedJets`` does), exports it (``vjt batch export FILE -o DIR --emulated``, default few-shot
template), answers every request line with the emulated server in a child process (a streaming
stand-in of ``vllm run-batch``; not measured), then imports the output files (``vjt batch
import``, which also fills the cache). Export and import each run as their own ``vjt`` process;
reported: wall time, jets per second, and that process's peak resident memory (its
``VmHWM`` at exit), beside the peak of a process that only reads the same jets (what the data
layer needs by itself) and the sizes of the files. Streaming keeps the peaks far below the
files' sizes.

    python benchmarks/batch_files.py [--quick] [--jets N] [--keep DIR]

With ``--keep DIR`` the jets file and the answers (~25 min for 100,000 on 2 cores) stay in DIR
and later runs measure export and import again without answering again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import parser, save, table

from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.jets import PT
from vibe_jet_tagging.jets.dataset import load_sample

READ_ONLY = "from vibe_jet_tagging.jets.dataset import load_jets; import sys; print(sum(1 for _ in load_jets(sys.argv[1])))"  # noqa: E501


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


_PEAK = """
import atexit, runpy, sys
out, kind, target, *rest = sys.argv[1:]
def peak():  # VmHWM: this process's own peak since exec (ru_maxrss would include the parent's)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    open(out, "w").write(line.split()[1])
atexit.register(peak)
if kind == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(target, {"__name__": "__main__"})
"""


def run(args: list[str], env: dict[str, str], folder: Path) -> dict[str, Any]:
    """Run ``python ARGS`` (``-m module ...`` or ``-c code ...``): wall time, peak memory."""
    peak_file = folder / "peak_kib"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, str(peak_file), *args], env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr}")
    peak = int(peak_file.read_text()) / 1024
    return {"s": seconds, "peak_rss_mb": peak, "stdout": proc.stdout, "stderr": proc.stderr}


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
    """Write the jets and answer them once (kept in ``folder``); measure export and import."""
    jets_file = folder / f"QG_jets_perturbed_{n}.npz"
    answered = folder / f"answered_{n}"
    if not jets_file.exists():
        start = time.perf_counter()
        write_jets(n, jets_file)
        print(f"wrote {n:,} jets in {time.perf_counter() - start:.0f} s", flush=True)
    run_dir = folder / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir()
    env = {**os.environ, "VJT_CACHE_DIR": str(run_dir / "cache"), "COLUMNS": "200"}
    vjt = ["-m", "vibe_jet_tagging.cli"]

    read_only = run(["-c", READ_ONLY, str(jets_file)], env, run_dir)
    assert int(read_only["stdout"]) == n
    print(f"reading the jets alone: {read_only['s']:.0f} s, {read_only['peak_rss_mb']:.0f} MB")

    export_dir = run_dir / "export"
    export = run(
        [*vjt, "batch", "export", str(jets_file), "-o", str(export_dir), "--emulated",
         "--shard-size", str(shard_size)],
        env,
        run_dir,
    )  # fmt: skip
    manifest = json.loads((export_dir / "manifest.json").read_text())
    assert manifest["requests"] == n, manifest
    request_bytes = sum((export_dir / f).stat().st_size for f in manifest["request_files"])
    print(f"export: {export['s']:.0f} s, {export['peak_rss_mb']:.0f} MB", flush=True)

    answer_s = None
    if not answered.exists():  # the same jets and settings: the same custom ids every run
        answered.mkdir()
        start = time.perf_counter()
        with EmulatedServer(process=True) as server:
            for name in manifest["request_files"]:
                output = answered / f"out-{name}"
                asyncio.run(answer(export_dir / name, output, server.base_url, concurrency))
                print(f"answered {name} ({time.perf_counter() - start:.0f} s)", flush=True)
        answer_s = time.perf_counter() - start
    outputs = sorted(answered.glob("out-*.jsonl"))
    output_bytes = sum(o.stat().st_size for o in outputs)

    results = run_dir / "results.jsonl"
    imported = run(
        [*vjt, "batch", "import", *map(str, outputs), "--export", str(export_dir), "-o",
         str(results)],
        env,
        run_dir,
    )  # fmt: skip
    print(f"import: {imported['s']:.0f} s, {imported['peak_rss_mb']:.0f} MB", flush=True)
    labelled = rows = 0
    with results.open() as f:
        for line in f:
            rows += 1
            labelled += json.loads(line)["label"] is not None
    assert rows == n, (rows, n)
    row = {
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
    shutil.rmtree(run_dir)
    return row


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=100_000)
    p.add_argument("--shard-size", type=int, default=25_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument(
        "--keep", type=Path, help="work folder to keep: the jets and answers are reused next time"
    )
    args = p.parse_args()
    n = 5000 if args.quick else args.jets
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        row = main(n, folder, min(args.shard_size, n), args.concurrency)
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
