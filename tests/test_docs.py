"""``peftlab docs`` without a browser or a kernel: static widgets, offline pages, the index table."""

import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from peftlab import exercises
from peftlab.registry import REGISTRY, Expectation, Failure, change
from peftlab.tools import docs
from peftlab.tools.cli import main
from peftlab.tools.execute import Execution
from peftlab.tools.runner import Outcome

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}


def _widget_notebook():
    """A notebook as nbclient saves it: a tqdm bar, an ``interactive`` and a widget with no state."""
    state = {
        "bar": _model("HBoxModel", children=["IPY_MODEL_label", "IPY_MODEL_progress", "IPY_MODEL_post"]),
        "label": _model("HTMLModel", value="training: 100%"),
        "progress": _model("FloatProgressModel", value=40.0, max=40.0),
        "post": _model("HTMLModel", value=" 40/40 [00:01&lt;00:00]"),
        "interact": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_out"]),
        "slider": _model("IntSliderModel", description="image px", value=64),
        "out": _model("OutputModel", outputs=[new_output("display_data", {"image/png": PNG})]),
    }
    view = lambda mid: new_output(  # noqa: E731
        "display_data", {docs.WIDGET_VIEW: {"model_id": mid, "version_major": 2}, "text/plain": "0%|"}
    )
    cells = [
        new_markdown_cell("# 01 · A `title`\n\n[![Open In Colab](https://example.org/badge.svg)](https://x)"),
        new_code_cell("bar", outputs=[view("bar")]),
        new_code_cell("interact", outputs=[view("interact"), view("lost")]),
        new_code_cell(
            "1/0",
            outputs=[
                new_output(
                    "error",
                    ename="ZeroDivisionError",
                    evalue="division by zero",
                    traceback=["ZeroDivisionError: division by zero"],
                )
            ],
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["widgets"] = {docs.WIDGET_STATE: {"state": state, "version_major": 2}}
    return notebook


def test_widgets_become_static_pictures_or_notes():
    notebook = docs.static_page(_widget_notebook(), "01_toy")
    assert "widgets" not in notebook.metadata and notebook.metadata.title == "01 · A `title`"
    outputs = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "display_data"]
    assert all(docs.WIDGET_VIEW not in o.data for o in outputs)
    bar, interact, lost = (o.data["text/html"] for o in outputs)
    assert '<progress value="40.0" max="40.0">' in bar and "training: 100%" in outputs[0].data["text/plain"]
    assert "IntSlider 'image px' = 64" in interact and f"data:image/png;base64,{PNG}" in interact
    assert "state was not saved" in lost
    assert "https://example.org" not in notebook.cells[0].source and "data:image/svg+xml;base64," in (
        notebook.cells[0].source
    )


def test_page_needs_no_network_and_marks_cell_errors():
    body, _ = docs.exporter().from_notebook_node(docs.static_page(_widget_notebook(), "01_toy"))
    assert 'src="http' not in body and "unpkg.com" not in body and "mathjax" not in body.lower()
    assert 'class="peftlab-cell-error"' in body and "ZeroDivisionError" in body
    assert '<a href="index.html">' in body and "<title>01 · A `title`</title>" in body


def test_reproduces_on_reads_the_registry():
    boundary = change("clip_forward_kwargs")
    assert (
        REGISTRY["clip_task_type"].reproduces_on()
        == f"transformers {boundary.before}: TypeError; transformers {boundary.since}: TypeError"
    )
    never = Failure(
        "x", "09_x", "t", (Expectation({"transformers": boundary.since}, None), Expectation({}, None))
    )
    assert never.reproduces_on().startswith("no version recorded")
    anywhere = Failure("y", "09_y", "t", (Expectation({}, "KeyError"),))
    assert anywhere.reproduces_on() == "every version: KeyError"


def _card(notebook, failures, passed=True):
    return {
        "notebook": notebook,
        "stack": "current",
        "checks": [{"claim": "c", "passed": passed, "figure": "1 -> 2", "headline": True}],
        "failures": [{"id": f.id, "reproduced": True, "outcome": f"{f.id}Error"} for f in failures],
    }


def test_index_has_a_row_per_failure_and_links_every_notebook():
    names = sorted({f.notebook for f in REGISTRY.values()})
    outcomes = [Outcome(n, 12.3, _card(n, [f for f in REGISTRY.values() if f.notebook == n])) for n in names]
    outcomes[-1] = Outcome(names[-1], 4.0, None, "a cell failed")
    page = docs.index_html(outcomes, {n: f"{n} title" for n in names})
    for name in names:
        count = sum(f.notebook == name for f in REGISTRY.values())
        assert f'<a class="notebook-link" href="{name}.html">{name}</a>' in page
        assert page.count(f'<td rowspan="{count}"><a class="notebook-link" href="{name}.html">') == 1
    assert page.count("<tr class=") == len(REGISTRY) and "clip_task_typeError" in page
    assert page.count('<tr class="short">') == sum(f.notebook == names[-1] for f in REGISTRY.values())
    assert "not reached" in page and f"fell short: {names[-1]}" in page


def test_build_writes_pages_and_index(tmp_path, monkeypatch):
    """The build's flow with the execution stubbed out: (execute), page, scorecard, index."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(_widget_notebook(), folder / "01_toy.ipynb")

    def fake_execute(path, results, env=None, timeout=600):
        assert env[exercises.SOLUTIONS_ENV] is None, "the pages show a learner's view"
        card = _card("01_toy", [Failure("toy", "01_toy", "toy", ())])
        return Execution(path, nbformat.read(path, as_version=4), 2.0, "", card)

    monkeypatch.setattr(docs, "execute", fake_execute)
    out = tmp_path / "site"
    (outcome,) = docs.build(folder, out)
    assert outcome.ok and (out / "notebooks" / "01_toy.ipynb").exists()
    assert "<progress" in (out / "01_toy.html").read_text()
    assert 'href="01_toy.html"' in (out / "index.html").read_text()
    assert 'href="instructors.html"' in (out / "index.html").read_text()
    assert "Instructor's guide" in (out / "instructors.html").read_text()


def test_index_row_of_a_primer_says_it_shows_no_failure():
    from peftlab.registry import LESSONS

    primer = next(name for name, lesson in LESSONS.items() if lesson.primer)
    card = {
        "notebook": primer,
        "stack": "current",
        "failures": [],
        "checks": [{"claim": "c", "passed": True, "figure": "8 layers", "headline": True}],
    }
    page = docs.index_html([Outcome(primer, 9.0, card)], {primer: "t"})
    assert "none: a primer" in page and "not reached" not in page and '<tr class="ok">' in page
    stopped = docs.index_html([Outcome(primer, 9.0, None, "a cell failed")], {primer: "t"})
    assert "not reached" in stopped and '<tr class="short">' in stopped


def test_docs_without_notebooks_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["docs"]) == 2
    assert "No notebooks folder" in capsys.readouterr().err


def test_matrix_page_names_the_failures_registered_after_its_run(tmp_path):

    from peftlab.tools.docs import matrix_html

    first = next(iter(REGISTRY))
    cell = {"outcome": "TypeError", "kind": "as documented", "verdict": "as documented"}
    (tmp_path / "matrix.json").write_text(
        json.dumps(
            {
                "date": "2026-12-02",
                "stacks": ["current"],
                "versions": {"current": {"torch": "the-recorded-torch"}},
                "rows": {first: {"current": cell}},
            }
        )
    )
    (tmp_path / "matrix.png").write_bytes(b"png")
    page = matrix_html(tmp_path / "matrix.json")
    later = [f for f in REGISTRY if f != first]
    assert "1 of 1 cells as documented" in page and f"not in it yet: {', '.join(later)}." in page
    assert "over torch the-recorded-torch, as the run recorded it" in page  # read from the run, not typed
