"""Every library release that changes how a documented failure looks: the one place where a version
boundary is written.

Each :class:`~peftlab.registry.schema.Change` names the first release with the new behaviour and the
releases the failing code was run on, either side. The notebooks' registry modules and ``doctor.py``
build their version ranges from these (``change("clip_forward_kwargs").before``), and so do the
doctor, ``peftlab.targets`` and the model loaders.
"""

from __future__ import annotations

from peftlab.registry.schema import Change

#: Every release boundary that a notebook, the doctor or the README mentions. Keys are stable ids.
CHANGES: dict[str, Change] = {
    "clip_forward_kwargs": Change(
        "transformers",
        "5.0.0",
        "CLIPModel.forward takes **kwargs and passes them to both towers",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "vision2seq_removed": Change(
        "transformers",
        "5.0.0",
        "AutoModelForVision2Seq is removed (AutoModelForImageTextToText stays)",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "blip2_forward_kwargs": Change(
        "transformers",
        "4.52.0",
        "Blip2ForConditionalGeneration.forward takes **kwargs",
        measured=(
            "4.51.3",
            "4.52.0",
            "4.52.4",
            "4.53.0",
            "4.53.2",
            "4.53.3",
            "4.54.0",
            "4.55.0",
            "4.57.0",
            "5.23.0",
        ),
        bisected=True,
    ),
    "blip2_inputs_embeds": Change(
        "transformers",
        "4.54.0",
        "Blip2ForConditionalGeneration.forward declares inputs_embeds",
        measured=(
            "4.51.3",
            "4.52.0",
            "4.52.4",
            "4.53.0",
            "4.53.2",
            "4.53.3",
            "4.54.0",
            "4.55.0",
            "4.57.0",
            "5.23.0",
        ),
        bisected=True,
    ),
    "load_report": Change(
        "transformers",
        "5.0.0",
        "from_pretrained loads every tensor, prints a LOAD REPORT, then raises",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "dtype_keyword": Change(
        "transformers",
        "4.56.0",
        "from_pretrained takes dtype= (torch_dtype= is deprecated)",
        measured=("4.51.3", "4.53.2", "4.55.4", "4.56.0", "4.57.0", "4.57.6", "5.0.0", "5.23.0"),
        bisected=True,
    ),
    "vit_attention_renamed": Change(
        "transformers",
        "5.9.0",
        "ViT's attention layers are q_proj/k_proj/v_proj/o_proj under vit.layers.N",
        measured=(
            "4.51.3",
            "4.53.2",
            "4.57.0",
            "4.57.6",
            "5.0.0",
            "5.8.1",
            "5.9.0",
            "5.13.1",
            "5.15.0",
            "5.23.0",
        ),
        bisected=True,
    ),
    "peft_mts_attribute_passthrough": Change(
        "peft",
        "0.14.0",
        "ModulesToSaveWrapper passes attribute reads on to the wrapped module (PR #2117)",
        measured=("0.13.2", "0.14.0", "0.15.2", "0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.2"),
        bisected=True,
    ),
    "peft_mts_nested_keyerror": Change(
        "peft",
        "0.15.0",
        "a modules_to_save wrapper nested in another no longer reloads (KeyError)",
        measured=(
            "0.14.0",
            "0.15.0",
            "0.15.1",
            "0.15.2",
            "0.16.0",
            "0.17.0",
            "0.17.1",
            "0.18.1",
            "0.19.1",
            "0.20.0",
            "0.21.0",
            "0.21.2",
        ),
        bisected=True,
    ),
    "peft_skips_adapter_layers": Change(
        "peft",
        "0.16.0",
        "get_peft_model skips modules inside an existing adapter layer (PR #2539)",
        measured=("0.15.2", "0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.0", "0.21.2"),
        bisected=True,
    ),
    "peft_target_parameters": Change(
        "peft",
        "0.17.0",
        "LoraConfig(target_parameters=...) puts LoRA on nn.Parameter objects",
        measured=("0.15.2", "0.16.0", "0.17.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.0", "0.21.2"),
        bisected=True,
    ),
    "peft_no_matching_module_error": Change(
        "peft",
        "0.21.0",
        "a target list that matches nothing raises NoMatchingPeftModuleError",
        measured=("0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.0", "0.21.2"),
        bisected=True,
    ),
    # Notebook 06 (measured on the releases that the stacks pin: the matrix's set).
    "gc_default_non_reentrant": Change(
        "transformers",
        "5.0.0",
        "gradient_checkpointing_enable() defaults to use_reentrant=False (4.x passes use_reentrant=True)",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "input_grads_every_tower": Change(
        "transformers",
        "5.0.0",
        "enable_input_require_grads() hooks the input embeddings of every sub-model (each tower), "
        "not only the language model's",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    # Notebook 07.
    "peft_exclude_modules": Change(
        "peft",
        "0.14.0",
        "LoraConfig takes exclude_modules (names or a regular expression that target_modules must not match)",
        measured=("0.13.2", "0.14.0", "0.15.2", "0.21.2"),
        bisected=True,
    ),
    # The doctor's failures that no notebook teaches (peftlab/registry/doctor.py); the single releases
    # 5.2.0 to 5.10.1 and 5.24.0 were run as wheels in front of a stack's own environment.
    "tied_head_kept_if_saved_apart": Change(
        "transformers",
        "5.0.0",
        "from_pretrained keeps a saved output layer that differs from the input embeddings it is tied to "
        "(with a warning) instead of tying it again",
        measured=(
            "4.51.3",
            "4.53.2",
            "4.57.0",
            "4.57.6",
            "5.0.0",
            "5.13.1",
            "5.15.0",
            "5.23.0",
            "5.24.0",
            "5.25.0",
        ),
        bisected=True,
    ),
    "paligemma_token_type_ids_required": Change(
        "transformers",
        "5.0.0",
        "PaliGemma's forward raises in training mode without token_type_ids",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.2.0", "5.6.0", "5.8.0", "5.8.1"),
        bisected=True,
    ),
    "paligemma_token_type_ids_optional": Change(
        "transformers",
        "5.9.0",
        "PaliGemma trains without token_type_ids again",
        measured=(
            "5.0.0",
            "5.2.0",
            "5.6.0",
            "5.8.0",
            "5.8.1",
            "5.9.0",
            "5.10.1",
            "5.13.1",
            "5.15.0",
            "5.23.0",
            "5.24.0",
            "5.25.0",
        ),
        bisected=True,
    ),
    "min_peft_above_released": Change(
        "transformers",
        "5.24.0",
        "transformers' adapter API (add_adapter, load_adapter) requires peft 0.22.0 (MIN_PEFT_VERSION), above the "
        "newest peft released (0.21.2)",
        measured=(
            "4.51.3",
            "4.53.2",
            "4.57.0",
            "4.57.6",
            "5.0.0",
            "5.13.1",
            "5.15.0",
            "5.23.0",
            "5.24.0",
            "5.25.0",
        ),
        bisected=True,
    ),
}


def change(key: str) -> Change:
    """Look up a :class:`Change` by id, with a helpful error for an unknown one."""
    try:
        return CHANGES[key]
    except KeyError:
        raise KeyError(f"Unknown change {key!r}; known: {sorted(CHANGES)}") from None
