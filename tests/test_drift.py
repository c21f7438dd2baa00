"""``peftlab drift``: observe mode of expect_failure, the verdicts, the recording snippet, one toy run."""

import json
import re
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from packaging.version import Version

from peftlab import registry, scorecard
from peftlab.capture import OBSERVE_ENV, STRICT_ENV, expect_failure
from peftlab.registry import Expectation, Failure, UnexpectedOutcome
from peftlab.tools import drift
from peftlab.tools.cli import main
from peftlab.versions import stack_pins

#: The current stack's pins (the drift watch's reference), read from its pin file.
REFERENCE = {lib: stack_pins("current")[lib] for lib in ("torch", "transformers", "peft", "accelerate")}
SAME = dict(REFERENCE)
_T = Version(REFERENCE["transformers"])
#: The transformers release after the current stack's: past every pin, where nothing is recorded.
NEXT = f"{_T.major}.{_T.minor + 1}.0"
NEWER = {**REFERENCE, "transformers": NEXT}
#: The documented stack's transformers: a release of an earlier major version.
OLDER = stack_pins("documented")["transformers"]
#: The toy's boundary: the current stack's major release.
MAJOR = f"{_T.major}"


@pytest.fixture
def toy():
    """A failure that raises a TypeError from the current major release up to the current stack's
    transformers, none before, and nothing is recorded after."""
    failure = Failure(
        id="toy_drift",
        notebook="01_toy",
        title="a toy failure",
        expectations=(
            Expectation({"transformers": f"<{MAJOR}"}, None, "", "nothing before"),
            Expectation(
                {"transformers": f">={MAJOR},<{NEXT}"}, "TypeError", r"multiple values for 'x'", "now"
            ),
        ),
    )
    registry.REGISTRY[failure.id] = failure
    scorecard.reset()
    yield failure
    del registry.REGISTRY[failure.id]
    scorecard.reset()


def seen(versions, error=None):
    """An observe-mode record, as expect_failure writes it."""
    return {
        "id": "toy_drift",
        "notebook": "01_toy",
        "versions": versions,
        "raised": type(error).__name__ if error else None,
        "types": [c.__name__ for c in type(error).__mro__] if error else [],
        "message": str(error) if error else "",
        "expected": None,
    }


def verdict(toy, versions, error=None):
    return drift.classify(toy, seen(versions, error), REFERENCE, "current")


# --- the verdicts -----------------------------------------------------------------------------


def test_as_documented(toy):
    row = verdict(toy, SAME, TypeError("f() got multiple values for 'x'"))
    assert (row.kind, row.verdict, row.expected) == ("as documented", "as documented", "TypeError")
    assert verdict(toy, {**SAME, "transformers": OLDER}).kind == "as documented"  # no error, as recorded


def test_subclass_of_the_expected_type_is_as_documented(toy):
    class Sub(TypeError):
        pass

    assert verdict(toy, SAME, Sub("multiple values for 'x'")).kind == "as documented"


def test_changed_message_and_changed_type(toy):
    row = verdict(toy, SAME, TypeError("f() got an unexpected keyword argument 'x'"))
    assert row.kind == "changed"
    assert row.verdict == "changed (new message: TypeError: f() got an unexpected keyword argument 'x')"
    assert verdict(toy, SAME, ValueError("multiple values for 'x'")).kind == "changed"


def test_no_longer_fails_names_the_release(toy):
    row = verdict(toy, NEWER)
    assert row.kind == "no longer fails"
    assert (
        row.verdict
        == f"no longer fails (since transformers {NEXT}; current stack: {REFERENCE['transformers']})"
    )
    assert row.expected == "TypeError*"  # nothing recorded for NEXT: the current stack's expectation
    assert "another dependency changed" in verdict(toy, SAME).verdict
    local = verdict(toy, {**NEWER, "torch": REFERENCE["torch"] + "+cpu"})  # a local label: the same release
    assert local.verdict == row.verdict


def test_new_failure_where_none_was_expected(toy):
    row = verdict(toy, {**SAME, "transformers": OLDER}, RuntimeError("boom\nsecond line"))
    assert (row.kind, row.verdict) == ("new failure", "new failure: RuntimeError: boom")


def test_notebook_that_stops(toy):
    rows = drift.classify_run({"01_toy": "RuntimeError: boom"}, {}, SAME, REFERENCE)
    assert [(r.failure, r.kind) for r in rows] == [
        ("toy_drift", "new failure"),
        (drift.NOTEBOOK_ROW, "new failure"),
    ]
    assert "not reached (the notebook stopped earlier: RuntimeError: boom)" in rows[0].verdict
    assert rows[1].verdict == "new failure: RuntimeError: boom"
    text = drift.render(rows, SAME, "current")
    assert "| toy_drift" in text and "0 as documented, 0 changed, 0 no longer fails, 2 new failure." in text


def test_reference_is_the_highest_pinned_stack():
    assert drift.reference_stack() == "current"
    pins = drift.pinned_versions("current")
    assert pins["torch"] == REFERENCE["torch"] and pins["transformers"] == REFERENCE["transformers"]
    assert drift.torch_pin() == f"=={REFERENCE['torch']}"


# --- observe mode ------------------------------------------------------------------------------


def test_observe_mode_records_and_does_not_raise(toy, tmp_path, monkeypatch, capsys):
    path = tmp_path / "observations.jsonl"
    monkeypatch.setenv(OBSERVE_ENV, str(path))
    outcomes = []

    def shown() -> None:  # a re-run block replaces its entry: the scorecard keeps the latest outcome
        [entry] = [f for f in scorecard.card()["failures"] if f["id"] == "toy_drift"]
        outcomes.append(entry["outcome"])

    with expect_failure("toy_drift", SAME) as block:
        raise TypeError("a brand new message")  # differs from the registry: shown, swallowed
    assert isinstance(block.error, TypeError)
    shown()
    with expect_failure("toy_drift", SAME):
        pass  # the failure did not reproduce: recorded, not raised
    shown()
    with expect_failure("toy_drift", NEWER) as block:  # nothing recorded for NEXT: still no raise
        raise ValueError("x")
    assert block.expectation.raises is None and "No expectation is recorded" in block.expectation.reason
    shown()
    with expect_failure("toy_drift", SAME):
        raise TypeError("f() got multiple values for 'x'")  # as documented
    shown()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["raised"] for r in records] == ["TypeError", None, "ValueError", "TypeError"]
    assert records[0]["message"] == "a brand new message" and "Exception" in records[0]["types"]
    assert [r["expected"] for r in records] == [
        "TypeError: /multiple values for 'x'/",
        "TypeError: /multiple values for 'x'/",
        None,
        "TypeError: /multiple values for 'x'/",
    ]
    assert records[0]["versions"] == SAME and records[0]["notebook"] == "01_toy"
    assert "Observe mode" in capsys.readouterr().out
    assert outcomes == ["drift: TypeError", "drift: no error", "drift: ValueError", "TypeError"]


def test_without_observe_mode_nothing_changes(toy, monkeypatch):
    monkeypatch.delenv(OBSERVE_ENV, raising=False)
    with pytest.raises(UnexpectedOutcome, match="does not match"), expect_failure("toy_drift", SAME):
        raise TypeError("a brand new message")
    monkeypatch.setenv(STRICT_ENV, "1")  # as in CI: unmeasured versions are no excuse
    with pytest.raises(UnexpectedOutcome, match="No expectation is recorded"):
        expect_failure("toy_drift", NEWER)


def test_observe_mode_lets_keyboard_interrupt_through(toy, tmp_path, monkeypatch):
    monkeypatch.setenv(OBSERVE_ENV, str(tmp_path / "o.jsonl"))
    with pytest.raises(KeyboardInterrupt), expect_failure("toy_drift", SAME):
        raise KeyboardInterrupt


# --- recording a confirmed observation ---------------------------------------------------------


def test_snippet_is_an_expectation_for_the_observed_versions(toy):
    error = TypeError("f() got an unexpected keyword argument 'x' (see \"docs\") [1+1]")
    snippet = drift.expectation_snippet(toy, seen(NEWER, error), REFERENCE, "current")
    code = "\n".join(line for line in snippet.splitlines() if not line.startswith("#"))
    expectation = eval(code.strip().rstrip(","), {"Expectation": Expectation})
    assert expectation.when == {"transformers": f">={NEXT}"} and expectation.raises == "TypeError"
    assert expectation.applies(NEWER) and not expectation.applies(SAME)
    assert re.search(expectation.match, str(error)) and expectation.reason.startswith("TODO")
    assert expectation.measured == (f"transformers {NEXT}",)
    no_error = drift.expectation_snippet(toy, seen(NEWER), REFERENCE, "current")
    assert "raises=None," in no_error and "match=" not in no_error


def test_message_pattern_matches_through_module_reprs():
    message = "CLIPEncoder(\n  (layers): ModuleList(\n    (0): L()\n  )\n) got multiple values for 'x' (1.5)"
    pattern = drift.message_pattern(message)
    assert pattern == r"CLIPEncoder\([\s\S]*?\) got multiple values for 'x' \(1\.5\)"
    assert re.search(pattern, message)
    assert drift.message_pattern("plain [message]\nsecond") == r"plain \[message\]"


def test_nothing_recorded_anywhere(toy):
    failure = Failure("f", "01_toy", "t", (Expectation({"transformers": f"<{MAJOR}"}, None),))
    row = drift.classify(failure, {**seen(NEWER, KeyError("k")), "id": "f"}, REFERENCE)
    assert (row.expected, row.kind) == ("nothing recorded", "new failure")


def test_snippet_says_which_expectation_to_end():
    failure = Failure("f", "01_toy", "t", (Expectation({"transformers": f">={MAJOR}"}, "TypeError", "a"),))
    snippet = drift.expectation_snippet(failure, seen(NEWER), REFERENCE, "current")
    assert f'when={{"transformers": ">={MAJOR}"}} -> when={{"transformers": ">={MAJOR},<{NEXT}"}}' in snippet


def test_record_command(toy, tmp_path, capsys):
    (tmp_path / "observations.jsonl").write_text(json.dumps(seen(NEWER)) + "\n")
    assert main(["drift", "--record", "toy_drift", "--build", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"no longer fails (since transformers {NEXT}" in out and f'when={{"transformers": ">={NEXT}"}}' in out
    )
    assert main(["drift", "--record", "toy_drift", "--build", str(tmp_path / "none")]) == 2


def test_venv_mode_builds_the_newest_stack_then_runs_in_it(monkeypatch, tmp_path):
    calls = []

    def build_venv(venv, torch):
        calls.append((venv, torch))
        return venv / "bin" / "python"

    monkeypatch.setattr(drift, "build_venv", build_venv)
    monkeypatch.setattr(
        drift.subprocess, "run", lambda command: calls.append(command) or SimpleNamespace(returncode=0)
    )
    assert main(["drift", "--venv", str(tmp_path / "v"), "--only", "01"]) == 0
    held = f"torch=={REFERENCE['torch']}"
    assert calls[0] == (tmp_path / "v", held.removeprefix("torch"))  # held at the pin of stacks/current.txt
    command = calls[1]
    assert command[:4] == [str(tmp_path / "v" / "bin" / "python"), "-m", "peftlab", "drift"]
    assert command[command.index("--only") + 1] == "01" and held in command[command.index("--held") + 1]
    assert main(["drift", "--venv", str(tmp_path / "v"), "--torch", ""]) == 0
    assert calls[2] == (tmp_path / "v", "") and "--held" not in calls[3]
    assert f"held back: {held}" in drift.render([], SAME, "current", held=held)


# --- one run, end to end (one small notebook in a real kernel) ---------------------------------

TOY_NOTEBOOK = """
from peftlab import registry
from peftlab.capture import expect_failure
from peftlab.registry import Expectation, Failure
registry.REGISTRY["toy_drift"] = Failure("toy_drift", "01_toy", "t", (Expectation({}, "TypeError", "old message"),))
with expect_failure("toy_drift"):
    raise TypeError("new message")
print("the notebook goes on")
raise RuntimeError("boom")
"""


def test_drift_run_end_to_end(tmp_path, monkeypatch, capsys):
    registry.REGISTRY["toy_drift"] = Failure(
        "toy_drift", "01_toy", "t", (Expectation({}, "TypeError", "old"),)
    )
    registry.REGISTRY["toy_later"] = Failure("toy_later", "01_toy", "t", (Expectation({}, None),))
    try:
        notebooks = tmp_path / "notebooks"
        notebooks.mkdir()
        nb = new_notebook(cells=[new_code_cell(TOY_NOTEBOOK)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, notebooks / "01_toy.ipynb")
        monkeypatch.chdir(tmp_path)
        assert main(["drift"]) == 0  # drift, and a notebook that stops, still exit 0
    finally:
        del registry.REGISTRY["toy_drift"], registry.REGISTRY["toy_later"]
    table = (tmp_path / "build" / "drift" / "drift.md").read_text()
    assert "changed (new message: TypeError: new message)" in table
    assert "new failure: not reached (the notebook stopped earlier: RuntimeError: boom)" in table
    assert "| (notebook) | 01_toy" in table and "new failure: RuntimeError: boom" in table
    assert table in capsys.readouterr().out
    rows = json.loads((tmp_path / "build" / "drift" / "drift.json").read_text())["rows"]
    assert [r["kind"] for r in rows] == ["changed", "new failure", "new failure"]
