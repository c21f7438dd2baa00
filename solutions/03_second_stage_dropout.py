"""Solutions to the exercises of notebook 03 (a second LoRA stage)."""

from typing import Any


def exercise_1(ns: dict[str, Any]) -> Any:
    """Identity.

    With ``lora_dropout=0`` PEFT does not drop the dropout module: it puts an ``nn.Identity`` under
    the same name, ``lora_dropout.default``. Target names are matched by their end before types are
    looked at, so ``default`` matches that Identity just as it matched the Dropout, and an Identity
    is no more a linear layer than the Dropout was: PEFT before the change that skips adapter layers
    names it in the same "is not supported" error.
    """
    return "Identity"


def exercise_2(ns: dict[str, Any]) -> Any:
    """``["base_layer", "default", "fc1", "fc2", "k_proj", "out_proj"]`` (any order).

    The recipe keeps the last name part of every ``nn.Linear``. Inside each LoRA layer (on ``q_proj``
    and ``v_proj``) those are ``base_layer`` and ``lora_A.default`` / ``lora_B.default``; the linear
    layers stage one left alone keep their own names. ``lm_head`` is dropped by the recipe. Those
    four plain names still match plain linear layers, so newer PEFT wraps them: the double wrap.
    """
    return ["base_layer", "default", "fc1", "fc2", "k_proj", "out_proj"]


def exercise_3(ns: dict[str, Any]) -> Any:
    """Base: its outputs are the base model's, stage one is gone.

    ``"all-linear"`` never chooses a module inside a LoRA layer, so there is no Dropout and no error;
    it chooses stage one's LoRA layers as a whole (and ``lm_head``, since a ``PeftModel`` cannot name
    its output layer). ``get_peft_model`` then puts a new adapter, again named ``default``, into those
    layers, newly initialised: ``lora_B`` starts at zero, so the model gives the base model's outputs.
    Only warnings say so.
    """
    return "base"


#: Right answers in other forms (judged the same).
VARIANTS = {
    1: ["nn.Identity", "torch.nn.Identity", " identity "],
    2: [
        ("out_proj", "k_proj", "fc2", "fc1", "default", "base_layer"),
        ["base-layer", "Default", "FC1", "fc2", "k_proj", "out_proj"],
    ],
    3: ["Base", "'base'"],
}
#: Plausible wrong answers.
WRONG = {
    1: ["Dropout", "none", "Linear"],
    2: [
        ["base_layer", "default"],
        ["fc1", "fc2", "k_proj", "out_proj"],
        ["base_layer", "default", "fc1", "fc2", "k_proj", "out_proj", "lm_head"],
        "base_layer",
    ],
    3: ["error", "stage one"],
}
#: The wrong answer the one-kernel learner test (tests/learner.py) tries first: a learner's typical one.
WRONG_ANSWERS = {k: wrong[0] for k, wrong in WRONG.items()}
