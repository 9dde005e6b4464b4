"""The README stays true: its CI command is what CI runs, and its vjt commands parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vibe_jet_tagging.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.DOTALL)
COMMANDS = [line.strip() for block in BLOCKS for line in block.splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands_and_ci_runs_the_second():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick_start, re.DOTALL)
    lines = [line for block in blocks for line in block.strip().splitlines()]
    assert len(lines) == 2
    install_and_demo, install_and_test = lines
    assert install_and_demo.endswith("vjt demo")
    assert install_and_test.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert install_and_test in ci.splitlines()
    # The long tier runs right after it, in the environment it made.
    assert ci.splitlines()[ci.splitlines().index(install_and_test) + 1] == "pytest -m slow"
    assert "pytest -m slow" in README


def test_ci_runs_the_real_vllm_tier_as_the_readme_says():
    [command] = [c for c in COMMANDS if c.endswith("pytest -m real_vllm")]
    assert "scripts/real_vllm.py build" in command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci
    assert ci.index(command) > max(i for i, line in enumerate(ci) if line.endswith("&& pytest"))


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c.startswith("vjt ")], ids=lambda c: c[:40]
)
def test_every_vjt_command_in_the_readme_parses(command, capsys):
    words = shlex.split(command.split("#")[0])[1:]
    # --help after the command checks that every option shown exists, without running it.
    options = [w for w in words if w.startswith("--")]
    command = words[:2] if words[0] in ("batch", "cache") else words[:1]  # command groups
    assert main([*command, "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in options:
        assert option.split("=")[0] in help_text, f"{command}: no option {option}"
