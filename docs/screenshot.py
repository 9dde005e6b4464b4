"""Screenshot of the top of an HTML report, for the README (docs/demo-report.png).

    vjt demo && python docs/screenshot.py vjt-demo/report.html docs/demo-report.png

Needs Debian's Chromium and its driver (apt-get install -y chromium chromium-driver) and
selenium (in the test extra); nothing is downloaded.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main(page: str, png: str, width: int = 1100, height: int = 1500) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(Path(page).resolve().as_uri())
            driver.save_screenshot(png)
        finally:
            driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:3])
