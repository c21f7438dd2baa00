"""Recordings (peftlab.recordings): made by running a block on the documented stack, compared there on
every run, shown elsewhere; the workshop switch's command; the boxes of library errors and detectors."""

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from peftlab import capture, recordings, registry, scorecard, versions
from peftlab.capture import ErrorBox, expect_failure
from peftlab.detectors import SilentLossError
from peftlab.recordings import CELL, Recorded, Recording
from peftlab.registry import REGISTRY, Expectation, Failure, UnexpectedOutcome

DOCUMENTED = versions.pinned_versions("documented")  # torch and bitsandbytes included
CURRENT = versions.pinned_versions("current")
#: Another torch than the documented pin (a Colab runtime after the switch): an earlier minor release, CUDA build.
_MAJOR, _MINOR = (int(x) for x in DOCUMENTED["torch"].split(".")[:2])
OTHER_TORCH = f"{_MAJOR}.{_MINOR - 1}.0+cu126"
#: The toy's boundary: a transformers major release after the documented pin's.
NEXT_MAJOR = str(int(DOCUMENTED["transformers"].split(".")[0]) + 1)
#: A transformers release just before the documented pin (a recording made on another release).
OLDER = DOCUMENTED["transformers"].rsplit(".", 1)[0] + ".0"


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A recorded toy failure: a TypeError before transformers 5, no error from 5 on; recordings in tmp_path."""
    failure = Failure(
        id="toy_recorded",
        notebook="00_toy",
        title="a toy failure",
        expectations=(
            Expectation(
                {"transformers": f"<{NEXT_MAJOR}"}, "TypeError", r"unexpected keyword argument 'x'", "old"
            ),
            Expectation({"transformers": f">={NEXT_MAJOR}"}, None, "", "fixed in the next major release"),
        ),
    )
    monkeypatch.setitem(registry.REGISTRY, failure.id, failure)
    monkeypatch.setitem(recordings.RECORDED, failure.id, Recorded(("clip_forward_kwargs",), "a test"))
    monkeypatch.setattr(recordings, "FOLDER", tmp_path / "stored")
    for name in (recordings.RECORD_ENV, capture.OBSERVE_ENV):
        monkeypatch.delenv(name, raising=False)
    scorecard.reset()
    yield failure
    scorecard.reset()


def call_with_x():
    def f():
        pass

    f(x=1)


def toy_block(versions=DOCUMENTED):
    """The toy failure's block (one place, so that its frames are the same at each run)."""
    with expect_failure("toy_recorded", versions) as seen:
        call_with_x()
    return seen


def record_toy(monkeypatch, tmp_path, keep=None):
    """Run the toy block in record mode on the documented stack, then copy the file where it is stored."""
    monkeypatch.setenv(recordings.RECORD_ENV, str(tmp_path / "new"))
    seen = toy_block()
    if keep is not None:
        seen.keep("numbers", keep)
    monkeypatch.delenv(recordings.RECORD_ENV)
    written = recordings.path("toy_recorded", tmp_path / "new")
    (tmp_path / "stored").mkdir(exist_ok=True)
    recordings.path("toy_recorded").write_text(written.read_text())
    return recordings.load("toy_recorded")


# --- normalising --------------------------------------------------------------------------------


def test_paths_are_normalised_to_what_every_machine_shares():
    site = f"{os.sep}opt{os.sep}py{os.sep}lib{os.sep}python3.11{os.sep}site-packages{os.sep}"
    assert (
        recordings.normal_file(f"{site}transformers{os.sep}modeling_utils.py")
        == "transformers/modeling_utils.py"
    )
    assert (
        recordings.normal_file("/usr/local/lib/python3.12/dist-packages/peft/peft_model.py")
        == "peft/peft_model.py"
    )
    assert recordings.normal_file("/tmp/ipykernel_4242/3141592653.py") == CELL
    assert recordings.normal_file(recordings.__file__) == "peftlab/recordings/__init__.py"
    stdlib = Path(sysconfig.get_paths()["stdlib"], "contextlib.py")
    assert recordings.normal_file(str(stdlib)) == "<python>/contextlib.py"
    assert recordings.normal_file("/somewhere/else.py") == "/somewhere/else.py"  # nothing else changes


def test_memory_addresses_and_only_they_are_folded():
    text = "<Linear object at 0x7f3a2b1c9d80> got 0x10 and 4096"
    assert recordings.normal_text(text) == "<Linear object at 0x...> got 0x10 and 4096"


def test_a_recording_holds_the_traceback_normalised():
    try:
        call_with_x()
    except TypeError as error:
        rec = Recording.of("toy", "00_toy", error, DOCUMENTED)
    assert rec.raised == "TypeError" and "unexpected keyword argument 'x'" in rec.message
    assert rec.frames[0].file == "tests/test_recordings.py" or rec.frames[0].file.endswith(
        "test_recordings.py"
    )
    assert rec.frames[-1].name == "call_with_x" and rec.frames[-1].code == "f(x=1)"
    assert rec.versions["transformers"] == DOCUMENTED["transformers"] and rec.versions["python"]
    assert Recording.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    assert rec.full().splitlines()[-1] == f"TypeError: {rec.message}"


def test_on_recording_stack_needs_every_pin_torch_included():
    assert recordings.on_recording_stack(DOCUMENTED)
    assert recordings.on_recording_stack({**DOCUMENTED, "torch": DOCUMENTED["torch"] + "+cpu"})
    assert not recordings.on_recording_stack(CURRENT)
    assert not recordings.on_recording_stack({**DOCUMENTED, "torch": OTHER_TORCH})  # Colab after the switch


def test_numbers_compare_to_a_relative_tolerance_and_zero_exactly():
    stored = {"a": 0.25, "b": None, "c": 0.0}
    assert recordings.same(stored, {"a": 0.25 * (1 + 1e-6), "b": None, "c": 0.0})
    assert not recordings.same(stored, {"a": 0.25 * 1.01, "b": None, "c": 0.0})
    assert not recordings.same(stored, {"a": 0.25, "b": 1e-9, "c": 0.0})  # no gradient -> a gradient
    assert not recordings.same(stored, {"a": 0.25, "b": None, "c": 1e-30})
    assert recordings.data_differences(stored, {"a": 0.3, "b": None}) == [
        "a: recorded 0.25, now 0.3",
        "c: recorded 0.0, now '(absent)'",
    ]


# --- recording, then comparing on the documented stack ------------------------------------------


def test_record_mode_writes_the_block_and_its_kept_data(toy, monkeypatch, tmp_path):
    rec = record_toy(monkeypatch, tmp_path, keep={"layer.0": None, "layer.1": 0.5})
    assert rec.failure == "toy_recorded" and rec.raised == "TypeError"
    assert rec.data == {"numbers": {"layer.0": None, "layer.1": 0.5}}
    assert rec.frames[-1].name == "f" or rec.frames[-1].name == "call_with_x"


def test_a_fresh_run_equal_to_the_recording_passes(toy, monkeypatch, tmp_path, capsys):
    record_toy(monkeypatch, tmp_path, keep={"layer.1": 0.5})
    seen = toy_block()
    assert seen.keep("numbers", {"layer.1": 0.5 * (1 + 1e-7)}) is None  # within REL_TOL: passes
    assert "differs" not in capsys.readouterr().out


def test_a_recording_that_differs_from_the_fresh_run_fails(toy, monkeypatch, tmp_path):
    record_toy(monkeypatch, tmp_path)
    stored = recordings.path("toy_recorded")
    edited = json.loads(stored.read_text())
    edited["message"] = edited["message"].replace("'x'", "'inputs_embeds'")  # a hand-edited transcript
    stored.write_text(json.dumps(edited))
    with pytest.raises(
        UnexpectedOutcome, match=r"differs from the stored recording[\s\S]*-TypeError.*'inputs_embeds'"
    ):
        toy_block()


def test_a_missing_or_stale_recording_fails_on_the_documented_stack(toy, monkeypatch, tmp_path):
    with pytest.raises(UnexpectedOutcome, match="no recording is stored"):
        with expect_failure("toy_recorded", DOCUMENTED):
            call_with_x()
    record_toy(monkeypatch, tmp_path)
    older = {**DOCUMENTED, "transformers": OLDER}  # recorded on another release than the pins
    stored = recordings.path("toy_recorded")
    stored.write_text(json.dumps({**json.loads(stored.read_text()), "versions": older}))
    with pytest.raises(UnexpectedOutcome, match=f"recorded on {OLDER}, running {DOCUMENTED['transformers']}"):
        toy_block()


def test_kept_data_that_differs_fails(toy, monkeypatch, tmp_path):
    record_toy(monkeypatch, tmp_path, keep={"layer.0": None, "layer.1": 0.5})
    seen = toy_block()
    with pytest.raises(UnexpectedOutcome, match=r"'numbers'.*differs[\s\S]*layer.0: recorded None, now 0.1"):
        seen.keep("numbers", {"layer.0": 0.1, "layer.1": 0.5})
    with pytest.raises(UnexpectedOutcome, match="'other' is not in the stored recording"):
        seen.keep("other", [1, 2])


def test_observe_mode_shows_a_difference_without_raising(toy, monkeypatch, tmp_path, capsys):
    record_toy(monkeypatch, tmp_path)
    stored = recordings.path("toy_recorded")
    stored.write_text(json.dumps({**json.loads(stored.read_text()), "message": "edited"}))
    monkeypatch.setenv(capture.OBSERVE_ENV, str(tmp_path / "observed.jsonl"))
    toy_block()
    assert "differs from the stored recording" in capsys.readouterr().out


def test_record_mode_refuses_another_stack(toy, monkeypatch, tmp_path):
    monkeypatch.setenv(recordings.RECORD_ENV, str(tmp_path / "new"))
    with pytest.raises(UnexpectedOutcome, match="recordings are made on the documented stack only"):
        with expect_failure("toy_recorded", CURRENT):
            pass


# --- showing it elsewhere -----------------------------------------------------------------------


def test_elsewhere_the_recording_is_shown_beside_what_happened(toy, monkeypatch, tmp_path, capsys):
    record_toy(monkeypatch, tmp_path, keep={"layer.0": None})
    capsys.readouterr()
    with expect_failure("toy_recorded", CURRENT) as seen:
        pass  # the installed versions raise nothing
    out = capsys.readouterr().out
    assert seen.recording_shown
    assert "No error on these versions" in out  # what happened here, first
    pins = f"transformers {DOCUMENTED['transformers']}, peft {DOCUMENTED['peft']}"
    assert f"Recorded on the documented stack ({pins}" in out
    assert "re-checked on every CI run" in out
    change = registry.CHANGES["clip_forward_kwargs"]
    assert f"Your versions: no error ({change.what}, from {change.phrase()})" in out
    assert "TypeError: call_with_x.<locals>.f() got an unexpected keyword argument 'x'" in out
    seen.keep("numbers", {"layer.0": 3.0})  # nothing compared here
    assert seen.recorded("numbers") == {"layer.0": None}
    with pytest.raises(KeyError, match="No 'other' is recorded"):
        seen.recorded("other")


def test_no_recording_is_shown_where_the_documented_failure_happens_live(toy, monkeypatch, tmp_path, capsys):
    record_toy(monkeypatch, tmp_path)
    colab_after_switch = {**DOCUMENTED, "torch": OTHER_TORCH}  # not compared: another torch
    with expect_failure("toy_recorded", colab_after_switch) as seen:
        call_with_x()
    assert not seen.recording_shown and "Recorded on" not in capsys.readouterr().out


def test_the_recording_box_renders_in_html_beside_the_live_box(toy, monkeypatch, tmp_path):
    record_toy(monkeypatch, tmp_path)
    seen = expect_failure("toy_recorded", CURRENT)
    live = ErrorBox("No error on these versions", "fixed", "no-error")
    page = capture.Boxes([live, seen._recording_box()])._repr_html_()
    assert 'class="peftlab-boxes"' in page and "display:flex" in page
    assert 'class="peftlab-box peftlab-recording-box expected recording"' in page
    assert "re-checked on every CI run" in page


# --- the stored recordings and the registry -------------------------------------------------------


def documented_outcome_differs(failure: Failure, stack: str) -> bool:
    return failure.expected(versions.pinned_versions(stack)) != failure.expected(DOCUMENTED)


def test_every_failure_a_colab_runtime_raises_otherwise_is_recorded_or_says_why_not():
    rooms = [s for s in versions.stack_names() if s.startswith("colab-")] + ["current"]
    differ = {f.id for f in REGISTRY.values() for s in rooms if documented_outcome_differs(f, s)}
    assert differ == set(recordings.RECORDED) | set(recordings.NOT_RECORDED), (
        "decide for each: record it (RECORDED) or say why not (NOT_RECORDED)"
    )
    assert not set(recordings.RECORDED) & set(recordings.NOT_RECORDED)


@pytest.mark.parametrize("failure_id", list(recordings.RECORDED))
def test_each_stored_recording_is_the_documented_failure_on_the_documented_pins(failure_id):
    rec = recordings.load(failure_id)
    assert rec is not None, f"run `peftlab record` on the documented stack: no {failure_id}.json"
    failure, expected = REGISTRY[failure_id], REGISTRY[failure_id].expected(DOCUMENTED)
    assert rec.failure == failure_id and rec.notebook == failure.notebook
    assert rec.raised == expected.raises and re.search(expected.match, rec.message)
    assert recordings.on_recording_stack(rec.versions), "recorded off the documented stack's pins"
    assert all(not os.path.isabs(f.file) or f.file == CELL for f in rec.frames), "a machine's path is left"
    for key in recordings.RECORDED[failure_id].changes:  # each named release bounds one of its ranges
        change = registry.CHANGES[key]
        specs = [e.when.get(change.library, "") for e in failure.expectations]
        assert any(change.release in spec for spec in specs), (key, specs)


def test_the_recordings_are_package_data():
    text = (Path(recordings.__file__).parents[2] / "pyproject.toml").read_text()
    assert '"recordings/*.json"' in text


# --- peftlab record -------------------------------------------------------------------------------


def test_record_command_plans_the_notebooks_of_the_recorded_failures_and_refuses_elsewhere(monkeypatch):
    from peftlab.tools import record

    plan = record.recorded_notebooks()
    assert plan["06_gradient_checkpointing"] == ["gc_enabled_after_peft_model", "gc_tower_without_gradient"]
    assert set(record.recorded_notebooks(["02"])) == {"02_blip2_inputs_embeds"}
    monkeypatch.setattr(recordings, "on_recording_stack", lambda versions=None: False)
    from peftlab.tools.cli import parser

    assert record.main(parser().parse_args(["record", "--only", "02"])) == 2


# --- boxes: a library's error and peftlab's detector ------------------------------------------------


@pytest.fixture
def detector_failure(monkeypatch):
    failure = Failure(
        "toy_detector",
        "00_toy",
        "a silent toy",
        (Expectation({}, "SilentLossError", "frozen", "the libraries say nothing"),),
    )
    monkeypatch.setitem(registry.REGISTRY, failure.id, failure)
    scorecard.reset()
    yield failure
    scorecard.reset()


def test_a_detector_box_says_first_that_peftlab_raised_it_and_what_it_reveals(detector_failure, capsys):
    with expect_failure("toy_detector", CURRENT):
        raise SilentLossError("the table stays frozen")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "peftlab's detector caught a silent failure: a silent toy"
    assert out[1].startswith("peftlab raised this SilentLossError, not PEFT or transformers")
    assert out[2] == f"It makes visible: {SilentLossError.reveals}."


def test_detector_and_library_boxes_differ_in_title_colour_and_class(detector_failure, toy):
    detector = capture.detector_box(detector_failure, SilentLossError("x"), "trace")
    library = ErrorBox("Expected failure reproduced: t", "trace")
    assert (
        detector.kind == "detector" and library.kind == "library" and detector.expected and library.expected
    )
    assert str(detector).split("\n")[0] != str(library).split("\n")[0]
    d, lib = detector._repr_html_(), library._repr_html_()
    assert "peftlab-detector-box" in d and "peftlab-error-box" not in d
    assert "peftlab-error-box expected library" in lib
    colour = lambda page: re.search(r"border-left:6px solid (#\w+)", page).group(1)  # noqa: E731
    assert colour(d) != colour(lib)
    assert not ErrorBox("x", "y", "unexpected").expected


def test_a_library_error_gets_the_library_box(toy, capsys):
    with expect_failure("toy_recorded", {**DOCUMENTED, "torch": OTHER_TORCH}):  # not the recording stack
        call_with_x()
    assert capsys.readouterr().out.startswith("Expected failure reproduced: a toy failure")


# --- the workshop switch --------------------------------------------------------------------------


def test_the_switch_installs_the_stack_files_library_pins_and_never_torch():
    requirements = versions.switch_requirements("documented")
    pins = versions.stack_pins("documented")
    assert requirements == [f"{lib}=={pins[lib]}" for lib in versions.SWITCH_LIBRARIES]
    assert f"transformers=={pins['transformers']}" in requirements and f"peft=={pins['peft']}" in requirements
    assert not any(r.startswith(("torch", "numpy", "bitsandbytes")) for r in requirements)
    command = versions.switch_command("documented", "/usr/bin/python3", Path("/tmp/keep.txt"))
    assert command[:4] == ["/usr/bin/python3", "-m", "pip", "install"] and command[-2:] == [
        "-c",
        "/tmp/keep.txt",
    ]
    assert command[4:-2] == requirements
    with pytest.raises(KeyError, match="Unknown stack"):
        versions.switch_requirements("colab-1999.01")


def test_switch_to_holds_torch_with_a_constraint_and_says_to_restart(capsys):
    seen = {}

    def fake_pip(command, **kwargs):
        seen["command"] = command
        seen["keep"] = Path(command[-1]).read_text()
        return subprocess.CompletedProcess(command, 0, "Successfully installed peft-0.15.2\n", "")

    versions.switch_to("documented", python=sys.executable, run=fake_pip)
    torch = versions.installed(("torch",))["torch"]
    assert seen["keep"] == f"torch=={torch}\n"
    assert seen["command"][4:-2] == versions.switch_requirements("documented")
    out = capsys.readouterr().out
    assert "Successfully installed peft-0.15.2" in out and f"keeping torch {torch}" in out

    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for x")

    with pytest.raises(RuntimeError, match=r"pip failed \(1\)[\s\S]*No matching distribution"):
        versions.switch_to("documented", run=failing_pip)


def test_a_figure_made_with_other_seeds_is_compared_by_its_zeros():
    """A kept figure drawn from SEED (06's gradient norms): with the recording's seeds its values are
    compared; with others only which entries are zero or missing, and a layer that gains or loses its
    gradient still differs."""
    from peftlab import recordings

    stored = {"vision.lora_B": None, "opt.lora_B": 0.306}
    other_seed = {"vision.lora_B": None, "opt.lora_B": 0.021}
    assert recordings.data_differences(stored, other_seed)  # the values differ...
    assert (
        recordings.data_differences(recordings.zeros(stored), recordings.zeros(other_seed)) == []
    )  # ...not the zeros
    learns = {"vision.lora_B": 0.004, "opt.lora_B": 0.021}
    assert recordings.data_differences(recordings.zeros(stored), recordings.zeros(learns))
