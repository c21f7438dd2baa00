"""Exercises that check themselves, and their solutions, which CI executes.

An exercise in a notebook is a cell the learner edits (``answer = None  # your answer``) followed by a
cell that calls :func:`check`. The check never stops "Run all": it prints ``correct``, ``not yet,
hint: ...`` or ``not answered yet`` and returns True or False.

A *predict-first* exercise asks for a prediction before the experiment runs; the cell after the
experiment passes what really happened on the installed versions as ``expected=``, so the answer
is judged against this stack, not against a fixed string.

Solutions live in ``solutions/<notebook>.py`` at the repository's root (where an instructor finds
them), one function ``exercise_<n>(ns)`` per exercise, given the notebook's namespace. With
``PEFTLAB_SOLUTIONS=1`` in the environment (the test suite sets it), :func:`check`
ignores the learner's cell, takes the solution instead, and raises :class:`SolutionError` unless
the solution is judged correct: a solution that stops working turns CI red.

``tests/test_learner.py`` answers every exercise wrongly, then with its stored solution, re-running
the cells as a learner would; it finds an exercise by its cells. The convention it relies on (the
answer line ``NAME = None  # your ...``, a ``check("NN.k", ...)`` call, cells that can be re-run) is
written out in ``tests/learner.py``.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

SOLUTIONS_ENV = "PEFTLAB_SOLUTIONS"
SOLUTIONS_DIR = Path(__file__).resolve().parents[1] / "solutions"
_MISSING = object()
#: The last verdict of each exercise checked in this kernel: "correct", "not yet" or "not answered".
VERDICTS: dict[str, str] = {}


class SolutionError(AssertionError):
    """A stored solution is not judged correct (raised only in solutions mode)."""


def solutions_mode() -> bool:
    """True when ``$PEFTLAB_SOLUTIONS`` asks for the stored solutions to be checked (CI)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def solutions_file(key: str, folder: Path | None = None) -> Path:
    """The solutions file of exercise ``key`` ("03.1" -> ``solutions/03_*.py``)."""
    folder = folder or SOLUTIONS_DIR
    prefix = key.split(".")[0]
    found = sorted(folder.glob(f"{prefix}_*.py"))
    if not found:
        raise FileNotFoundError(
            f"No solutions for exercise {key}: {folder}/{prefix}_*.py is missing "
            "(solutions are in the peftlab repository's solutions/ folder)."
        )
    return found[0]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"peftlab_solutions_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution(key: str, ns: dict[str, Any], folder: Path | None = None) -> Any:
    """The stored solution of exercise ``key``, computed in the notebook's namespace ``ns``."""
    number = key.split(".")[1]
    module = _load(solutions_file(key, folder))
    function = getattr(module, f"exercise_{number}", None)
    if function is None:
        raise AttributeError(f"{solutions_file(key, folder).name} has no exercise_{number}(ns)")
    return function(ns)


def normalise(value: Any) -> Any:
    """An answer in a canonical form, so that its wording does not decide: case, spaces, quotes,
    hyphens and underscores, an ``nn.``/``torch.nn.`` prefix and thousands separators are ignored
    ("Q-Former" = "qformer", "nn.Identity" = "identity", "8,192" = 8192)."""
    if isinstance(value, str):
        text = value.strip().strip("`'\"").strip()
        number = text.replace(",", "").replace("_", "")
        try:
            return float(number) if "." in number or "e" in number.lower() else int(number)
        except ValueError:
            pass
        for prefix in ("torch.nn.", "nn."):
            text = text[len(prefix) :] if text.casefold().startswith(prefix) else text
        return "".join(c for c in text.casefold() if c not in " -_")
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def _same(answer: Any, expected: Any) -> bool:
    got, want = normalise(answer), normalise(expected)
    if isinstance(got, (int, float)) and isinstance(want, (int, float)) and not isinstance(got, bool):
        return got == want
    return got == want


def judge(
    answer: Any, *, expected: Any = _MISSING, test: Callable[[Any], bool] | None = None
) -> tuple[bool, str]:
    """(correct, why not): compare with ``expected`` and/or run ``test`` on the answer."""
    if expected is _MISSING and test is None:
        raise TypeError("check() needs expected=... or test=...")
    if expected is not _MISSING and not _same(answer, expected):
        return False, ""
    if test is not None:
        try:
            if not test(answer):
                return False, ""
        except Exception as exc:  # noqa: BLE001  (a learner's answer may raise anything)
            return (
                False,
                f"your answer raised {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            )
    return True, ""


def check(
    key: str,
    answer: Any,
    *,
    hint: str,
    expected: Any = _MISSING,
    test: Callable[[Any], bool] | None = None,
    explain: str = "",
    ns: dict[str, Any] | None = None,
) -> None:
    """Judge exercise ``key``'s ``answer``; print the verdict (``explain`` follows a correct one).

    ``expected`` is compared after :func:`normalise` (wording does not decide), ``test`` is called on
    the answer; give either or both. ``ns`` is the notebook's namespace for the stored solution
    (default: the caller's globals). The verdict ("correct", "not yet", "not answered") is kept in
    :data:`VERDICTS`; nothing is returned, so the cell shows no stray True/False. Raises only in
    solutions mode.
    """
    if solutions_mode():
        ns = ns if ns is not None else inspect.currentframe().f_back.f_globals
        answer = solution(key, ns)
        correct, why = judge(answer, expected=expected, test=test)
        if not correct:
            raise SolutionError(
                f"Exercise {key}: the stored solution {answer!r} is not judged correct. {why}"
            )
        print(f"Exercise {key}: correct (stored solution: {answer!r}). {explain}".rstrip())
        VERDICTS[key] = "correct"
        return
    if answer is None or answer is Ellipsis:
        print(f"Exercise {key}: not answered yet (edit the cell above, then run this one). Hint: {hint}")
        VERDICTS[key] = "not answered"
        return
    correct, why = judge(answer, expected=expected, test=test)
    if correct:
        print(f"Exercise {key}: correct. {explain}".rstrip())
    else:
        print(f"Exercise {key}: not yet. {why + '. ' if why else ''}Hint: {hint}")
    VERDICTS[key] = "correct" if correct else "not yet"
