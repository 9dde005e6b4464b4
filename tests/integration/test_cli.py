"""``vjt tag``, ``evaluate``, ``compare``, ``demo`` and ``cache`` run as a user runs them.

Every command runs in a subprocess (``python -m vibe_jet_tagging.cli``) with the test's own
``VJT_CACHE_DIR``. Where a test must know how many requests a server received, it starts the
emulated server itself and passes ``--base-url``; ``--emulate`` starts one inside the command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vibe_jet_tagging.cli.cache import cache_root, results_dir
from vibe_jet_tagging.config import load_settings
from vibe_jet_tagging.errors import VJTError
from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.store.cache import ResultCache

SAMPLE = load_sample()
ROW_KEYS = {
    "index",
    "truth",
    "label",
    "quark_probability",
    "parsed_by",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "tokens",
    "latency",
    "cached",
    "error",
    "backend",
}
METRIC_KEYS = {"auc", "accuracy", "rejection_at_30", "rejection_at_50"}
PNG = b"\x89PNG\r\n\x1a\n"


def vjt_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vibe_jet_tagging.cli", *map(str, args)]


def environment(**extra: str) -> dict[str, str]:
    """The test's environment (its own cache folder) with rich's width pinned to 80."""
    return {**os.environ, "COLUMNS": "80", **extra}


def vjt(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``vjt ARGS`` with nothing on stdin."""
    return subprocess.run(
        vjt_command(*args),
        input="",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or environment(),
        timeout=120,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def read_jsonl(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), "the file must hold whole lines"
    return [json.loads(line) for line in text.splitlines()]


def emulated_cache() -> ResultCache:
    return ResultCache(Path(os.environ["VJT_CACHE_DIR"]) / "results-emulated")


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, *, freeze=None) -> None:
    """Until ``path`` holds ``n`` rows (the process must still be running; no clock: a hang
    is pytest-timeout's to catch).

    ``freeze``: an emulated server that then answers nothing more (an hour to the first
    token), so the run is still partway when the test stops it however slow the machine is.
    Undo with ``server.configure(ttft=...)``.
    """
    while not (path.exists() and path.read_text().count("\n") >= n):
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    if freeze is not None:
        freeze.configure(ttft=3600.0)


def communicate_or_dump(proc: subprocess.Popen) -> str:
    """``proc``'s stderr once it exits. No deadline: when pytest-timeout stops the wait, the
    child (run with ``PYTHONFAULTHANDLER=1``) is sent SIGABRT, and the failure shows where
    each of its threads was."""
    try:
        _, stderr = proc.communicate()
    except BaseException:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate()
        pytest.fail(f"vjt did not exit; its threads:\n{stderr.decode(errors='replace')}")
    return stderr.decode()


def wait_idle(server) -> dict:
    """The server's counters once no request is running or waiting (the client is gone)."""
    while True:
        stats = server.stats()
        if stats["running"] == 0 and stats["waiting"] == 0:
            return stats
        time.sleep(0.05)


# -- vjt tag ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_tag_writes_one_row_per_jet_and_a_rerun_asks_nothing(tmp_path, fresh_emulator):
    server = fresh_emulator()
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url]
    args += ["--limit", "60", "--balanced", "--seed", "1"]
    first = ok(vjt(*args, cwd=tmp_path))

    # The server it was pointed at says it is the emulated one, and the command says so.
    assert f"emulated vLLM server on {server.base_url}" in first.stderr
    assert "physics heuristic, not a language model" in first.stderr
    assert server.stats()["requests_total"] == 60  # one request per jet, no re-asks

    rows = read_jsonl(out)
    expected = SAMPLE.balanced(60, seed=1)
    assert sorted(r["index"] for r in rows) == sorted(expected.indices.tolist())
    for row in rows:
        assert set(row) >= ROW_KEYS
        assert row["error"] is None
        assert row["truth"] == int(SAMPLE.labels[row["index"]])
        assert row["label"] in ("quark", "gluon")
        assert 0 <= row["quark_probability"] <= 1
        assert row["parsed_by"] == "schema"
        assert row["tokens"] == row["input_tokens"] + row["output_tokens"]
        assert row["input_tokens"] > 500 and row["output_tokens"] > row["reasoning_tokens"] > 0
        assert row["latency"] > 0
        assert row["cached"] is False
        assert row["backend"] == "emulated"
        assert row["source"] == "sample"
    assert "60 asked" in first.stderr

    # The same command again: every row kept, not one request.
    server.reset_stats()
    second = ok(vjt(*args, cwd=tmp_path))
    assert server.stats()["requests_total"] == 0
    assert read_jsonl(out) == rows
    assert "60 kept from before, 0 from the cache, 0 asked" in second.stderr

    # The same file with another effort: its rows move to the side file, never mixed.
    third = ok(vjt(*args, "--effort", "low", cwd=tmp_path))
    assert f"moved 60 rows of {out} made for other jets or with other settings" in third.stderr
    low = read_jsonl(out)
    assert len(low) == 60 and {r["effort"] for r in low} == {"low"}
    assert {r["effort"] for r in rows} == {"medium"}
    assert read_jsonl(tmp_path / "out.set-aside.jsonl") == rows
    assert server.stats()["requests_total"] == 60


@pytest.mark.slow
def test_a_jet_with_bad_data_is_one_input_error_and_a_rerun_completes(tmp_path, fresh_emulator):
    server = fresh_emulator()
    X, y = SAMPLE[:8].padded(), SAMPLE.labels[:8].astype(np.float64)
    X[2, 0, 1] = np.nan  # jet 2: its hardest constituent has no rapidity
    X[5, 3, 0] = -1.0  # jet 5: a negative pt
    path = tmp_path / "bad.npz"
    np.savez_compressed(path, X=X, y=y)
    out = tmp_path / "out.jsonl"
    args = ["tag", path, "-o", out, "--base-url", server.base_url]

    first = ok(vjt(*args, cwd=tmp_path))
    rows = read_jsonl(out)
    by_index = {r["index"]: r for r in rows}
    assert sorted(by_index) == list(range(8))
    nan = "non-finite value (nan or inf) in constituent row 0"
    assert by_index[2]["error"] == f"{path}: jet 2: {nan}"
    assert by_index[5]["error"] == f"{path}: jet 5: negative pt -1 in constituent row 3"
    for i in (2, 5):
        assert by_index[i]["error_kind"] == "input" and by_index[i]["label"] is None
        assert "\n" not in by_index[i]["error"]
    assert all(r["label"] in ("quark", "gluon") for i, r in by_index.items() if i not in (2, 5))
    assert server.stats()["requests_total"] == 6  # the bad jets are never sent
    assert "6 asked" in first.stderr
    assert "invalid data: 2 jets cannot be tagged" in first.stderr
    assert "rerun" not in first.stderr  # a rerun cannot help them

    # The same command again completes: the input errors are kept, nothing is asked.
    server.reset_stats()
    second = ok(vjt(*args, cwd=tmp_path))
    assert read_jsonl(out) == rows
    assert server.stats()["requests_total"] == 0
    assert "6 jets already tagged, 2 with invalid data kept as they are" in second.stderr

    # Once the file is fixed, the jet is asked again; the other bad one stays as it was.
    X[2, 0, 1] = 0.1
    np.savez_compressed(path, X=X, y=y)
    server.reset_stats()
    ok(vjt(*args, cwd=tmp_path))
    by_index = {r["index"]: r for r in read_jsonl(out)}
    assert len(by_index) == 8
    assert by_index[2]["label"] in ("quark", "gluon") and by_index[2]["error"] is None
    assert by_index[5] == {r["index"]: r for r in rows}[5]
    assert server.stats()["requests_total"] == 1


@pytest.mark.slow
def test_a_balanced_selection_grows_without_losing_rows(tmp_path, fresh_emulator):
    server = fresh_emulator()
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--balanced"]
    ok(vjt(*args, "--limit", "20", "--seed", "3", cwd=tmp_path))
    first = {r["index"]: r for r in read_jsonl(out)}
    server.reset_stats()
    grown = ok(vjt(*args, "--limit", "24", "--seed", "3", cwd=tmp_path))
    assert "20 kept from before, 0 from the cache, 4 asked" in grown.stderr
    assert server.stats()["requests_total"] == 4
    rows = {r["index"]: r for r in read_jsonl(out)}
    assert set(rows) == set(SAMPLE.balanced(24, seed=3).indices.tolist())
    assert all(rows[i] == row for i, row in first.items())


@pytest.mark.slow
def test_tag_resumes_after_sigkill_asking_only_for_missing_jets(tmp_path, fresh_emulator):
    n, concurrency = 40, 4
    # ~120 reasoning tokens at low effort: ~0.3 s per request, ~3 s for the whole run.
    server = fresh_emulator(ttft=0.02, itl=0.002)
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--effort", "low"]
    args += ["--limit", n, "--balanced", "--seed", "3", "--concurrency", concurrency]
    proc = subprocess.Popen(
        vjt_command(*args), cwd=tmp_path, env=environment(), stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_lines(out, 8, proc, freeze=server)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # no deadline: pytest-timeout catches a hang
    assert proc.returncode == -signal.SIGKILL

    before = read_jsonl(out)  # whole lines only, even after SIGKILL
    first_run = wait_idle(server)
    stored = len(emulated_cache())
    assert 8 <= len(before) < n, "killed partway"
    # A row is written after its result is cached; a request is stored once it is answered.
    assert len(before) <= stored <= first_run["outcomes"].get("ok", 0)
    lost = first_run["requests_total"] - stored  # in flight at the kill, or not yet stored
    assert 0 <= lost <= concurrency

    server.configure(ttft=0.0, itl=0.0)
    server.reset_stats()
    rerun = ok(vjt(*args, cwd=tmp_path))
    second_run = server.stats()

    rows = read_jsonl(out)
    expected = SAMPLE.balanced(n, seed=3).indices.tolist()
    assert sorted(r["index"] for r in rows) == sorted(expected)  # none lost, none twice
    assert all(r["error"] is None for r in rows)
    by_index = {r["index"]: r for r in rows}
    assert all(by_index[r["index"]] == r for r in before)  # the first run's rows kept as they were
    # Only the jets neither in the file nor in the cache were asked again.
    assert second_run["requests_total"] == n - stored
    assert sum(r["cached"] for r in rows) == stored - len(before)
    assert first_run["requests_total"] + second_run["requests_total"] == n + lost
    assert f"{len(before)} jets already tagged" in rerun.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_tag_ctrl_c_or_sigterm_exits_and_leaves_whole_lines(tmp_path, fresh_emulator, stop, status):
    server = fresh_emulator(ttft=0.02, itl=0.002)
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--effort", "low"]
    args += ["--limit", "40", "--concurrency", "4"]
    env = environment(PYTHONFAULTHANDLER="1")  # SIGABRT prints every thread's stack
    proc = subprocess.Popen(vjt_command(*args), cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        wait_for_lines(out, 5, proc, freeze=server)
    finally:
        proc.send_signal(stop)
        stderr = communicate_or_dump(proc)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    rows = read_jsonl(out)
    assert 5 <= len(rows) < 40
    assert all(set(ROW_KEYS) <= set(r) and r["error"] is None for r in rows)
    match = re.search(r"interrupted: (\d+) of 40 jets are in .*rerun the same command", stderr)
    assert match, stderr
    assert int(match.group(1)) == len(rows)
    wait_idle(server)


@pytest.mark.slow
def test_tag_stops_when_the_server_goes_away(tmp_path, fresh_emulator):
    server = fresh_emulator(ttft=0.02, itl=0.002)
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--effort", "low"]
    args += ["--limit", "200", "--concurrency", "4"]
    env = environment(VJT_MAX_RETRIES="0", PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(vjt_command(*args), cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    wait_for_lines(out, 4, proc)
    server.stop()
    stderr = communicate_or_dump(proc)
    assert proc.returncode == 2, stderr
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("error: stopped: ")
    assert "cannot reach the model server at " + server.base_url in error
    assert "jets in a row failed" in error and "rerun the same command" in error
    rows = read_jsonl(out)
    assert len(rows) < 100  # stopped early, not 200 failures
    failed = [r for r in rows if r["error"] is not None]
    assert {r["error_kind"] for r in failed} == {"connection"}
    assert len(failed) >= 14  # concurrency + 10 in a row


# -- vjt evaluate -----------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG, f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is nearly empty"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def table_rows(stdout: str) -> dict[str, list[list[str]]]:
    """The cells of every table row a command printed, by row name (in order of tables)."""
    rows: dict[str, list[list[str]]] = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 3 and re.fullmatch(r"[\d,]+", cells[1]):
            rows.setdefault(cells[0], []).append(cells[1:])
    return rows


@pytest.mark.slow
def test_evaluate_writes_report_plots_and_page(tmp_path):
    results = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", results, "--emulate", "--limit", "60", "--balanced"]
    ok(vjt(*args, "--seed", "1", cwd=tmp_path))
    rows = read_jsonl(results)

    proc = ok(vjt("evaluate", results, "--out", tmp_path / "rep", cwd=tmp_path))
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["n_jets"] == 60
    assert report["n_labelled"] == 60
    assert report["n_errors"] == 0
    assert report["errors_by_kind"] == dict.fromkeys(
        ("parse", "contradiction", "server", "truncated", "input"), 0
    )
    assert report["cache_hits"] == 0
    assert report["backend"] == "emulated"
    assert report["backend_note"] == "emulated server: physics heuristic, not a language model"
    assert set(report["metrics"]) >= METRIC_KEYS
    assert set(report["baselines"]) == {"multiplicity", "logistic_regression"}
    for baseline in report["baselines"].values():
        assert set(baseline) >= METRIC_KEYS
    # The numbers are those of the rows and the jets, not just well-formed: accuracy from the
    # labels, AUC from the stated probability.
    truth = [r["truth"] for r in sorted(rows, key=lambda r: r["index"])]
    score = [r["quark_probability"] for r in sorted(rows, key=lambda r: r["index"])]
    assert report["metrics"]["auc"] == pytest.approx(roc_auc_score(truth, score))
    jets = SAMPLE[np.array(sorted(r["index"] for r in rows))]
    multiplicity = jets.observables()["multiplicity"]
    assert report["baselines"]["multiplicity"]["auc"] == pytest.approx(
        roc_auc_score(jets.labels, -multiplicity)
    )
    accuracy = np.mean([(r["label"] == "quark") == (r["truth"] == 1) for r in rows])
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert report["metrics"]["accuracy_from"].startswith("label")
    assert report["metrics"]["auc_from"].startswith("quark_probability")
    lo, hi = report["metrics"]["intervals"]["auc"]
    assert lo <= report["metrics"]["auc"] <= hi
    usage = report["usage"]
    for key in ("input_tokens", "output_tokens", "reasoning_tokens"):
        assert usage[key] == sum(r[key] for r in rows) > 0

    for name in ("roc.png", "calibration.png", "scores.png"):
        width, height = png_size(tmp_path / "rep" / name)
        assert width >= 400 and height >= 400
        assert f"plot:   {tmp_path / 'rep' / name}" in proc.stdout
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    # One table row per tagger, with the jets behind it, each on one line within 80 columns;
    # the cells are those report.json holds. Tables go to stdout, nothing of them to stderr.
    printed = table_rows(proc.stdout)
    assert table_rows(proc.stderr) == {}
    for name in ("emulated server", "multiplicity", "logistic regr."):
        separation, accuracy_row = printed[name]
        assert separation[0] == accuracy_row[0] == "60"
        assert re.fullmatch(r"0\.\d+ ± 0\.\d+", separation[1]), separation
    assert printed["all jets"] == [["60", printed["emulated server"][1][1]]]
    saved = [row["cells"] for table in report["tables"] for row in table["rows"]]
    assert [c for c in saved if c[0] == "multiplicity"] == [
        ["multiplicity", *cells] for cells in printed["multiplicity"]
    ]
    assert max(len(line.rstrip()) for line in proc.stdout.splitlines() if "±" in line) <= 80
    assert "∞" not in proc.stdout
    assert "not a language model" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("n", [8, 40])
def test_evaluate_small_runs_say_what_they_left_out(tmp_path, n):
    results = tmp_path / "out.jsonl"
    ok(vjt("tag", "sample", "-o", results, "--emulate", "--limit", n, "--balanced", cwd=tmp_path))
    proc = ok(vjt("evaluate", results, "--out", tmp_path / "rep", cwd=tmp_path))
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["metrics"]["auc"] is not None
    for name in ("report.html", "roc.png", "calibration.png", "scores.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    if n == 8:
        assert set(report["baselines"]) == {"multiplicity"}
        why = report["baselines_left_out"]["logistic_regression"]
        assert why == (
            "its 5-fold cross-validation needs at least 10 quark and 10 gluon jets; "
            "these jets are 4 quark and 4 gluon"
        )
        assert f"note: logistic regression left out: {why}" in proc.stdout
        assert why in (tmp_path / "rep" / "report.html").read_text()
    else:
        assert set(report["baselines"]) == {"multiplicity", "logistic_regression"}
        assert report["baselines_left_out"] == {}


# -- vjt compare ------------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_efforts_on_the_same_jets(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "sample", "--efforts", "low,medium", "--limit", "40", "--emulate"]
    proc = ok(vjt(*args, "--out", out, cwd=tmp_path))
    data = json.loads((out / "compare.json").read_text())
    assert data["backend"] == "emulated"
    assert data["n_jets"] == 40
    assert set(data["runs"]) == {"low", "medium"}
    for effort, run in data["runs"].items():
        assert run["settings"]["effort"] == effort
        assert run["n_jets"] == run["n_labelled"] == 40
        assert set(run["metrics"]) >= METRIC_KEYS
        rows = read_jsonl(out / f"results-{effort}.jsonl")
        assert {r["effort"] for r in rows} == {effort}
    low = read_jsonl(out / "results-low.jsonl")
    medium = read_jsonl(out / "results-medium.jsonl")
    assert {r["index"] for r in low} == {r["index"] for r in medium}  # the same jets
    per_jet = {e: data["runs"][e]["usage"]["per_jet_recorded"] for e in ("low", "medium")}
    assert per_jet["low"]["output_tokens"] < 0.6 * per_jet["medium"]["output_tokens"]
    assert per_jet["low"]["input_tokens"] == per_jet["medium"]["input_tokens"]
    for name in ("roc.png", "calibration.png", "scores.png"):
        png_size(out / name)
    assert (out / "compare.html").read_text().count('src="data:image/png;base64,') == 3
    assert set(data["baselines"]) == {"multiplicity", "logistic_regression"}  # listed once
    printed = table_rows(proc.stdout)
    for name in ("low", "medium", "multiplicity", "logistic regr."):
        assert printed[name][0][0] == "40"  # the jets behind the numbers
        assert re.fullmatch(r"0\.\d+ ± 0\.\d+", printed[name][0][1])
    assert [row[0] for row in printed["all jets"]] == ["40", "40"]  # one per run
    assert printed["low"][-1][4] == "0"  # the cost table: no jet without a label
    note = " ".join(proc.stdout.split())
    assert "note: emulated server: the reasoning effort cannot change its answers" in note


# -- vjt demo ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_twice_the_second_all_from_the_cache(tmp_path):
    out = tmp_path / "demo"
    first = ok(vjt("demo", "--jets", "40", "--out", out, cwd=tmp_path))
    report = json.loads((out / "report.json").read_text())
    assert {"n_jets", "n_labelled", "n_errors", "cache_hits", "metrics", "baselines"} <= set(report)
    assert report["n_jets"] == 40
    assert report["n_labelled"] + report["n_errors"] == 40
    assert report["cache_hits"] == 0
    assert set(report["metrics"]) >= METRIC_KEYS
    for name in ("multiplicity", "logistic_regression"):
        assert set(report["baselines"][name]) >= METRIC_KEYS
    assert all(report["usage"][k] > 0 for k in ("input_tokens", "output_tokens"))
    assert report["usage"]["reasoning_tokens"] > 0
    assert report["backend"] == "emulated"
    assert "not a language model" in first.stderr  # the server's announcement
    assert "not a language model" in first.stdout  # beside the numbers
    assert f"report: {out / 'report.json'}" in first.stdout
    assert f"page:   {out / 'report.html'}" in first.stdout
    assert f"plot:   {out / 'roc.png'}" in first.stdout
    png_size(out / "roc.png")
    assert report["server"]["urls"][0].startswith("http://127.0.0.1:")

    second = ok(vjt("demo", "--jets", "40", "--out", out, cwd=tmp_path))
    again = json.loads((out / "report.json").read_text())
    assert again["n_jets"] == again["cache_hits"] == 40
    assert again["usage"]["input_tokens"] == 0
    assert again["usage"]["output_tokens"] == 0
    assert again["usage"]["reasoning_tokens"] == 0
    assert again["metrics"]["auc"] == report["metrics"]["auc"]  # the same answers
    assert all(r["cached"] for r in read_jsonl(out / "results.jsonl"))
    assert "40 from the cache, 0 asked" in second.stdout


@pytest.mark.slow
def test_evaluate_compare_and_demo_print_each_metric_the_same_way(tmp_path):
    # The same 40 jets (the balanced subset of seed 0) and the same answers (emulator seed 0).
    demo = ok(vjt("demo", "--jets", "40", "--out", tmp_path / "demo", cwd=tmp_path))
    results = tmp_path / "demo" / "results.jsonl"
    evaluate = ok(vjt("evaluate", results, "--out", tmp_path / "ev", cwd=tmp_path))
    args = ["compare", "sample", "--efforts", "medium", "--limit", "40", "--emulate"]
    compare = ok(vjt(*args, "--seed", "0", "--out", tmp_path / "cmp", cwd=tmp_path))
    printed = {
        "demo": table_rows(demo.stdout),
        "evaluate": table_rows(evaluate.stdout),
        "compare": table_rows(compare.stdout),
    }
    printed["compare"]["emulated server"] = printed["compare"].pop("medium")[:2]
    for name in ("emulated server", "all jets", "multiplicity", "logistic regr."):
        cells = [printed[command][name] for command in ("demo", "evaluate", "compare")]
        assert cells[0] == cells[1] == cells[2], (name, cells)
    # ... and as report.json, compare.json and the pages hold them.
    demo_json = json.loads((tmp_path / "demo" / "report.json").read_text())
    compare_json = json.loads((tmp_path / "cmp" / "compare.json").read_text())

    def saved(tables: list[dict], name: str) -> list[list[str]]:
        return [r["cells"][1:] for t in tables for r in t["rows"] if r["cells"][0] == name]

    for name, same in (("emulated server", "medium"), ("multiplicity", "multiplicity")):
        cells = saved(demo_json["tables"], name)
        assert cells == saved(compare_json["tables"], same) == printed["demo"][name]
    auc = printed["demo"]["emulated server"][0][1]
    assert f"AUC {auc} (multiplicity {printed['demo']['multiplicity'][0][1]})" in demo.stdout
    for page in ("demo/report.html", "ev/report.html", "cmp/compare.html"):
        assert f"<td>{auc}</td>" in (tmp_path / page).read_text()


# -- settings ---------------------------------------------------------------------------------


def write_config(path: Path, **values: str) -> Path:
    path.write_text("".join(f'{k} = "{v}"\n' for k, v in values.items()))
    return path


def test_settings_precedence_flag_env_file_default(tmp_path, monkeypatch):
    assert load_settings().effort == "medium"  # default
    monkeypatch.setenv(
        "VJT_CONFIG", str(write_config(tmp_path / "c.toml", effort="high", model="m/file"))
    )
    assert load_settings().effort == "high"  # config file beats default
    assert load_settings().model == "m/file"
    monkeypatch.setenv("VJT_EFFORT", "low")
    assert load_settings().effort == "low"  # env beats config file
    assert load_settings(effort="medium").effort == "medium"  # flag beats env
    assert load_settings(effort=None).effort == "low"  # a flag not given is not a flag
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert load_settings().api_key.get_secret_value() == "sk-test"

    monkeypatch.setenv("VJT_EFFORT", "extreme")
    with pytest.raises(VJTError, match=r"effort 'extreme' \(from VJT_EFFORT\)"):
        load_settings()
    monkeypatch.delenv("VJT_EFFORT")
    write_config(tmp_path / "c.toml", effort="extreme")
    with pytest.raises(VJTError, match=r"effort 'extreme' \(from .*c\.toml\)"):
        load_settings()
    (tmp_path / "c.toml").write_text("effort = [unclosed\n")
    with pytest.raises(VJTError, match="cannot read the config file"):
        load_settings()


def test_a_typo_in_the_config_file_is_reported(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VJT_CONFIG", str(write_config(tmp_path / "c.toml", efort="high")))
    assert load_settings().effort == "medium"
    assert "unknown setting(s) efort ignored" in caplog.text


def test_settings_precedence_in_a_command(tmp_path):
    config = write_config(
        tmp_path / "config.toml", effort="high", template="physics_primer", model="test/model"
    )
    env = environment(VJT_CONFIG=str(config), VJT_EFFORT="low", VJT_TEMPLATE="zero_shot")
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--emulate", "--limit", "4", "--effort", "medium"]
    ok(vjt(*args, cwd=tmp_path, env=env))
    rows = read_jsonl(out)
    assert {r["effort"] for r in rows} == {"medium"}  # flag over VJT_EFFORT and the file
    assert {r["template"] for r in rows} == {"zero_shot"}  # VJT_TEMPLATE over the file
    assert {r["model"] for r in rows} == {"test/model"}  # the file over the default


# -- vjt cache --------------------------------------------------------------------------------


@pytest.mark.slow
def test_cache_path_stats_clear(tmp_path):
    root = Path(os.environ["VJT_CACHE_DIR"])
    emulated = ok(vjt("cache", "path", "--emulated", cwd=tmp_path)).stdout.strip()
    assert emulated == str(root / "results-emulated")

    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--emulate", "--limit", "6", "--template", "zero_shot"]
    ok(vjt(*args, cwd=tmp_path))
    keys = {r["key"] for r in read_jsonl(out)}
    cache = ResultCache(emulated)
    assert len(cache) == 6 and all(k in cache for k in keys)  # where `cache path` says
    # Emulated answers never go with a model's.
    models = root / "results"
    assert not models.exists() or len(ResultCache(models)) == 0

    stats = ok(vjt("cache", "stats", cwd=tmp_path)).stdout
    assert f"{emulated}: 6 results, " in stats
    assert "· vjt with the emulated server (--emulate, demo)" in stats
    assert f"{models}: 0 results, not created yet · vjt with model servers, and Python's" in stats

    cleared = ok(vjt("cache", "clear", "--yes", cwd=tmp_path))
    assert f"removed 6 results from {emulated}" in cleared.stderr
    assert len(cache) == 0


def test_cache_folder_follows_the_settings(tmp_path, monkeypatch):
    assert cache_root() == Path(os.environ["VJT_CACHE_DIR"])
    config = tmp_path / "config.toml"
    config.write_text(f'cache_dir = "{tmp_path / "mine"}"\n')
    monkeypatch.setenv("VJT_CONFIG", str(config))
    assert cache_root() == Path(os.environ["VJT_CACHE_DIR"])  # the variable beats the file
    monkeypatch.delenv("VJT_CACHE_DIR")
    assert cache_root() == tmp_path / "mine"
    assert cache_root(tmp_path / "flag") == tmp_path / "flag"  # --dir beats both
    assert results_dir(cache_root(), emulated=False) == tmp_path / "mine" / "results"


# -- nothing lost: rows of other settings -----------------------------------------------------


def in_order(rows: list[dict]) -> list[dict]:
    """Rows by jet index (a run writes them in the order the jets finish)."""
    return sorted(rows, key=lambda row: row["index"])


@pytest.mark.slow
def test_rows_of_other_settings_move_aside_and_come_back_even_without_cache(
    tmp_path, fresh_emulator
):
    server = fresh_emulator()
    out, side = tmp_path / "out.jsonl", tmp_path / "out.set-aside.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--no-cache"]
    args += ["--template", "zero_shot"]
    ok(vjt(*args, "--limit", "30", cwd=tmp_path))
    first = in_order(read_jsonl(out))
    assert server.stats()["requests_total"] == 30

    # A smaller --limit: the 20 other jets' rows are moved, not deleted.
    smaller = ok(vjt(*args, "--limit", "10", cwd=tmp_path))
    assert f"moved 20 rows of {out}" in smaller.stderr and str(side) in smaller.stderr
    assert in_order(read_jsonl(out)) == first[:10]
    assert in_order(read_jsonl(side)) == first[10:]

    # Another effort on those 10: they join the side file, the new rows are asked for.
    low = ok(vjt(*args, "--limit", "10", "--effort", "low", cwd=tmp_path))
    assert "moved 10 rows" in low.stderr and "10 asked" in low.stderr
    low_rows = read_jsonl(out)
    assert {r["effort"] for r in low_rows} == {"low"}
    assert in_order(read_jsonl(side)) == first
    assert server.stats()["requests_total"] == 40

    # Back to the first settings, still without the cache: every row comes back, none asked.
    server.reset_stats()
    back = ok(vjt(*args, "--limit", "30", cwd=tmp_path))
    assert server.stats()["requests_total"] == 0
    assert f"30 jets already tagged (30 from {side})" in back.stderr
    assert "30 kept from before, 0 from the cache, 0 asked" in back.stderr
    assert in_order(read_jsonl(out)) == first
    assert in_order(read_jsonl(side)) == in_order(low_rows)  # the low-effort rows wait there

    # Both files are results files for vjt evaluate.
    for path, n in ((out, 30), (side, 10)):
        ok(vjt("evaluate", path, "--out", tmp_path / f"report-{path.stem}", cwd=tmp_path))
        report = json.loads((tmp_path / f"report-{path.stem}" / "report.json").read_text())
        assert report["n_jets"] == n


@pytest.mark.slow
def test_a_rerun_with_other_settings_killed_mid_write_loses_no_row(tmp_path, fresh_emulator):
    server = fresh_emulator()
    out, side = tmp_path / "out.jsonl", tmp_path / "out.set-aside.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--no-cache"]
    args += ["--template", "zero_shot", "--limit", "40", "--concurrency", "2"]
    ok(vjt(*args, cwd=tmp_path))
    first = in_order(read_jsonl(out))

    server.configure(ttft=0.02, itl=0.002)  # ~0.3 s per low-effort jet
    proc = subprocess.Popen(
        vjt_command(*args, "--effort", "low"),
        cwd=tmp_path,
        env=environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # until the output holds 3 rows of the new run, then no more answers
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            lines = out.read_text().splitlines()
            if len(lines) >= 3 and all('"effort": "low"' in line for line in lines[:3]):
                server.configure(ttft=3600.0)
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # no deadline: pytest-timeout catches a hang
    assert proc.returncode == -signal.SIGKILL
    partial = read_jsonl(out)  # whole lines only
    assert 3 <= len(partial) < 40 and {r["effort"] for r in partial} == {"low"}
    assert in_order(read_jsonl(side)) == first  # every row of the first run, whole

    server.configure(ttft=0.0, itl=0.0)
    wait_idle(server)
    server.reset_stats()
    back = ok(vjt(*args, cwd=tmp_path))
    assert server.stats()["requests_total"] == 0  # nothing asked twice: it was all kept
    assert f"40 jets already tagged (40 from {side})" in back.stderr
    assert in_order(read_jsonl(out)) == first
    assert in_order(read_jsonl(side)) == in_order(partial)


# -- a cache that cannot be used, or must not be ------------------------------------------------


def _emulated_folder() -> Path:
    return Path(os.environ["VJT_CACHE_DIR"]) / "results-emulated"


def _warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "going on without it" in line]


@pytest.mark.slow
def test_a_corrupt_cache_warns_once_and_the_run_completes(tmp_path, fresh_emulator):
    server = fresh_emulator()
    folder = _emulated_folder()
    folder.mkdir(mode=0o700)
    (folder / "cache.db").write_bytes(b"this is not a database\n" * 500)
    out = tmp_path / "out.jsonl"
    done = ok(vjt("tag", "sample", "-o", out, "--base-url", server.base_url, "--limit", "8",
                  cwd=tmp_path))  # fmt: skip
    [warning] = _warning_lines(done.stderr)
    assert str(folder) in warning and "not a database" in warning
    assert len(read_jsonl(out)) == 8 and "8 asked" in done.stderr
    assert server.stats()["requests_total"] == 8


@pytest.mark.slow
def test_a_read_only_cache_folder_warns_once_and_the_run_completes(
    tmp_path, fresh_emulator, read_only
):
    server = fresh_emulator()
    folder = _emulated_folder()
    folder.mkdir(mode=0o700)
    read_only(folder)
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--limit", "8"]
    done = ok(vjt(*args, cwd=tmp_path))
    [warning] = _warning_lines(done.stderr)
    assert str(folder) in warning and "cannot be opened" in warning
    assert len(read_jsonl(out)) == 8 and all(r["label"] for r in read_jsonl(out))


@pytest.mark.slow
def test_a_cache_folder_others_can_write_is_refused_unless_shared(tmp_path, fresh_emulator):
    server = fresh_emulator()
    args = ["tag", "sample", "--base-url", server.base_url, "--limit", "6"]
    ok(vjt(*args, "-o", tmp_path / "first.jsonl", cwd=tmp_path))
    folder = _emulated_folder()
    cases = [("mode", lambda: folder.chmod(0o777), "its group or others can write it")]
    if os.getuid() == 0:
        cases.append(
            ("owner", lambda: os.chown(folder, 65534, 65534), "it belongs to another user")
        )
    for name, make_unsafe, reason in cases:
        folder.chmod(0o700)
        make_unsafe()
        out = tmp_path / f"{name}.jsonl"
        server.reset_stats()
        refused = vjt(*args, "-o", out, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        error = refused.stderr.strip().splitlines()[-1]
        assert error.startswith(f"error: refusing the cache folder {folder}: {reason}")
        assert "--shared-cache" in error and "Traceback" not in refused.stderr
        assert not out.exists() and server.stats()["requests_total"] == 0

        if name == "mode":
            shared = ok(vjt(*args, "-o", out, "--shared-cache", cwd=tmp_path))
        else:  # the setting (environment, config file) says so too
            env = environment(VJT_SHARED_CACHE="1")
            shared = ok(vjt(*args, "-o", out, cwd=tmp_path, env=env))
        assert "6 from the cache, 0 asked" in shared.stderr
    os.chown(folder, os.getuid(), os.getgid())
    folder.chmod(0o700)


# -- the circuit breaker ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_server_that_fails_every_request_stops_the_run(tmp_path, fresh_emulator):
    jets, concurrency, retries = 400, 4, 1
    server = fresh_emulator(faults={"server_error": 1.0})
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--limit", jets]
    args += ["--concurrency", concurrency, "--max-retries", retries]
    stopped = vjt(*args, cwd=tmp_path)
    assert stopped.returncode == 2, stopped.stderr
    error = stopped.stderr.strip().splitlines()[-1]
    assert error.startswith("error: stopped: ") and "jets in a row failed" in error
    assert "HTTP 500" in error and "rerun the same command" in error
    rows = read_jsonl(out)  # what was done is kept, in whole lines
    assert {r["error_kind"] for r in rows} == {"server"}
    asked = wait_idle(server)["requests_total"]
    # The streak (concurrency + 10) plus what was in flight, each tried 1 + retries times.
    assert asked <= (concurrency + 10 + concurrency) * (1 + retries) < jets


def test_a_server_that_rejects_every_request_stops_the_run_at_once(tmp_path, fresh_emulator):
    server = fresh_emulator(max_model_len=8192)
    out = tmp_path / "out.jsonl"
    args = ["tag", "sample", "-o", out, "--base-url", server.base_url, "--limit", "400"]
    args += ["--concurrency", "4", "--max-tokens", "16384"]
    stopped = vjt(*args, cwd=tmp_path)
    assert stopped.returncode == 2, stopped.stderr
    error = stopped.stderr.strip().splitlines()[-1]
    assert error.startswith("error: stopped: the server rejected the first 5 requests")
    assert "cannot be greater than max_model_len=8192" in error
    assert {r["error_kind"] for r in read_jsonl(out)} == {"bad_request"}
    assert wait_idle(server)["requests_total"] <= 5 + 4  # a 400 is not retried
