import re

import pytest

from peftlab import capture, registry, scorecard
from peftlab.capture import expect_failure
from peftlab.registry import Expectation, Failure, UnexpectedOutcome
from peftlab.versions import CI_STACKS, newest_measured, pinned_versions, stack_pins

#: The two CI stacks' transformers and peft, read from their pin files.
DOCUMENTED = {lib: stack_pins("documented")[lib] for lib in ("transformers", "peft")}
CURRENT = {lib: stack_pins("current")[lib] for lib in ("transformers", "peft")}
#: The toy failure changes at the current stack's transformers release.
FIXED_IN = CURRENT["transformers"]


@pytest.fixture
def toy_failure():
    failure = Failure(
        id="toy",
        notebook="00_toy",
        title="a toy failure",
        expectations=(
            Expectation(
                {"transformers": f"<{FIXED_IN}"}, "TypeError", r"unexpected keyword argument 'x'", "old"
            ),
            Expectation({"transformers": f">={FIXED_IN}"}, None, "", "fixed in the current release"),
        ),
    )
    registry.REGISTRY["toy"] = failure
    scorecard.reset()
    yield failure
    del registry.REGISTRY["toy"]
    scorecard.reset()


def raise_type_error():
    def f():
        pass

    f(x=1)


def test_expectation_by_version(toy_failure):
    assert toy_failure.expected(DOCUMENTED).raises == "TypeError"
    assert toy_failure.expected(CURRENT).raises is None


def test_expected_error_is_shown_and_swallowed(toy_failure, capsys):
    with expect_failure("toy", DOCUMENTED) as seen:
        raise_type_error()
    assert isinstance(seen.error, TypeError)
    assert "unexpected keyword argument 'x'" in capsys.readouterr().out
    assert scorecard.card()["failures"] == [{"id": "toy", "reproduced": True, "outcome": "TypeError"}]


def test_missing_failure_is_caught(toy_failure):
    with pytest.raises(UnexpectedOutcome, match="ran without any error.*did not reproduce"):
        with expect_failure("toy", DOCUMENTED):
            pass


def test_wrong_error_type_is_caught(toy_failure):
    with pytest.raises(UnexpectedOutcome, match="expected TypeError.*got ValueError"):
        with expect_failure("toy", DOCUMENTED):
            raise ValueError("nope")


def test_wrong_message_is_caught(toy_failure):
    with pytest.raises(UnexpectedOutcome, match="does not match"), expect_failure("toy", DOCUMENTED):
        raise TypeError("something else entirely")


def test_documented_non_failure(toy_failure, capsys):
    with expect_failure("toy", CURRENT):
        pass
    assert "fixed in the current release" in capsys.readouterr().out
    with pytest.raises(UnexpectedOutcome, match="expected no error"), expect_failure("toy", CURRENT):
        raise_type_error()


def test_unexpected_outcome_is_an_assertion_error_naming_versions(toy_failure):
    named = re.escape(f"transformers {DOCUMENTED['transformers']}")
    with pytest.raises(AssertionError, match=named), expect_failure("toy", DOCUMENTED):
        pass


def test_unknown_failure_and_unknown_versions(toy_failure):
    with pytest.raises(KeyError, match="Unknown failure"):
        expect_failure("nope")
    narrow = Failure(
        "n", "00", "t", (Expectation({"transformers": f"=={DOCUMENTED['transformers']}"}, None),)
    )
    with pytest.raises(UnexpectedOutcome, match="No expectation is recorded"):
        narrow.expected(CURRENT)


def test_trim_message_collapses_module_reprs():
    message = "CLIPEncoder(\n  (layers): ModuleList(\n    (0): Layer()\n  )\n) got multiple values for 'x'"
    assert capture.trim_message(message) == "CLIPEncoder(...) got multiple values for 'x'"
    long = "\n".join(f"size mismatch {i}" for i in range(50))
    trimmed = capture.trim_message(long, max_lines=5)
    assert trimmed.count("\n") == 5 and "45 more lines" in trimmed


def test_every_registered_failure_covers_both_stacks():
    for failure in registry.REGISTRY.values():
        for stack in CI_STACKS:
            failure.expected(pinned_versions(stack))


#: A transformers release newer than every pinned stack (the next major one), with the current peft.
FUTURE = {"transformers": f"{newest_measured('transformers').major + 1}.0.0", "peft": CURRENT["peft"]}


@pytest.fixture
def learner_env(monkeypatch):
    """A learner's machine: neither CI nor PEFTLAB_STRICT set."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(capture.STRICT_ENV, raising=False)
    monkeypatch.delenv(capture.OBSERVE_ENV, raising=False)


def test_unmeasured_names_libraries_past_every_stack():
    assert capture.unmeasured(CURRENT) == []
    assert capture.unmeasured(DOCUMENTED) == []
    assert capture.unmeasured(FUTURE)[0].startswith(
        f"transformers {FUTURE['transformers']} (newest measured: "
    )


def test_change_on_unmeasured_versions_is_shown_and_the_notebook_goes_on(toy_failure, learner_env, capsys):
    with expect_failure("toy", FUTURE) as seen:  # recorded: no error from FIXED_IN on; it raises here
        raise_type_error()
    assert isinstance(seen.error, TypeError)
    out = capsys.readouterr().out
    assert (
        "changed after the notebook was last verified" in out
        and f"transformers {FUTURE['transformers']}" in out
    )
    assert "Recorded for toy: no error" in out
    assert scorecard.card()["failures"][0]["outcome"] == "changed after verification: TypeError"


def test_change_stays_an_error_in_ci_and_on_measured_versions(toy_failure, learner_env, monkeypatch):
    with pytest.raises(UnexpectedOutcome, match="ran without any error"):
        with expect_failure("toy", DOCUMENTED):  # a measured release: always strict
            pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(UnexpectedOutcome, match="expected no error"):
        with expect_failure("toy", FUTURE):
            raise_type_error()
    monkeypatch.delenv("CI")
    monkeypatch.setenv(capture.STRICT_ENV, "1")
    with pytest.raises(UnexpectedOutcome):
        with expect_failure("toy", FUTURE):
            raise_type_error()


def test_trimmed_error_says_what_was_trimmed_and_full_gives_it_all(toy_failure, capsys):
    def deep(n):
        if n == 0:
            raise TypeError("Wrapper(\n  (inner): Linear(in=1)\n) got an unexpected keyword argument 'x'")
        deep(n - 1)

    with expect_failure("toy", DOCUMENTED) as seen:
        deep(5)
    shown = capsys.readouterr().out
    assert "Wrapper(...) got an unexpected keyword argument 'x'" in shown
    assert "[trimmed for reading: " in shown and "earlier frames" in shown and "folded" in shown
    full = seen.full()
    assert full.startswith("Traceback (most recent call last):") and "(inner): Linear(in=1)" in full
    assert full.count("in deep") > shown.count("in deep")  # the frames the box hid
