"""The system Chromium driven headless through selenium, shared by the browser tests.

``tests/test_docs_site.py`` (the executed-documentation site) and ``tests/test_jupyterlab.py`` (the
notebooks in a real JupyterLab) use it. The browser is Debian's: ``apt-get install -y chromium
chromium-driver``; selenium comes with the ``docs`` extra.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Without these Chromium hangs on network look-ups here; the resolver rule makes any remote fetch
# fail at once (localhost is still reached), so a page that needs the network shows it.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--hide-scrollbars",
]
MAX_HEIGHT = 16000  # px: Chromium cannot capture a taller screenshot in one piece


def missing_browser() -> str:
    """Why the system Chromium cannot be driven here, or ''."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return "needs the system Chromium: apt-get install -y chromium chromium-driver"
    return ""


@contextmanager
def chrome(width: int = 1280, height: int = 1000) -> Iterator:
    """A headless Chromium (selenium WebDriver) with a throw-away profile and the browser log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in [*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def screenshot(driver, path: Path, width: int, height: int, scale: float = 1) -> None:
    """Save a PNG of the page's top ``width`` x ``height`` CSS pixels (beyond the viewport too)."""
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
