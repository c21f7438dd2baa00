"""A learner in one kernel: every notebook run, its exercises retried, run again, restarted.

The steps and the exercise convention that the lesson authors keep are in ``tests/learner.py``. The
sessions take a few minutes (each notebook is run three times, plus its exercise cells twice); each
leaves its step timings in ``build/learner/<stack>/<notebook>.json``.
"""

import json
import re
import textwrap
from pathlib import Path

import nbformat
import pytest
from learner import Learner, find_exercises, learner_env, solutions_module
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from peftlab.exercises import solutions_file
from peftlab.versions import stack_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
TIMINGS = ROOT / "build" / "learner"


def stored_keys(path: Path) -> set[str]:
    """The exercise keys that ``solutions/NN_*.py`` has a solution for ("03.1", ...)."""
    number = path.stem.split("_", 1)[0]
    try:
        text = solutions_file(f"{number}.1").read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return {f"{number}.{k}" for k in re.findall(r"^def exercise_(\d+)\(", text, re.MULTILINE)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_stored_solution_has_its_exercise_cells(path):
    """The harness finds exactly the exercises that have stored solutions (else it would try none)."""
    found = [e.key for e in find_exercises(nbformat.read(path, as_version=4))]
    assert len(found) == len(set(found)), f"an exercise key is used twice: {found}"
    assert set(found) == stored_keys(path), (
        "answer/check cells and solutions/ disagree (see tests/learner.py)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_learner_in_one_kernel(path):
    learner = Learner(path, learner_env())
    try:
        tried = learner.session()
    finally:
        folder = TIMINGS / stack_name()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{path.stem}.json").write_text(json.dumps(learner.log, indent=1))
    assert {e.key for e in tried} == stored_keys(path)


# --- the harness can fail: two small notebooks that break the convention's promises ---------------

CHECK = """
from peftlab import exercises
exercises.check("99.1", answer, expected=42, hint="h")
"""


def _tiny(tmp_path: Path, answer_cell: str, check: str = CHECK) -> Path:
    path = tmp_path / "99_tiny.ipynb"
    cells = [
        new_markdown_cell("# tiny"),
        new_code_cell("data, scratch = 41, object()"),
        new_code_cell(answer_cell),
    ]
    nbformat.write(new_notebook(cells=[*cells, new_code_cell(textwrap.dedent(check))]), path)
    return path


@pytest.fixture
def tiny_solutions(tmp_path):
    """A solutions folder for the tiny notebooks: exercise 99.1's solution is ``data + 1``."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    (folder / "99_tiny.py").write_text("def exercise_1(ns):\n    return ns['data'] + 1\n")
    return folder


def test_the_harness_passes_a_well_formed_exercise(tmp_path, tiny_solutions):
    path = _tiny(tmp_path, "answer = None  # your answer: a number")
    assert [e.key for e in Learner(path, learner_env(), tiny_solutions).session()] == ["99.1"]


def test_the_harness_passes_a_code_exercise(tmp_path, tiny_solutions):
    (tiny_solutions / "99_tiny.py").write_text("def exercise_1(ns):\n    return lambda: ns['data'] + 1\n")
    check = (
        'from peftlab import exercises\nexercises.check("99.1", add_one, test=lambda f: f() == 42, hint="h")'
    )
    path = _tiny(tmp_path, "def add_one():\n    return None  # your code", check)
    assert [e.key for e in Learner(path, learner_env(), tiny_solutions).session()] == ["99.1"]


def test_the_harness_fails_a_del_that_breaks_a_rerun(tmp_path, tiny_solutions):
    path = _tiny(
        tmp_path, "del scratch  # made by an earlier cell: a second run fails\nanswer = None  # your answer"
    )
    with pytest.raises(CellExecutionError, match="NameError"):
        Learner(path, learner_env(), tiny_solutions).session()


def test_the_harness_fails_a_check_that_accepts_anything(tmp_path, tiny_solutions):
    lenient = 'from peftlab import exercises\nexercises.check("99.1", answer, test=lambda a: True, hint="h")'
    path = _tiny(tmp_path, "answer = None  # your answer: a number", lenient)
    with pytest.raises(AssertionError, match="not judged 'not yet'"):
        Learner(path, learner_env(), tiny_solutions).session()


def test_the_harness_fails_a_check_that_rejects_a_listed_right_variant(tmp_path, tiny_solutions):
    (tiny_solutions / "99_tiny.py").write_text(
        "def exercise_1(ns):\n    return ns['data'] + 1\n\nVARIANTS = {1: ['42']}\nWRONG = {1: [41]}\n"
    )
    strict = (
        'from peftlab import exercises\nexercises.check("99.1", answer, test=lambda a: a == 42, hint="h")'
    )
    path = _tiny(tmp_path, "answer = None  # your answer: a number", strict)
    with pytest.raises(AssertionError, match="'42' is not judged 'correct'"):
        Learner(path, learner_env(), tiny_solutions).session()


def test_the_harness_fails_a_check_that_accepts_a_listed_wrong_answer(tmp_path, tiny_solutions):
    (tiny_solutions / "99_tiny.py").write_text(
        "def exercise_1(ns):\n    return ns['data'] + 1\n\nVARIANTS = {1: [42.0]}\nWRONG = {1: [43]}\n"
    )
    loose = 'from peftlab import exercises\nexercises.check("99.1", answer, test=lambda a: a in (42, 43), hint="h")'
    path = _tiny(tmp_path, "answer = None  # your answer: a number", loose)
    with pytest.raises(AssertionError, match="43 is not judged 'not yet'"):
        Learner(path, learner_env(), tiny_solutions).session()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_lists_wrong_answers_and_right_variants(path):
    """Each exercise names plausible wrong answers and other forms of the right one (tests/learner.py
    tries them all); an empty list of variants only where the right answer depends on the run, whose
    string forms the learner test makes itself."""
    keys = stored_keys(path)
    _, module = solutions_module(f"{path.stem[:2]}.1")
    for key in keys:
        k = int(key.split(".")[1])
        assert getattr(module, "WRONG", {}).get(k), f"{key}: no wrong answers listed in WRONG"
        assert k in getattr(module, "VARIANTS", {}), f"{key}: no right variants listed in VARIANTS"
