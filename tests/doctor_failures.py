"""The reproducers of the failures the doctor predicts and no notebook teaches (peftlab.registry.doctor).

Each reproducer builds its setup on a tiny held-out model (tests/held_out.py), asks the doctor about it,
then runs the failing step. A silent loss is measured and made visible with peftlab's detector
(``SilentLossError``), as the notebooks do. ``python tests/doctor_failures.py`` prints, on the
installed stack, what each step does and what the doctor says: how the registry's entries were measured.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from held_out import IMAGE_TEXT, fuyu, kosmos2, logits_of, train_as_training_would, truncated
from peft import LoraConfig, PeftModel, get_peft_model

import peftlab
from peftlab.detectors import SilentLossError
from peftlab.doctor.findings import Diagnosis

#: What a reproducer returns: the doctor's diagnosis of the setup, and the step that fails.
Setup = tuple[Diagnosis, Callable[[], None]]


def image_tokens_cut_by_truncation() -> Setup:
    """LLaVA trained on a batch whose 16 image placeholder tokens left truncation cut to a few."""
    model, inputs = IMAGE_TEXT["llava"]()
    batch = truncated(inputs, 8)
    return peftlab.doctor(model, batch=batch), lambda: model.train()(**batch)


def adapter_keys_match_no_module() -> Setup:
    """A LoRA adapter saved on LLaVA, loaded into a Llama of the same text config: no key finds its module.

    Its LoRA B matrices are set as training would leave them (not zero), so a loaded adapter would change
    the output; the step raises ``SilentLossError`` when it does not, with peft's warnings in the message.
    """
    from transformers import LlamaForCausalLM

    model, inputs = IMAGE_TEXT["llava"]()
    trained = get_peft_model(model, LoraConfig(target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.fill_(0.5)
    folder = Path(tempfile.mkdtemp(prefix="peftlab-adapter-"))
    trained.save_pretrained(folder)
    text_only = LlamaForCausalLM(model.config.text_config).eval()

    def load() -> None:
        ids = inputs["input_ids"]
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            before = text_only(input_ids=ids).logits
            after = PeftModel.from_pretrained(text_only, folder)(input_ids=ids).logits
        if torch.equal(before, after):
            said = " | ".join(str(w.message).splitlines()[0] for w in caught) or "no warning"
            raise SilentLossError(f"The loaded adapter changes no output (peft said: {said}).")

    return peftlab.doctor(text_only, adapter=folder), load


def module_around_linear_targeted() -> Setup:
    """Fuyu with ``target_modules=["mlp"]``: its MLP module holds the linear layers, it is not one."""
    model, _ = fuyu()
    config = LoraConfig(target_modules=["mlp"])
    return peftlab.doctor(model, config), lambda: get_peft_model(model, config)


def token_type_ids_missing_in_training() -> Setup:
    """PaliGemma trained on a batch without ``token_type_ids`` (what a text-only collator leaves out)."""
    model, inputs = IMAGE_TEXT["paligemma"]()
    batch = {k: v for k, v in inputs.items() if k != "token_type_ids"}
    return peftlab.doctor(model, batch=batch), lambda: model.train()(**batch)


def tied_head_in_target_modules() -> Setup:
    """Kosmos-2 (output layer tied to the input embeddings) with LoRA on ``lm_head``, trained, merged."""
    model, _ = kosmos2()
    config = LoraConfig(target_modules=["q_proj", "v_proj", "lm_head"])
    diagnosis = peftlab.doctor(model, config)

    def merge() -> None:
        before = model.get_input_embeddings().weight.detach().clone()
        peft_model = get_peft_model(model, config)
        train_as_training_would(peft_model)
        merged = peft_model.merge_and_unload()
        moved = (merged.get_input_embeddings().weight - before).abs().max().item()
        if moved:
            raise SilentLossError(
                f"Merging the LoRA on the tied output layer moved the input embeddings (by up to {moved:.3g})."
            )

    return diagnosis, merge


def tied_head_in_modules_to_save() -> Setup:
    """Kosmos-2 with ``modules_to_save=["lm_head"]``: trained, merged, saved, reloaded."""
    model, inputs = kosmos2()
    config = LoraConfig(target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])
    diagnosis = peftlab.doctor(model, config)

    def reload() -> None:
        peft_model = get_peft_model(model, config)
        train_as_training_would(peft_model)
        trained = logits_of(peft_model, inputs)
        merged = peft_model.merge_and_unload()
        with tempfile.TemporaryDirectory() as folder:
            merged.save_pretrained(folder)
            reloaded = type(merged).from_pretrained(folder)
        if not torch.allclose(logits_of(reloaded, inputs), trained, atol=1e-4):
            raise SilentLossError(
                "The reloaded model lost the trained output layer (tied to the embeddings again)."
            )

    return diagnosis, reload


def adapter_api_below_min_peft() -> Setup:
    """transformers' own adapter API (``model.add_adapter``) on a tiny Llama, with the installed peft."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4
    )
    model = LlamaForCausalLM(config)
    lora = LoraConfig(target_modules=["q_proj", "v_proj"])
    return peftlab.doctor(model, lora), lambda: model.add_adapter(lora)


#: Failure id (peftlab.registry.DOCTOR_FAILURES) -> its reproducer.
REPRODUCERS: dict[str, Callable[[], Setup]] = {
    "doctor_image_tokens_truncated": image_tokens_cut_by_truncation,
    "doctor_adapter_keys_match_no_module": adapter_keys_match_no_module,
    "doctor_module_around_linear": module_around_linear_targeted,
    "doctor_token_type_ids_in_training": token_type_ids_missing_in_training,
    "doctor_tied_head_lora_merge": tied_head_in_target_modules,
    "doctor_tied_head_modules_to_save": tied_head_in_modules_to_save,
    "doctor_peft_below_transformers_minimum": adapter_api_below_min_peft,
}


def observe(failure_id: str) -> tuple[BaseException | None, list[str]]:
    """Run one reproducer: (the exception its failing step raised or None, the doctor's finding codes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diagnosis, step = REPRODUCERS[failure_id]()
        try:
            step()
        except Exception as error:  # noqa: BLE001  (any outcome is what is observed)
            return error, diagnosis.codes()
    return None, diagnosis.codes()


if __name__ == "__main__":
    from peftlab.versions import describe

    print(describe())
    for name in sys.argv[1:] or REPRODUCERS:
        error, codes = observe(name)
        outcome = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}" if error else "no error"
        print(f"{name}\n  outcome: {outcome}\n  doctor:  {codes}")
