"""The scorecard: what a notebook showed a learner, and the facts it recorded for the tests.

The notebook teaches, the tests prove. A notebook shows a few headline checks (:func:`prove` and its
short forms; at most eight), each a real assertion a learner can read; every other figure a proof
needs is recorded silently with :func:`record` and judged after the run by the tests that execute
the notebook (``tests/proofs/``; ``peftlab sweep`` judges them the same way). ``expect_failure``
records each failure it showed. The last cell calls :func:`save`, which shows a short summary and,
when a runner executes the notebook (it names the notebook and the results folder in the kernel's
environment), writes everything as JSON. Nothing is written otherwise.
"""

from __future__ import annotations

import json
import math
import operator
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from peftlab.versions import installed, stack_name

#: The runner's name for the notebook it executes (the results file is ``<name>.json``).
NOTEBOOK_ENV = "PEFTLAB_NOTEBOOK"
#: The folder the runner reads results from.
RESULTS_ENV = "PEFTLAB_RESULTS_DIR"
#: The mode a runner asks for: ``real-size`` (published architectures, random weights) or unset.
MODE_ENV = "PEFTLAB_MODE"
REAL_SIZE = "real-size"
NOT_JUDGED = "not judged: random weights"
#: The most checks a notebook shows; the rest are facts for the tests.
MAX_SHOWN = 8

#: Comparisons a shown check can make, by the keyword that names its threshold.
COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "at_least": (">=", operator.ge),
    "above": (">", operator.gt),
    "at_most": ("<=", operator.le),
    "below": ("<", operator.lt),
    "equals": ("==", operator.eq),
}

_failures: list[dict] = []
_checks: list[dict] = []
_facts: dict[str, Any] = {}
_started: list[float] = []
_name: list[str] = []


def reset(notebook: str | None = None) -> None:
    """Forget what was recorded and start the clock, for ``notebook`` (``peftlab.start()`` calls this).

    A runner names the notebook in the kernel's environment too; the two must agree.
    """
    from peftlab.train import STEP_SECONDS

    given = os.environ.get(NOTEBOOK_ENV)
    if notebook and given and notebook != given:
        raise ValueError(f"This notebook calls itself {notebook!r}, but the runner executes {given!r}.")
    _name[:] = [notebook] if notebook else []
    _failures.clear()
    _checks.clear()
    _facts.clear()
    STEP_SECONDS.clear()
    _started[:] = [time.perf_counter()]


def random_weights() -> bool:
    """True when ``peftlab run --real-size`` runs this notebook on random weights."""
    return os.environ.get(MODE_ENV, "") == REAL_SIZE


def record_failure(failure_id: str, reproduced: bool, outcome: str) -> None:
    """Called by ``expect_failure``: the failure happened (or, as recorded, did not)."""
    _failures[:] = [f for f in _failures if f["id"] != failure_id]  # a re-run cell replaces its entry
    _failures.append({"id": failure_id, "reproduced": reproduced, "outcome": outcome})


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it: tensors and NumPy scalars become numbers or lists."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def record(name: str, value: Any) -> None:
    """Keep ``value`` under ``name`` for the tests that judge this notebook (nothing is shown)."""
    _facts[name] = _plain(value)


def check(
    claim: str,
    passed: bool,
    figure: str,
    value: float | None = None,
    needs_pretrained: bool = False,
    threshold: tuple[str, float] | None = None,
) -> None:
    """Show a check: assert ``passed`` and print ``claim`` with the ``figure`` that proves it.

    ``value`` is the number a threshold judges (``peftlab sweep`` reports its spread), ``threshold``
    the comparison and the number it was judged against. ``needs_pretrained`` marks a claim only
    pre-trained weights can make true: under ``peftlab run --real-size`` it is "not judged".
    """
    entry = {
        "claim": claim,
        "figure": figure,
        "value": _plain(value),
        "threshold": threshold,
        "learned": needs_pretrained,
    }
    _checks[:] = [c for c in _checks if c["claim"] != claim]  # a re-run cell replaces its entry
    if needs_pretrained and random_weights():
        _checks.append(entry | {"passed": None, "figure": f"{figure} ({NOT_JUDGED})"})
        print(f"NOT JUDGED  {claim}: {figure} ({NOT_JUDGED})")
        return
    _checks.append(entry | {"passed": bool(passed)})
    print(f"{'PASS' if passed else 'FAIL'}  {claim}: {figure}")
    if not passed:
        _write(card() | {"stopped": claim})  # a failed run's figures count in peftlab sweep's spread
        raise AssertionError(f"{claim}: {figure}")


def prove(
    claim: str, value: float, figure: str = "", needs_pretrained: bool = False, **threshold: float
) -> None:
    """Show that ``value`` meets one threshold, named by keyword: ``at_least``, ``above``, ``at_most``,
    ``below`` or ``equals`` (``prove("the loss falls", last / first, below=0.25)``)."""
    if len(threshold) != 1 or next(iter(threshold)) not in COMPARISONS:
        raise TypeError(
            f"prove() takes one threshold keyword of {sorted(COMPARISONS)}, got {sorted(threshold)}"
        )
    [(keyword, limit)] = threshold.items()
    symbol, compare = COMPARISONS[keyword]
    figure = figure or f"{value:.3g}"
    figure = f"{figure} (needs {symbol} {limit:g})"
    check(claim, compare(value, limit), figure, value, needs_pretrained, (symbol, limit))


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference between two tensors (infinity when their shapes differ)."""
    if a.shape != b.shape:
        return math.inf
    return (a.detach().float().cpu() - b.detach().float().cpu()).abs().max().item() if a.numel() else 0.0


def check_same(claim: str, a: torch.Tensor, b: torch.Tensor, atol: float = 0.0) -> None:
    """Show that two tensors agree to ``atol`` (0 means bit for bit)."""
    diff = max_difference(a, b)
    check(
        claim, diff <= atol, f"max |difference| = {diff:.3g} (allowed {atol:g})", diff, threshold=("<=", atol)
    )


def headroom_closed(before: float, after: float) -> float:
    """The share of the gap to 1 (100%) that a fraction metric closed going from ``before`` to ``after``."""
    if before >= 1:
        return 1.0 if after >= 1 else after - before
    return (after - before) / (1 - before)


def check_headroom(
    claim: str, before: float, after: float, min_share: float, needs_pretrained: bool = True
) -> None:
    """Show that an accuracy closed at least ``min_share`` of its gap to 100%.

    A gain relative to the headroom holds wherever the base starts: +10 points is a lot from 85%
    and little from 20%. It needs pre-trained weights: not judged under ``--real-size``.
    """
    share = headroom_closed(before, after)
    figure = f"{before:.0%} -> {after:.0%}: closes {share:.0%} of the gap to 100% (needs {min_share:.0%})"
    check(claim, share >= min_share, figure, share, needs_pretrained, (">=", min_share))


def check_gain(
    claim: str, before: float, after: float, min_gain: float, unit: str = "%", needs_pretrained: bool = True
) -> None:
    """Show that a metric rose by at least ``min_gain`` (fractions shown as percentages)."""
    if unit == "%":
        figure = f"{before:.0%} -> {after:.0%} (needs +{min_gain:.0%})"
    else:
        figure = f"{before:.4g} -> {after:.4g} (needs +{min_gain:.4g})"
    check(claim, after - before >= min_gain, figure, after - before, needs_pretrained, (">=", min_gain))


def check_flagged(setup: str, diagnosis: Any, failure_class: str, seen: BaseException | None = None) -> None:
    """Show that the doctor flagged a failing ``setup`` with a problem of ``failure_class`` (and, given the
    error ``seen`` when it ran, predicted its exception class)."""
    found = [f for f in diagnosis.problems if f.failure_class == failure_class]
    names = {c.__name__ for c in type(seen).__mro__} if seen is not None else set()
    predicted = [f for f in found if f.raises in names] if seen is not None else found
    figure = ", ".join(
        f"{f.code} ({f.severity}{', predicts ' + f.raises if f.raises else ''})" for f in found
    )
    if seen is not None:
        figure += f"; it raised {type(seen).__name__}"
    check(f"the doctor flags {setup} before it runs", bool(predicted), figure or "nothing flagged")


def check_clear(setup: str, diagnosis: Any) -> None:
    """Show that the doctor finds no problem with a fixed ``setup`` (advisories allowed, and named)."""
    advisories = [f.code for f in diagnosis.findings if f.severity == "advisory"]
    figure = ", ".join(f.code for f in diagnosis.problems) or "no problems"
    figure += f" (advisories: {', '.join(advisories)})" if advisories else ""
    check(f"the doctor has no problem with {setup}", diagnosis.ok, figure)


def peak_rss_mb() -> float:
    """The peak resident memory of this process (the notebook's kernel) so far, in MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def resources() -> dict:
    """Peak RSS and the median seconds per optimiser step of :func:`peftlab.train.train` so far."""
    import statistics

    from peftlab.train import STEP_SECONDS

    per_step = statistics.median(STEP_SECONDS) if STEP_SECONDS else None
    return {
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds_per_step": per_step,
        "steps_timed": len(STEP_SECONDS),
        "random_weights": random_weights(),
    }


def notebook_name() -> str | None:
    """The notebook's name, as the runner gave it to this kernel or the notebook to ``start()``."""
    return os.environ.get(NOTEBOOK_ENV) or (_name[0] if _name else None)


def card() -> dict:
    """Everything recorded so far, as a plain dictionary."""
    return {
        "notebook": notebook_name(),
        "stack": stack_name(),
        "versions": installed(),
        "failures": list(_failures),
        "checks": list(_checks),
        "facts": dict(_facts),
        "seconds": time.perf_counter() - _started[0] if _started else None,
        **resources(),
    }


def summary(scores: dict) -> str:
    """The scorecard in a few lines: a header, the failures in one line, each shown check, the facts."""
    head = f"{scores['notebook'] or 'this notebook'} on the {scores['stack']} stack"
    head += f", {scores['seconds']:.0f} s" if scores.get("seconds") is not None else ""
    lines = [head]
    if scores["failures"]:
        lines.append("failures  " + "; ".join(f"{f['id']}: {f['outcome']}" for f in scores["failures"]))
    mark = {True: "PASS", False: "FAIL", None: "-"}
    lines += [f"{mark[c['passed']]:<8}  {c['claim']}" for c in scores["checks"]]
    if scores["facts"]:
        lines.append(f"facts     {len(scores['facts'])} more figures recorded for the tests (tests/proofs/)")
    return "\n".join(lines)


def save() -> None:
    """Show the scorecard; write it to ``$PEFTLAB_RESULTS_DIR/<notebook>.json`` when a runner set both.

    Fails when the notebook showed no check: a notebook proves its fix in front of the learner.
    """
    scores = card()
    if not scores["checks"]:
        raise AssertionError(f"{scores['notebook'] or 'This notebook'} showed no check: prove the fix.")
    print(summary(scores))
    _write(scores)


def _write(scores: dict) -> None:
    """Write ``scores`` to ``$PEFTLAB_RESULTS_DIR/<notebook>.json`` when the runner named both."""
    folder, name = os.environ.get(RESULTS_ENV), notebook_name()
    if folder and name:
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, f"{name}.json").write_text(json.dumps(scores, indent=2))
