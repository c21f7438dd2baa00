"""Solutions to notebook 07's exercises (LLaVA: LoRA that lands in the vision tower)."""


def exercise_1(ns: dict) -> object:
    """4 on the tiny model: q_proj and v_proj in each of the vision tower's 2 layers.

    A list entry matches any module name ending in "." + entry, and CLIP's attention layers are named
    q_proj/v_proj like the Llama's; the answer is read from the wrapped model, so it is right on any stack.
    """
    return ns["lora_layers_per_part"](ns["report_model"])["vision tower"]


def exercise_2(ns: dict) -> object:
    """A regular expression anchored on the language model's name component, ending in the three
    projections: it matches both transformers layouts (language_model.model.layers... in 4.x,
    model.language_model.layers... in 5.x) and nothing in the vision tower or the projector."""
    return r".*language_model.*\.(q_proj|k_proj|v_proj)"


def exercise_3(ns: dict) -> object:
    """exclude_modules as a regular expression (a string): it must match the whole name, and
    ".*vision_tower.*" matches every layer inside the tower. A list entry such as "vision_tower"
    only matches a layer whose name equals it or ends in ".vision_tower"."""
    return r".*vision_tower.*"
