"""Run every benchmark, one after the other, each in its own Python process.

    python benchmarks/run_all.py [--quick]

Each writes ``benchmarks/results/<name>.json``; see ``benchmarks/README.md`` for what they
measure. The full set takes about 40 minutes on 2 cores (most of it the 100,000-jet memory
run and filling the cache for the cache-hit run); ``--quick`` runs small sizes in a few minutes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["throughput.py"],
    ["client_cpu.py"],
    ["async_speedup.py"],
    ["cache_hits.py"],
    ["cache_hits.py", "--template", "zero_shot"],
    ["memory.py"],
    ["effort.py"],
    ["parsing.py"],
    ["gpu_cost.py"],
]


def main() -> int:
    extra = ["--quick"] if "--quick" in sys.argv[1:] else []
    failed = []
    for script, *args in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args + extra)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *args, *extra])
        print(f"=== {script}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
