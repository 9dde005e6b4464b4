"""The HTML reports open in a real browser: Debian's Chromium, headless, driven by selenium.

``vjt demo`` and ``vjt compare`` write the pages; Chromium loads them from disk and every
image must render, every table be there, and nothing be fetched (the page is one file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Chromium and its driver: apt-get install -y chromium chromium-driver",
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def vjt(*args: object, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "vibe_jet_tagging.cli", *map(str, args)],
        input="",
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "80"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def check_page(driver, page: Path, *, images: int, title: str) -> dict:
    """Load ``page``; its images all render, its tables are there, nothing is fetched."""
    driver.get(page.resolve().as_uri())
    assert driver.title.startswith(title)
    state = driver.execute_script(
        """
        const imgs = Array.from(document.images);
        return {
          images: imgs.map(i => ({complete: i.complete, width: i.naturalWidth,
                                  height: i.naturalHeight, alt: i.alt})),
          tables: Array.from(document.querySelectorAll('table')).map(t => ({
            title: t.previousElementSibling ? t.previousElementSibling.textContent : '',
            rows: Array.from(t.querySelectorAll('tbody tr')).map(
              r => Array.from(r.cells).map(c => c.textContent))})),
          fetched: performance.getEntriesByType('resource').map(e => e.name),
          text: document.body.innerText,
        };
        """
    )
    assert len(state["images"]) == images, state["images"]
    for image in state["images"]:
        assert image["complete"] and image["width"] > 400 and image["height"] > 300, image
    assert state["fetched"] == []  # self-contained: it can be mailed
    assert "∞" not in state["text"]
    return state


@pytest.mark.slow
def test_the_reports_render_in_chromium(tmp_path, browser):
    demo = tmp_path / "demo"
    vjt("demo", "--jets", "40", "--out", demo, cwd=tmp_path)
    state = check_page(browser, demo / "report.html", images=3, title="Quark/gluon tagging on 40")
    metrics = {t["title"]: t["rows"] for t in state["tables"]}
    separation = metrics["separation, from the stated P(quark)"]
    assert [row[0] for row in separation] == ["emulated server", "multiplicity", "logistic regr."]
    assert all(row[1] == "40" for row in separation)
    accuracy = metrics["accuracy, from the stated labels"]
    assert [row[0] for row in accuracy][:2] == ["emulated server", "all jets"]
    text = state["text"]
    for needed in ("not a language model", "parse 0, contradiction 0", "http://127.0.0.1:"):
        assert needed in text  # the error kinds and the server it ran against
    assert "scikit-learn" in text and "openai/gpt-oss-120b" in text  # versions, settings

    compare = tmp_path / "compare"
    args = ["compare", "sample", "--efforts", "low,medium", "--limit", "40", "--emulate"]
    vjt(*args, "--out", compare, cwd=tmp_path)
    state = check_page(browser, compare / "compare.html", images=3, title="Comparison on")
    rows = {t["title"]: t["rows"] for t in state["tables"]}["separation, from the stated P(quark)"]
    assert [row[0] for row in rows] == ["low", "medium", "multiplicity", "logistic regr."]
