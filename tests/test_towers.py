"""peftlab.lessons.towers and the tiny LLaVA's processor (notebook 07), on a LLaVA built from a config."""

from __future__ import annotations

import pytest
from families import llava
from peft import LoraConfig, get_peft_model

from peftlab import data
from peftlab.lessons import towers
from peftlab.module_names import tower_of, vision_towers

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("language_model.model.layers.0.self_attn.q_proj", "language model"),  # transformers 4.x
        ("model.language_model.layers.0.self_attn.q_proj", "language model"),  # transformers 5.x
        ("vision_tower.vision_model.encoder.layers.1.self_attn.v_proj", "vision tower"),
        ("base_model.model.model.vision_tower.encoder.layers.0.mlp.fc1", "vision tower"),
        ("multi_modal_projector.linear_1", "projector"),
        ("lm_head", "language model"),
        ("model.visual.merger.mlp.0", "vision tower"),
        ("model.layers.0.self_attn.q_proj", "language model"),
    ],
)
def test_tower_of_reads_both_layouts(name: str, part: str) -> None:
    assert tower_of(name) == part


def test_counts_per_part_and_the_detector() -> None:
    report = get_peft_model(llava()[0], LoraConfig(target_modules=["q_proj", "v_proj"]))
    assert towers.lora_layers_by_part(report) == {"vision tower": 4, "projector": 0, "language model": 4}
    assert towers.trainable_by_part(report)["vision tower"] > 0
    with pytest.raises(towers.VisionTowerAdaptedError, match=r"LoRA on 4 layers of the vision tower"):
        towers.assert_language_model_only(report)
    fixed = get_peft_model(llava()[0], LoraConfig(target_modules=r".*language_model.*\.(q_proj|v_proj)"))
    assert towers.assert_language_model_only(fixed) == 4
    assert towers.trainable_by_part(fixed)["vision tower"] == 0
    assert vision_towers(llava()[0]) and all("vision_tower" in n for n in vision_towers(llava()[0]))


def test_saved_adapter_tensors_per_part(tmp_path) -> None:
    get_peft_model(llava()[0], LoraConfig(target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path)
    assert towers.adapter_tensors_by_part(tmp_path) == {
        "vision tower": 8,
        "projector": 0,
        "language model": 8,
    }


def test_vision_features_change_only_with_vision_lora() -> None:
    import torch

    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for targets, moves in ((r".*language_model.*\.(q_proj|v_proj)", False), (["q_proj", "v_proj"], True)):
        model = get_peft_model(llava()[0], LoraConfig(target_modules=targets))
        before = towers.vision_features(model, pixels)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.fill_(0.1)  # what training would do
        assert torch.equal(before, towers.vision_features(model, pixels)) != moves


def test_vqa_processor_expands_the_image_placeholder(tmp_path) -> None:
    from peftlab import vqa
    from peftlab.models import llava as tiny
    from peftlab.models.vocab import word_tokenizer

    tokenizer = word_tokenizer(vqa.words(), tmp_path, extra_special=("<image>",))
    processor = tiny.VQAProcessor(tiny._processor(tokenizer), 16)
    samples = data.make_shapes(2, 32, seed=0)
    batch = vqa.batches(processor, samples, batch_size=2)[0]
    image = tokenizer.convert_tokens_to_ids("<image>")
    assert (batch["input_ids"] == image).sum(dim=1).tolist() == [16, 16]
    answers = batch["labels"][batch["labels"] != -100]
    assert set(tokenizer.convert_ids_to_tokens(answers.tolist())) <= set(vqa.words()) | {"</s>"}
