"""The Chinese-CLIP loader's parts (peftlab.models.chinese_clip, notebook 05), without pre-training.

Building and pre-training the tiny checkpoints takes several seconds each; notebook 05 does it (and
checks that the result retrieves far above chance). These tests stay on the cheap parts.
"""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import ChineseCLIPModel

from peftlab import data, retrieval
from peftlab.models import OfflineError, load_model
from peftlab.models import chinese_clip as cc


def test_character_tokenizer_spells_every_caption(tmp_path):
    tok = cc.chinese_tokenizer(tmp_path)
    assert tok.convert_ids_to_tokens(tok("左边的黄色三角形")["input_ids"]) == [
        "[CLS]",
        "左",
        "边",
        "的",
        "黄",
        "色",
        "三",
        "角",
        "形",
        "[SEP]",
    ]
    captions = retrieval.prompts(chinese=True) + [s.caption_zh for s in data.make_shapes(64)]
    ids = tok(captions, padding=True)["input_ids"]
    assert tok.unk_token_id not in {i for row in ids for i in row}
    assert tok.pad_token_id == 0  # what ChineseCLIPTextConfig expects


def test_real_vocabulary_from_the_cn_clip_package(tmp_path, monkeypatch):
    vocab = tmp_path / "vocab.txt"  # stands in for cn_clip/clip/vocab.txt (21,128 entries there)
    vocab.write_text(
        "\n".join(["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"红色的圆形"]) + "\n"
    )
    monkeypatch.setattr(cc, "cn_clip_vocab_file", lambda: vocab)
    tok = cc.chinese_tokenizer(tmp_path / "tok", vocabulary="cn_clip")
    assert tok("红色的圆形")["input_ids"] == [3, 6, 7, 8, 9, 10, 4]
    monkeypatch.setattr(cc, "cn_clip_vocab_file", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps cn-clip"):
        cc.chinese_tokenizer(tmp_path / "tok2", vocabulary="cn_clip")
    with pytest.raises(ValueError, match="Unknown vocabulary"):
        cc.chinese_tokenizer(tmp_path / "tok3", vocabulary="words")


def test_tiny_pair_shares_the_text_tower():
    base, large = cc.tiny_config("base"), cc.tiny_config("large")
    assert base.text_config.to_dict() == large.text_config.to_dict()
    assert large.vision_config.hidden_size > base.vision_config.hidden_size
    assert large.vision_config.num_hidden_layers > base.vision_config.num_hidden_layers
    assert large.projection_dim > base.projection_dim
    with pytest.raises(ValueError, match="Unknown tiny size"):
        cc.tiny_config("huge")


def test_lora_targets_per_tower():
    torch.manual_seed(0)
    model = ChineseCLIPModel(cc.tiny_config("base"))
    layers = model.config.vision_config.num_hidden_layers
    qv = get_peft_model(model, LoraConfig(target_modules=["q_proj", "v_proj"]))
    assert cc.lora_layers_per_tower(qv) == {"vision_model": 2 * layers, "text_model": 0, "elsewhere": 0}
    both = get_peft_model(
        ChineseCLIPModel(cc.tiny_config("base")),
        LoraConfig(target_modules=["q_proj", "v_proj", "query", "value"]),
    )
    counts = cc.lora_layers_per_tower(both)
    assert (
        counts["text_model"] == 2 * model.config.text_config.num_hidden_layers and counts["vision_model"] > 0
    )


def test_configs_by_name_and_offline_hub_ids(monkeypatch):
    assert cc.load_config("tiny-base", vocab_size=91).text_config.vocab_size == 91
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="set WRONG_CONFIG to 'tiny-base'"):
        cc.load_config("OFA-Sys/chinese-clip-vit-base-patch16")
    with pytest.raises(OfflineError, match="Chinese-CLIP"):
        load_model("chinese_clip", "OFA-Sys/chinese-clip-vit-base-patch16")


def test_grouped_bars_draws():
    import matplotlib

    matplotlib.use("Agg")
    from peftlab import plots

    fig = plots.grouped_bars({"a": {"x": 0.2, "y": 0.9}, "b": {"x": 0.5, "y": 1.0}}, "t", "accuracy")
    assert len(fig.axes[0].patches) == 4 and [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "a",
        "b",
    ]


def test_pretrain_seed_is_part_of_the_recipe(monkeypatch):
    recipes = []
    monkeypatch.setattr(
        cc, "tiny_checkpoint", lambda family, recipe, build, sources=(): recipes.append(recipe)
    )
    cc.tiny_folder("large")
    monkeypatch.setenv("PEFTLAB_PRETRAIN_SEED", "2")
    cc.tiny_folder("large")
    assert [r["seed"] for r in recipes] == [0, 2]  # another seed, another cache key
