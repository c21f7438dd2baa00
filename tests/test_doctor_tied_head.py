"""The tied output layer (issue 26, failure 5): an output layer that shares its weight with the input
embeddings, put in ``modules_to_save`` or in ``target_modules``. The doctor's verdict is compared with
what happens: train (the trainable copy moved as training would move it), merge, save, reload.

Three held-out families whose head is tied and three whose head is not, on both stacks. A LoRA on the
tied head always moves the embeddings on merge (the doctor fires on the three tied families). A
``modules_to_save`` copy is lost on reload where the installed transformers re-ties what its config
says (4.x: the doctor fires); transformers 5 keeps a saved head that differs from the embeddings
(with a warning), so the doctor stays clear there: the test compares the verdict with the reload."""

from __future__ import annotations

import pytest
import torch
from held_out import FAMILIES, Missing, logits_of, train_as_training_would
from peft import LoraConfig, get_peft_model

import peftlab

pytestmark = pytest.mark.filterwarnings("ignore")

TIED = ("kosmos2", "gemma3", "aya_vision")
UNTIED = ("llava_next", "idefics2", "qwen2_5_vl")


def _build(name: str):  # noqa: ANN202
    try:
        return FAMILIES[name].build()
    except Missing as missing:
        pytest.skip(str(missing))


def _head_kept_after_reload(name: str, config: LoraConfig, tmp_path) -> tuple[bool, peftlab.Diagnosis]:  # noqa: ANN001
    """(does the reloaded merged model compute what the trained one did?, the doctor's diagnosis)."""
    model, inputs = _build(name)
    diagnosis = peftlab.doctor(model, config)
    peft_model = get_peft_model(model, config)
    train_as_training_would(peft_model)
    trained = logits_of(peft_model, inputs)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(tmp_path)
    reloaded = type(merged).from_pretrained(tmp_path)
    return torch.allclose(logits_of(reloaded, inputs), trained, atol=1e-4), diagnosis


@pytest.mark.parametrize("name", TIED + UNTIED)
def test_head_in_modules_to_save_predicted(name: str, tmp_path) -> None:  # noqa: ANN001
    config = LoraConfig(target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])
    kept, diagnosis = _head_kept_after_reload(name, config, tmp_path)
    assert ("unsaved.tied_head" in diagnosis.codes()) == (not kept), (
        "the reload kept the trained head" if kept else "the trained head was lost"
    ) + f"\n{diagnosis}"
    if name in UNTIED:
        assert kept


@pytest.mark.parametrize("name", TIED + UNTIED)
def test_head_in_target_modules_predicted(name: str) -> None:
    """LoRA on a tied head merges into the one matrix the embeddings share: the merged model's input
    embeddings move too, so it no longer computes what the trained adapter did."""
    model, inputs = _build(name)
    config = LoraConfig(target_modules=["q_proj", "v_proj", "lm_head"])
    diagnosis = peftlab.doctor(model, config)
    before = model.get_input_embeddings().weight.detach().clone()
    peft_model = get_peft_model(model, config)
    train_as_training_would(peft_model)
    merged = peft_model.merge_and_unload()
    moved = not torch.equal(merged.get_input_embeddings().weight, before)
    assert ("unsaved.tied_head" in diagnosis.codes()) == (name in TIED) == moved, str(diagnosis)


def test_ensure_weight_tying_clears_the_finding_where_peft_has_it(tmp_path) -> None:  # noqa: ANN001
    if "ensure_weight_tying" not in LoraConfig.__dataclass_fields__:
        pytest.skip("the installed peft has no ensure_weight_tying")
    config = LoraConfig(
        target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"], ensure_weight_tying=True
    )
    kept, diagnosis = _head_kept_after_reload(TIED[0], config, tmp_path)
    assert "unsaved.tied_head" not in diagnosis.codes() and kept


def test_an_in_place_change_under_no_grad_is_not_a_hook_failure():
    """``generate`` runs under ``torch.no_grad()``: changing a hooked output in place there raises nothing
    (notebook 06's fix calls ``enable_input_require_grads`` on BLIP-2, whose ``generate`` does so)."""
    import ast

    from peftlab.doctor.input_hooks import runs_with_grad

    source = "@torch.no_grad()\ndef generate(self):\n    x[m] = y\n\ndef forward(self):\n    x[m] = y\n"
    generate, forward = ast.parse(source).body
    assert not runs_with_grad(generate) and runs_with_grad(forward)
