"""The notebooks as files: jupytext pairs in sync, no outputs committed, the conventional first cells."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("[0-9]*.py"))


def test_every_notebook_is_a_pair():
    assert PAIRS, "no notebooks found"
    py = {p.stem for p in PAIRS}
    ipynb = {p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb")}
    assert py == ipynb, f"unpaired: {py ^ ipynb}"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_pair_in_sync(py):
    """The .ipynb, written back in percent format, is exactly the .py (run jupytext --sync if not)."""
    notebook = jupytext.read(py.with_suffix(".ipynb"))
    assert jupytext.writes(notebook, fmt="py:percent") == py.read_text(), (
        f"{py.name} and its .ipynb differ: run `jupytext --to ipynb --update {py}` "
        f"then `jupytext --to py:percent {py.with_suffix('.ipynb')}`"
    )
    assert not re.search(r"jupytext_version:\s*\d", py.read_text()), "filter the jupytext version out"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(py):
    notebook = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks without outputs"
    assert "widgets" not in notebook.metadata, "commit notebooks without widget state"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_first_cells(py):
    cells = nbformat.read(py.with_suffix(".ipynb"), as_version=4).cells
    badge = f"https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/{py.stem}.ipynb"
    assert badge in cells[0].source, "the first cell carries the Open-in-Colab badge for this notebook"
    install = cells[1].source
    assert '"google.colab" in sys.modules' in install and "pip" in install
    assert not re.search(r"[\"'\s]torch[=<>~\"'\s]", install.split("pip", 1)[1]), (
        "never reinstall torch on Colab"
    )
    starts = cells[2].source
    assert f'peftlab.start("{py.stem}")' in starts or "versions_table()" in starts, (
        "the third cell starts the lesson under the notebook's own name (it prints the versions)"
    )
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and 'CHECKPOINT = "tiny"' in tagged[0].source
    assert "scorecard.save(" in cells[-1].source


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
@pytest.mark.parametrize("on_colab", [False, True], ids=["local", "colab"])
def test_install_cell_installs_only_peftlab_and_only_on_colab(py, on_colab, monkeypatch):
    """Run the install cell for real, with pip replaced by a recorder: nothing happens off Colab; on
    Colab exactly one pip call, which installs this package and nothing else (torch is Colab's)."""
    import subprocess
    import sys

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(list(args)))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(nbformat.read(py.with_suffix(".ipynb"), as_version=4).cells[1].source, {})
    if not on_colab:
        assert calls == []
        return
    assert len(calls) == 1, calls
    command = calls[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    packages = [a for a in command[4:] if not a.startswith("-")]
    assert packages == ["peftlab @ git+https://github.com/peftlab/peftlab"], packages


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_colab_links_point_at_this_notebook(py):
    text = nbformat.read(py.with_suffix(".ipynb"), as_version=4).cells[0].source
    links = re.findall(r"https://colab\.research\.google\.com/github/\S+?\.ipynb", text)
    assert links == [
        f"https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/{py.name[:-3]}.ipynb"
    ]
