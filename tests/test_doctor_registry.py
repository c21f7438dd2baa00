"""The failures the doctor predicts and no notebook teaches (peftlab.registry.DOCTOR_FAILURES), run.

Each reproducer (tests/doctor_failures.py) runs on the installed stack: its outcome must be what the
registry records for these versions (exception class and message, or no error), and the doctor, asked
about the same setup beforehand, must name the failure's finding exactly where a failure is expected.
"""

from __future__ import annotations

import re

import pytest
from doctor_failures import REPRODUCERS, observe

from peftlab.registry import DOCTOR_FAILURES, Expectation, Failure
from peftlab.versions import describe


def judge(failure: Failure, error: BaseException | None, codes: list[str]) -> list[str]:
    """What disagrees with the registry (outcome) and with the doctor (verdict); [] when all agree."""
    expected: Expectation = failure.expected()
    problems = []
    if expected.raises is None and error is not None:
        problems.append(f"expected no error, got {type(error).__name__}: {error}")
    elif expected.raises is not None:
        if error is None:
            problems.append(f"expected {expected.describe()}, got no error")
        elif expected.raises not in {cls.__name__ for cls in type(error).__mro__}:
            problems.append(f"expected {expected.describe()}, got {type(error).__name__}: {error}")
        elif not re.search(expected.match, str(error)):
            problems.append(f"{type(error).__name__} message does not match /{expected.match}/: {error}")
    if (failure.finding in codes) != (expected.raises is not None):
        said = "names" if failure.finding in codes else "does not name"
        problems.append(
            f"the doctor {said} {failure.finding} where {expected.describe()} is recorded: {codes}"
        )
    return [f"{failure.id} on the {describe()}: {p}" for p in problems]


def test_every_doctor_failure_has_a_reproducer_and_a_finding_the_doctor_knows():
    from peftlab.doctor.findings import CLASSES

    assert set(REPRODUCERS) == set(DOCTOR_FAILURES)
    assert all(f.finding.split(".")[0] in CLASSES for f in DOCTOR_FAILURES.values())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("failure_id", list(DOCTOR_FAILURES))
def test_doctor_failure_happens_as_registered_and_is_predicted(failure_id: str) -> None:
    failure = DOCTOR_FAILURES[failure_id]
    error, codes = observe(failure_id)
    assert judge(failure, error, codes) == []


def test_the_judge_catches_a_wrong_outcome_a_wrong_message_and_a_wrong_verdict():
    failure = Failure("planted", "", "t", (Expectation({}, "ValueError", "expected text"),), finding="x.y")
    assert judge(failure, None, ["x.y"]) == [
        f"planted on the {describe()}: expected ValueError: /expected text/, got no error"
    ]
    assert "message does not match" in judge(failure, ValueError("other text"), ["x.y"])[0]
    assert "does not name x.y" in judge(failure, ValueError("expected text"), [])[0]
    silent = Failure("planted", "", "t", (Expectation({}, None),), finding="x.y")
    assert "expected no error" in judge(silent, KeyError("k"), [])[0]
    assert "names x.y" in judge(silent, None, ["x.y"])[0]
