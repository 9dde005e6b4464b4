"""Run every benchmark, one after the other, each in its own Python process, then summarise.

    python benchmarks/run_all.py [--quick]

Each writes ``benchmarks/results/<name>.json`` (``results/quick/`` with ``--quick``); see
``benchmarks/README.md`` for what they measure. The run ends with one table: each row of
issue 15's and issue 23's tables, the value measured in this run (read from the result files
this run wrote), the target, whether it is met, and the load average at the start of its
benchmark. The full set takes about 50 minutes on 2 cores (most of it the 100,000-jet memory
run and filling the caches); ``--quick`` runs small sizes in a few minutes (its numbers are a
smoke test, not the targets' sizes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["throughput.py"],
    ["client_cpu.py"],
    ["startup.py"],
    ["async_speedup.py"],
    ["cache_hits.py"],
    ["cache_hits.py", "--template", "zero_shot"],
    ["memory.py"],
    ["effort.py"],
    ["parsing.py"],
    ["gpu_cost.py"],
    ["scale.py"],
]

Row = tuple[str, str, str, bool | None]
"""(what, measured, target, met): one line of the summary."""


def _yes(met: bool | None) -> str:
    return "n/a" if met is None else ("yes" if met else "no")


def _load(doc: dict[str, Any]) -> str:
    load = (doc.get("machine") or {}).get("load_average_at_start") or [None]
    return "" if load[0] is None else f" [load {load[0]:.1f}]"


def _client_cpu(doc: dict[str, Any]) -> list[Row]:
    rows = []
    target = 0.5  # issue 15's, whatever the file was measured against
    for r in doc["rows"]:
        if "raw_ms_per_jet" not in r:
            continue
        floor = r["raw_ms_per_jet"]
        rows.append(
            (
                f"client CPU/jet, abatch without cache, {r['template']}, k = {r['concurrency']}",
                f"{r['chain_nocache_ms_per_jet']:.2f} ms "
                f"({r['chain_nocache_ms_per_jet'] / floor:.1f}x the floor); "
                f"with cache {r['chain_ms_per_jet']:.2f}{_load(doc)}",
                "<= 1.0 ms",
                r["chain_nocache_ms_per_jet"] <= 1.0,
            )
        )
        rows.append(
            (
                f"  the wire's floor (raw aiohttp) and the bare SDK, k = {r['concurrency']}",
                f"floor {floor:.2f} ms, bare openai SDK {r['bare_ms_per_jet']:.2f} ms "
                f"({r['bare_ms_per_jet'] / floor:.1f}x the floor)",
                "(reference)",
                None,
            )
        )
    for r in doc["rows"]:
        extra = r["chain_ms_per_jet"] - r["bare_ms_per_jet"]
        rows.append(
            (
                f"client CPU/jet, {r['template']}, k = {r['concurrency']}",
                f"chain {r['chain_ms_per_jet']:.2f} vs bare {r['bare_ms_per_jet']:.2f} ms "
                f"({extra:+.2f})",
                f"<= bare + {target} ms",
                extra <= target,
            )
        )
    for r in doc["rows"]:
        if "langchain_ms_per_jet" in r:
            lead = 1 - r["chain_ms_per_jet"] / r["langchain_ms_per_jet"]
            rows.append(
                (
                    f"LangChain route CPU/jet, {r['template']}, k = {r['concurrency']}",
                    f"chain {r['chain_ms_per_jet']:.2f} vs ChatOpenAI.with_structured_output "
                    f"{r['langchain_ms_per_jet']:.2f} ms ({lead:.0%} less)",
                    "keep the lead",
                    lead > 0,
                )
            )
    return rows


def _throughput(doc: dict[str, Any]) -> list[Row]:
    rows = []
    for r in doc["rows"]:
        if (r["k"], r["latency_s"]) != (64, 0.25):
            continue
        cli = "(vjt tag)" in r["template"]
        rows.append(
            (
                f"share of the bound, {r['template']}, k = 64, L = 0.25 s",
                f"{r['achieved_over_ideal']:.2f} (client {r['client_cpu_ms_per_jet']:.2f} ms/jet"
                + (", start-up subtracted" if cli else "")
                + f"){_load(doc)}",
                ">= 0.9",
                r["achieved_over_ideal"] >= 0.9,
            )
        )
    return rows


def _startup(doc: dict[str, Any]) -> list[Row]:
    return [
        (
            r["what"],
            f"{r['cpu_s']:.2f} s CPU{_load(doc)}"
            + (f"; heavy: {', '.join(r['heavy_imported'])}" if r["heavy_imported"] else ""),
            f"< {r['target_s']} s",
            r["met"],
        )
        for r in doc["rows"]
    ]


def _cache_hits(doc: dict[str, Any]) -> list[Row]:
    r = doc["rows"][0]
    target = 20_000  # issue 15's
    objects = r.get("warm_jet_objects_jets_per_s")
    dataset = r.get("warm_dataset_jets_per_s")
    rows: list[Row] = [
        (
            f"cache hits via abatch, {r['template']}, {r['n']:,} jets",
            ("" if objects is None else f"{objects:,.0f}/s given Jets; ")
            + ("" if dataset is None else f"{dataset:,.0f}/s given a data set; ")
            + f"built one by one {r['warm_jets_per_s']:,.0f}/s warm, "
            f"{r['new_process_jets_per_s']:,.0f}/s new process",
            f">= {target:,.0f}/s",
            min(x for x in (objects, dataset) if x is not None) >= target
            if objects is not None
            else r["warm_jets_per_s"] >= target,
        )
    ]
    if "stream_first_result_ms" in r:
        rows += [
            (
                f"first result, abatch_as_completed, {r['template']}, {r['stream_jets']:,} cached",
                f"{r['stream_first_result_ms']:.1f} ms{_load(doc)}",
                f"< {doc['params']['first_result_target_ms']:.0f} ms",
                r["first_result_met"],
            ),
            (
                f"abatch memory, {r['template']}, {r['stream_jets']:,} cached",
                f"{r['stream_bytes_per_result_peak']:,.0f} B/result (peak; "
                f"{r['stream_bytes_per_result_held']:,.0f} held){_load(doc)}",
                f"<= {doc['params']['bytes_per_result_target']:,.0f} B/result",
                r["bytes_per_result_met"],
            ),
        ]
    langchain = r.get("langchain") or {}
    if "hit_jets_per_s" in langchain:
        rows.append(
            (
                f"LangChain route cache hits (SQLiteCache, {langchain['n']:,} jets)",
                f"{langchain['hit_jets_per_s']:,.0f}/s; JetTagger "
                f"{r['hits_vs_langchain']:.1f}x faster",
                "keep the lead",
                r["hits_vs_langchain"] > 1,
            )
        )
    return rows


def _memory(doc: dict[str, Any]) -> list[Row]:
    r = doc["rows"][0]
    return [
        (
            f"streamed memory, {r['n']:,} jets (abatch_as_completed + JSONL)",
            f"peak {r['peak_rss_mb']:.0f} MB, +{r['growth_mb_per_10k_after_first_checkpoint']:.1f}"
            " MB per 10k after the first tenth",
            "flat in N (< 1 GB at 100k)",
            r["met"],
        )
    ]


def _gpu_cost(doc: dict[str, Any]) -> list[Row]:
    few = [r for r in doc["rows"] if r["template"] == "few_shot"]
    own = [r for r in few if r.get("template_format")] or few[:1]  # older files: particles
    out: list[Row] = []
    for r in own:
        share = r["cached_share_after_first"]
        server = doc["params"].get("server") or f"real ({doc['params'].get('model', '')})"
        uncached = r.get("uncached_input_tokens_after_first")
        out.append(
            (
                f"prefix-cache share, few_shot ({r['format']}), {server} server",
                f"{share:.1%} after the first jet (shared head "
                f"{r.get('shared_head_share', float('nan')):.1%}"
                + ("" if uncached is None else f"; {uncached:,.0f} tokens prefilled a jet")
                + f"){_load(doc)}",
                ">= 80 %",
                share >= 0.8,
            )
        )
    return out


SUMMARY: list[tuple[str, Callable[[dict[str, Any]], list[Row]]]] = [
    ("client_cpu", _client_cpu),
    ("throughput", _throughput),
    ("startup", _startup),
    ("cache_hits_few_shot", _cache_hits),
    ("cache_hits_zero_shot", _cache_hits),
    ("memory", _memory),
    ("gpu_cost", _gpu_cost),
    ("gpu_cost_real", _gpu_cost),
]


def summary(folder: Path, since: float) -> str:
    """Issues 15's and 23's table from the result files in ``folder`` written after ``since``."""
    lines = [("what", "measured", "target", "met")]
    for name, rows_of in SUMMARY:
        path = folder / f"{name}.json"
        if not path.exists() or path.stat().st_mtime < since:
            lines.append((name, "not measured in this run", "", ""))
            continue
        try:
            rows = rows_of(json.loads(path.read_text()))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            lines.append((name, f"unreadable result file ({type(exc).__name__}: {exc})", "", ""))
            continue
        lines += [(what, measured, target, _yes(met)) for what, measured, target, met in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    extra = ["--quick"] if quick else []
    failed = []
    since = time.time()
    for script, *args in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args + extra)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *args, *extra])
        print(f"=== {script}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script)
    folder = HERE / "results" / ("quick" if quick else "")
    print(f"\n=== issues 15 and 23, measured in this run{' (--quick sizes)' if quick else ''}")
    print(summary(folder, since))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:  # the table from the files as they are
        print(summary(HERE / "results" / ("quick" if "--quick" in sys.argv else ""), 0.0))
        sys.exit(0)
    sys.exit(main())
