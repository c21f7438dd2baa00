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


def exercise_3(ns: dict[str, Any]) -> int:
    """0: a string is a regular expression that must match a module's whole name.

    No layer is named just ``q_proj`` (the names run ``text_model.encoder.layers.0.self_attn.q_proj``
    and so on), so ``target_modules="q_proj"`` matches nothing, and ``get_peft_model`` refuses the
    config (a ``ValueError``; ``NoMatchingPeftModuleError``, a subclass, on recent PEFT). The list
    ``["q_proj"]`` matches by the end of the name (the entry, after a dot): the q_proj layers of both
    towers. A string that works: ``r".*\\.q_proj"``.
    """
    return 0


#: Right answers in other forms, per exercise.
VARIANTS = {1: ["8,192", "8192", 8192.0], 2: [0.5, "0.50", " 0.5 "], 3: ["0", 0.0]}
#: Plausible wrong answers, per exercise.
WRONG = {1: [4096, 16384, 1024], 2: [2, 2.0, 1], 3: [4, 8, 2]}
#: The first plain wrong answer of each exercise, for tests/learner.py's one-kernel learner.
WRONG_ANSWERS = {k: wrong[0] for k, wrong in WRONG.items() if not callable(wrong[0])}
