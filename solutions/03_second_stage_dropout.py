"""Solutions to the exercises of notebook 03 (a second LoRA stage)."""

from typing import Any


def exercise_1(ns: dict[str, Any]) -> Any:
    """Identity.

    With ``lora_dropout=0`` PEFT does not drop the dropout module: it puts an ``nn.Identity`` under
    the same name, ``lora_dropout.default``. Target names are matched by suffix before types are
    looked at, so ``default`` matches that Identity just as it matched the Dropout, and an Identity
    is no more a linear layer than the Dropout was.
    """
    return "Identity"


def exercise_2(ns: dict[str, Any]) -> Any:
    """``["layers.1.fc1"]``.

    A list entry matches every module whose full name ends with a dot and the entry. ``"fc1"`` ends
    both ``model.decoder.layers.0.fc1`` and ``model.decoder.layers.1.fc1``; ``"layers.1.fc1"`` ends
    only the second. (A regular expression for the whole name, ``r"model\\.decoder\\.layers\\.1\\.fc1"``,
    works too.)
    """
    return ["layers.1.fc1"]


def exercise_3(ns: dict[str, Any]) -> Any:
    """lm_head.

    ``"all-linear"`` leaves out the output layer by asking the transformers model for it
    (``get_output_embeddings``). Handed the loaded stage-one model, a ``PeftModel`` and not a
    transformers model, the rule cannot ask, so ``lm_head`` is chosen with the LoRA layers.
    """
    return "lm_head"
