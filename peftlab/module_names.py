"""Names of a model's modules: the plain model inside a PEFT wrapper, and the names LoRA can target.

Generic helpers used by the doctor (:mod:`peftlab.preflight`), the lessons and the tests.
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
