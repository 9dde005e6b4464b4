"""The README's Python blocks run as scripts (``python file.py``), against the emulated server
in place of the vLLM server they name."""

from __future__ import annotations

import re
import runpy
import textwrap
import warnings
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", README, re.DOTALL)]


# The grid search's fitted clones are dropped with their HTTP connections open (a known leak of
# LocalLLMClassifier's taggers, reported; Python ignores ResourceWarning unless asked).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_a_readme_block_runs_as_a_script(number, emulator, tmp_path, monkeypatch, capsys):
    block = BLOCKS[number]
    assert "http://localhost:8000/v1" in block  # each names its server...
    script = tmp_path / f"block{number}.py"
    script.write_text(block.replace("http://localhost:8000/v1", emulator.base_url))
    monkeypatch.setenv("VJT_BASE_URL", emulator.base_url)  # ...and what it builds by default
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either: every jet gets a label here
        runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()  # each prints what it found
