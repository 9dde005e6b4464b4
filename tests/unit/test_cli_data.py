"""``vjt baselines`` end to end in a subprocess: the table, the JSON, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RUN_VJT = "import sys; from vibe_jet_tagging.cli import main; sys.exit(main())"


def vjt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_VJT, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_baselines_on_the_sample_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "res" / "x.json"
    proc = vjt("baselines", "sample", "--out", str(out), "--bootstrap", "200", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The table and what was written on stdout (`vjt baselines sample > t.txt` keeps them).
    assert "multiplicity" in proc.stdout
    assert "logistic_regression" in proc.stdout
    assert f"wrote {out}" in proc.stdout
    assert proc.stderr == ""
    data = json.loads(out.read_text())
    assert set(data) == {"multiplicity", "logistic_regression"}
    for res in data.values():
        assert {"auc", "accuracy", "rejection_at_30", "rejection_at_50", "intervals"} <= set(res)
        assert set(res["intervals"]) == {
            "auc", "accuracy", "accuracy_best_cut", "rejection_at_30", "rejection_at_50"
        }  # fmt: skip
        assert res["accuracy"] == res["accuracy_best_cut"]  # a scorer: accuracy at its best cut
        lo, hi = res["intervals"]["auc"]
        assert lo <= res["auc"] <= hi
        assert res["n"] == 4000
        assert res["threshold_method"] == "best cut on these jets"
        assert "scores" not in res
    assert 0.80 <= data["multiplicity"]["auc"] <= 0.88
    assert data["logistic_regression"]["auc"] >= data["multiplicity"]["auc"] - 0.01
    assert data["multiplicity"]["cut"] == pytest.approx(-data["multiplicity"]["threshold"])


def test_baselines_limit_and_scores(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    args = ("baselines", "sample", "--out", str(out), "--limit", "300", "--bootstrap", "0")
    proc = vjt(*args, "--with-scores", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    mult = data["multiplicity"]
    assert mult["n"] == 300
    assert mult["intervals"] == {}
    assert mult["indices"] == list(range(300))
    assert len(mult["scores"]) == 300
    assert all(s <= -1 for s in mult["scores"])  # minus a multiplicity


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0]


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_jets.npz"
    proc = vjt("baselines", str(missing), "--out", str(tmp_path / "x.json"), cwd=tmp_path)
    _assert_one_line_error(proc, str(missing), "no such file")
    assert not (tmp_path / "x.json").exists()


def test_corrupt_and_unlabelled_files_are_one_clear_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not an npz")
    _assert_one_line_error(vjt("baselines", str(corrupt), cwd=tmp_path), str(corrupt), "npz")
    unlabelled = tmp_path / "unlabelled.npz"
    X = np.zeros((4, 2, 4))
    X[:, 0] = [500.0, 0.0, 0.0, 22.0]
    np.savez_compressed(unlabelled, X=X)
    _assert_one_line_error(vjt("baselines", str(unlabelled), cwd=tmp_path), "no labels")


def test_generates_bar_shows_the_rate_its_summary_gives() -> None:
    # Jets come in bursts after the workers' start-up: the bar showed rich's moving estimate
    # (18.7 jets/s) beside a summary of 0.6 jets/s. Now both are jets over time since start.
    from rich.progress import Progress

    from vibe_jet_tagging.cli.data import _RateColumn

    now = [0.0]
    progress = Progress(_RateColumn(), get_time=lambda: now[0])
    task_id = progress.add_task("jets", total=10)
    task = progress.tasks[0]
    assert str(_RateColumn().render(task)) == "-- jets/s"
    now[0] = 15.0  # 15 s of start-up, then 9 jets at once, 0.1 s apart
    for _ in range(9):
        now[0] += 0.1
        progress.update(task_id, advance=1)
    assert str(_RateColumn().render(task)) == f"{9 / now[0]:.1f} jets/s"  # 0.6, not ~10
    now[0] += 1.0
    progress.update(task_id, advance=1)  # done: the rate stays that of the whole run
    now[0] += 100.0
    assert task.finished
    assert str(_RateColumn().render(task)) == f"{10 / 16.9:.1f} jets/s"
