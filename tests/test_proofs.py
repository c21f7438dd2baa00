"""Every notebook, executed, and judged on what it showed and what it recorded.

Each notebook runs once per test session (:func:`peftlab.tools.execute.execute`, the stored
solutions of its exercises checked: ``PEFTLAB_SOLUTIONS=1``). It must run to its end, show every
failure the registry says it teaches and pass the checks it shows; its proofs file
(``tests/proofs/nbNN_<name>.py``, see :mod:`peftlab.tools.proofs`) must list exactly those checks,
and every proof in it must hold on the facts the run recorded.

``PEFTLAB_RESULTS_FROM=<folder>`` judges the scorecards already in a folder (of ``peftlab run`` or
one run of ``peftlab sweep``) instead of executing the notebooks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from peftlab.scorecard import MAX_SHOWN
from peftlab.tools import proofs
from peftlab.tools.execute import Execution, execute
from peftlab.tools.runner import failures_missing

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
_RUNS: dict[str, Execution] = {}


def run_of(name: str) -> Execution:
    """The notebook's execution in this session (made on first use), or its stored scorecard."""
    if name not in _RUNS:
        stored = os.environ.get("PEFTLAB_RESULTS_FROM")
        if stored:
            card_path = Path(stored, f"{name}.json")
            card = json.loads(card_path.read_text()) if card_path.exists() else None
            _RUNS[name] = Execution(NOTEBOOKS / f"{name}.ipynb", None, 0.0, "", card)
        else:
            _RUNS[name] = execute(NOTEBOOKS / f"{name}.ipynb", env={"PEFTLAB_SOLUTIONS": "1"})
    return _RUNS[name]


def card_of(name: str) -> dict:
    run = run_of(name)
    assert not run.error, f"{name} stopped: {run.error}"
    assert run.card is not None, f"{name} saved no scorecard"
    return run.card


@pytest.mark.parametrize("name", NAMES)
def test_runs_shows_its_failures_and_passes_its_checks(name):
    card = card_of(name)
    assert not failures_missing(name, card), f"failures not shown: {failures_missing(name, card)}"
    assert card["checks"] and all(c["passed"] for c in card["checks"]), card["checks"]


@pytest.mark.parametrize("name", NAMES)
def test_shows_at_most_eight_checks_as_its_proofs_file_lists_them(name):
    module = proofs.load(name)
    if module is None:
        pytest.skip(f"{name} has no proofs file yet")  # the lesson work adds one per notebook
    card = card_of(name)
    assert len(card["checks"]) <= MAX_SHOWN, [c["claim"] for c in card["checks"]]
    assert proofs.shown_differences(card, module.SHOWN) == []


def _all_proofs() -> list:
    return [
        pytest.param(name, p, id=f"{name}:{p.fact}")
        for name in NAMES
        for p in getattr(proofs.load(name), "PROOFS", [])
    ]


@pytest.mark.parametrize(("name", "proof"), _all_proofs())
def test_proof(name, proof):
    verdict = proof.judge(card_of(name).get("facts", {}))
    assert verdict["passed"] is not None, f"{name} recorded no fact {proof.fact!r}"
    assert verdict["passed"], (
        f"{proof.claim}: {proof.fact} = {card_of(name)['facts'][proof.fact]!r}, needs {verdict['rule']}"
    )
