"""The executed-documentation site in a real browser: headless Chromium opens the index and every page.

Build the site, then run this file (README, "Executed documentation"):

    peftlab docs && python -m pytest tests/test_docs_site.py

``$PEFTLAB_DOCS_SITE`` names another site folder (default ``build/docs``). Skipped when the system
Chromium and chromedriver (``apt-get install chromium chromium-driver``), selenium (the ``docs``
extra) or the built site is missing; with ``$PEFTLAB_DOCS_REQUIRED=1`` (CI) that is a failure instead.
Each page leaves a full-page screenshot in ``<site>/screenshots/``.
"""

import json
import os
from pathlib import Path

import pytest
from browser import MAX_HEIGHT, chrome, missing_browser, screenshot

from peftlab import recordings
from peftlab.detectors import DETECTORS
from peftlab.registry import LESSONS, for_notebook
from peftlab.tools.runner import find_notebooks
from peftlab.versions import pinned_versions

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("PEFTLAB_DOCS_SITE", ROOT / "build" / "docs")).resolve()
NOTEBOOKS = [p.stem for p in find_notebooks(ROOT / "notebooks")]
DOCUMENTED = pinned_versions(recordings.STACK)  # the recordings' stack

#: Set by CI (`.ci/run`, ci.yml): a missing browser or site fails instead of skipping.
REQUIRED = os.environ.get("PEFTLAB_DOCS_REQUIRED") == "1"


def _missing() -> str:
    """Why this file cannot run here, or ''."""
    if missing_browser():
        return missing_browser()
    if not (SITE / "index.html").exists():
        return f"no docs site at {SITE}: run `peftlab docs` first"
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()) and not REQUIRED, reason=_missing() or "-")

#: What a page shows, read in the browser after it has loaded.
INSPECT = """
const texts = (sel) => Array.from(document.querySelectorAll(sel)).map(e => e.textContent.trim().slice(0, 400));
const whole = (sel) => Array.from(document.querySelectorAll(sel)).map(e => e.innerText.trim());
return {
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 60), width: i.naturalWidth,
                                                  loaded: i.complete && i.naturalWidth > 0})),
  plots: document.querySelectorAll('.jp-OutputArea-output img').length,
  cellErrors: texts('.peftlab-cell-error'),
  tracebacks: texts('[data-mime-type="application/vnd.jupyter.stderr"]').filter(
    t => t.includes('Traceback (most recent call last)')),
  expectedBoxes: texts('.peftlab-box.expected').length,
  unexpectedBoxes: texts('.peftlab-box.unexpected'),
  libraryBoxes: whole('.peftlab-error-box.library'),
  detectorBoxes: whole('.peftlab-detector-box'),
  recordingBoxes: whole('.peftlab-recording-box'),
  widgets: document.querySelectorAll('script[type*="jupyter.widget"], .jupyter-widgets').length,
  placeholders: (document.body.innerText.match(/Loading widget|Error displaying widget/g) || []).length,
  remote: Array.from(document.querySelectorAll('script[src], link[href], img[src]'))
    .map(e => e.src || e.href).filter(u => /^https?:/.test(u)),
};
"""


@pytest.fixture(scope="module")
def browser():
    assert not _missing(), _missing()  # only reached when REQUIRED: skipping would hide it
    if not REQUIRED:
        pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[docs]'")
    with chrome() as driver:
        yield driver


def open_page(driver, name: str) -> dict:
    """Load ``<site>/<name>.html``, save its screenshot, return what INSPECT saw and console errors."""
    driver.get_log("browser")  # drop what an earlier page left
    driver.get((SITE / f"{name}.html").as_uri())
    seen = driver.execute_script(INSPECT)
    seen["console"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    screenshot(driver, SITE / "screenshots" / f"{name}.png", width, min(height, MAX_HEIGHT))
    return seen


def assert_clean(seen: dict) -> None:
    """Every image loaded, nothing fetched from the network, no console error, no broken widget."""
    assert all(i["loaded"] for i in seen["images"]), [i for i in seen["images"] if not i["loaded"]]
    assert not seen["remote"], f"the page needs the network: {seen['remote']}"
    assert not seen["console"], seen["console"]
    assert not seen["widgets"] and not seen["placeholders"], "a widget placeholder is left on the page"


def test_index_lists_every_notebook_and_its_links_open(browser):
    seen = open_page(browser, "index")
    assert_clean(seen)
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('#failures a.notebook-link')).map(a => a.href)"
    )
    assert sorted(Path(h).stem for h in links) == NOTEBOOKS, "the index must list every notebook"
    assert browser.execute_script("return document.querySelectorAll('#failures tr.short').length") == 0, (
        "a notebook fell short in the docs build"
    )
    for href in links:
        browser.get(href)
        assert browser.execute_script("return document.querySelectorAll('.jp-Cell').length") > 0, href
        back = browser.execute_script("return document.querySelector('.peftlab-nav a').href")
        assert Path(back).name == "index.html"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_shows_plots_and_only_expected_errors(browser, name):
    assert (SITE / f"{name}.html").exists(), f"no page for {name}: run `peftlab docs` (all notebooks)"
    seen = open_page(browser, name)
    assert_clean(seen)
    assert seen["plots"] >= 1 and all(i["width"] > 0 for i in seen["images"]), "no plot on the page"
    if LESSONS[name].primer:  # a primer shows no failure: no error box, and its exercises unanswered
        assert seen["expectedBoxes"] == 0, "a primer shows no failure"
    else:
        assert seen["expectedBoxes"] >= 1, "the expected failure's error box is missing"
    assert not seen["unexpectedBoxes"], f"unexpected outcome: {seen['unexpectedBoxes']}"
    assert_boxes_say_who_raised(name, seen)
    assert not seen["cellErrors"] and not seen["tracebacks"], seen["cellErrors"] + seen["tracebacks"]
    text = (SITE / f"{name}.html").read_text(encoding="utf-8")
    if "exercises.check(" in (ROOT / "notebooks" / f"{name}.py").read_text(encoding="utf-8"):
        # the site is the learner's view: exercises unanswered, no stored solution shown
        assert "not answered yet" in text and "stored solution" not in text, "exercises must show unanswered"
    # noise is what the cells print, not what their code names (06 silences a FutureWarning by name)
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('.jp-OutputArea')).map(e => e.textContent).join('\\n')"
    )
    for noise in ("FutureWarning", "kernels-community", "without encryption"):
        assert noise not in shown, f"third-party noise in the page's outputs: {noise}"


def assert_boxes_say_who_raised(name: str, seen: dict) -> None:
    """peftlab's detectors in their own boxes, saying so first; the recordings where these versions differ.

    What to expect is read from the registry for the versions the site was built on (the scorecard the
    build kept in ``<site>/results/``; the versions this test runs on where there is none).
    """
    card = SITE / "results" / f"{name}.json"
    built_on = json.loads(card.read_text())["versions"] if card.exists() else None
    failures = for_notebook(name)
    if any(f.expected(built_on).raises in DETECTORS for f in failures):
        assert seen["detectorBoxes"], "a detector's failure is shown, but in no detector box"
    for box in seen["detectorBoxes"]:
        assert box.startswith("peftlab's detector"), box[:120]
        assert box.splitlines()[1].startswith("peftlab raised this") and "It makes visible:" in box, box[:300]
    for box in seen["libraryBoxes"]:  # a library's box never holds one of peftlab's exceptions
        assert not any(f"\n{d}: " in box for d in DETECTORS), box[:300]
    shown = [
        f for f in failures if f.id in recordings.RECORDED and f.expected(built_on) != f.expected(DOCUMENTED)
    ]
    assert len(seen["recordingBoxes"]) >= len(shown), f"recordings of {[f.id for f in shown]} missing"
    for failure in shown:
        message = recordings.load(failure.id).message.splitlines()[0][:60]
        assert any(
            message in box and "re-checked on every CI run" in box for box in seen["recordingBoxes"]
        ), (
            failure.id,
            message,
        )


def test_matrix_page_shows_the_heat_map_and_every_stack(browser):
    if not (ROOT / "docs" / "matrix" / "matrix.json").exists():
        pytest.skip("no matrix recorded yet (docs/matrix/matrix.json)")
    seen = open_page(browser, "matrix")
    assert_clean(seen)
    assert seen["plots"] >= 1 or len(seen["images"]) >= 1, "the heat map is missing"
    from peftlab.versions import stack_names

    heads = browser.execute_script(
        "return Array.from(document.querySelectorAll('#matrix th')).map(t => t.innerText)"
    )
    assert all(any(h.startswith(s) for h in heads) for s in stack_names()), heads


def test_instructors_page_is_linked_and_lists_every_lesson(browser):
    seen = open_page(browser, "index")
    assert browser.execute_script("return document.querySelector('#instructors-link').href").endswith(
        "instructors.html"
    )
    seen = open_page(browser, "instructors")
    assert_clean(seen)
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('#needs a')).map(a => a.getAttribute('href'))"
    )
    assert links == [f"{name}.html" for name in LESSONS], links
    assert browser.execute_script("return document.querySelectorAll('#agenda tr').length") > len(LESSONS)
    assert browser.execute_script("return document.querySelectorAll('details').length") >= 2, "no exercises"
    rooms = browser.execute_script(
        "return Array.from(document.querySelectorAll('#room th')).map(t => t.innerText)"
    )
    from peftlab.tools.instructors import rooms as room_names

    assert rooms[2:] == room_names(), rooms
    assert browser.execute_script("return document.querySelectorAll('#colab-breaks li').length") >= 3
