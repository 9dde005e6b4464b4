"""``vjt`` answers help, ``--version`` and input errors without importing the heavy stack.

Each case runs in a fresh interpreter and reports which modules were imported: help and a
mistyped flag must not import LangChain, the OpenAI SDK, numpy, matplotlib, aiohttp or the
emulator (the time this takes is measured in the final report, not asserted here).
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


def run_cli(*args: str, columns: int = 120) -> tuple[str, set[str], int]:
    """``vjt ARGS`` in a subprocess: its output, the modules it imported, its exit status."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": str(columns)},
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


def test_version() -> None:
    from vibe_jet_tagging import __version__

    out, modules, status = run_cli("--version")
    assert status == 0
    assert f"vjt (vibe-jet-tagging) {__version__}" in out
    assert heavy_in(modules) == []


def test_help_names_the_environment_and_the_long_effort_flag() -> None:
    out, _, _ = run_cli("tag", "--help", columns=300)  # one line per option
    for hint in ("[env VJT_BASE_URL or OPENAI_BASE_URL", "[env VJT_MODEL]", "[env VJT_EFFORT]"):
        assert hint in out
    assert "--reasoning-effort" in out


def test_reasoning_effort_is_the_effort_flag() -> None:
    out, _, status = run_cli("tag", "sample", "-o", "x.jsonl", "--reasoning-effort", "extreme")
    assert status == 2
    assert "effort 'extreme' (from --effort)" in out


def test_serve_help_lists_the_emulator_presets() -> None:
    from vibe_jet_tagging.cli.serve import PRESETS
    from vibe_jet_tagging.emulator import LATENCY_PRESETS

    assert tuple(LATENCY_PRESETS) == PRESETS


def test_the_fault_names_of_vjt_serve_are_the_emulators() -> None:
    from vibe_jet_tagging.cli.serve import FAULTS
    from vibe_jet_tagging.emulator.config import FaultRates

    assert tuple(FaultRates.model_fields) == FAULTS
