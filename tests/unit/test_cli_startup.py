"""``vjt`` answers help, ``--version`` and input errors without importing the heavy stack.

Each case runs in a fresh interpreter and reports which modules were imported: help, a
mistyped flag, a missing file and a path question must not import LangChain, the OpenAI SDK,
numpy, matplotlib, aiohttp or the emulator (the time this takes is measured by hand, not
asserted here: about 0.2 s on a quiet machine, against 1.7-2.2 s when a missing results file
was answered after the report's stack had been imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = (
    "langchain_core",
    "langchain_openai",
    "openai",
    "numpy",
    "matplotlib",
    "sklearn",
    "aiohttp",
    "instructor",
    "vibe_jet_tagging.emulator",
    "vibe_jet_tagging.tagging.tagger",
)

_PROBE = """
import json, sys
from vibe_jet_tagging.cli import main
code = main(sys.argv[1:])
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
print("EXIT", code)
"""


def run_cli(*args: str, columns: int = 120, cwd: str | None = None) -> tuple[str, set[str], int]:
    """``vjt ARGS`` in a subprocess: its output, the modules it imported, its exit status."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": str(columns)},
        cwd=cwd,
        check=False,
    )
    out = proc.stdout + proc.stderr
    modules_line = next(line for line in out.splitlines() if line.startswith("MODULES "))
    status = int(next(line for line in out.splitlines() if line.startswith("EXIT ")).split()[1])
    return out, set(json.loads(modules_line.removeprefix("MODULES "))), status


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))


@pytest.mark.parametrize(
    "args",
    [("--help",), ("tag", "--help"), ("serve", "--help"), ("tag", "sample", "--nope")],
)
def test_help_and_input_errors_import_nothing_heavy(args) -> None:
    out, modules, status = run_cli(*args)
    assert heavy_in(modules) == []
    if "--nope" in args:
        assert status == 2
        assert "No such option: --nope" in out
    else:
        assert status == 0
        assert "Usage:" in out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("evaluate", "missing.jsonl"), "error: missing.jsonl: no such results file"),
        (("evaluate", "."), "error: .: is a folder; give the results files"),
        (("merge", "missing.jsonl", "-o", "m.jsonl"), "error: missing.jsonl: no such results"),
        (("tag", "missing.npz", "-o", "x.jsonl"), "error: missing.npz: no such file or folder"),
        (("compare", "missing.npz"), "error: missing.npz: no such file or folder"),
        (("baselines", "missing.npz"), "error: missing.npz: no such file or folder"),
        (("tag", "--limt", "3"), "No such option: --limt"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_a_missing_file_is_answered_before_anything_heavy_is_imported(
    args, error, tmp_path
) -> None:
    out, modules, status = run_cli(*args, cwd=str(tmp_path))
    assert status == 2, out
    assert error in out
    assert heavy_in(modules) == []


def test_the_cache_path_is_answered_without_the_cache_stack(tmp_path) -> None:
    from vibe_jet_tagging.cli.cache import default_cache_root, results_dir
    from vibe_jet_tagging.store.cache import default_cache_dir

    out, modules, status = run_cli("cache", "path", cwd=str(tmp_path))
    assert status == 0
    assert out.splitlines()[0] == str(results_dir(default_cache_root(), emulated=False))
    assert heavy_in(modules) == []
    assert "diskcache" not in modules
    assert default_cache_root() == default_cache_dir()  # the light copy says the same


def test_the_light_cache_root_follows_the_environment_as_the_cache_does(monkeypatch) -> None:
    from vibe_jet_tagging.cli.cache import default_cache_root
    from vibe_jet_tagging.store.cache import default_cache_dir

    for value in ("~/somewhere", "/tmp/x"):
        monkeypatch.setenv("VJT_CACHE_DIR", value)
        assert default_cache_root() == default_cache_dir()
    monkeypatch.delenv("VJT_CACHE_DIR")
    assert default_cache_root() == default_cache_dir()


_ALL_HELP = """
import contextlib, io, json, sys
from vibe_jet_tagging.cli import main
out = {}
for command in json.loads(sys.argv[1]):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main([*command, "--help"])
    out[" ".join(command)] = buffer.getvalue()
print(json.dumps(out))
"""

COMMANDS = [
    [], ["tag"], ["evaluate"], ["compare"], ["demo"], ["merge"], ["serve"], ["generate"],
    ["baselines"], ["templates"], ["cache"], ["cache", "path"], ["cache", "stats"],
    ["cache", "clear"], ["cache", "import"], ["batch", "export"], ["batch", "import"],
]  # fmt: skip


def test_help_at_80_columns_cuts_nothing_short() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ALL_HELP, json.dumps(COMMANDS)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    )
    helps = json.loads(proc.stdout)
    for command, text in helps.items():
        lines = text.splitlines()
        assert lines and "Usage:" in lines[0], command
        assert max(map(len, lines)) <= 80, command
        assert "…" not in text, command  # no name or word cut short
        assert "<bool>" not in text, command  # flags take no value
        # Variadic arguments are written "files..."; nothing else ends in three dots.
        cut = [line for line in lines if line.rstrip().endswith("...") and "[" not in line]
        assert cut == [], (command, cut)
    assert "--effort, --reasoning-effort" in helps["tag"]
    assert "--shard $SLURM_ARRAY_TASK_ID/N" in " ".join(helps["tag"].split())
    assert "Worker processes (default: all cores)." in " ".join(helps["generate"].split())
    # Every command's first sentence is whole in the list of commands.
    listing = " ".join(helps[""].split())
    assert "against the baselines. generate" in listing and "or SIGTERM. tag" in listing


def test_version() -> None:
    from vibe_jet_tagging import __version__

    out, modules, status = run_cli("--version")
    assert status == 0
    assert f"vjt (vibe-jet-tagging) {__version__}" in out
    assert heavy_in(modules) == []


def test_help_names_the_environment_and_the_long_effort_flag() -> None:
    out, _, _ = run_cli("tag", "--help")
    out = " ".join(out.split())  # help wraps at 80 columns
    for hint in ("[env VJT_BASE_URL or OPENAI_BASE_URL", "[env VJT_MODEL]", "[env VJT_EFFORT]"):
        assert hint in out
    assert "--reasoning-effort" in out


def test_reasoning_effort_is_the_effort_flag() -> None:
    out, _, status = run_cli("tag", "sample", "-o", "x.jsonl", "--reasoning-effort", "extreme")
    assert status == 2
    assert "reasoning_effort 'extreme' (from --effort)" in out


def test_serve_help_lists_the_emulator_presets() -> None:
    from vibe_jet_tagging.cli.serve import PRESETS
    from vibe_jet_tagging.emulator import LATENCY_PRESETS

    assert tuple(LATENCY_PRESETS) == PRESETS


def test_the_fault_names_of_vjt_serve_are_the_emulators() -> None:
    from vibe_jet_tagging.cli.serve import FAULTS
    from vibe_jet_tagging.emulator.config import FaultRates

    assert tuple(FaultRates.model_fields) == FAULTS
