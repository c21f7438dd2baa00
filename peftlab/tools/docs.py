"""``peftlab docs``: the executed documentation, a static HTML site of every notebook as it ran.

Each notebook is executed (:func:`peftlab.tools.execute.execute`) on the embedded default, as a
learner sees it, into ``<out>/notebooks/``, with inline plots and its scorecard in ``<out>/results/``.
Each executed copy becomes ``<out>/<name>.html``; ``<out>/index.html`` holds the table of failures:
notebook, error on this stack, the versions each one reproduces on (from the failure registry), the
fix (the notebook's checks) and seconds (a notebook that teaches no failure, the primer, gets one row saying so).
``<out>/instructors.html`` is the instructor's guide (:mod:`peftlab.tools.instructors`).

The site works offline: plots are PNG data URIs, the page template loads no script from a CDN, a
widget becomes a static picture (a progress bar at its final state, the figure an ``interactive``
drew) or a note, and a remote image in Markdown (the Colab badge) an inline SVG badge.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from peftlab.capture import OBSERVE_ENV
from peftlab.exercises import SOLUTIONS_ENV
from peftlab.registry import REGISTRY
from peftlab.tools import instructors
from peftlab.tools.execute import execute
from peftlab.tools.runner import (
    Outcome,
    add_notebook_arguments,
    find_notebooks,
    run_and_summarise,
    write_html,
)

if TYPE_CHECKING:
    from nbconvert import HTMLExporter

#: The pages show what a learner sees: exercises not answered yet, an unexpected outcome an error.
LEARNERS_VIEW = {SOLUTIONS_ENV: None, OBSERVE_ENV: None}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)

CSS = """
.peftlab-nav { padding: 8px 16px; font: 14px sans-serif; border-bottom: 1px solid #ddd; }
.peftlab-widget { display: flex; gap: 0.6em; align-items: center; font: 13px monospace; margin: 2px 0; }
.peftlab-widget.vbox { flex-direction: column; align-items: flex-start; }
.peftlab-widget-note { font: italic 13px sans-serif; color: #555; border-left: 3px solid #999;
  padding: 2px 8px; margin: 4px 0; }
"""
#: The lab template without CDN scripts (no math, mermaid or live widgets here); error outputs marked.
TEMPLATE = (
    """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block extra_css %}<style>"""
    + CSS
    + """</style>{% endblock extra_css %}
{% block body_header %}{{ super() }}
<nav class="peftlab-nav"><a href="index.html">&larr; peftlab: all notebooks</a></nav>
{% endblock body_header %}
{% block error %}<div class="peftlab-cell-error">{{ super() }}</div>{% endblock error %}
"""
)


def build(notebooks: Path, out: Path, only: list[str] | None = None, timeout: int = 600) -> list[Outcome]:
    """Execute every notebook into ``out``, write one page each and the index; return the outcomes."""
    import nbformat

    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    outcomes, titles = [], {}
    for source in find_notebooks(notebooks, only):
        print(f"executing {source.name} ...", flush=True)
        run = execute(source, out / "results", env=LEARNERS_VIEW, timeout=timeout)
        outcome = Outcome(source.stem, run.seconds, run.card, run.error)
        nbformat.write(run.notebook, out / "notebooks" / source.name)
        titles[source.stem] = title_of(run.notebook)
        write_html(static_page(run.notebook, source.stem), out / f"{source.stem}.html", exporter())
        print(f"  {'ok' if outcome.ok else 'FELL SHORT'} in {run.seconds:.0f} s", flush=True)
        outcomes.append(outcome)
    (out / "index.html").write_text(index_html(outcomes, titles), encoding="utf-8")
    built = {o.notebook: o.seconds for o in outcomes}
    (out / "instructors.html").write_text(instructors.page_html(built), encoding="utf-8")
    return outcomes


def exporter() -> HTMLExporter:
    """An nbconvert HTML exporter (lab template) whose pages need no network."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    loader = DictLoader({"peftlab_docs.html.j2": TEMPLATE})
    return HTMLExporter(extra_loaders=[loader], template_file="peftlab_docs.html.j2")


def title_of(notebook: dict) -> str:
    """The first Markdown heading of ``notebook`` (its title), or ''."""
    for cell in notebook["cells"]:
        found = _HEADING.search(cell["source"]) if cell["cell_type"] == "markdown" else None
        if found:
            return found.group(1).strip()
    return ""


def static_page(notebook: dict, name: str) -> dict:
    """Make ``notebook`` static in place: widgets become pictures or notes, remote images badges."""
    state = notebook["metadata"].pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = _REMOTE_IMAGE.sub(
                lambda m: f"![{m[1]}]({badge(m[1] or 'link')})", cell["source"]
            )
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            if view is not None:
                picture = widget_html(view.get("model_id", ""), state)
                output["data"] = {"text/html": picture, "text/plain": _plain(picture)}
    notebook["metadata"]["title"] = title_of(notebook) or name
    return notebook


def widget_html(model_id: str, state: dict) -> str:
    """A static picture of one widget from the saved widget state, or a note where there is none."""
    model = state.get(model_id)
    if model is None:
        return _note("A widget was shown here; its state was not saved, so this static page cannot draw it.")
    name, values = model["model_name"], model["state"]
    if name in ("FloatProgressModel", "IntProgressModel"):
        return f'<progress value="{values.get("value", 0)}" max="{values.get("max", 100)}"></progress>'
    if name in ("HTMLModel", "HTMLMathModel", "LabelModel"):
        text = values.get("value", "")
        return f"<span>{text if name != 'LabelModel' else html.escape(text)}</span>"
    if name == "OutputModel":
        return "".join(_output_html(o) for o in values.get("outputs", []))
    if "children" in values:
        kind = "vbox" if name in ("VBoxModel", "GridBoxModel") else "hbox"
        inner = "".join(widget_html(c.removeprefix("IPY_MODEL_"), state) for c in values["children"])
        return f'<div class="peftlab-widget {kind}">{inner}</div>'
    control = f"{name.removesuffix('Model')} {values.get('description', '')!r} = {values.get('value')!r}"
    return _note(f"Interactive control ({control}): move it in Jupyter or Colab; this page shows that value.")


def _note(text: str) -> str:
    return f'<div class="peftlab-widget-note">{html.escape(text, quote=False)}</div>'


def _output_html(output: dict) -> str:
    """One output captured by an Output widget, as static HTML."""
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img alt="figure" src="data:image/png;base64,{"".join(data["image/png"]).strip()}">'
    if "text/html" in data:
        return "".join(data["text/html"])
    if output.get("output_type") == "error":
        text = f"{output.get('ename')}: {output.get('evalue')}"
        return f'<pre class="peftlab-cell-error">{html.escape(text)}</pre>'
    return f"<pre>{html.escape(''.join(data.get('text/plain', output.get('text', ''))))}</pre>"


def _plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).strip()


def badge(text: str) -> str:
    """A small SVG badge reading ``text``, as a data URI (stands in for a remote badge image)."""
    width = 12 + 7 * len(text)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20">'
        f'<rect width="{width}" height="20" rx="3" fill="#555"/><text x="6" y="14" fill="#fff" '
        f'font-family="Verdana,sans-serif" font-size="11">{html.escape(text)}</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def failure_rows(outcome: Outcome, title: str) -> list[str]:
    """The index rows of one notebook: one per failure it teaches (notebook, fix, seconds spanned)."""
    seen = {f["id"]: f for f in (outcome.card or {}).get("failures", [])}
    failures = [f for f in REGISTRY.values() if f.notebook == outcome.notebook] or [None]
    _, _, _, fix, seconds = outcome.row()
    link = (
        f'<a class="notebook-link" href="{outcome.notebook}.html">{outcome.notebook}</a>'
        f"<br><small>{_code(title)}</small>"
    )
    rows = []
    for i, failure in enumerate(failures):
        here = seen.get(failure.id) if failure else None
        ran = outcome.card is not None and failure is None  # a notebook without failures has none to reach
        error = html.escape(here["outcome"] if here else "-" if ran else "not reached (the notebook stopped)")
        cells = [
            _code(failure.title) if failure else "none: a primer",
            error,
            html.escape(failure.reproduces_on() if failure else "-"),
        ]
        if i == 0:
            span = f' rowspan="{len(failures)}"'
            cells = [f"<td{span}>{link}</td>"] + [f"<td>{c}</td>" for c in cells]
            cells += [
                f'<td{span} class="fix">{html.escape(fix)}</td>',
                f'<td{span} class="num">{seconds}</td>',
            ]
        else:
            cells = [f"<td>{c}</td>" for c in cells]
        rows.append(f'<tr class="{"ok" if outcome.ok else "short"}">{"".join(cells)}</tr>')
    return rows


def _code(text: str) -> str:
    """Escape ``text``, showing `backticked` spans as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>peftlab: executed notebooks</title>
<style>
body {{ font: 15px/1.45 sans-serif; margin: 24px auto; max-width: 1280px; padding: 0 16px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 6px 8px; vertical-align: top; text-align: left; }}
th {{ background: #f3f3f3; }} td.num {{ text-align: right; }} td.fix {{ min-width: 13em; }} tr.short td {{ background: #fde8e8; }}
code {{ font-size: 90%; background: #f4f4f4; padding: 0 3px; }}
</style></head>
<body>
<h1>peftlab: executed notebooks</h1>
<p>Every notebook executed (papermill) on the embedded default (tiny models) on the {stack},
{when}. Each page shows the notebook as it ran: outputs, plots and the boxes of the expected errors.</p>
<table id="failures">
<thead><tr><th>notebook</th><th>failure</th><th>error on this stack</th><th>reproduces on</th>
<th>fix verified</th><th>seconds</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p>{summary}</p>
<p><a id="instructors-link" href="instructors.html">Instructor's guide</a>: a 3-hour agenda, what each notebook
needs on a CPU and a GPU, the exercises with their intended answers, and common questions.</p>
<p><a href="matrix.html">Every failure on every stack</a> (the CI stacks and the Colab runtimes of 2025-2026).</p>
</body></html>
"""


def index_html(outcomes: list[Outcome], titles: dict[str, str]) -> str:
    """The site's front page: the table of failures, one row per failure, grouped by notebook."""
    from peftlab.versions import describe

    rows = [row for o in outcomes for row in failure_rows(o, titles.get(o.notebook, ""))]
    short = [o.notebook for o in outcomes if not o.ok]
    summary = f"{len(outcomes)} notebooks in {sum(o.seconds for o in outcomes):.0f} s; " + (
        f"fell short: {', '.join(short)}."
        if short
        else "every one reproduced its failures and verified its fix."
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return INDEX.format(stack=html.escape(describe()), when=when, rows="\n".join(rows), summary=summary)


MATRIX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>peftlab: every failure on every stack</title>
<style>
body {{ font: 14px/1.45 sans-serif; margin: 24px auto; max-width: 1400px; padding: 0 16px; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 4px 6px; text-align: left; }}
th {{ background: #f3f3f3; font-weight: normal; }} td.bad {{ background: #fde8e8; }} img {{ max-width: 100%; }}
</style></head>
<body><nav><a href="index.html">&larr; peftlab: all notebooks</a></nav>
<h1>Every failure on every stack</h1>
<p>{intro}</p>
<img alt="heat map of the failure x stack table" src="data:image/png;base64,{png}">
<table id="matrix"><thead><tr><th>failure</th>{head}</tr></thead><tbody>
{rows}
</tbody></table>
<p>{summary}</p>
</body></html>
"""


def matrix_html(path: Path) -> str:
    """The page of ``peftlab matrix``'s table (``matrix.json`` with ``matrix.png`` beside it)."""
    from peftlab.tools.matrix import versions_label

    table = json.loads(path.read_text(encoding="utf-8"))
    stacks = table["stacks"]
    versions = table.get("versions", {})
    head = "".join(
        f"<th>{html.escape(s)}<br><small>{html.escape(versions_label(versions.get(s)))}</small></th>"
        for s in stacks
    )
    rows, cells = [], []
    for key, row in table["rows"].items():
        tds = []
        for stack in stacks:
            cell = row[stack]
            cells.append(cell)
            bad = cell["kind"] != "as documented"
            text = html.escape(cell["outcome"]) + (f"<br><b>{html.escape(cell['kind'])}</b>" if bad else "")
            tds.append(
                f'<td class="{"bad" if bad else "ok"}" title="{html.escape(cell["verdict"])}">{text}</td>'
            )
        rows.append(f"<tr><td><code>{html.escape(key)}</code></td>{''.join(tds)}</tr>")
    good = sum(c["kind"] == "as documented" for c in cells)
    seconds = table.get("seconds")
    summary = f"{good} of {len(cells)} cells as documented" + (
        f"; measured in {seconds:.0f} s." if seconds else "."
    )
    missing = [failure_id for failure_id in REGISTRY if failure_id not in table["rows"]]
    if missing:  # registered after the last run: say so rather than let the title claim them
        summary += f" Registered after this run, so not in it yet: {', '.join(missing)}."
    torches = sorted({v["torch"] for v in table.get("versions", {}).values() if v.get("torch")})
    intro = (
        "Each notebook run in observe mode on each pinned stack (peftlab/stacks/*.txt: the CI stacks and "
        f"the Colab runtimes, over torch {', '.join(torches) or '(not recorded)'}, as the run recorded it). "
        "A cell is the outcome and, where it differs from the "
        "registry, the verdict. Written by <code>peftlab matrix</code>; this page shows its last run, "
        f"{html.escape(table.get('date', 'date not recorded'))}."
    )
    png = base64.b64encode((path.parent / "matrix.png").read_bytes()).decode()
    return MATRIX.format(intro=intro, png=png, head=head, rows="\n".join(rows), summary=summary)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab docs``."""
    add_notebook_arguments(parser, "--out", Path("build/docs"), "site folder")
    parser.add_argument(
        "--matrix",
        type=Path,
        default=Path("docs/matrix/matrix.json"),
        help="peftlab matrix's table to publish as matrix.html (default: docs/matrix/matrix.json)",
    )


def main(args: argparse.Namespace) -> int:
    """``peftlab docs``: build the site; exit 1 if a notebook fell short, 2 if there is none."""
    execute = lambda: build(args.notebooks, args.out, args.only, args.timeout)  # noqa: E731
    code = run_and_summarise(execute, f"site: {args.out / 'index.html'}")
    if args.matrix and args.matrix.exists():
        (args.out / "matrix.html").write_text(matrix_html(args.matrix), encoding="utf-8")
        print(f"matrix page: {args.out / 'matrix.html'} (from {args.matrix})")
    return code
