"""The proofs behind a notebook: what the tests judge after it ran.

The notebook teaches, the tests prove. A notebook shows a learner at most eight checks
(:func:`peftlab.scorecard.prove` and friends) and records every other figure a proof needs
(:func:`peftlab.scorecard.record`). Its proofs file, ``tests/proofs/nbNN_<name>.py`` in the
repository, lists

* ``SHOWN``: the checks the notebook shows (claim and threshold), so that a threshold changed in
  the notebook without its derivation fails the tests, and
* ``PROOFS``: every other claim, each a recorded fact and the threshold it must meet,

each with the derivation of its threshold beside it (the seed sweep's spread and the margin).
``tests/test_proofs.py`` executes every notebook and judges both lists; ``peftlab sweep`` judges
the same lists on every run it makes.
"""

from __future__ import annotations

import importlib.util
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from peftlab.tools import ROOT

PROOFS_DIR = ROOT / "tests" / "proofs"

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Threshold:
    """A comparison with a number: ``at_least(0.25)`` is ``>= 0.25``."""

    symbol: str
    limit: float

    def __call__(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and _OPERATORS[self.symbol](value, self.limit)

    def __str__(self) -> str:
        return f"{self.symbol} {self.limit:g}"

    def as_pair(self) -> tuple[str, float]:
        """What the scorecard records for a shown check: ``(">=", 0.25)``."""
        return (self.symbol, self.limit)


def at_least(limit: float) -> Threshold:
    """``value >= limit``."""
    return Threshold(">=", limit)


def above(limit: float) -> Threshold:
    """``value > limit``."""
    return Threshold(">", limit)


def at_most(limit: float) -> Threshold:
    """``value <= limit``."""
    return Threshold("<=", limit)


def below(limit: float) -> Threshold:
    """``value < limit``."""
    return Threshold("<", limit)


def equals(limit: float) -> Threshold:
    """``value == limit`` (0 for "bit for bit")."""
    return Threshold("==", limit)


#: A judge for a fact that is not one number: given the fact, True when the claim holds.
Judge = Callable[[Any], bool]


@dataclass(frozen=True)
class Proof:
    """A claim the tests judge: the recorded ``fact`` meets ``threshold`` (a :class:`Threshold`, a
    :data:`Judge`, or None for a fact that must be True)."""

    claim: str
    fact: str
    threshold: Threshold | Judge | None = None
    learned: bool = False  # a figure training produces (seed-dependent): its threshold needs a sweep

    def judge(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The verdict on ``facts``: claim, passed (None when the fact is missing), the value, the rule."""
        rule = str(self.threshold) if isinstance(self.threshold, Threshold) else self.rule_text()
        verdict = {"claim": self.claim, "fact": self.fact, "rule": rule, "learned": self.learned}
        if isinstance(self.threshold, Threshold):
            verdict["threshold"] = self.threshold.as_pair()
        if self.fact not in facts:
            return verdict | {"passed": None, "value": None, "figure": f"{self.fact}: not recorded"}
        value = facts[self.fact]
        passed = value is True if self.threshold is None else bool(self.threshold(value))
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        shown = f"{value:.3g}" if number is not None else repr(value)[:80]
        return verdict | {"passed": passed, "value": number, "figure": f"{shown} (needs {rule})"}

    def rule_text(self) -> str:
        """A judge's first docstring line, or "is true"."""
        if self.threshold is None:
            return "is true"
        return (getattr(self.threshold, "__doc__", None) or "judged by a function").strip().splitlines()[0]


@dataclass(frozen=True)
class Shown:
    """A check the notebook shows: its claim and the threshold it compares with (None: a yes/no check)."""

    claim: str
    threshold: Threshold | None = None


def proofs_file(notebook: str) -> Path:
    """``tests/proofs/nb<notebook>.py`` of the checkout."""
    return PROOFS_DIR / f"nb{notebook}.py"


def load(notebook: str) -> ModuleType | None:
    """The proofs module of ``notebook`` (its ``SHOWN`` and ``PROOFS``), or None if it has none."""
    path = proofs_file(notebook)
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"peftlab_proofs_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown_differences(card: dict, shown: list[Shown]) -> list[str]:
    """How the checks a run showed differ from the proofs file's ``SHOWN`` (empty when they agree)."""
    ran = {c["claim"]: c for c in card["checks"]}
    listed = {s.claim: s for s in shown}
    problems = [f"shown but not listed in SHOWN: {c!r}" for c in ran if c not in listed]
    problems += [f"listed in SHOWN but not shown: {c!r}" for c in listed if c not in ran]
    for claim in ran.keys() & listed.keys():
        recorded = tuple(ran[claim]["threshold"]) if ran[claim].get("threshold") else None
        expected = listed[claim].threshold.as_pair() if listed[claim].threshold else None
        if recorded != expected:
            problems.append(f"{claim!r}: the notebook compares {recorded}, the proofs file says {expected}")
    return problems


def judge(card: dict, notebook: str) -> list[dict[str, Any]]:
    """Every proof of ``notebook`` judged on a run's card (empty when it has no proofs file)."""
    module = load(notebook)
    return [proof.judge(card.get("facts", {})) for proof in getattr(module, "PROOFS", [])]
