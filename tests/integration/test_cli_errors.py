"""Every bad input of ``vjt``: a non-zero exit and exactly one ``error:`` line naming the thing.

The commands run as a user runs them (subprocesses), all at once to save time; each test
then checks one of them. They get a cache folder of their own and no settings of the user's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vibe_jet_tagging.emulator import EmulatedServer


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cases(folder: Path, served: EmulatedServer) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (arguments, what the error line must name)."""
    missing = folder / "no_such_jets.npz"
    corrupt = folder / "x.npz"
    corrupt.write_bytes(os.urandom(300))
    not_jsonl = folder / "results.jsonl"
    not_jsonl.write_text("index,label\n1,quark\n")
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    out = ["-o", str(folder / "out.jsonl")]
    return {
        "missing jets file": (["tag", str(missing), *out, "--emulate"], [str(missing)]),
        "corrupt jets file": (["tag", str(corrupt), *out, "--emulate"], ["x.npz", "not a"]),
        "unreachable server": (
            ["tag", "sample", *out, "--base-url", dead, "--limit", "4"],
            [dead, "vllm serve", "--emulate"],
        ),
        "unknown template": (
            ["tag", "sample", *out, "--emulate", "--template", "nonesuch", "--limit", "4"],
            ["'nonesuch'", "few_shot"],
        ),
        "model not served": (
            ["tag", "sample", *out, "--base-url", served.base_url, "--model", "nope"],
            ["'nope'", served.base_url, "openai/gpt-oss-120b", "--model"],
        ),
        "invalid effort": (
            ["tag", "sample", *out, "--emulate", "--effort", "extreme", "--limit", "4"],
            ["'extreme'", "--effort", "low", "high"],
        ),
        "invalid effort in compare": (
            ["compare", "sample", "--emulate", "--efforts", "low,extreme", "--out", str(folder)],
            ["'extreme'", "--efforts"],
        ),
        "results not jsonl": (
            ["evaluate", str(not_jsonl), "--out", str(folder / "rep")],
            [str(not_jsonl), "line 1"],
        ),
        "missing results file": (
            ["evaluate", str(folder / "none.jsonl"), "--out", str(folder / "rep")],
            [str(folder / "none.jsonl")],
        ),
        "limit zero": (["tag", "sample", *out, "--emulate", "--limit", "0"], ["--limit", "0"]),
        "url typo": (
            ["tag", "sample", *out, "--base-url", "htp://gpu:8000/v1", "--limit", "4"],
            ["'htp://gpu:8000/v1'", "unsupported scheme 'htp://'", "fix --base-url"],
        ),
        "serve without --emulate": (["serve"], ["vjt serve only runs the emulated", "--emulate"]),
        "odd demo size": (["demo", "--jets", "41", "--out", str(folder)], ["--jets", "41"]),
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Iterator[dict[str, tuple[subprocess.CompletedProcess, list]]]:
    folder = tmp_path_factory.mktemp("bad-inputs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VJT_", "OPENAI_"))}
    env.update(VJT_CACHE_DIR=str(folder / "cache"), VJT_CONFIG=str(folder / "none.toml"))
    with EmulatedServer() as served:
        table = cases(folder, served)

        def run(args: list[str]) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "vibe_jet_tagging.cli", *args],
                capture_output=True,
                text=True,
                cwd=folder,
                env=env,
                timeout=120,
                check=False,
            )

        with ThreadPoolExecutor(4) as pool:
            procs = dict(zip(table, pool.map(run, (a for a, _ in table.values())), strict=True))
        yield {name: (procs[name], needles) for name, (_, needles) in table.items()}
        assert not (folder / "out.jsonl").exists(), "no results file for a failed command"
        assert served.stats()["requests_total"] == 0


NAMES = [
    "missing jets file",
    "corrupt jets file",
    "unreachable server",
    "unknown template",
    "model not served",
    "invalid effort",
    "invalid effort in compare",
    "results not jsonl",
    "missing results file",
    "limit zero",
    "url typo",
    "serve without --emulate",
    "odd demo size",
]


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_clear_line(outcomes, name):
    proc, needles = outcomes[name]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert ".." not in lines[0].replace("...", "")  # a sentence ends once
    for needle in needles:
        assert needle in lines[0], lines[0]
    if name == "url typo":  # a typo to fix, not a server to start
        assert "vllm serve" not in lines[0] and "Start vLLM" not in lines[0]


def test_every_case_is_checked(outcomes):
    assert sorted(outcomes) == sorted(NAMES)
