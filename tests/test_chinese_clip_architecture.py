"""Shape inference for Chinese-CLIP checkpoints (peftlab.lessons.chinese_clip_architecture, notebook 05).

Every model of the correspondence table is checked three ways, none of them downloaded:
* at full size, built from its config on PyTorch's meta device (no memory, real numbers);
* scaled down (widths / 16, depths / 4) with real tensors, saved with save_pretrained and read back
  from the folder, then loaded with the config the shapes give;
* in the original code's names, from shapes that code produces for the five released models
  (tests/data/cn_clip_shapes.json.gz, see make_cn_clip_shapes.py beside it); RN50 lives only there,
  since transformers has no port of it.
"""

import gzip
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import ChineseCLIPModel, CLIPConfig, CLIPModel

from peftlab import checkpoints as cp
from peftlab.lessons import chinese_clip_architecture as cs

VIT_RELEASES = [r for r in cs.RELEASES if r["hub_id"]]
with gzip.open(Path(__file__).parent / "data" / "cn_clip_shapes.json.gz", "rt") as f:
    CN_CLIP_SHAPES = json.load(f)
#: Parameter counts of the model card of the original release.
PARAMETERS_M = {
    "CN-CLIP RN50": 77,
    "CN-CLIP ViT-B/16": 188,
    "CN-CLIP ViT-L/14": 406,
    "CN-CLIP ViT-L/14@336px": 407,
    "CN-CLIP ViT-H/14": 958,
}


def expected(release, vision=None, text=None):
    v = (vision or cs.VISION_MODELS)[release["vision"]]
    t = (text or cs.TEXT_MODELS)[release["text"]]
    return {
        "vision_width": v["width"],
        "vision_layers": v["layers"],
        "patch_size": v["patch_size"],
        "image_size": v["image_size"],
        "projection_dim": v["embed_dim"],
        "text_width": t["width"],
        "text_layers": t["layers"],
        "text_intermediate": t["intermediate"],
        "vocab_size": t["vocab_size"],
    }


def fields(arch):
    return {k: getattr(arch, k) for k in expected(cs.RELEASES[1])}


def meta_model(config):
    with torch.device("meta"):
        return ChineseCLIPModel(config)


@pytest.mark.parametrize("release", VIT_RELEASES, ids=lambda r: r["vision"])
def test_published_models_at_full_size(release):
    model = meta_model(cs.release_config(release))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == PARAMETERS_M[release["name"]]
    ident = cs.identify(model.state_dict())
    assert fields(ident.architecture) == expected(release)
    assert ident.release is release and ident.notes == []
    config = cs.build_config(ident)  # heads come from the table: ViT-H-14's vision heads are 80 wide
    assert (
        config.vision_config.num_attention_heads
        == cs.release_config(release).vision_config.num_attention_heads
    )
    assert (
        config.text_config.num_attention_heads == cs.release_config(release).text_config.num_attention_heads
    )
    assert release["hub_id"] in ident.summary() and f"--vision-model {release['vision']}" in ident.summary()


def scaled_tables(width_div=16, depth_div=4):
    """The correspondence table with every width / 16 and every depth / 4 (rounded up): small
    enough to build for real, and every model still differs from the others where it did."""

    def depth(n):
        return tuple(n) if isinstance(n, tuple) else math.ceil(n / depth_div)

    vision = {
        n: {
            **v,
            "width": v["width"] // width_div,
            "head_width": v["head_width"] // width_div,
            "embed_dim": v["embed_dim"] // width_div,
            "layers": depth(v["layers"]),
        }
        for n, v in cs.VISION_MODELS.items()
    }
    text = {
        n: {
            **t,
            "width": t["width"] // width_div,
            "intermediate": t["intermediate"] // width_div,
            "layers": depth(t["layers"]),
        }
        for n, t in cs.TEXT_MODELS.items()
    }
    return vision, text


@pytest.mark.parametrize("release", VIT_RELEASES, ids=lambda r: r["vision"])
def test_scaled_down_models_from_a_folder(release, tmp_path, monkeypatch):
    vision, text = scaled_tables()
    monkeypatch.setattr(cs, "VISION_MODELS", vision)
    monkeypatch.setattr(cs, "TEXT_MODELS", text)
    torch.manual_seed(0)
    ChineseCLIPModel(cs.release_config(release)).save_pretrained(tmp_path)
    ident = cs.identify(tmp_path)
    assert fields(ident.architecture) == expected(release, vision, text)
    assert ident.release is release
    names = [cs.identify(meta_model(cs.release_config(r)).state_dict()).name for r in VIT_RELEASES]
    assert names == [r["name"] for r in VIT_RELEASES]  # the scaled models stay distinguishable
    loaded = ChineseCLIPModel.from_pretrained(tmp_path, config=cs.build_config(ident))
    assert cp.assert_loaded(loaded, tmp_path) == len(loaded.state_dict())


@pytest.mark.parametrize("file", sorted(CN_CLIP_SHAPES))
def test_original_code_names(file):
    entry = CN_CLIP_SHAPES[file]
    release = next(r for r in cs.RELEASES if r["file"] == file)
    # as an original checkpoint stores them: under "state_dict", with DistributedDataParallel's prefix
    checkpoint = {
        "epoch": 1,
        "state_dict": {f"module.{k}": torch.empty(v, device="meta") for k, v in entry["shapes"].items()},
    }
    ident = cs.identify(checkpoint)
    assert ident.architecture.naming == "cn_clip"
    assert fields(ident.architecture) == expected(release)
    assert ident.release is release
    if release["hub_id"]:  # the same architecture as its transformers port reads
        port = cs.infer_architecture(meta_model(cs.release_config(release)).state_dict())
        assert fields(port) == fields(ident.architecture)
    else:
        assert ident.architecture.vision_kind == "resnet"
        with pytest.raises(ValueError, match="no ResNet vision tower"):
            cs.build_config(ident)


def test_tiny_pair_is_identified():
    from peftlab.models.chinese_clip import tiny_config

    for size in ("base", "large"):
        ident = cs.identify(meta_model(tiny_config(size, vocab_size=91)).state_dict())
        assert ident.release["tiny"] == size
    assert cs.identify(meta_model(tiny_config("large")).state_dict(), include_tiny=False).release is None


def test_no_known_model():
    vit_l, roberta_large = cs.RELEASES[2], cs.RELEASES[4]
    never = cs.release_config({**vit_l, "text": roberta_large["text"]})  # ViT-L-14 + RoBERTa-large
    ident = cs.identify(meta_model(never).state_dict())
    assert ident.release is None and ident.name == "matches no known Chinese-CLIP model"
    assert (ident.vision_model, ident.text_model) == ("ViT-L-14", "RoBERTa-wwm-ext-large-chinese")
    assert "never released" in ident.summary()
    with pytest.raises(cs.UnknownCheckpointError, match="matches no known Chinese-CLIP model"):
        cs.identify(meta_model(never).state_dict(), strict=True)

    odd = cs.release_config(cs.RELEASES[1])
    odd.vision_config.hidden_size, odd.vision_config.intermediate_size = 896, 3584
    odd.vision_config.num_attention_heads = 14
    ident = cs.identify(meta_model(odd).state_dict())
    assert ident.vision_model is None and "heads of width 64" in ident.notes[0]
    assert cs.build_config(ident).vision_config.num_attention_heads == 896 // 64
    assert "none known" in str(ident)


def test_not_a_chinese_clip_checkpoint():
    clip = CLIPModel(
        CLIPConfig(
            text_config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
            },
            vision_config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
        )
    )
    with pytest.raises(ValueError, match="Not a Chinese-CLIP checkpoint"):
        cs.infer_architecture(clip.state_dict())


def test_strict_load_error_and_the_silent_trap(tmp_path):
    from peftlab.models.chinese_clip import tiny_config

    torch.manual_seed(0)
    large = ChineseCLIPModel(tiny_config("large"))
    large.save_pretrained(tmp_path)
    base = ChineseCLIPModel(tiny_config("base"))
    with pytest.raises(RuntimeError, match="size mismatch") as error:
        base.load_state_dict(large.state_dict())
    rows = {(r[0], r[4]) for r in cp.summarise_mismatch(error.value).rows}
    assert ("vision_model.encoder.layers.*", "64 -> 48, 256 -> 192") in rows
    assert ("vision_model.encoder.layers.*", "only in checkpoint: blocks 2") in rows  # 3 layers vs 2
    assert ("text_projection", "48 -> 32") in rows and not any(r[0].startswith("text_model") for r in rows)
    assert cp.summarise_mismatch(error.value).rows[0][0] in str(
        cp.summarise(cp.compare_shapes(cp.read_shapes(tmp_path), cp.model_shapes(base)))
    )

    trap = ChineseCLIPModel.from_pretrained(
        tmp_path, config=tiny_config("base"), ignore_mismatched_sizes=True
    )
    with pytest.raises(cp.WeightsNotLoadedError, match="re-initialised at another shape"):
        cp.assert_loaded(trap, tmp_path)
    right = ChineseCLIPModel.from_pretrained(tmp_path, config=cs.config_from_checkpoint(tmp_path))
    assert cp.assert_loaded(right, tmp_path) == len(large.state_dict())
    older_save = {**large.state_dict(), "text_model.embeddings.position_ids": torch.arange(16)[None]}
    assert cp.assert_loaded(right, older_save) == len(large.state_dict())  # a buffer, not a weight
    with torch.no_grad():
        right.visual_projection.weight.mul_(2)
    with pytest.raises(cp.WeightsNotLoadedError, match="1 with other values"):
        cp.assert_loaded(right, large.state_dict())
