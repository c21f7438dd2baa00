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
  prediction: ...``). The harness edits only the ``None`` of that line. A code exercise's answer
  cell may instead define the function to write, its body ``return None  # your code``
  (``def accepts(model_class, keyword):``): the harness replaces that definition by ``NAME = value``.
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
* It also has ``VARIANTS = {k: [...]}`` (right answers in other forms: case, spaces, prefixes,
  separators, another correct implementation) and ``WRONG = {k: [...]}`` (plausible wrong answers),
  at least one of each per exercise, answers being values or, for a code exercise, functions of the
  solutions file. :meth:`Learner.try_exercise` gives every one of them in the same kernel, through
  the cells as they stand, and the check must say "not yet" to each wrong one and "correct" to each
  right one; a string solution is also tried in upper case with spaces around it.
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
DEF_ANSWER = re.compile(
    r"^def (?P<name>[A-Za-z_]\w*)\(.*\):.*\n\s+return None(?P<rest>\s*# your\b.*)$", re.MULTILINE
)
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
        source = cell.source if cell.cell_type == "code" else ""
        marker = ANSWER_LINE.search(source) or DEF_ANSWER.search(source)
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
    _, module = solutions_module(key, solutions)
    given = getattr(module, "WRONG_ANSWERS", {})
    number = int(key.split(".")[1])
    return repr(given[number]) if number in given else GENERIC_WRONG


def solutions_module(key: str, solutions: Path | None = None) -> tuple[Path, object]:
    """The solutions file of exercise ``key`` and the module it defines (imported afresh)."""
    from peftlab.exercises import solutions_file

    path = solutions_file(key, solutions)
    spec = importlib.util.spec_from_file_location(f"_learner_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def answer_source(value: object, path: Path) -> str:
    """Python source of one answer: ``repr`` of a value; a function of the solutions file ``path``
    (a code exercise's answer) is loaded from that file in the kernel."""
    if callable(value):
        return f"__import__('runpy').run_path({str(path)!r})[{value.__name__!r}]"
    return repr(value)


def listed_answers(key: str, solutions: Path | None = None) -> tuple[list[str], list[str]]:
    """The solutions file's ``VARIANTS[k]`` (right) and ``WRONG[k]`` (wrong) answers, as sources."""
    path, module = solutions_module(key, solutions)
    number = int(key.split(".")[1])
    rights = getattr(module, "VARIANTS", {}).get(number, [])
    wrongs = getattr(module, "WRONG", {}).get(number, [])
    return [answer_source(v, path) for v in rights], [answer_source(v, path) for v in wrongs]


def solution_forms(key: str, solutions: Path | None = None) -> list[str]:
    """The stored solution in other wordings, as sources, when it is a string: upper case, and with
    spaces around it (the check must not mind either)."""
    source = solution_source(key, solutions)
    return [f"str({source}).upper()", f"'  ' + str({source}) + ' '"]


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
        for pattern in (ANSWER_LINE, DEF_ANSWER):
            cell.source = pattern.sub(
                lambda m: f"{m['name']} = {value}{m['rest']}" if m["name"] == exercise.name else m[0],
                original,
                1,
            )
            if cell.source != original:
                break
        try:
            self.run_cells(range(exercise.first, exercise.last + 1))
        finally:
            cell.source = original
        return output_text(self.nb.cells[exercise.last])

    def try_exercise(self, exercise: Exercise) -> None:
        """Wrong answers -> "not yet", right ones -> "correct", re-running the cells as they stand: the
        typical mistake, the stored solution, then every listed wrong answer and right variant (each
        wrong one followed by a right one), ending on the stored solution."""
        key, solutions = exercise.key, self.solutions
        rights, wrongs = listed_answers(key, solutions)
        if self.is_string_solution(exercise):
            rights += solution_forms(key, solutions)
        steps = [(wrong_answer(key, solutions), "not yet"), (solution_source(key, solutions), "correct")]
        for i in range(max(len(rights), len(wrongs))):
            steps += [(wrongs[i], "not yet")] if i < len(wrongs) else []
            steps += [(rights[i], "correct")] if i < len(rights) else []
        steps.append((solution_source(key, solutions), "correct"))
        for source, expected in steps:
            said = self.answer(exercise, source)
            assert f"Exercise {key}: {expected}" in said, (
                f"{key}: {source} is not judged {expected!r}:\n{said}"
            )
        self.log.append(f"exercise {key}: {len(steps)} answers judged")

    def is_string_solution(self, exercise: Exercise) -> bool:
        """Whether the stored solution, computed in the kernel, is a string (a scratch cell, removed)."""
        probe = nbformat.v4.new_code_cell(
            f"print(isinstance({solution_source(exercise.key, self.solutions)}, str))"
        )
        self.nb.cells.append(probe)
        try:
            self.client.execute_cell(probe, len(self.nb.cells) - 1)
        finally:
            self.nb.cells.pop()
        return output_text(probe).strip() == "True"

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
