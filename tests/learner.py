"""A learner in one kernel: Run All, every exercise answered wrongly then rightly, Run All, restart.

Used by ``tests/test_learner.py``. One kernel (nbclient's, kept between runs) does what a workshop
participant does in Jupyter, and nothing may raise:

1. Run All.
2. For every exercise: a wrong answer in its answer cell, then the answer cell and every cell after
   it up to and including its check cell re-run *as they stand*: the check must say "not yet". Then
   the stored solution (``solutions/NN_*.py``, ``exercise_k(ns)`` evaluated in the kernel's
   namespace) in the answer cell, and the same cells again: the check must say "correct".
3. Run All again, in the same kernel.
4. Restart the kernel, Run All.

**The exercise convention** (what lesson authors keep, whatever else changes):

* The *answer cell* is the code cell that holds a line ``NAME = None  # your ...`` (``answer``,
  ``answer_2``, ...; the comment starts ``# your``: ``# your answer: a number``, ``# your
  prediction: ...``). The harness edits only the ``None`` of that line.
* The *check cell* is the first code cell from the answer cell on whose source calls ``check`` with
  the exercise's key as its first argument, a string ``"NN.k"`` (``exercises.check("03.1", ...)``,
  ``peftlab.exercises.check(\\n    "03.1", ...)``): NN the notebook's number, k the exercise's. Any
  cells in between (an experiment to run after predicting) belong to the exercise.
* The check cell's output says ``Exercise NN.k: not yet`` or ``Exercise NN.k: correct`` (what
  :func:`peftlab.exercises.check` prints; plain text or HTML).
* Every cell from the answer cell to the check cell can be re-run any number of times, after Run
  All: no ``del`` of a name that the cell does not create itself, no state that only a first run has.
* ``solutions/NN_*.py`` has ``exercise_k(ns)`` for every exercise, and may give a learner's typical
  mistake as ``WRONG_ANSWERS = {k: value}``; without it the wrong answer is :data:`GENERIC_WRONG`,
  a value of a kind no exercise asks for (an instance of a class made for the purpose, equal to
  nothing): every check must call it "not yet" without raising.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.util import run_sync

ROOT = Path(__file__).resolve().parents[1]
ANSWER_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*) = None(?P<rest>\s*# your\b.*)$", re.MULTILINE)
CHECK_CALL = re.compile(r"\bcheck\(\s*[\"'](?P<key>\d+\.\d+)[\"']")
#: The wrong answer when the solutions file gives none: its own kind, equal to nothing.
GENERIC_WRONG = 'type("WrongAnswer", (), {"__repr__": lambda self: "WrongAnswer()"})()'
CELL_TIMEOUT = 600  # seconds: nbmake's is 300; this kernel does several runs on a busy CPU


@dataclass
class Exercise:
    """One exercise as the cells show it: key, the answer's variable and the cells it spans."""

    key: str
    name: str  # the variable the answer cell sets
    first: int  # index of the answer cell
    last: int  # index of the check cell


def find_exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The notebook's exercises by the convention of this module's docstring, in cell order."""
    found, cells = [], nb.cells
    for i, cell in enumerate(cells):
        marker = ANSWER_LINE.search(cell.source) if cell.cell_type == "code" else None
        if not marker:
            continue
        for j in range(i, len(cells)):
            call = CHECK_CALL.search(cells[j].source) if cells[j].cell_type == "code" else None
            if call:
                found.append(Exercise(call.group("key"), marker.group("name"), i, j))
                break
        else:
            raise AssertionError(f"the answer cell {i} ({marker.group(0)!r}) has no check cell after it")
    return found


def wrong_answer(key: str, solutions: Path | None = None) -> str:
    """Python source of a wrong answer: the solutions file's ``WRONG_ANSWERS[k]``, else GENERIC_WRONG."""
    from peftlab.exercises import solutions_file

    path = solutions_file(key, solutions)
    spec = importlib.util.spec_from_file_location(f"_learner_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    given = getattr(module, "WRONG_ANSWERS", {})
    number = int(key.split(".")[1])
    return repr(given[number]) if number in given else GENERIC_WRONG


def solution_source(key: str, solutions: Path | None = None) -> str:
    """Python source that computes the stored solution of ``key`` in the kernel's namespace."""
    folder = f", __import__('pathlib').Path({str(solutions)!r})" if solutions else ""
    return f'__import__("peftlab.exercises").exercises.solution("{key}", globals(){folder})'


def output_text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell's outputs say, as text (streams, plain text and HTML)."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", "")]
    return "\n".join(parts)


@dataclass
class Learner:
    """A notebook and one kernel that keeps its state between the steps; ``log`` holds what happened."""

    path: Path
    env: dict[str, str]
    solutions: Path | None = None  # the solutions folder (default: the repository's solutions/)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nb = nbformat.read(self.path, as_version=4)
        self.client = NotebookClient(
            self.nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": str(self.path.parent)}},
        )

    def _timed(self, what: str, step: Callable[[], None]) -> None:
        start = time.perf_counter()
        step()
        self.log.append(f"{what}: {time.perf_counter() - start:.1f} s")

    def run_cells(self, indices: range | list[int]) -> None:
        """Execute the code cells ``indices`` in order; any error raises CellExecutionError."""
        for i in indices:
            if self.nb.cells[i].cell_type == "code":
                self.client.execute_cell(self.nb.cells[i], i)

    def run_all(self) -> None:
        """Run All."""
        self.run_cells(range(len(self.nb.cells)))

    def answer(self, exercise: Exercise, value: str) -> str:
        """Set the answer line to ``value`` (source), run the exercise's cells, return the check's text."""
        cell = self.nb.cells[exercise.first]
        original = cell.source
        cell.source = ANSWER_LINE.sub(
            lambda m: f"{m['name']} = {value}{m['rest']}" if m["name"] == exercise.name else m[0], original, 1
        )
        try:
            self.run_cells(range(exercise.first, exercise.last + 1))
        finally:
            cell.source = original
        return output_text(self.nb.cells[exercise.last])

    def try_exercise(self, exercise: Exercise) -> None:
        """Wrong answer -> "not yet", stored solution -> "correct", re-running the cells as they stand."""
        verdict = f"Exercise {exercise.key}: "
        said = self.answer(exercise, wrong_answer(exercise.key, self.solutions))
        assert verdict + "not yet" in said, f"{exercise.key}: a wrong answer is not judged 'not yet':\n{said}"
        said = self.answer(exercise, solution_source(exercise.key, self.solutions))
        assert verdict + "correct" in said, f"{exercise.key}: the stored solution is not 'correct':\n{said}"

    def restart(self) -> None:
        """Restart the kernel (same manager and client, a fresh process), as Jupyter's Restart does."""
        run_sync(self.client.km.restart_kernel)(now=True)
        run_sync(self.client.kc.wait_for_ready)(timeout=120)

    def session(self) -> list[Exercise]:
        """The whole learner's session; returns the exercises it tried."""
        exercises = find_exercises(self.nb)
        with self.client.setup_kernel(env=self.env):
            self._timed("run all", self.run_all)
            for exercise in exercises:
                self._timed(f"exercise {exercise.key}", lambda e=exercise: self.try_exercise(e))
            self._timed("run all again", self.run_all)
            self._timed("restart", self.restart)
            self._timed("run all after restart", self.run_all)
        return exercises


def learner_env() -> dict[str, str]:
    """The kernel's environment: a learner's (no solutions mode), this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PEFTLAB_SOLUTIONS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env
