"""``notebooks/quickstart.ipynb`` runs top to bottom in a real Jupyter kernel.

It starts the emulated server itself (``VJT_BASE_URL`` is unset here), so it needs nothing
but loopback. The kernel inherits the test's private ``VJT_CACHE_DIR``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
def test_quickstart_runs_top_to_bottom(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    stdout = "\n".join(text_of(c) for c in code)
    assert "emulated server: physics heuristic, not a language model" in stdout
    assert "40 results, 40 labelled" in stdout  # top-level await tagger.abatch(...)
    assert "reasoning: We need to classify" in stdout
    assert "final answer: {" in stdout
    assert "predictions: [" in stdout and "accuracy: 0." in stdout
    assert "AUC 0." in stdout and "multiplicity 0." in stdout
    # The notebook says plainly, in prose, what the emulated server is.
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "a physics heuristic and not a language model" in prose

    images = [
        o["data"]["image/png"] for c in code for o in c.outputs if "image/png" in o.get("data", {})
    ]
    assert len(images) == 1  # the ROC curve, shown with IPython.display.Image
    png = base64.b64decode(images[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert png == (tmp_path / "quickstart-out" / "roc.png").read_bytes()
