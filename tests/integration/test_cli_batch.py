"""``vjt batch export | import``, ``vjt tag --shard``, ``vjt merge`` and ``vjt cache import``.

Commands run in subprocesses as a user runs them, against an emulated server the test starts
(so it can count the requests); ``vllm run-batch`` is played by :mod:`batch_standin`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vibe_jet_tagging.jets.dataset import load_sample

from .batch_standin import run_batch

pytestmark = pytest.mark.slow

SAMPLE = load_sample()
PICK = ["sample", "--limit", "40", "--balanced", "--seed", "1"]
COMPARED = ("label", "quark_probability", "parsed_by", "tokens", "key", "jet_key", "settings")


def vjt(*args: object, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vibe_jet_tagging.cli", *map(str, args)],
        input="",
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        timeout=300,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def refused(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a command that refused its input (exit 2)."""
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def rows(path: Path) -> dict[int, dict]:
    return {row["index"]: row for row in map(json.loads, path.read_text().splitlines())}


def run_all(folder: Path, prefix: str, base_url: str, fail=None) -> list[Path]:
    """Every request file of ``prefix`` through the run-batch stand-in; the output files."""
    outputs = []
    for requests in sorted(folder.glob(f"{prefix}-*.jsonl")):
        output = folder / ("out-" + requests.name)
        run_batch(requests, output, base_url, fail)
        outputs.append(output)
    return outputs


def test_export_run_batch_import_gives_the_labels_of_vjt_tag_and_fills_the_cache(
    tmp_path, fresh_emulator
):
    server = fresh_emulator()
    tagged = tmp_path / "tagged.jsonl"
    ok(vjt("tag", *PICK, "--base-url", server.base_url, "--no-cache", "-o", tagged, cwd=tmp_path))
    server.reset_stats()

    folder = tmp_path / "batch"
    export = ok(vjt("batch", "export", *PICK, "-o", folder, "--shard-size", 15, "--emulated",
                    cwd=tmp_path))  # fmt: skip
    assert "wrote 40 requests in 3 files" in export.stderr
    assert server.stats()["requests_total"] == 0  # an export asks nothing
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["request_files"] == [f"requests-0000{i}.jsonl" for i in range(3)]
    assert (manifest["jets"], manifest["requests"], manifest["cached"]) == (40, 40, 0)
    assert (manifest["constraint"], manifest["backend"], manifest["source"]) == (
        "regex",
        "emulated",
        "sample",
    )
    sizes = [len((folder / f).read_text().splitlines()) for f in manifest["request_files"]]
    assert sizes == [15, 15, 10]

    outputs = run_all(folder, "requests", server.base_url)
    results = tmp_path / "results.jsonl"
    imported = ok(vjt("batch", "import", *outputs, "-o", results, cwd=tmp_path))
    assert "40 jets (40 labelled" in imported.stderr
    mine, theirs = rows(results), rows(tagged)
    assert sorted(mine) == sorted(theirs) == sorted(SAMPLE.balanced(40, seed=1).indices.tolist())
    for index, row in mine.items():
        # The same row shape as vjt tag's; no server URL: the answers were made offline.
        assert set(row) == set(theirs[index]) - {"server"}
        assert {f: row[f] for f in COMPARED} == {f: theirs[index][f] for f in COMPARED}
        assert row["truth"] == int(SAMPLE.labels[index])
        assert (row["source"], row["backend"], row["error"]) == ("sample", "emulated", None)

    # The cache holds them all: vjt tag asks nothing, a new export has nothing to ask.
    server.reset_stats()
    again = ok(vjt("tag", *PICK, "--base-url", server.base_url, "-o", tmp_path / "again.jsonl",
                   cwd=tmp_path))  # fmt: skip
    assert server.stats()["requests_total"] == 0
    assert "40 from the cache, 0 asked" in again.stderr
    second = ok(vjt("batch", "export", *PICK, "-o", tmp_path / "b2", "--emulated", cwd=tmp_path))
    assert "wrote 0 requests in 0 files" in second.stderr
    # Its import gives the jets of the lines given, and the rest from the cache.
    cached = tmp_path / "cached.jsonl"
    ok(vjt("batch", "import", "--export", tmp_path / "b2", "-o", cached, outputs[0],
           cwd=tmp_path))  # fmt: skip
    got = rows(cached)
    assert len(got) == 40 and all(row["label"] == mine[i]["label"] for i, row in got.items())
    assert sum(row["cached"] for row in got.values()) == 25

    report = ok(vjt("evaluate", results, "--out", tmp_path / "report", cwd=tmp_path))
    assert "Traceback" not in report.stderr
    assert json.loads((tmp_path / "report" / "report.json").read_text())["n_jets"] == 40


def test_failed_lines_reasks_and_lines_of_another_export(tmp_path, fresh_emulator):
    server = fresh_emulator(faults={"malformed_json": 0.35})
    folder = tmp_path / "batch"
    ok(vjt("batch", "export", *PICK[:3], "-o", folder, "--emulated", cwd=tmp_path))
    requests = [json.loads(line) for line in (folder / "requests-00000.jsonl").open()]
    ids = [r["custom_id"] for r in requests]
    fail = {ids[0]: "http500", ids[1]: "exception"}
    [output] = run_all(folder, "requests", server.base_url, fail)
    asked = server.stats()["outcomes"]
    reasks = asked.get("malformed_json", 0)
    assert reasks > 3

    results = tmp_path / "results.jsonl"
    first = ok(vjt("batch", "import", output, "-o", results, cwd=tmp_path))
    assert f"{reasks} answers need a re-ask" in first.stderr
    got = rows(results)
    assert len(got) == 40 - reasks
    errors = {row["key"]: row for row in got.values() if row["error"] is not None}
    assert sorted(errors) == sorted(ids[:2])
    assert [errors[i]["error_kind"] for i in ids[:2]] == ["server", "bad_request"]
    assert all(row["label"] is None for row in errors.values())
    assert "line 1" in errors[ids[0]]["error"] and str(output) in errors[ids[0]]["error"]

    again = ok(vjt("batch", "export", "--reasks", "-o", folder, cwd=tmp_path))
    assert f"wrote {reasks} re-ask requests" in again.stderr
    server.configure(faults={"malformed_json": 0.0})
    [second] = run_all(folder, "reask-requests", server.base_url)
    done = ok(vjt("batch", "import", output, second, "-o", results, cwd=tmp_path))
    assert "re-ask" not in done.stderr and not (folder / "reasks.jsonl").exists()
    got = rows(results)
    assert len(got) == 40
    assert sum(row["parsed_by"] == "reask" for row in got.values()) == reasks
    assert sum(row["error"] is not None for row in got.values()) == 2

    # Lines of another export (other template: other custom ids) are refused, nothing written.
    other = tmp_path / "other"
    ok(vjt("batch", "export", *PICK[:3], "-o", other, "--template", "zero_shot", "--emulated",
           cwd=tmp_path))  # fmt: skip
    [foreign] = run_all(other, "requests", server.base_url)
    target = tmp_path / "mixed.jsonl"
    line = refused(vjt("batch", "import", output, foreign, "--export", folder, "-o", target,
                       cwd=tmp_path))  # fmt: skip
    assert line.startswith(f"error: {foreign} line 1: custom_id ")
    assert "is not a request of this export" in line
    assert not target.exists() and not Path(str(target) + ".partial").exists()
    # An output file alone, away from its export folder, says what is missing.
    lonely = tmp_path / "lonely.jsonl"
    lonely.write_text(output.read_text())
    assert "pass the export folder with --export" in refused(
        vjt("batch", "import", lonely, "-o", target, cwd=tmp_path)
    )


def test_shards_are_disjoint_and_merge_reports_gaps_duplicates_and_mixed_settings(
    tmp_path, fresh_emulator
):
    server = fresh_emulator()
    parts = []
    for k in range(3):
        part = tmp_path / f"part-{k}.jsonl"
        ok(vjt("tag", "sample", "--limit", 30, "--shard", f"{k}/3", "--base-url", server.base_url,
               "-o", part, cwd=tmp_path))  # fmt: skip
        parts.append(part)
    indices = [i for p in parts for i in rows(p)]
    assert sorted(indices) == list(range(30))  # disjoint, and all of them
    assert server.stats()["requests_total"] == 30

    merged = tmp_path / "merged.jsonl"
    done = ok(vjt("merge", *parts, "-o", merged, "--limit", 30, cwd=tmp_path))
    assert "no gaps" in done.stderr and "duplicates" not in done.stderr
    assert sorted(rows(merged)) == list(range(30))

    gaps = ok(vjt("merge", parts[0], parts[2], "-o", merged, "--limit", 30, cwd=tmp_path))
    assert "gaps: 10 of the 30 jets of sample are in no file: 10, 11, 12" in gaps.stderr
    twice = ok(vjt("merge", *parts, parts[1], "-o", merged, "--limit", 30, cwd=tmp_path))
    assert "duplicates: 10 jets are in more than one file" in twice.stderr
    # Without --limit: against the run's selection as the rows show it, not all 4,000 jets.
    whole = ok(vjt("merge", *parts, "-o", merged, cwd=tmp_path))
    assert "no gaps: every one of the 30 jets of sample selected by --limit 30" in whole.stderr
    # vjt evaluate takes the parts as they are, merged the same way.
    ok(vjt("evaluate", *parts, "--out", tmp_path / "report", cwd=tmp_path))
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["n_jets"] == 30

    low = tmp_path / "low-1.jsonl"
    ok(vjt("tag", "sample", "--limit", 30, "--shard", "1/3", "--effort", "low",
           "--base-url", server.base_url, "-o", low, cwd=tmp_path))  # fmt: skip
    line = refused(vjt("merge", parts[0], low, "-o", merged, cwd=tmp_path))
    assert line == (
        f"error: mixed settings: effort 'medium' and 'low' in {parts[0]} and {low}; merge only "
        "the parts of one run"
    )
    assert "need 0 <= K < N" in refused(
        vjt("tag", "sample", "--shard", "3/3", "--emulate", "-o", merged, cwd=tmp_path)
    )


def test_cache_import_lets_a_new_node_resume(tmp_path, fresh_emulator):
    server = fresh_emulator()
    first = tmp_path / "node-a.jsonl"
    node_a = {"VJT_CACHE_DIR": str(tmp_path / "cache-a")}
    ok(vjt("tag", "sample", "--limit", 12, "--base-url", server.base_url, "-o", first,
           cwd=tmp_path, **node_a))  # fmt: skip
    # A row without label and one from before rows recorded their backend stay out.
    extra = dict(rows(first)[0], index=100, key="f" * 32, label=None, error="x", error_kind="parse")
    old = dict(rows(first)[1], index=101, key="e" * 32)
    del old["backend"]
    with first.open("a") as f:
        f.write(json.dumps(extra) + "\n" + json.dumps(old) + "\n")

    node_b = {"VJT_CACHE_DIR": str(tmp_path / "cache-b")}
    imported = ok(vjt("cache", "import", first, cwd=tmp_path, **node_b))
    assert (
        f"imported 12 results into {tmp_path / 'cache-b' / 'results-emulated'} (0 were there "
        "already); left out 1 rows without label and 1 without a recorded backend"
    ) in imported.stderr
    server.reset_stats()
    second = tmp_path / "node-b.jsonl"
    ok(vjt("tag", "sample", "--limit", 20, "--base-url", server.base_url, "-o", second,
           cwd=tmp_path, **node_b))  # fmt: skip
    assert server.stats()["requests_total"] == 8  # only the jets node A had not tagged
    got, before = rows(second), rows(first)
    for index in range(12):
        assert got[index]["cached"] is True
        assert {f: got[index][f] for f in COMPARED} == {f: before[index][f] for f in COMPARED}
    again = ok(vjt("cache", "import", first, cwd=tmp_path, **node_b))
    assert "imported 0 results" in again.stderr and "(12 were there already)" in again.stderr


def test_an_invalid_jet_of_an_export_is_the_input_error_row_of_vjt_tag(tmp_path, fresh_emulator):
    X = SAMPLE[:6].padded()
    X[2, 0, 0] = float("nan")
    data = tmp_path / "jets.npz"
    np.savez(data, X=X, y=SAMPLE.labels[:6].astype(float))
    server = fresh_emulator()
    tagged = tmp_path / "tagged.jsonl"
    ok(vjt("tag", data, "--base-url", server.base_url, "--no-cache", "-o", tagged, cwd=tmp_path))
    folder = tmp_path / "batch"
    export = ok(vjt("batch", "export", data, "-o", folder, "--emulated", cwd=tmp_path))
    assert "wrote 5 requests" in export.stderr and "invalid data: 1 jets" in export.stderr
    outputs = run_all(folder, "requests", server.base_url)
    results = tmp_path / "results.jsonl"
    ok(vjt("batch", "import", *outputs, "-o", results, cwd=tmp_path))
    mine, theirs = rows(results), rows(tagged)
    assert sorted(mine) == sorted(theirs) == list(range(6))
    assert mine[2]["error_kind"] == theirs[2]["error_kind"] == "input"
    assert mine[2]["error"] == theirs[2]["error"] and "jet 2" in mine[2]["error"]
    assert [mine[i]["label"] for i in range(6)] == [theirs[i]["label"] for i in range(6)]
