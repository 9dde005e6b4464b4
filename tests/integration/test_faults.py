"""Nothing is lost when the server misbehaves: injected faults, kills, and an outage.

The emulated server injects HTTP 500s, 429s with Retry-After, stalls past the client's
timeout, dropped connections, malformed answers and answers that state no label (hedges,
contradictions, wrong types, stray digits); ``vjt tag`` is killed with SIGKILL and resumed;
the server is stopped in the middle of a run and started again. Every jet must end labelled
with what the server stated, or with a recorded error, and a rerun must ask the server only
for what is missing.

``FAULT_TEST_JETS=1000 pytest -s -k mixed_faults tests/integration/test_faults.py`` runs the
mixed-fault ``vjt tag`` test on 1,000 jets (300 by default) and prints the counts.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, get_args

import pytest

from vibe_jet_tagging import JetTagger, TaggingError, TagResult, load_sample
from vibe_jet_tagging.cli import main
from vibe_jet_tagging.evaluation.report import read_rows
from vibe_jet_tagging.tagging.results import ErrorKind

SAMPLE = load_sample()
FAULTS = {
    "server_error": 0.20,
    "rate_limit": 0.05,
    "stall": 0.05,
    "disconnect": 0.05,
    "malformed_json": 0.05,
}


def split(outcomes: list[Any]) -> tuple[list[TagResult], list[TaggingError]]:
    """Labelled results and recorded errors; anything else fails the test."""
    labelled, failed = [], []
    for outcome in outcomes:
        if isinstance(outcome, TagResult):
            assert outcome.ok and outcome.label in ("quark", "gluon"), outcome
            labelled.append(outcome)
        else:
            assert isinstance(outcome, TaggingError), repr(outcome)
            result = outcome.result
            assert result.error is not None and result.label is None
            assert result.error.kind in get_args(ErrorKind)
            failed.append(outcome)
    return labelled, failed


def tagger_for(server: Any, cache: Path, **options: Any) -> JetTagger:
    options.setdefault("template", "zero_shot")
    return JetTagger(server.model, base_url=server.base_url, cache=cache, **options)


@pytest.mark.slow
async def test_2000_jets_under_faults_end_labelled_or_with_a_recorded_error(
    fresh_emulator, tmp_path
):
    server = fresh_emulator(process=True, seed=7, faults=FAULTS, stall_seconds=4.0, retry_after=0.2)
    jets = SAMPLE[:2000]
    tagger = tagger_for(server, tmp_path / "cache", max_retries=6, timeout=1.5, max_concurrency=64)

    outcomes = await tagger.abatch(jets, return_exceptions=True)

    labelled, failed = split(outcomes)
    assert len(labelled) + len(failed) == 2000
    assert len(labelled) >= 0.99 * 2000, Counter(f.result.error.kind for f in failed)
    assert [r.index for r in labelled] == sorted(r.index for r in labelled)
    stats = server.stats()
    # Every kind of fault happened, and was retried (or re-asked) past.
    for kind in FAULTS:
        assert stats["outcomes"].get(kind, 0) > 0, stats["outcomes"]
    assert stats["requests_total"] > 2000 + stats["outcomes"]["server_error"]
    assert sum(r.parsed_by == "reask" for r in labelled) > 0
    assert sum(r.usage.requests > 1 for r in labelled) > 0

    # The rerun (faults gone) asks exactly for the jets without a label; the rest are hits.
    server.set_faults(**dict.fromkeys(FAULTS, 0.0))
    server.reset_stats()
    again = await tagger.abatch(jets, return_exceptions=True)
    assert server.stats()["requests_total"] == len(failed)
    relabelled, refailed = split(again)
    assert not refailed and len(relabelled) == 2000
    before = {r.index: r for r in labelled}
    for result in relabelled:
        if result.index in before:
            assert result.cached
            assert result.label == before[result.index].label
        else:
            assert not result.cached


async def test_a_rerun_asks_only_for_the_jets_that_failed(fresh_emulator, tmp_path):
    server = fresh_emulator(seed=3, faults={"server_error": 0.5})
    jets = SAMPLE[2000:2200]
    tagger = tagger_for(server, tmp_path / "cache", max_retries=0, max_concurrency=32)

    labelled, failed = split(await tagger.abatch(jets, return_exceptions=True))

    assert 50 < len(failed) < 150
    for error in failed:
        assert error.result.error.kind == "server" and error.result.error.status == 500
        assert "HTTP 500" in str(error) and f"jet {error.result.index}" in str(error)
    server.set_faults(server_error=0.0)
    server.reset_stats()
    relabelled, refailed = split(await tagger.abatch(jets, return_exceptions=True))
    assert server.stats()["requests_total"] == len(failed)
    assert not refailed
    cached = {r.index for r in relabelled if r.cached}
    assert cached == {r.index for r in labelled}
    # A third run asks for nothing.
    server.reset_stats()
    split(await tagger.abatch(jets, return_exceptions=True))
    assert server.stats()["requests_total"] == 0


def _vjt() -> list[str]:
    script = Path(sys.executable).with_name("vjt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vibe_jet_tagging.cli"]


def _indices(path: Path) -> list[int]:
    return [row["index"] for row in read_rows(path)] if path.exists() else []


@pytest.mark.slow
def test_vjt_tag_killed_at_random_points_resumes_without_duplicates_or_losses(
    fresh_emulator, tmp_path
):
    n, concurrency = 240, 8
    server = fresh_emulator(ttft=0.03)
    out = tmp_path / "results.jsonl"
    cmd = [*_vjt(), "tag", "sample", "-o", str(out), "--base-url", server.base_url]
    cmd += ["--limit", str(n), "--concurrency", str(concurrency)]
    rng = random.Random(2026)
    # One kill at a random moment (maybe before any row), then three after a random number
    # of new rows each (at most 60, so every run still has jets to do when killed).
    kill_points: list[tuple[str, float]] = [("seconds", rng.uniform(0.2, 2.5))]
    kill_points += [("rows", rng.randint(5, 60)) for _ in range(3)]
    seen: dict[int, dict[str, Any]] = {}
    kills = 0

    def launch(log: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log).open("wb") as sink:
            return subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)

    for number, (kind, point) in enumerate(kill_points):
        proc = launch(f"run{number}.log")
        start, rows_before = time.monotonic(), len(seen)
        while proc.poll() is None:  # killed at its point, or done before it
            if (kind == "seconds" and time.monotonic() - start >= point) or (
                kind == "rows" and len(_indices(out)) >= rows_before + point
            ):
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        proc.wait()
        rows = read_rows(out) if out.exists() else []
        indices = [row["index"] for row in rows]
        assert len(indices) == len(set(indices)), f"duplicated rows after kill {number}"
        # Nothing written before is lost: every earlier row is still there, unchanged.
        now = {row["index"]: row for row in rows}
        for index, row in seen.items():
            assert now.get(index) == row, f"row {index} lost or changed after kill {number}"
        seen = now

    proc = launch("final.log")
    assert proc.wait() == 0, (tmp_path / "final.log").read_text()
    rows = read_rows(out, strict=True)
    indices = [row["index"] for row in rows]
    assert sorted(indices) == list(range(n))
    assert all(row["label"] in ("quark", "gluon") and row["error"] is None for row in rows)
    final = {row["index"]: row for row in rows}
    assert all(final[index] == row for index, row in seen.items())
    assert kills >= 3
    # Each jet was asked once, except those in flight at a kill (paid, never stored).
    asked = server.stats()["requests_total"]
    assert n <= asked <= n + kills * concurrency


async def test_server_going_away_mid_run_is_reported_and_a_rerun_completes(
    fresh_emulator, tmp_path
):
    server = fresh_emulator(ttft=0.05, max_num_seqs=8)
    jets = SAMPLE[:96]
    tagger = tagger_for(server, tmp_path / "cache", max_retries=1, timeout=5, max_concurrency=16)
    outcomes: dict[int, Any] = {}
    async for i, outcome in tagger.abatch_as_completed(jets, return_exceptions=True):
        outcomes[i] = outcome
        if len(outcomes) == 32:
            await asyncio.to_thread(server.stop)
    assert not server.running

    labelled, failed = split([outcomes[i] for i in range(len(jets))])
    assert len(labelled) >= 32
    assert len(failed) >= len(jets) // 2
    for error in failed:
        assert error.result.error.kind == "connection", error
        assert server.base_url in error.result.error.message
        assert str(error).startswith(f"jet {error.result.index}: connection: ")
    assert len(labelled) + len(failed) == len(jets)

    await asyncio.to_thread(server.start)
    server.reset_stats()
    relabelled, refailed = split(await tagger.abatch(jets, return_exceptions=True))
    assert not refailed
    assert server.stats()["requests_total"] == len(failed)
    assert {r.index for r in relabelled if r.cached} == {r.index for r in labelled}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["disconnect", "stall"])
async def test_each_fault_alone_is_retried_to_a_label(fresh_emulator, tmp_path, kind):
    server = fresh_emulator(seed=11, faults={kind: 0.3}, stall_seconds=2.0)
    jets = SAMPLE[2200:2240]
    tagger = tagger_for(server, tmp_path / "cache", max_retries=8, timeout=0.5, max_concurrency=40)
    labelled, failed = split(await tagger.abatch(jets, return_exceptions=True))
    assert not failed and len(labelled) == len(jets)
    stats = server.stats()
    assert stats["outcomes"][kind] > 0
    assert stats["outcomes"]["ok"] == len(jets)


# About 30 % of requests get a fault, of every kind the emulator has.
MIXED_FAULTS = {
    "server_error": 0.05,
    "rate_limit": 0.03,
    "stall": 0.02,
    "disconnect": 0.03,
    "malformed_json": 0.03,
    "truncation": 0.02,
    "contradiction": 0.03,
    "wrong_type": 0.03,
    "non_answer": 0.03,
    "digit_field": 0.02,
    "distracted_answer": 0.02,
    "malformed_body": 0.02,
}


@pytest.mark.slow
@pytest.mark.parametrize("structured", [True, False], ids=["structured", "free_text"])
def test_vjt_tag_under_mixed_faults_labels_only_what_the_server_stated(
    fresh_emulator, tmp_path, monkeypatch, capsys, structured
):
    n = int(os.environ.get("FAULT_TEST_JETS", "300"))  # VJT_* are cleared for each test
    server = fresh_emulator(seed=29, faults=MIXED_FAULTS, stall_seconds=4.0, retry_after=0.2)
    out = tmp_path / "rows.jsonl"
    monkeypatch.setenv("VJT_TIMEOUT", "2")  # a stall times out; a busy machine's answers don't
    monkeypatch.setenv("VJT_STRUCTURED_OUTPUT", str(structured).lower())
    argv = ["tag", "sample", "-o", str(out), "--base-url", server.base_url, "--limit", str(n)]
    argv += ["--template", "zero_shot", "--concurrency", "32", "--reasoning", "--effort", "low"]

    assert main(argv) == 0, capsys.readouterr().err

    rows = read_rows(out, strict=True)
    assert sorted(row["index"] for row in rows) == list(range(n))
    stated: dict[str, set[str | None]] = defaultdict(set)
    faults: dict[str, set[str | None]] = defaultdict(set)
    for answer in server.answers():
        stated[answer["content"]].add(answer["stated"])
        faults[answer["content"]].add(answer["fault"])
    # The record is sound: one text states one thing.
    assert all(len(labels) == 1 for labels in stated.values())
    labelled = [row for row in rows if row["label"] is not None]
    for row in labelled:
        assert row["error"] is None and row["label"] in ("quark", "gluon")
        # Every label is the one the server stated in the answer it was read from.
        assert stated.get(row["answer"]) == {row["label"]}, row
    for row in rows:
        if row["label"] is None:
            assert row["error"] and row["error_kind"] in get_args(ErrorKind), row
    errors = Counter(row["error_kind"] for row in rows if row["label"] is None)
    outcomes = server.stats()["outcomes"]
    print(
        f"\n{n} jets ({'structured output' if structured else 'free text'}): {len(labelled)} "
        f"labelled, errors {dict(errors)}; server outcomes {dict(sorted(outcomes.items()))}"
    )
    for kind in MIXED_FAULTS:
        assert outcomes.get(kind, 0) > 0, outcomes
    # Answers without a decision were re-asked, and decisions among distractors were read.
    assert any("distracted_answer" in faults[row["answer"]] for row in labelled)
    assert sum(row["parsed_by"] == "reask" for row in labelled) > 0 or not structured
    # Most jets get past the faults (a sanity floor: the invariant above is what counts).
    assert len(labelled) >= 0.7 * n, errors


@pytest.mark.slow
async def test_a_malformed_200_body_is_retried_like_a_server_error(fresh_emulator, tmp_path):
    # HTTP 200 with an HTML page, JSON cut short, an error object or no choices, by turns.
    server = fresh_emulator(seed=5, faults={"malformed_body": 0.3})
    jets = SAMPLE[2300:2340]
    tagger = tagger_for(server, tmp_path / "cache", max_retries=6, max_concurrency=40)
    labelled, failed = split(await tagger.abatch(jets, return_exceptions=True))
    assert not failed and len(labelled) == len(jets)
    stats = server.stats()
    assert stats["outcomes"]["malformed_body"] >= 4  # each of the four bodies at least once
    assert stats["outcomes"]["ok"] == len(jets)
    assert stats["requests_total"] == len(jets) + stats["outcomes"]["malformed_body"]


async def test_only_malformed_bodies_are_server_errors_once_the_retries_run_out(
    fresh_emulator, tmp_path
):
    server = fresh_emulator(faults={"malformed_body": 1.0})
    jets = SAMPLE[:8]
    tagger = tagger_for(server, tmp_path / "cache", max_retries=2)
    labelled, failed = split(await tagger.abatch(jets, return_exceptions=True))
    assert not labelled
    for error in failed:
        assert error.result.error.kind == "server"
        assert error.result.error.status == 200
        message = error.result.error.message
        assert server.base_url in message and "not a chat completion" in message
        assert "\n" not in message
    assert server.stats()["requests_total"] == len(jets) * 3  # the first try and 2 retries
