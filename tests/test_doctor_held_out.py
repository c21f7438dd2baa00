"""The doctor's new checks and issue 26's defects, on families neither the notebooks nor
tests/families.py use (tests/held_out.py). Each verdict is compared with running the setup."""

from __future__ import annotations

import pytest
import torch
from held_out import IMAGE_TEXT, Missing, emu3, fuyu, janus, kosmos2, mllama, truncated
from peft import LoraConfig, PeftModel, get_peft_model

import peftlab
from peftlab.doctor.checkpointing import makes_grad

pytestmark = pytest.mark.filterwarnings("ignore")


def _build(build):  # noqa: ANN001, ANN202
    try:
        return build()
    except Missing as missing:
        pytest.skip(str(missing))


def _raises(model: torch.nn.Module, batch: dict) -> str | None:
    try:
        model.train()(**batch)
    except ValueError as error:
        return str(error)
    return None


# --- batch checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(IMAGE_TEXT))
@pytest.mark.parametrize("cut", [True, False], ids=["truncated", "whole"])
def test_image_tokens_vs_features_predicted(name: str, cut: bool) -> None:
    model, inputs = _build(IMAGE_TEXT[name])
    batch = truncated(inputs, 8) if cut else inputs
    d = peftlab.doctor(model, batch=batch)
    predicted = "inputs.image_tokens_vs_features" in d.codes()
    assert predicted == (_raises(model, batch) is not None) == cut, str(d)


@pytest.mark.parametrize("name", sorted(IMAGE_TEXT))
def test_inputs_required_in_training_predicted(name: str) -> None:
    """Where the installed code raises without token_type_ids in training (some transformers 5 releases,
    for some families), the doctor says so; elsewhere it stays clear. Both are checked by running the
    batch."""
    model, inputs = _build(IMAGE_TEXT[name])
    batch = {k: v for k, v in inputs.items() if k != "token_type_ids"}
    d = peftlab.doctor(model, batch=batch)
    raised = _raises(model, batch)
    assert ("inputs.required_in_training" in d.codes()) == bool(raised and "required" in raised), (
        str(d),
        raised,
    )


# --- targets: wrappers around nn.Linear, the VQ tokenizer, towers by what they consume -----------------


@pytest.mark.parametrize(
    ("build", "targets"),
    [(fuyu, ["mlp"]), (kosmos2, ["fc1", "self_attn"]), (mllama, ["mlp"])],
    ids=["fuyu_mlp", "kosmos2_self_attn", "mllama_mlp"],
)
def test_module_around_linear_flagged_and_its_fix_wraps(build, targets) -> None:  # noqa: ANN001
    model, inputs = _build(build)
    d = peftlab.doctor(model, LoraConfig(target_modules=targets))
    finding = next(f for f in d if f.code == "targets.unsupported_type")
    with pytest.raises(ValueError, match="is not supported"):
        get_peft_model(model, LoraConfig(target_modules=targets))
    fixed = eval(finding.fix.split("target_modules=", 1)[1].split(" (checked", 1)[0])  # noqa: S307
    wrapped = get_peft_model(_build(build)[0], LoraConfig(target_modules=fixed))
    wrapped.train()(**inputs).logits.sum().backward()


def test_vq_tokenizer_lora_flagged_and_gets_no_gradient() -> None:
    model, inputs = _build(emu3)
    config = LoraConfig(target_modules=["q_proj", "v_proj"])
    finding = next(f for f in peftlab.doctor(model, config) if f.code == "targets.no_gradient_path")
    wrapped = get_peft_model(model, config).train()
    wrapped(**inputs).logits.float().pow(2).mean().backward()
    dead = {n for n, p in wrapped.named_parameters() if p.requires_grad and p.grad is None}
    assert dead and all(".vqmodel." in n for n in dead) and str(len(dead) // 2) in finding.what


@pytest.mark.parametrize(
    ("build", "config"),
    [
        (fuyu, LoraConfig(target_modules="all-linear")),
        (janus, LoraConfig(target_modules="all-linear", exclude_modules=r".*vision_model.*")),
        (kosmos2, LoraConfig(target_modules=["q_proj", "v_proj"], exclude_modules=r".*vision_model.*")),
    ],
    ids=["fuyu_patch_projection", "janus_generation_head", "kosmos2_exclude_regex"],
)
def test_no_vision_tower_flag_where_none_is_adapted(build, config: LoraConfig) -> None:
    model, _ = _build(build)
    d = peftlab.doctor(model, config)
    assert "targets.multi_tower" not in d.codes(), str(d)
    wrapped = get_peft_model(model, config)
    names = [n for n, m in wrapped.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]
    assert not any(".vision_model." in n or ".vision_tower." in n for n in names)


def test_every_entry_counted_and_an_empty_one_named() -> None:
    model, _ = _build(mllama)
    d = peftlab.doctor(model, LoraConfig(target_modules=["q_proj", "query_key_value"]))
    assert d.target_counts["query_key_value"] == {"vision tower": 0, "language model": 0, "other": 0}
    wrapped = get_peft_model(model, LoraConfig(target_modules=["q_proj", "query_key_value"]))
    lora = [n for n, m in wrapped.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]
    assert sum(d.target_counts["q_proj"].values()) == len(lora)
    assert "'query_key_value' matches nothing" in str(d)


# --- checkpointing: LLaVA's recipe (projector trained) under reentrant checkpointing ----------------


@pytest.mark.parametrize("build", [kosmos2, mllama], ids=["kosmos2", "mllama"])
def test_language_model_fed_by_a_trained_projector_predicted(build) -> None:  # noqa: ANN001
    model, inputs = _build(build)
    lm = r".*(language_model|text_model)\..*\.(q_proj|v_proj)"
    projector = (
        next(n for n, _ in model.named_children() if "projection" in n or "projector" in n)
        if any("projection" in n or "projector" in n for n, _ in model.named_children())
        else next(n for n, _ in model.model.named_children() if "projector" in n)
    )
    wrapped = get_peft_model(model, LoraConfig(target_modules=lm, modules_to_save=[projector]))
    base = wrapped.get_base_model()
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    for module in base.modules():
        for key, hook in list(module._forward_hooks.items()):
            if makes_grad(hook):
                del module._forward_hooks[key]
    d = peftlab.doctor(wrapped.train())
    try:
        wrapped(**inputs).logits.float().pow(2).mean().backward()
    except RuntimeError as error:
        assert "checkpointing.no_input_requires_grad" in d.codes() and "grad_fn" in str(error)
        return
    dead = {n for n, p in wrapped.named_parameters() if p.requires_grad and p.grad is None}
    assert bool(dead) == ("checkpointing.tower_without_gradient" in d.codes()), (str(d), sorted(dead))


# --- adapters ------------------------------------------------------------------------------------------


def test_adapter_of_another_model_does_nothing_predicted(tmp_path) -> None:
    from transformers import LlamaForCausalLM

    model, inputs = _build(IMAGE_TEXT["llava"])
    trained = get_peft_model(model, LoraConfig(target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.fill_(0.5)  # what training would do
    trained.save_pretrained(tmp_path)
    text_only = LlamaForCausalLM(model.config.text_config).eval()
    assert "adapter.keys_match_no_module" in peftlab.doctor(text_only, adapter=tmp_path).codes()
    ids = inputs["input_ids"]
    with torch.no_grad():
        before = text_only(input_ids=ids).logits
        after = PeftModel.from_pretrained(text_only, tmp_path)(input_ids=ids).logits
    assert torch.equal(before, after)  # the adapter does nothing, as predicted
    same = _build(IMAGE_TEXT["llava"])[0]
    assert "adapter.keys_match_no_module" not in peftlab.doctor(same, adapter=tmp_path).codes()
    reloaded = PeftModel.from_pretrained(same, tmp_path)
    with torch.no_grad():
        assert not torch.allclose(reloaded(**inputs).logits, _build(IMAGE_TEXT["llava"])[0](**inputs).logits)
