import pytest
import torch
from packaging.version import Version

from peftlab import device, versions


def test_stack_files_are_the_one_source_of_pins():
    assert versions.stack_names()[:2] == versions.CI_STACKS
    for name in versions.stack_names():
        pins = versions.stack_pins(name)
        assert pins["torch"] == versions.stack_pins("current")["torch"], (
            name
        )  # one torch: the CPU wheel on disk
        assert all(pins.get(lib) for lib in versions.STACK_LIBRARIES), name
        assert versions.stack_name(versions.pinned_versions(name)) == name
        assert versions.stack_description(name)  # the header comment says what the stack is
    with pytest.raises(KeyError, match="Unknown stack 'nope'; known: documented, current"):
        versions.stack_pins("nope")


def test_stack_name_of_unpinned_versions_is_other():
    mixed = {**versions.pinned_versions("documented"), "peft": versions.stack_pins("current")["peft"]}
    assert versions.stack_name(mixed) == "other"  # no stack pins the documented transformers with that peft
    assert versions.stack_name() in (*versions.stack_names(), "other")


def test_newest_measured_is_the_highest_pin():
    highest = max(Version(versions.stack_pins(n)["transformers"]) for n in versions.stack_names())
    assert versions.newest_measured("transformers") == highest


def test_versions_table_lists_libraries():
    table = versions.versions_table()
    for lib in ("python", "torch", "transformers", "peft", "stack"):
        assert lib in table


def test_pick_device():
    assert device.pick_device("cpu") == torch.device("cpu")
    assert device.pick_device().type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="Unknown device"):
        device.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            device.pick_device("cuda")


def test_import_peftlab_has_no_side_effects(tmp_path):
    import subprocess
    import sys

    code = "import os, peftlab; print(sorted(os.listdir('.')))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
