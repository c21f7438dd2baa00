"""``peftlab run`` on two small notebooks: one that proves its claims and one that falls short."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from peftlab.tools.cli import main
from peftlab.tools.runner import HEADER, run_one, table

GOOD = """
import os
from peftlab import scorecard
scorecard.reset()
scorecard.record_failure("toy", reproduced=True, outcome="TypeError")
scorecard.check_gain("accuracy rises", 0.5, 0.9, 0.2)
print("kernel mode:", os.environ.get("PEFTLAB_MODE"), "name:", os.environ.get("PEFTLAB_NOTEBOOK"))
scorecard.save()
"""
BAD = GOOD.replace("0.9, 0.2", "0.55, 0.2")


def _write(folder, name, code):
    nb = new_notebook(cells=[new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_run_writes_build_and_judges(tmp_path, monkeypatch, capfd):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write(notebooks, "01_good", GOOD)
    _write(notebooks, "02_bad", BAD)
    build = tmp_path / "build"
    good = run_one(notebooks / "01_good.ipynb", build)
    assert (
        good.ok
        and (build / "html" / "01_good.html").exists()
        and (build / "notebooks" / "01_good.ipynb").exists()
    )
    assert "yes (TypeError)" in table([good.row()], HEADER) and "50% -> 90%" in good.row()[3]
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--only", "02"]) == 1  # the failed check makes the run exit non-zero
    out, err = capfd.readouterr()  # the kernels' own output too (they inherit the file descriptors)
    assert "FELL SHORT: 02_bad" in err
    assert "without encryption" not in out + err, "the kernel must not run over plain TCP"


def test_run_without_notebooks_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "No notebooks folder" in capsys.readouterr().err


def test_a_notebook_must_show_the_failures_its_registry_entry_names():
    from peftlab.tools.runner import Outcome

    checks = [{"claim": "c", "passed": True, "figure": "f"}]
    primer = Outcome("00_lora_primer", 1.0, {"stack": "s", "failures": [], "checks": checks})
    other = Outcome("01_clip_task_type", 1.0, {"stack": "s", "failures": [], "checks": checks})
    assert primer.ok and "none to show" in primer.row()
    assert not other.ok and "no" in other.row()


def test_the_kernel_is_told_its_name_and_the_environment_is_restored(tmp_path, monkeypatch):
    import os

    from peftlab.tools.execute import execute

    _write(tmp_path, "01_good", GOOD)
    monkeypatch.setenv("PEFTLAB_MODE", "real-size")  # the caller's own mode, restored after the run
    run = execute(tmp_path / "01_good.ipynb", tmp_path / "results", env={"PEFTLAB_MODE": None})
    printed = "".join(o.get("text", "") for c in run.notebook.cells for o in c.get("outputs", []))
    assert "kernel mode: None name: 01_good" in printed and run.card["notebook"] == "01_good"
    assert os.environ["PEFTLAB_MODE"] == "real-size" and "PEFTLAB_NOTEBOOK" not in os.environ
