"""A learner's bad parameters, tried on every notebook through papermill: each stops at the first cell
that uses the parameter, with one sentence (what is wrong, what to set) and no traceback.

The cases: a misspelt Hub id with the Hub unreachable, a local folder holding only a config.json,
``BATCH_SIZE = 0``, ``SEED = -1``, every ``*_STEPS`` parameter at 0, and ``DEVICE`` "cuda" (on a
machine without CUDA), "gpu" and "tpu". A notebook without the parameter skips its case. The cell
expected to fail is found from the notebook's source (the first code cell after the parameters
cell that names the parameter), never from the run.

Opt-in: about 70 notebook starts, several minutes (``PEFTLAB_BAD_PARAMETERS=1``). Each case's
cell and message are appended to ``build/bad_parameters.md``, the table of the note.
"""

import ast
import os
import re
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
TABLE = ROOT / "build" / "bad_parameters.md"

pytestmark = pytest.mark.skipif(
    os.environ.get("PEFTLAB_BAD_PARAMETERS") != "1",
    reason="about 70 notebook starts, several minutes: PEFTLAB_BAD_PARAMETERS=1",
)

#: A one-letter slip in each notebook's real checkpoint (the one its parameters cell names).
MISSPELT = {
    "00": "openai/clip-vit-base-patch33",
    "01": "openai/clip-vit-base-patch33",
    "02": "Salesforce/blip2-opt-2.7c",
    "03": "facebook/opt-125n",
    "04": "google/vit-base-patch16-224-in22k",
    "05": "OFA-Sys/chinese-clip-vit-large-patch15",
    "06": "Salesforce/blip2-opt-2.7c",
    "07": "llava-hf/llava-1.5-7b-hff",
}


def parameters(notebook: Path) -> tuple[int, list[str]]:
    """The index of the parameters cell and the names it sets."""
    cells = nbformat.read(notebook, as_version=4).cells
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    targets = [t for node in ast.parse(cells[index].source).body for t in node.targets]
    return index, [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def first_use(notebook: Path, name: str) -> tuple[int, str]:
    """The first code cell after the parameters cell that names ``name`` in code: its number among
    the notebook's code cells (from 1) and its source."""
    index, _ = parameters(notebook)
    cells = nbformat.read(notebook, as_version=4).cells
    for i, cell in enumerate(cells[index + 1 :], start=index + 1):
        code = "\n".join(line.split("#")[0] for line in cell.source.splitlines())
        if cell.cell_type == "code" and re.search(rf"\b{name}\b", code):
            return sum(c.cell_type == "code" for c in cells[: i + 1]), cell.source
    raise AssertionError(f"{notebook.name} never uses {name}")


def cases() -> list:
    out = []
    for notebook in NOTEBOOKS:
        number, (_, names) = notebook.stem[:2], parameters(notebook)
        tried = [
            ("CHECKPOINT", MISSPELT[number], "is not a folder here, and the Hugging Face Hub", "misspelt"),
            ("CHECKPOINT", "<config only>", "holds a config.json but no weights", "config_only"),
            ("BATCH_SIZE", 0, "batch_size=0: ", "0"),
            ("SEED", -1, "SEED=-1: ", "negative"),
            *((n, 0, "steps=0: ", "0") for n in names if n.endswith("_STEPS")),
            ("DEVICE", "cuda", "this machine has no CUDA GPU", "cuda"),
            ("DEVICE", "gpu", "DEVICE='gpu' is not a device name", "gpu"),
            ("DEVICE", "tpu", "DEVICE='tpu' is not a device name", "tpu"),
        ]
        out += [
            pytest.param(notebook, name, value, says, id=f"{number}-{name}-{label}")
            for name, value, says, label in tried
            if name in names
        ]
    return out


@pytest.mark.parametrize("notebook, name, value, says", cases())
def test_a_bad_parameter_stops_its_first_cell_with_one_sentence(
    notebook, name, value, says, tmp_path, monkeypatch
):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if value == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if value == "<config only>":
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "config.json").write_text('{"model_type": "clip"}')
        value = str(tmp_path / "model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub unreachable, as in a locked-down room
    with pytest.raises(PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(notebook),
            str(tmp_path / notebook.name),
            parameters={name: value},
            cwd=str(notebook.parent),
            progress_bar=False,
            execution_timeout=600,
        )
    error = raised.value
    number, expected = first_use(notebook, name)
    assert error.source == expected, (
        f"stopped at\n{error.source}\nnot at the first use of {name}:\n{expected}"
    )
    assert error.ename in ("ParameterError", "OfflineError"), (error.ename, error.evalue)
    assert says in error.evalue and "\n" not in error.evalue and error.evalue.endswith(".")
    assert len(error.traceback) == 1, "Jupyter shows the sentence alone, without a traceback"
    TABLE.parent.mkdir(exist_ok=True)
    with TABLE.open("a") as table:
        line = next(
            line.strip() for line in expected.splitlines() if re.search(rf"\b{name}\b", line.split("#")[0])
        )
        shown = (
            "<a folder with config.json only>"
            if value.__class__ is str and value.startswith("/")
            else repr(value)
        )
        table.write(
            f"| {notebook.stem[:2]} | `{name} = {shown}` | code cell {number}: `{line[:70]}` | {error.ename}: {error.evalue} |\n"
        )
