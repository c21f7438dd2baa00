"""Widget cells must not stall a headless run (issue: notebook 04 hung 1 in 8 papermill runs).

``widgets.interactive`` draws into an ``Output`` widget while its cell runs; nbclient then answers
the kernel on the shell channel where it waits for the cell's reply, and now and then misses that
reply and sits until its timeout (measured: 12 of 150 such cells under nbclient, 1 of 10 papermill
runs of notebook 04). The notebooks' widget cells draw only when a slider moves.
"""

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
#: Stand-ins for what notebook 04's widget cell reads from the cells before it.
STUBS = """
from types import SimpleNamespace
from IPython.display import display
NEW_SIZE, PATCH, OLD_SIZE, table = 64, 8, 32, None
pe = SimpleNamespace(plot_similarity=lambda tables: "figure")
interpolate_table = lambda t, grid: t
"""


def widget_cell(path: Path) -> str:
    """The source of the notebook's cell that builds an ipywidgets slider."""
    cells = [
        c for c in nbformat.read(path.with_suffix(".ipynb"), as_version=4).cells if c.cell_type == "code"
    ]
    return next(c.source for c in cells if "widgets.IntSlider" in c.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_widget_draws_while_its_cell_runs(path):
    source = path.read_text(encoding="utf-8")
    assert not re.search(r"widgets\.interactive\(|\binteract\(", source), (
        "widgets.interactive draws into an Output widget during the cell: it can stall nbclient"
    )


def test_notebook_04_widget_cell_never_waits_for_the_timeout():
    cell = widget_cell(ROOT / "notebooks" / "04_vit_position_embeddings.py")
    notebook = new_notebook(cells=[new_code_cell(STUBS)] + [new_code_cell(cell) for _ in range(40)])
    took = {}
    client = NotebookClient(
        notebook,
        timeout=3,
        kernel_name="python3",
        on_cell_start=lambda cell, cell_index: took.__setitem__(cell_index, time.perf_counter()),
        on_cell_executed=lambda cell, cell_index, execute_reply: took.__setitem__(
            cell_index, time.perf_counter() - took[cell_index]
        ),
    )
    client.execute()
    slow = [i for i, seconds in took.items() if i > 0 and seconds > 2.5]
    assert not slow, f"{len(slow)} of 40 widget cells waited for nbclient's timeout"


@pytest.mark.skipif(not os.environ.get("PEFTLAB_SOAK"), reason="soak run: PEFTLAB_SOAK=1 (ten runs, minutes)")
def test_notebook_04_ten_papermill_runs_none_stalls(tmp_path):
    papermill = pytest.importorskip("papermill")
    source = ROOT / "notebooks" / "04_vit_position_embeddings.ipynb"
    for run in range(10):
        start = time.perf_counter()
        papermill.execute_notebook(
            str(source),
            str(tmp_path / f"run{run}.ipynb"),
            parameters={"SEED": run % 5},
            cwd=str(source.parent),
            execution_timeout=300,
            progress_bar=False,
        )
        assert time.perf_counter() - start < 300, f"run {run} took as long as the timeout"
