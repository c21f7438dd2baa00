"""Solutions to the exercises of notebook 01 (CLIP + LoRA with a task_type)."""

from typing import Any


def exercise_1(ns: dict[str, Any]) -> Any:
    """Two per vision layer: 4 on the tiny CLIP (24 on clip-vit-base-patch32, 12 layers).

    Each attention block of the vision tower has a ``q_proj`` and a ``v_proj``; both names end a
    module name there exactly as they do in the text tower, so suffix matching adapts both towers.
    """
    return 2 * ns["model"].config.vision_config.num_hidden_layers


def exercise_2(ns: dict[str, Any]) -> Any:
    """``r"vision_model\\..*\\.(q_proj|v_proj)"``.

    A single string is a regular expression that must match the whole module name, so it can name
    the tower; a list entry only ever matches the end of a name and would hit both towers.
    """
    return r"vision_model\..*\.(q_proj|v_proj)"


def exercise_3(ns: dict[str, Any]) -> Any:
    """``inputs_embeds``.

    ``PeftModelForFeatureExtraction.forward`` was written for text encoders and always passes
    ``inputs_embeds`` (as None) to the model; CLIP's ``forward`` either rejects it (no ``**kwargs``)
    or lets it travel on until a call receives it twice.
    """
    return "inputs_embeds"
