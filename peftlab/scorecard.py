"""The scorecard: what a notebook proved (failures reproduced, fixes verified), for ``peftlab run``.

A notebook calls :func:`check` (and its two short forms) for every claim its fix makes; each one
is a real assertion. ``expect_failure`` records each reproduced failure here. The last cell calls
:func:`save`, which names the notebook from the failures it recorded (the registry knows where each
is taught, so the name cannot be mistyped; a notebook with no failure is the registry's primer), shows the scorecard as a table and, when ``peftlab run`` executes the notebook (it sets
``PEFTLAB_RESULTS_DIR``), writes it as JSON for the summary table. Nothing is written otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from peftlab.versions import installed, stack_name

if TYPE_CHECKING:
    from peftlab.doctor import Diagnosis

_failures: list[dict] = []
_checks: list[dict] = []


def reset() -> None:
    """Forget what was recorded (a notebook calls this in its first cells)."""
    from peftlab.train import STEP_SECONDS

    _failures.clear()
    _checks.clear()
    STEP_SECONDS.clear()


#: Set by ``peftlab run --real-size``: the checkpoints hold published architectures with random weights.
RANDOM_WEIGHTS_ENV = "PEFTLAB_RANDOM_WEIGHTS"
NOT_JUDGED = "not judged: random weights"


def random_weights() -> bool:
    """True when ``peftlab run --real-size`` runs this notebook on random weights."""
    return os.environ.get(RANDOM_WEIGHTS_ENV, "") not in ("", "0")


def record_failure(failure_id: str, reproduced: bool, outcome: str) -> None:
    """Called by ``expect_failure``: the failure happened (or, as recorded, did not)."""
    _failures.append({"id": failure_id, "reproduced": reproduced, "outcome": outcome})


def check(
    claim: str,
    passed: bool,
    figure: str,
    headline: bool = False,
    value: float | None = None,
    needs_pretrained: bool = False,
) -> None:
    """Assert ``passed``; record ``claim`` and the ``figure`` that proves (or disproves) it.

    ``headline`` marks the figure that ``peftlab run`` quotes in its summary (by default the first
    :func:`check_gain`, else the first check); ``value``, the number the threshold judges, lets
    ``peftlab sweep`` report its spread over seeds. ``needs_pretrained`` marks a claim that only
    pre-trained weights can make true (an accuracy gain, a loss that falls within a few steps):
    under ``peftlab run --real-size`` (random weights) it is recorded as "not judged: random
    weights" (``passed`` is None, never counted as passed) and does not stop the notebook.
    Everywhere else it is judged as usual.
    """
    if needs_pretrained and random_weights():
        _checks.append(
            {
                "claim": claim,
                "passed": None,
                "figure": f"{figure} ({NOT_JUDGED})",
                "headline": headline,
                "value": value,
                "judged": False,
            }
        )
        print(f"NOT JUDGED  {claim}: {figure} ({NOT_JUDGED})")
        return
    _checks.append(
        {"claim": claim, "passed": bool(passed), "figure": figure, "headline": headline, "value": value}
    )
    print(f"{'PASS' if passed else 'FAIL'}  {claim}: {figure}")
    if not passed:
        _write(card() | {"stopped": claim})  # a failed run's figures count in peftlab sweep's spread
        raise AssertionError(f"{claim}: {figure}")


def check_gain(
    claim: str, before: float, after: float, min_gain: float, unit: str = "%", needs_pretrained: bool = True
) -> None:
    """Check that a metric rose by at least ``min_gain`` (fractions shown as percentages).

    A gain needs pre-trained weights: not judged under ``--real-size`` (see :func:`check`)."""
    if unit == "%":
        figure = f"{before:.0%} -> {after:.0%} (needs +{min_gain:.0%})"
    else:
        figure = f"{before:.4g} -> {after:.4g} (needs +{min_gain:.4g})"
    check(
        claim,
        after - before >= min_gain,
        figure,
        headline=not any(c["headline"] for c in _checks),
        value=after - before,
        needs_pretrained=needs_pretrained,
    )


def headroom_closed(before: float, after: float) -> float:
    """The share of the gap to 1 (100%) that a fraction metric closed going from ``before`` to ``after``."""
    if before >= 1:
        return 1.0 if after >= 1 else after - before
    return (after - before) / (1 - before)


def check_headroom(
    claim: str, before: float, after: float, min_share: float, needs_pretrained: bool = True
) -> None:
    """Check that an accuracy closed at least ``min_share`` of its gap to 100%.

    A gain relative to the headroom holds wherever the base starts: +10 points is a lot from 85%
    and little from 20%. It needs pre-trained weights: not judged under ``--real-size``.
    """
    share = headroom_closed(before, after)
    figure = f"{before:.0%} -> {after:.0%}: closes {share:.0%} of the gap to 100% (needs {min_share:.0%})"
    check(
        claim,
        share >= min_share,
        figure,
        headline=not any(c["headline"] for c in _checks),
        value=share,
        needs_pretrained=needs_pretrained,
    )


def check_same(claim: str, a: torch.Tensor, b: torch.Tensor, atol: float = 0.0) -> None:
    """Check that two tensors agree to ``atol`` (0 means bit-for-bit equal)."""
    diff = (a.detach().float().cpu() - b.detach().float().cpu()).abs().max().item() if a.numel() else 0.0
    same = a.shape == b.shape and diff <= atol
    check(claim, same, f"max |difference| = {diff:.3g} (allowed {atol:g})", value=diff)


def check_flagged(
    setup: str, diagnosis: Diagnosis, failure_class: str, seen: BaseException | None = None
) -> None:
    """Check that the doctor flagged a failing ``setup`` (notebooks 01-05, "the doctor would have told you").

    Passes when ``diagnosis`` has a problem (not an advisory) of ``failure_class``; given the error
    ``seen`` when the setup ran, one of those findings must also have predicted its exception class.
    """
    found = [f for f in diagnosis.problems if f.failure_class == failure_class]
    names = {c.__name__ for c in type(seen).__mro__} if seen is not None else set()
    predicted = [f for f in found if f.raises in names] if seen is not None else found
    figure = ", ".join(
        f"{f.code} ({f.severity}{', predicts ' + f.raises if f.raises else ''})" for f in found
    )
    if seen is not None:
        figure += f"; it raised {type(seen).__name__}"
    check(f"the doctor flags {setup} before it runs", bool(predicted), figure or "nothing flagged")


def check_clear(setup: str, diagnosis: Diagnosis) -> None:
    """Check that the doctor finds no problem with a fixed ``setup`` (advisories allowed, and named)."""
    advisories = [f.code for f in diagnosis.findings if f.severity == "advisory"]
    figure = ", ".join(f.code for f in diagnosis.problems) or "no problems"
    check(
        f"the doctor has no problem with {setup}",
        diagnosis.ok,
        figure + (f" (advisories: {', '.join(advisories)})" if advisories else ""),
    )


def notebook_of_failures(failures: list[dict]) -> str | None:
    """The notebook that teaches every registered failure in ``failures``; None if none is registered."""
    from peftlab.registry import REGISTRY

    names = {REGISTRY[f["id"]].notebook for f in failures if f["id"] in REGISTRY}
    if len(names) > 1:
        raise AssertionError(f"The failures recorded belong to several notebooks: {sorted(names)}")
    return names.pop() if names else None


def primer_notebook() -> str | None:
    """The lesson that is a primer (it shows no failure), named by the registry; None if there is none.

    A notebook that recorded no failure is that primer: its name comes from ``registry.LESSONS``,
    never typed in the notebook. ``peftlab run`` then finds its scorecard only under the primer's
    own name, so another notebook that lost its failures still falls short ("no scorecard").
    """
    from peftlab.registry import LESSONS

    primers = [lesson.notebook for lesson in LESSONS.values() if lesson.primer]
    if len(primers) > 1:
        raise AssertionError(
            f"Several lessons are primers {primers}: a scorecard without failures is ambiguous."
        )
    return primers[0] if primers else None


def is_primer(notebook: str) -> bool:
    """True when the registry's lesson ``notebook`` is a primer (it shows no failure)."""
    from peftlab.registry import LESSONS

    return notebook in LESSONS and LESSONS[notebook].primer


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


def card(notebook: str | None = None, seconds: float | None = None) -> dict:
    """The notebook's results as a plain dictionary (``notebook`` derived from its failures if not given;
    without failures, the registry's primer)."""
    derived = notebook_of_failures(_failures)
    if notebook and derived and notebook != derived:
        raise AssertionError(f"This scorecard is {notebook!r}, but its failures are taught in {derived!r}.")
    name = notebook or derived or (None if _failures else primer_notebook()) or "unnamed"
    return {
        "notebook": name,
        "primer": is_primer(name),
        "stack": stack_name(),
        "versions": installed(),
        "failures": list(_failures),
        "checks": list(_checks),
        "seconds": seconds,
        **resources(),
    }


def as_table(scores: dict) -> str:
    """The scorecard as a compact text table: one line per failure and per check."""
    rows = [("failure", f["id"], f["outcome"]) for f in scores["failures"]]
    rows += [
        ({True: "PASS", False: "FAIL", None: "-"}[c["passed"]], c["claim"], c["figure"])
        for c in scores["checks"]
    ]
    width = max(len(r[1]) for r in rows) if rows else 0
    head = f"{scores['notebook']} on the {scores['stack']} stack"
    head += f", {scores['seconds']:.0f} s" if scores.get("seconds") is not None else ""
    return "\n".join([head] + [f"{kind:<7}  {what:<{width}}  {figure}" for kind, what, figure in rows])


def save(notebook: str | None = None, seconds: float | None = None) -> dict:
    """Show the scorecard; write it to ``$PEFTLAB_RESULTS_DIR/<notebook>.json`` when that is set.

    Fails when the notebook recorded no check, or no failure (unless it is the registry's primer,
    which shows none): a notebook must prove something.
    """
    scores = card(notebook, seconds)
    if not scores["checks"] or not (scores["failures"] or scores["primer"]):
        raise AssertionError(
            f"{scores['notebook']} recorded {len(_failures)} failures and {len(_checks)} checks; "
            "a notebook must show its failure and prove its fix (a primer: prove its claims)."
        )
    print(as_table(scores))
    _write(scores)
    return scores


def _write(scores: dict) -> None:
    """Write ``scores`` to ``$PEFTLAB_RESULTS_DIR/<notebook>.json`` when ``peftlab run``/``sweep`` set it."""
    target = os.environ.get("PEFTLAB_RESULTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        Path(target, f"{scores['notebook']}.json").write_text(json.dumps(scores, indent=2))
