"""Reading, comparing and summarising checkpoints for any model (peftlab.checkpoints).

The size-mismatch formats are the original Chinese-CLIP report's lines (torch's names) and those of
transformers 4 and 5; the comparisons run on a tiny DeiT (tests/families.py), a model the notebooks
never use.
"""

from __future__ import annotations

import re

import pytest
import torch
from families import deit

from peftlab import checkpoints as cp

# The original report's lines (the original code's names), and the formats of transformers 4 and 5.
SEED_ERROR = "\n".join(
    f"size mismatch for module.visual.transformer.resblocks.{i}.{name}: copying a param with shape "
    f"torch.Size([{ckpt}]) from checkpoint, the shape in current model is torch.Size([{model}])."
    for i in range(12)
    for name, ckpt, model in [
        ("mlp.c_proj.bias", "1024", "768"),
        ("ln_2.weight", "1024", "768"),
        ("attn.in_proj_weight", "3072, 1024", "2304, 768"),
    ]
)
TRANSFORMERS_4_WARNING = (
    "- vision_model.encoder.layers.0.mlp.fc1.weight: found shape torch.Size([256, 64]) in the checkpoint "
    "and torch.Size([192, 48]) in the model instantiated\n"
    "- visual_projection.weight: found shape torch.Size([48, 64]) in the checkpoint and torch.Size([32, 48]) "
    "in the model instantiated"
)
TRANSFORMERS_5_REPORT = (
    "vision_model.encoder.layers.{0, 1}.mlp.fc1.weight  | MISMATCH | Reinit due to size mismatch - "
    "ckpt: torch.Size([256, 64]) vs model:torch.Size([192, 48])\n"
    "visual_projection.weight  | MISMATCH | Reinit due to size mismatch - ckpt: torch.Size([48, 64]) vs "
    "model:torch.Size([32, 48])"
)


def test_summarise_the_original_report():
    table = cp.summarise_mismatch(SEED_ERROR)
    assert table.rows == [
        [
            "module.visual.transformer.resblocks.*",
            "36",
            "[1024] [3072, 1024]",
            "[768] [2304, 768]",
            "1024 -> 768, 3072 -> 2304",
        ]
    ]
    assert "1024 -> 768" in str(table) and "<table>" in table._repr_html_()


@pytest.mark.parametrize("text", [TRANSFORMERS_4_WARNING, TRANSFORMERS_5_REPORT], ids=["4.x", "5.x"])
def test_summarise_transformers_formats(text):
    rows = {r[0]: r for r in cp.summarise_mismatch(text).rows}
    assert rows["vision_model.encoder.layers.*"][2:] == ["[256, 64]", "[192, 48]", "256 -> 192, 64 -> 48"]
    assert rows["visual_projection"][4] == "48 -> 32, 64 -> 48"


def test_read_shapes_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a weights file"):
        cp.read_shapes(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="holds no model.safetensors"):
        cp.read_shapes(tmp_path)


def test_read_shapes_of_a_folder_a_file_and_a_training_script_save(tmp_path):
    model, _ = deit()
    model.save_pretrained(tmp_path / "folder")
    expected = cp.model_shapes(model)
    assert expected == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert cp.as_loaded(cp.read_shapes(tmp_path / "folder"), model) == expected
    assert cp.read_shapes(tmp_path / "folder" / "model.safetensors") == cp.read_shapes(tmp_path / "folder")
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, tmp_path / "script.pt")
    assert cp.read_shapes(tmp_path / "script.pt") == expected == cp.as_loaded(expected, model)
    state = cp.as_loaded(cp.read_state_dict(tmp_path / "folder"), model)
    assert (
        all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        and state.keys() == expected.keys()
    )


def test_align_names_drops_a_wrapper_prefix_and_fits_the_base_model_prefix():
    model, _ = deit()
    have = cp.model_shapes(model)
    ddp = {f"module.{k}": v for k, v in have.items()}
    assert cp.align_names(ddp, have, model.base_model_prefix) == have
    bare = {
        k.removeprefix("deit."): v for k, v in have.items() if k.startswith("deit.")
    }  # a DeiTModel's save
    aligned = cp.align_names(bare, have, model.base_model_prefix)
    assert set(aligned) <= set(have) and len(aligned) == len(bare)
    assert cp.align_names(have, have, model.base_model_prefix) == have  # already aligned: unchanged


def test_compare_shapes_finds_widths_and_depths_but_not_a_new_head():
    deeper, shallow = cp.model_shapes(deit(layers=3)[0]), cp.model_shapes(deit(layers=2)[0])
    assert cp.compare_shapes(shallow, shallow) == []
    extra = cp.compare_shapes(deeper, shallow)  # a 3-block checkpoint into a 2-block model
    assert extra and {re.search(r"\.(\d+)\.", name)[1] for name, _, _ in extra} == {"2"}
    assert all(model is None for _, _, model in extra)
    missing = cp.compare_shapes(shallow, deeper)  # the model's block 2 is absent from the checkpoint
    assert [(n, c) for n, c, _ in missing] == [(n, None) for n, _, _ in extra]
    headless = {k: v for k, v in shallow.items() if not k.startswith("classifier")}
    assert cp.compare_shapes(headless, shallow) == []  # a new head is expected, not a disagreement
    wider = {**shallow, "classifier.weight": (7, shallow["classifier.weight"][1])}
    assert cp.compare_shapes(wider, shallow) == [
        ("classifier.weight", (7, shallow["classifier.weight"][1]), shallow["classifier.weight"])
    ]
    table = cp.summarise(extra + cp.compare_shapes(wider, shallow))
    assert [table.rows[0][0], table.rows[0][4]] == [
        cp.tensor_family(extra[0][0]),
        "only in checkpoint: blocks 2",
    ]
    assert (
        table.rows[-1][0] == "classifier" and table.rows[-1][4] == f"7 -> {shallow['classifier.weight'][0]}"
    )


def test_assert_loaded_counts_every_tensor_and_names_what_differs(tmp_path):
    model, _ = deit()
    model.save_pretrained(tmp_path)
    assert cp.assert_loaded(model, tmp_path) == len(cp.read_shapes(tmp_path))
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    with pytest.raises(cp.WeightsNotLoadedError, match=r"1 of \d+ .* 1 with other values"):
        cp.assert_loaded(model, tmp_path)


def test_differences_sorts_what_a_load_lost_by_kind(tmp_path):
    model, _ = deit(layers=3)
    model.save_pretrained(tmp_path)
    assert {k: v for k, v in cp.differences(model, tmp_path).items() if k != "compared"} == {
        "missing": [],
        "reshaped": [],
        "changed": [],
    }
    shallow, _ = deit(layers=2)  # block 2 has no place; the other blocks are freshly initialised
    found = cp.differences(shallow, tmp_path)
    assert found["missing"] and all(".2." in name for name in found["missing"])
    assert found["changed"] and not found["reshaped"]
    assert len(found["compared"]) == len(cp.read_shapes(tmp_path))
