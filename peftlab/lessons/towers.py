"""Where LoRA landed in an image-text model, tower by tower (notebook 07: LLaVA).

A LLaVA-style model is three parts: a vision tower (CLIP, SigLIP...), a projector, and a language
model. ``target_modules=["q_proj", "v_proj"]`` or ``"all-linear"`` matches layers of the vision
tower as readily as the language model's, and nothing says so. These helpers count, per part,
the LoRA layers a PeftModel carries, its trainable parameters and the tensors of a saved adapter,
and :func:`assert_language_model_only` turns a vision tower that carries LoRA into an exception
(:class:`VisionTowerAdaptedError`), which is how a notebook makes the silent failure visible.
"""

from __future__ import annotations

from pathlib import Path

import torch

from peftlab.detectors import VisionTowerAdaptedError
from peftlab.module_names import tower_of
from peftlab.tables import Table

#: The parts of an image-text model, in the order an image goes through them.
PARTS = ("vision tower", "projector", "language model")


def _lora_layers(model: torch.nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]


def lora_layers_by_part(model: torch.nn.Module) -> dict[str, int]:
    """How many layers of each part carry a LoRA adapter."""
    counts = dict.fromkeys(PARTS, 0)
    for name in _lora_layers(model):
        counts[tower_of(name)] += 1
    return counts


def trainable_by_part(model: torch.nn.Module) -> dict[str, int]:
    """How many trainable parameters each part holds."""
    counts = dict.fromkeys(PARTS, 0)
    for name, p in model.named_parameters():
        if p.requires_grad:
            counts[tower_of(name)] += p.numel()
    return counts


def adapter_tensors_by_part(folder: str | Path) -> dict[str, int]:
    """How many tensors of a saved adapter (``adapter_model.safetensors``) belong to each part."""
    from safetensors import safe_open

    counts = dict.fromkeys(PARTS, 0)
    with safe_open(str(Path(folder) / "adapter_model.safetensors"), "pt") as saved:
        for key in saved.keys():  # noqa: SIM118  (safe_open is not a mapping)
            counts[tower_of(key)] += 1
    return counts


def assert_language_model_only(model: torch.nn.Module) -> int:
    """Raise :class:`VisionTowerAdaptedError` if any layer of the vision tower carries LoRA.

    Returns the number of LoRA layers (all outside the vision tower) when there is none.
    """
    layers = _lora_layers(model)
    vision = [n for n in layers if tower_of(n) == "vision tower"]
    if vision:
        raise VisionTowerAdaptedError(
            f"LoRA on {len(vision)} layers of the vision tower (first: {vision[0]}), besides "
            f"{len(layers) - len(vision)} outside it; get_peft_model said nothing. The setup meant "
            "the language model only."
        )
    return len(layers)


def parts_table(models: dict[str, torch.nn.Module]) -> Table:
    """One row per setup: LoRA layers and trainable parameters in each part."""
    rows = []
    for label, model in models.items():
        layers, params = lora_layers_by_part(model), trainable_by_part(model)
        rows.append([label, *(f"{layers[p]} ({params[p]:,})" for p in PARTS), f"{sum(params.values()):,}"])
    columns = ["setup", *(f"{p}: LoRA layers (params)" for p in PARTS), "trainable parameters"]
    return Table(columns, rows, "Where LoRA landed, part by part")


@torch.no_grad()
def vision_features(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The vision tower's last hidden states for ``pixel_values``: what the projector receives."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    tower = next(m for n, m in base.named_modules() if n.rsplit(".", 1)[-1] == "vision_tower")
    was_training = tower.training
    tower.eval()
    out = tower(pixel_values=pixel_values.to(next(tower.parameters()).device), output_hidden_states=True)
    tower.train(was_training)
    return out.hidden_states[-1].float().cpu()
