"""The notebooks in a real JupyterLab, in a real browser: Run All from the menu, then what a learner sees.

Starts JupyterLab (the ``dev`` extra) on localhost with a token and a free port, over a temporary
copy of ``notebooks/``; drives the system Chromium headless (``tests/browser.py``); opens each
notebook, clicks Run > Run All Cells, waits until the kernel is idle and every code cell shows an
execution count, saves the notebook, and asserts:

* no cell raised (no ``error`` output in the saved notebook) and no peftlab box other than an
  expected one is on the page (:data:`BOXES`, :data:`EXPECTED_BOXES`); a failure notebook shows at
  least one expected box, the primer none;
* every widget output is rendered by the front end (tqdm's bars are widgets too): no "Error
  displaying widget", no "Loading widget..." left;
* notebook 04's slider moves (arrow keys on its handle) and its figure changes.

A full-page screenshot of each notebook goes to ``build/jupyterlab/<notebook>.png`` (scaled down when
taller than Chromium can capture), what the page showed to ``build/jupyterlab/<notebook>.json``.

Run: ``python -m pytest tests/test_jupyterlab.py -p no:nbmake -o addopts=""`` (about 3-6 minutes:
the eight notebooks run one after the other). Skipped when Chromium, selenium or JupyterLab is
missing; with ``$PEFTLAB_BROWSER_REQUIRED=1`` (CI) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser import MAX_HEIGHT, chrome, missing_browser, screenshot

from peftlab.registry import LESSONS
from peftlab.versions import stack_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
SHOTS = ROOT / "build" / "jupyterlab"
#: Set by CI (`.ci/run`): a missing browser, selenium or JupyterLab fails instead of skipping.
REQUIRED = os.environ.get("PEFTLAB_BROWSER_REQUIRED") == "1"
NOTEBOOK_TIMEOUT = 900  # seconds for Run All of one notebook (they take 10-60 s on a 2-core CPU)
#: A peftlab box is an element with the class ``peftlab-box`` (``peftlab.capture.BOX_KINDS``: a library's
#: error, peftlab's detector, the documented stack's recording, a documented non-error); it is an expected
#: outcome when it also has the class ``expected``. ``peftlab-boxes``, the row that holds a box beside its
#: recording, is no box.
BOXES = ".peftlab-box"
EXPECTED_BOXES = ".peftlab-box.expected"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: JupyterLab settings for a reproducible page: every cell in the page (no windowing, so each output
#: can be inspected and the screenshot is whole), no news or update pop-ups.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _missing() -> str:
    """Why this file cannot run here, or ''."""
    if missing_browser():
        return missing_browser()
    for module in ("selenium", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"needs {module}: pip install -e '.[dev,docs]'"
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()) and not REQUIRED, reason=_missing() or "-")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    for plugin, values in SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _lab_env(home: Path) -> dict[str, str]:
    """The server's (and so the kernel's) environment: a learner's, with JupyterLab's state in ``home``."""
    # no solutions mode, and matplotlib's own inline backend (CI sets MPLBACKEND=Agg)
    env = {k: v for k, v in os.environ.items() if k not in ("PEFTLAB_SOLUTIONS", "MPLBACKEND")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ]:
        env[var] = str(home / sub)
    return env


def _lab_command(port: int, token: str, folder: Path) -> list[str]:
    """JupyterLab on localhost only, with a token, never asking the network (updates, extensions)."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folder}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of the notebooks: (base URL, token, its folder)."""
    assert not _missing(), _missing()  # only reached when REQUIRED: skipping would hide it
    home = tmp_path_factory.mktemp("jupyterlab")
    work = home / "notebooks"
    work.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, work / path.name)
    _write_settings(home / "settings")
    port, token = _free_port(), os.urandom(16).hex()
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        _lab_command(port, token, work), env=_lab_env(home), stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(base, token, server, home / "server.log")
        yield base, token, work
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for_server(base: str, token: str, server: subprocess.Popen, log: Path) -> None:
    for _ in range(120):
        if server.poll() is not None:
            raise AssertionError(f"JupyterLab exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"JupyterLab did not answer in 120 s: {log.read_text()[-3000:]}")


def _api(base: str, token: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(f"{base}{path}?token={token}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def browser():
    with chrome(1280, 1000) as driver:
        yield driver


#: The notebook's state as the page shows it (every cell is in the page: windowing is off).
STATE = """
const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
if (!nb) return null;
const prompts = Array.from(nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')).map(p => p.innerText.trim());
const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
return {prompts, status: indicator ? indicator.getAttribute("data-status") : null};
"""

#: What a learner sees once the run is over.
INSPECT = """
const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
const texts = (sel) => Array.from(nb.querySelectorAll(sel)).map(e => e.innerText.trim().slice(0, 300));
const outputs = Array.from(nb.querySelectorAll('.jp-OutputArea-output'));
const scroller = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
return {
  widgetsRendered: outputs.filter(o => Array.from(o.children).some(c => c.matches('.jupyter-widgets'))).length,
  placeholders: (nb.innerText.match(/Loading widget|Error displaying widget[^\\n]*/g) || []),
  progressBars: nb.querySelectorAll('.widget-hprogress, .widget-progress').length,
  sliders: nb.querySelectorAll('.widget-slider').length,
  boxes: texts(arguments[0]).length,
  expectedBoxes: texts(arguments[1]).length,
  unexpectedBoxes: Array.from(nb.querySelectorAll(arguments[0])).filter(e => !e.matches(arguments[1]))
    .map(e => e.innerText.trim().slice(0, 300)),
  stderr: texts('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
  images: nb.querySelectorAll('.jp-OutputArea-output img').length,
  height: scroller.scrollHeight + window.innerHeight - scroller.clientHeight,
};
"""


def _wait_for(driver, condition, seconds: float, what: str):
    """Poll ``condition(driver)`` until it returns something true; return that. An element that the page
    replaced while the condition read it (a widget redrawing its output) counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            got = condition(driver)
        except StaleElementReferenceException:
            got = None
        if got:
            return got
        time.sleep(1)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def _menu(driver, menu: str, command: str) -> None:
    """Click the menu bar's ``menu`` and then its item for JupyterLab ``command``."""
    from selenium.webdriver.common.by import By

    bar = driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
    next(item for item in bar if item.text.strip() == menu).click()
    _wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'.lm-Menu-item[data-command="{command}"]'),
        10,
        f"menu item {command}",
    )[0].click()


def open_notebook(driver, base: str, token: str, name: str) -> None:
    """Load JupyterLab with a fresh workspace showing ``name`` (file browser closed); wait for its kernel."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/lab/tree/{name}.ipynb?reset&token={token}")

    def ready(d):
        kernels = [s["kernel"] for s in _api(base, token, "/api/sessions") if s["path"] == f"{name}.ipynb"]
        shown = (d.execute_script(STATE) or {}).get("status")
        return kernels and kernels[0]["execution_state"] == "idle" and shown == "idle"

    _wait_for(driver, ready, 120, "an idle kernel")
    for tab in driver.find_elements(By.CSS_SELECTOR, ".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current"):
        tab.click()  # the open file browser: clicking its tab closes it, the notebook gets the width


def run_all(driver, seconds: float = NOTEBOOK_TIMEOUT) -> dict:
    """Run > Run All Cells; wait until the kernel is idle with no cell queued; return the state."""
    _menu(driver, "Run", "runmenu:run-all")

    started = lambda d: any(p.strip("[]: ") for p in d.execute_script(STATE)["prompts"])  # noqa: E731
    _wait_for(driver, started, 30, "the run to start (a cell queued, running or run)")

    def done(d):
        state = d.execute_script(STATE)
        return state if state["status"] == "idle" and not any("*" in p for p in state["prompts"]) else None

    return _wait_for(driver, done, seconds, "Run All to finish")


def save(driver, folder: Path, name: str) -> nbformat.NotebookNode:
    """File > Save Notebook; return the notebook as saved (its outputs)."""
    path = folder / f"{name}.ipynb"
    before = path.stat().st_mtime_ns
    _menu(driver, "File", "docmanager:save")
    _wait_for(driver, lambda d: path.stat().st_mtime_ns != before, 60, "the notebook to be saved")
    time.sleep(1)  # let the write finish
    return nbformat.read(path, as_version=4)


def full_screenshot(driver, path: Path) -> float:
    """A screenshot of the whole notebook: the window is made as tall as its content; returns the scale."""
    height = driver.execute_script(INSPECT, BOXES, EXPECTED_BOXES)["height"]
    scale = min(1.0, MAX_HEIGHT / height)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": height, "deviceScaleFactor": 0, "mobile": False},
    )
    time.sleep(2)  # let JupyterLab lay the taller page out
    driver.execute_script(
        "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer').scrollTop = 0"
    )
    time.sleep(1)
    screenshot(driver, path, 1280, height, scale)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return scale


def move_slider(driver) -> list[str]:
    """Press the right arrow key on the (only) slider's handle twice; the figure's image after each."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    handle = driver.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    cell = handle.find_element(By.XPATH, "./ancestor::div[contains(@class, 'jp-OutputArea')][1]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
    seen = []
    for _ in range(2):
        readout = cell.find_element(By.CSS_SELECTOR, ".widget-readout").text
        handle.send_keys(Keys.ARROW_RIGHT)

        def changed(d, before=readout):
            images = cell.find_elements(By.CSS_SELECTOR, "img")
            now = cell.find_element(By.CSS_SELECTOR, ".widget-readout").text
            src = images[0].get_attribute("src") if images else ""
            return (now, src) if now != before and src and src not in seen else None

        now, src = _wait_for(driver, changed, 120, "the slider's figure to change")
        seen.append(src)
    return seen


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"cell {i}: {out.get('ename')}: {out.get('evalue', '')[:300]}"
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def _widget_outputs(nb: nbformat.NotebookNode) -> int:
    return sum(WIDGET_MIME in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab_and_shows_only_expected_errors(lab, browser, path):
    base, token, work = lab
    name = path.stem
    start = time.monotonic()
    open_notebook(browser, base, token, name)
    state = run_all(browser)
    seconds = time.monotonic() - start
    time.sleep(3)  # widgets render after their comm messages: give the front end a moment
    saved = save(browser, work, name)
    seen = browser.execute_script(INSPECT, BOXES, EXPECTED_BOXES)
    seen.update(
        stack=stack_name(),
        seconds=round(seconds, 1),
        cells=len(state["prompts"]),
        widgetOutputs=_widget_outputs(saved),
    )
    if "widgets.IntSlider" in path.with_suffix(".py").read_text(encoding="utf-8"):
        seen["slider_images"] = len(set(move_slider(browser)))
    seen["screenshot_scale"] = full_screenshot(browser, SHOTS / f"{name}.png")
    (SHOTS / f"{name}.json").write_text(json.dumps(seen, indent=2))
    for session in _api(base, token, "/api/sessions"):  # free the kernel's memory for the next notebook
        _api(base, token, f"/api/sessions/{session['id']}", "DELETE")

    assert not _errors(saved), _errors(saved)
    not_run = [i for i, p in enumerate(state["prompts"]) if not p.strip("[]: ").isdigit()]
    assert not not_run, f"code cells {not_run} did not run: {state['prompts']}"
    assert not seen["unexpectedBoxes"], f"unexpected outcome: {seen['unexpectedBoxes']}"
    if LESSONS[name].primer:
        assert seen["expectedBoxes"] == 0, "a primer shows no failure"
    else:
        assert seen["expectedBoxes"] >= 1, "the expected failure's box is missing"
    assert not seen["placeholders"], f"widgets not displayed: {seen['placeholders']}"
    assert seen["widgetsRendered"] == seen["widgetOutputs"], "a widget output is not rendered as a widget"
    if "slider_images" in seen:
        assert seen["slider_images"] == 2, "the slider's figure did not change as it moved"
