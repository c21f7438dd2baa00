"""Class 3, unsaved trainables: what training would change that ``save_pretrained`` will not keep.

From notebooks 03 and 04: a ``modules_to_save`` entry that names a parameter (it matches no module
and saves nothing), an entry that matches a module and also a module inside it (the adapter will
not reload), a parameter made trainable by hand after ``get_peft_model`` (PEFT does not save it),
and a PeftModel with nothing trainable at all (loaded without ``is_trainable=True``).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model
from peftlab.registry import change


def modules_to_save_findings(model: torch.nn.Module, peft_config: Any) -> list[Finding]:
    """Each ``modules_to_save`` entry, matched as PEFT does (module names ending with the entry)."""
    findings = []
    modules = [name for name, _ in base_model(model).named_modules() if name]
    parameters = [name for name, _ in base_model(model).named_parameters()]
    for entry in getattr(peft_config, "modules_to_save", None) or []:
        matched = [name for name in modules if name.endswith(entry)]
        if not matched:
            params = [name for name in parameters if name.endswith(entry)]
            owner = params[0].rsplit(".", 1)[0] if params and "." in params[0] else ""
            findings.append(
                Finding(
                    "unsaved",
                    "unsaved.parameter_in_modules_to_save" if params else "unsaved.modules_to_save_no_match",
                    "silent loss",
                    f"No error, and modules_to_save={entry!r} trains and saves nothing: it matches no module.",
                    (
                        f"{entry!r} is a parameter ({params[0]}, {_size(model, params[0])} values), not a module; "
                        "modules_to_save matches module names only."
                    )
                    if params
                    else f"No module name ends with {entry!r}.",
                    (
                        f'Name the module that owns it by its full path (modules_to_save=["{owner}"]), or unfreeze the '
                        "parameter and save it yourself (peftlab.lessons.position_embeddings.save_extra_parameters)."
                    )
                    if params
                    else "Use the name of a module of this model.",
                    when="training and save",
                )
            )
            continue
        nested = [n for n in matched if any(n.startswith(f"{outer}.") for outer in matched)]
        if nested:
            findings.append(_nested_finding(entry, matched, nested))
    return findings


def _size(model: torch.nn.Module, name: str) -> str:
    return f"{base_model(model).get_parameter(name).numel():,}"


def _nested_finding(entry: str, matched: list[str], nested: list[str]) -> Finding:
    outer = [n for n in matched if n not in nested]
    passthrough, keyerror = change("peft_mts_attribute_passthrough"), change("peft_mts_nested_keyerror")
    if not passthrough.holds():
        what, raises = (
            (
                "get_peft_model then fails: the outer wrapper does not pass attribute reads on to the "
                f"module it wraps ({passthrough.phrase()} added that)."
            ),
            "AttributeError",
        )
    elif not keyerror.holds():
        what, raises = (
            (
                "training and save_pretrained go through, and this PEFT loads it back, but from "
                f"{keyerror.phrase()} on from_pretrained fails (KeyError)."
            ),
            None,
        )
    else:
        what, raises = (
            (
                "training and save_pretrained go through; PeftModel.from_pretrained then fails "
                "with a KeyError: the saved adapter cannot be loaded."
            ),
            "KeyError",
        )
    return Finding(
        "unsaved",
        "unsaved.nested_modules_to_save",
        "error" if raises else "warning",
        "get_peft_model puts a ModulesToSaveWrapper inside another; " + what,
        f"modules_to_save entry {entry!r} matches {outer[0]} and, inside it, {nested[0]} (PEFT matches the end "
        "of module names, without a dot).",
        f'Name the one module by its full path: modules_to_save=["{outer[0]}"].',
        raises=raises,
        when="wrap" if raises == "AttributeError" else "reload",
    )


def saved_names(model: torch.nn.Module) -> set[str]:
    """Names (as in ``named_parameters``) of the parameters ``save_pretrained`` will write.

    PEFT's own rule, read without calling ``state_dict()`` (which can touch quantised weights): the
    tuner's parameters (names containing its prefix, ``lora_`` for LoRA), the copies inside
    ``modules_to_save`` wrappers, and biases when a config asks for them (``bias="all"``,
    ``"lora_only"``).
    """
    prefix = getattr(model.base_model, "prefix", "lora_")
    bias = {getattr(c, "bias", "none") for c in model.peft_config.values()}
    return {
        name
        for name, _ in model.named_parameters()
        if prefix in name
        or ".modules_to_save." in name
        or ("all" in bias and name.endswith(".bias"))
        or ("lora_only" in bias and name.endswith("base_layer.bias"))
    }


def trainable_findings(model: torch.nn.Module) -> list[Finding]:
    """A PeftModel about to be trained: parameters trainable outside PEFT, or nothing trainable."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        total = sum(p.numel() for p in model.parameters())
        inference = any(getattr(c, "inference_mode", False) for c in model.peft_config.values())
        return [
            Finding(
                "unsaved",
                "unsaved.nothing_to_train",
                "error",
                "Training changes nothing: an optimizer given no parameters raises (torch: 'optimizer got an "
                "empty parameter list'; the peftlab loop: NothingToTrainError); a loop that filters "
                "requires_grad runs and learns nothing.",
                f"0 of {total:,} parameters require gradients"
                + (" (the adapter is in inference mode)." if inference else "."),
                "Load the adapter with PeftModel.from_pretrained(base, adapter_dir, is_trainable=True).",
                raises="ValueError",
                when="training",
            )
        ]
    kept = saved_names(model)
    lost = [(name, p) for name, p in trainable if name not in kept]
    if not lost:
        return []
    names = ", ".join(name.removeprefix("base_model.model.") for name, _ in lost[:3])
    values = sum(p.numel() for _, p in lost)
    return [
        Finding(
            "unsaved",
            "unsaved.trainable_outside_peft",
            "silent loss",
            "No error: these parameters train, but save_pretrained does not write them and from_pretrained "
            "raises nothing, so the reloaded model has the old values under adapters trained with the new ones.",
            f"{len(lost)} trainable parameters ({values:,} values) are neither adapter weights nor in "
            f"modules_to_save: {names}{' ...' if len(lost) > 3 else ''}.",
            "Put the module that owns them in modules_to_save (by its full path), or save them beside the adapter "
            "(peftlab.lessons.position_embeddings.save_extra_parameters) and load them back before the adapter.",
            when="save and reload",
        )
    ]


def reload_keeps_a_saved_head(model: torch.nn.Module) -> bool:
    """True when the installed transformers, loading a checkpoint that holds both the head and the
    embeddings with different values, keeps both (it ties only what the checkpoint lacks). Read from
    the installed code: the model's ``tie_weights`` takes the checkpoint's ``missing_keys`` and ties a
    pair only where one of the two is missing (transformers 5); 4.x ties whatever the config says."""
    tie = getattr(type(model), "tie_weights", None)
    try:
        accepted = inspect.signature(tie).parameters if callable(tie) else {}
        source = inspect.getsource(tie) if "missing_keys" in accepted else ""
    except (OSError, TypeError, ValueError):
        return False
    return "not in missing_keys" in source


def tied_head_findings(model: torch.nn.Module, peft_config: Any, wrapped: list[str]) -> list[Finding]:
    """The output layer, tied to the input embeddings, adapted or put in ``modules_to_save``.

    Read from the model: ``get_output_embeddings().weight is get_input_embeddings().weight``. A LoRA on
    the head merges into the one shared matrix (the input embeddings change too); a ``modules_to_save``
    copy unties the head for training, and a merged model saved with ``tie_word_embeddings=True``
    reloads with the untrained embeddings as its head. PEFT's ``ensure_weight_tying`` (where the
    installed PEFT has it) keeps the two together. Where the installed transformers reloads a saved head
    that differs from the embeddings untied (:func:`reload_keeps_a_saved_head`), a ``modules_to_save``
    copy survives the reload and is not flagged.
    """
    base = base_model(model)
    head_fn, embed_fn = (
        getattr(base, "get_output_embeddings", None),
        getattr(base, "get_input_embeddings", None),
    )
    try:
        head = head_fn() if callable(head_fn) else None
        embed = embed_fn() if callable(embed_fn) else None
    except (NotImplementedError, AttributeError):
        return []
    if head is None or embed is None or getattr(head, "weight", None) is not getattr(embed, "weight", 0):
        return []
    name = next(n for n, m in base.named_modules() if m is head)
    saved = [
        e for e in getattr(peft_config, "modules_to_save", None) or [] if name == e or name.endswith(f".{e}")
    ]
    adapted = [w for w in wrapped if w == name]
    if not adapted and saved and reload_keeps_a_saved_head(base):
        saved = []  # the trained copy is saved beside the embeddings and reloads untied
    if not saved and not adapted:
        return []
    has_tying = "ensure_weight_tying" in getattr(type(peft_config), "__dataclass_fields__", {})
    tying = bool(getattr(peft_config, "ensure_weight_tying", False))
    if tying:
        return []
    how = f"modules_to_save={saved!r}" if saved else "target_modules"
    return [
        Finding(
            "unsaved",
            "unsaved.tied_head",
            "silent loss",
            "No error, and the trained output layer is lost: it shares its weight with the input embeddings "
            "(tie_word_embeddings), so after merge_and_unload and a save, the reloaded model ties the head "
            "to the embeddings again and the head's training is gone (or the embeddings changed with it).",
            f"{how} adapts {name!r}, whose weight is the input embeddings' weight "
            f"(config.tie_word_embeddings={getattr(getattr(base, 'config', None), 'tie_word_embeddings', None)}).",
            (
                "Set LoraConfig(ensure_weight_tying=True) (the installed PEFT has it), or "
                if has_tying
                else "The installed PEFT has no ensure_weight_tying: "
            )
            + f"leave {name!r} out of the adapter, or untie the weights (tie_word_embeddings=False) before "
            "training and save both.",
            when="merge and reload",
        )
    ]
