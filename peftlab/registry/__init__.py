"""The failure registry: what each documented failure does on each range of library versions.

This package is data, and the one place where a version boundary is written. Its files:

* :mod:`~peftlab.registry.schema`: the record types (:class:`Change`, :class:`Expectation`,
  :class:`Failure`, :class:`Lesson`) and :class:`UnexpectedOutcome`;
* :mod:`~peftlab.registry.changes`: :data:`CHANGES`, the library releases that change how a failure
  looks (each with the releases it was run on, either side);
* one module per notebook, ``nbNN_<notebook>.py`` (``nb01_clip_task_type.py``), holding that
  notebook's ``LESSON`` and ``FAILURES``: each :class:`Failure` says, per range of versions, which
  exception (type and message pattern) must be raised, or that none is, why, and where it was run;
* :mod:`~peftlab.registry.doctor`: the failures that the doctor predicts and no notebook teaches
  (``notebook=""``), collected in :data:`DOCTOR_FAILURES`, apart from :data:`REGISTRY`.

This module collects the notebook modules itself (every ``nbNN_*`` module, in name order), so a new
notebook adds its own module and touches nothing here. The notebooks, the doctor,
``peftlab.targets``, the drift watch and the README's tables (``peftlab readme``) read
:data:`CHANGES`, :data:`LESSONS` and :data:`REGISTRY`; none of them re-types a version. Showing an
error and checking it against these entries is :mod:`peftlab.capture`'s job.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

from peftlab.registry import doctor
from peftlab.registry.changes import CHANGES, change
from peftlab.registry.schema import Change, Expectation, Failure, Lesson, UnexpectedOutcome

__all__ = [
    "CHANGES",
    "DOCTOR_FAILURES",
    "LESSONS",
    "REGISTRY",
    "Change",
    "Expectation",
    "Failure",
    "Lesson",
    "UnexpectedOutcome",
    "change",
    "for_notebook",
    "get",
    "notebook_modules",
]

#: The name of a notebook's registry module: ``nb`` and the notebook's file name.
NOTEBOOK_MODULE = re.compile(r"nb(\d\d_\w+)")


def notebook_modules() -> tuple[ModuleType, ...]:
    """Every ``nbNN_<notebook>`` module of this package, imported, in name (and so notebook) order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if NOTEBOOK_MODULE.fullmatch(m.name))
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


def collect(modules: tuple[ModuleType, ...]) -> tuple[dict[str, Lesson], dict[str, Failure]]:
    """The lessons and the failures of ``modules``, checked: one lesson per module, named after it,
    and every failure id once, under its module's notebook."""
    lessons: dict[str, Lesson] = {}
    failures: dict[str, Failure] = {}
    for module in modules:
        notebook = NOTEBOOK_MODULE.fullmatch(module.__name__.rsplit(".", 1)[-1]).group(1)
        if module.LESSON.notebook != notebook:
            raise ValueError(
                f"{module.__name__}: its LESSON is for {module.LESSON.notebook!r}, not {notebook!r}."
            )
        lessons[notebook] = module.LESSON
        for failure in module.FAILURES:
            if failure.notebook != notebook:
                raise ValueError(
                    f"{module.__name__}: failure {failure.id!r} names notebook {failure.notebook!r}."
                )
            if failure.id in failures:
                raise ValueError(f"Failure id {failure.id!r} is registered twice.")
            failures[failure.id] = failure
    return lessons, failures


#: The notebooks (in order) and every documented failure (in notebook order, then as each module lists them).
LESSONS, REGISTRY = collect(notebook_modules())


def collect_doctor(failures: tuple[Failure, ...]) -> dict[str, Failure]:
    """The doctor's failures by id, checked: no notebook, a finding code, an id used once (here or in
    :data:`REGISTRY`)."""
    found: dict[str, Failure] = {}
    for failure in failures:
        if failure.notebook or not failure.finding:
            raise ValueError(f"Doctor failure {failure.id!r} needs notebook='' and a finding code.")
        if failure.id in found or failure.id in REGISTRY:
            raise ValueError(f"Failure id {failure.id!r} is registered twice.")
        found[failure.id] = failure
    return found


#: The failures the doctor predicts and no notebook teaches (``peftlab/registry/doctor.py``), by id.
DOCTOR_FAILURES = collect_doctor(doctor.FAILURES)


def get(failure_id: str) -> Failure:
    """Look up a failure by id, with a helpful error for an unknown one."""
    try:
        return REGISTRY[failure_id]
    except KeyError:
        raise KeyError(f"Unknown failure {failure_id!r}; known: {sorted(REGISTRY)}") from None


def for_notebook(notebook: str) -> list[Failure]:
    """The failures taught in ``notebook`` (its file name without suffix), in registry order."""
    return [f for f in REGISTRY.values() if f.notebook == notebook]
