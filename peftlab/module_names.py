"""Names of a model's modules: the plain model inside a PEFT wrapper, and the names LoRA can target.

Generic helpers used by the doctor (:mod:`peftlab.doctor`), the lessons and the tests.
"""

from __future__ import annotations

from collections import Counter

import torch


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain transformers model inside a ``PeftModel`` (or ``model`` itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def linear_layer_names(model: torch.nn.Module) -> dict[str, int]:
    """How many ``nn.Linear`` layers end in each name: the names ``target_modules`` can use."""
    names = Counter(
        name.rsplit(".", 1)[-1]
        for name, m in base_model(model).named_modules()
        if isinstance(m, torch.nn.Linear)
    )
    return dict(names)


def attention_targets(model: torch.nn.Module) -> list[str]:
    """The query and value projections' names as the installed transformers calls them.

    Read from the model, never hard-coded: ViT's are ``["query", "value"]`` before
    ``registry.CHANGES["vit_attention_renamed"]`` and ``["q_proj", "v_proj"]`` from it on.
    """
    found = linear_layer_names(model)
    for pair in (["query", "value"], ["q_proj", "v_proj"]):
        if all(name in found for name in pair):
            return pair
    raise ValueError(f"No query/value projections among the linear layers {sorted(found)}.")


#: Words in a module name that mark a vision encoder, and the connector between it and the language model.
VISION_WORDS = ("vision", "visual", "image")
PROJECTOR_WORDS = ("projector", "connector", "projection", "qformer")


def tower_of(name: str) -> str:
    """``"vision tower"``, ``"projector"`` or ``"language model"``: the part of an image-text model
    that the module ``name`` lies in, read from the first name component that marks one (the rest,
    e.g. ``lm_head`` or a Qwen2-VL ``model.layers.0``, is the language model)."""
    for part in name.split("."):
        if any(word in part for word in PROJECTOR_WORDS):
            return "projector"
        if any(word in part for word in VISION_WORDS):
            return "vision tower"
    return "language model"


def vision_towers(model: torch.nn.Module) -> list[str]:
    """Names of the outermost modules of ``model`` that :func:`tower_of` places in a vision tower."""
    found: list[str] = []
    for name, _ in base_model(model).named_modules():
        if name and tower_of(name) == "vision tower" and not any(name.startswith(f"{f}.") for f in found):
            found.append(name)
    return found


def all_linear_names(model: torch.nn.Module) -> list[str]:
    """The modules ``target_modules="all-linear"`` wraps: every linear layer but the output layer.

    PEFT expands the shorthand to each ``nn.Linear`` (and ``Conv1D``) and leaves out the layer
    ``get_output_embeddings()`` returns; nothing else is left out, whatever tower a layer is in.
    """
    from transformers.pytorch_utils import Conv1D

    base = base_model(model)
    getter = getattr(base, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    return [
        name
        for name, m in base.named_modules()
        if isinstance(m, (torch.nn.Linear, Conv1D)) and m is not head and "lora_" not in name
    ]
