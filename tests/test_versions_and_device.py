from pathlib import Path

import pytest
import torch

from peftlab import device, versions

ROOT = Path(__file__).resolve().parents[1]


def test_stack_table_agrees_with_stack_files():
    for name, pins in versions.STACKS.items():
        lines = (ROOT / "stacks" / f"{name}.txt").read_text().splitlines()
        pinned = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
        for lib, version in pins.items():
            assert pinned[lib] == version, (name, lib)
        assert pinned["torch"] == "2.13.0"


def test_stack_name():
    assert (
        versions.stack_name({"transformers": "4.51.3", "peft": "0.15.2", "accelerate": "1.6.0"})
        == "documented"
    )
    assert (
        versions.stack_name({"transformers": "5.23.0", "peft": "0.21.2", "accelerate": "1.15.0"}) == "current"
    )
    assert versions.stack_name({"transformers": "4.57.0", "peft": "0.17.0", "accelerate": "1.6.0"}) == "other"
    assert versions.stack_name() in ("documented", "current", "other")


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
