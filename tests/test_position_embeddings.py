import pytest
import torch
from matplotlib.figure import Figure
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import ViTForImageClassification

from peftlab import data, module_names
from peftlab.lessons import position_embeddings as pe
from peftlab.models import OfflineError, load_model, vit
from peftlab.registry import change


def random_vit(image_size=32):
    torch.manual_seed(0)
    return ViTForImageClassification(vit.tiny_vit_config(image_size)).eval()


def pixels(size, n=3):
    torch.manual_seed(1)
    return torch.randn(n, 3, size, size)


def test_class_names_and_labels():
    names = vit.class_names()
    assert len(set(names)) == 16
    for s in data.make_shapes(32, seed=3):
        assert names[vit.label(s)] == f"{s.shape} {s.position}"


def test_resize_matches_interpolate_pos_encoding_and_records_the_size():
    model = random_vit()
    x = pixels(64)
    with torch.no_grad():
        expected = model(pixel_values=x, interpolate_pos_encoding=True).logits
    old = pe.vit_embeddings(model).position_embeddings.detach().clone()
    pe.resize_position_embeddings(model, 64)
    emb = pe.vit_embeddings(model)
    assert emb.position_embeddings.shape == (1, 65, 64)
    assert torch.equal(emb.position_embeddings[:, :1], old[:, :1])  # class token kept as it was
    assert model.config.image_size == 64 and emb.patch_embeddings.image_size == (64, 64)
    assert emb.patch_embeddings.num_patches == 64 and getattr(emb, "image_size", (64, 64)) == (64, 64)
    with torch.no_grad():
        assert torch.equal(model(pixel_values=x).logits, expected)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        pe.resize_position_embeddings(model, 60)


def test_interpolating_to_the_same_grid_changes_nothing():
    table = pe.vit_embeddings(random_vit()).position_embeddings.detach()
    assert torch.allclose(pe.interpolate_table(table, (4, 4)), table, atol=1e-6)


def test_similarity_mosaic_and_plot():
    table = pe.vit_embeddings(random_vit()).position_embeddings.detach()
    sim = pe.similarity(table)
    assert sim.shape == (16, 16) and torch.allclose(sim.diagonal(), torch.ones(16), atol=1e-5)
    mosaic = pe.similarity_mosaic(table)
    assert mosaic.shape == (19, 19) and torch.isnan(mosaic[4]).all()  # a blank row between tiles
    assert mosaic[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert isinstance(pe.plot_similarity({"a": table, "b": pe.interpolate_table(table, (8, 8))}), Figure)


def test_attention_targets_follow_the_transformers_version():
    model = random_vit()
    names = module_names.linear_layer_names(model)
    expected = ["q_proj", "v_proj"] if change("vit_attention_renamed").holds() else ["query", "value"]
    assert module_names.attention_targets(model) == expected
    assert names[expected[0]] == 2 and names["classifier"] == 1
    with pytest.raises(ValueError, match="No query/value projections"):
        module_names.attention_targets(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def peft_vit(*modules_to_save):
    base = pe.resize_position_embeddings(random_vit(), 64)
    config = LoraConfig(
        r=4, target_modules=module_names.attention_targets(base), modules_to_save=list(modules_to_save)
    )
    return get_peft_model(base, config)


def test_modules_to_save_parameter_is_caught_and_unfreezing_passes():
    model = peft_vit("classifier", "position_embeddings")
    assert pe.wrapped_modules(model) == ["classifier"]
    with pytest.raises(pe.SilentLossError, match=r"Not trainable: vit\.embeddings\.position_embeddings"):
        pe.require_trainable(model, ["position_embeddings"])
    pe.vit_embeddings(model).position_embeddings.requires_grad_(True)
    pe.require_trainable(model, ["position_embeddings"])
    with pytest.raises(pe.SilentLossError, match="nothing_like_this"):
        pe.require_trainable(model, ["nothing_like_this"])


def test_sidecar_round_trip_is_exact_and_peft_alone_loses_the_table(tmp_path):
    model = peft_vit("classifier")
    with torch.no_grad():  # stand-in for training: move LoRA and the table
        for name, p in model.named_parameters():
            if "lora_B" in name or "position_embeddings" in name:
                p.add_(0.05 * torch.randn_like(p))
    x = pixels(64)
    with torch.no_grad():
        expected = model(pixel_values=x).logits
    model.save_pretrained(tmp_path)
    path = pe.save_extra_parameters(model, tmp_path, ["position_embeddings"])
    assert path.name == pe.SIDECAR

    alone = PeftModel.from_pretrained(pe.resize_position_embeddings(random_vit(), 64), tmp_path)
    with pytest.raises(pe.SilentLossError, match="does not carry the trained"):
        pe.require_same_parameters(model, alone, ["position_embeddings"])

    base = pe.resize_position_embeddings(random_vit(), 64)
    assert pe.load_extra_parameters(base, tmp_path) == ["vit.embeddings.position_embeddings"]
    restored = PeftModel.from_pretrained(base, tmp_path)
    pe.require_same_parameters(model, restored, ["position_embeddings"])
    with torch.no_grad():
        assert torch.equal(restored(pixel_values=x).logits, expected)

    with pytest.raises(ValueError, match="prepare the base model"):
        pe.load_extra_parameters(random_vit(), tmp_path)  # not resized: 17 rows, not 65
    with pytest.raises(ValueError, match="No parameter named"):
        pe.save_extra_parameters(model, tmp_path, ["no_such_parameter"])


def test_full_path_wraps_one_module_and_the_wrapper_passes_attributes_on():
    model = peft_vit("classifier", "vit.embeddings")
    assert pe.wrapped_modules(model) == ["vit.embeddings", "classifier"]
    assert type(model.base_model.model.vit.embeddings.patch_embeddings).__name__ == "ViTPatchEmbeddings"


def test_tiny_vit_is_pretrained_and_hub_ids_need_the_hub(monkeypatch):
    model, processor = load_model("vit")
    assert model.config.image_size == 32 and model.config.num_labels == 16
    samples = data.make_shapes(96, seed=11, colours=data.BASE_COLOURS)
    assert vit.accuracy(model, vit.batches(processor, samples)) > 0.6  # chance is 1/16
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="set CHECKPOINT to 'tiny'"):
        load_model("vit", "google/vit-base-patch16-224-in21k")
