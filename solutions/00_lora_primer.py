"""Solutions to the exercises of notebook 00 (the LoRA primer)."""

from typing import Any


def exercise_1(ns: dict[str, Any]) -> int:
    """8 x (in + out) summed over the q_proj and v_proj layers of both towers.

    On the tiny CLIP that is 8 layers (2 towers x 2 layers x q, v), each 64 x 64:
    8 * 8 * (64 + 64) = 8,192. The intended reasoning: LoRA adds A (r x in) and B (out x r) to each
    wrapped layer, nothing else, and the base weights stay frozen. Computed here from the model's
    layer shapes, not from the count the notebook measured.
    """
    layers = [m for name, m in ns["linears"].items() if name.rsplit(".", 1)[-1] in ("q_proj", "v_proj")]
    return sum(8 * (m.in_features + m.out_features) for m in layers)


def exercise_2(ns: dict[str, Any]) -> float:
    """lora_alpha / r = 8 / 16 = 0.5: the scale halves when r doubles at a fixed lora_alpha.

    Learners often raise r for capacity and are surprised that the adapter's effect shrinks; that is
    why many configs keep lora_alpha = 2 * r (or use use_rslora=True: lora_alpha / sqrt(r)).
    """
    return 8 / 16


def exercise_3(ns: dict[str, Any]) -> str:
    """A regex over the full module name: a list entry matches by suffix, so ["q_proj", "v_proj"]
    would also hit the text tower.

    ``r"vision_model\\..*\\.(q_proj|v_proj)"`` matches the whole name of the vision tower's projections
    only. A list of full names (``[n for n in names if n.startswith("vision_model.") and ...]``) works
    too. Notebook 07 puts LoRA into the vision tower this way.
    """
    return r"vision_model\..*\.(q_proj|v_proj)"
