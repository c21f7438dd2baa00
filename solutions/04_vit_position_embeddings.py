"""Solutions to the exercises of notebook 04 (ViT position embeddings); ``ns`` is the notebook's namespace."""

from collections.abc import Callable
from typing import Any

import torch
from peft import get_peft_model_state_dict


def exercise_1(ns: dict[str, Any]) -> str:
    """Predict first: the table read through the reloaded model is the **trained** one.

    ``modules_to_save=["vit.embeddings"]`` wraps the whole ``ViTEmbeddings`` in a
    ``ModulesToSaveWrapper``: the original module stays frozen, a copy trains, and
    ``save_pretrained`` writes that copy (table, class token, patch convolution).
    ``PeftModel.from_pretrained`` loads it back into the wrapper's active copy, and since PEFT PR
    #2117 reading an attribute through the wrapper reads the active copy. (Contrast the report's
    workaround: a table unfrozen by hand is never saved, and the reload brings back the base one.)
    The notebook judges the answer against what the installed versions really did: should a PEFT
    release stop passing attribute reads through, this solution turns CI red and fix 2 needs a new look.
    """
    return "trained"


def _unsaved_trainables(peft_model: torch.nn.Module) -> list[str]:
    return [
        name
        for name, p in peft_model.named_parameters()
        if p.requires_grad and "lora_" not in name and "modules_to_save" not in name
    ]


def exercise_2(ns: dict[str, Any]) -> Callable[[torch.nn.Module], list[str]]:
    """Trainable, and neither a LoRA matrix nor a ``modules_to_save`` copy::

    def unsaved_trainables(peft_model):
        return [
            name
            for name, p in peft_model.named_parameters()
            if p.requires_grad and "lora_" not in name and "modules_to_save" not in name
        ]

    ``save_pretrained`` on a ``PeftModel`` writes the adapter's own weights (LoRA's ``lora_A`` and
    ``lora_B``) and the trained copies of the ``modules_to_save`` entries; anything else that trains
    (here the table unfrozen by hand) is lost at the reload. A stricter form asks PEFT what it will
    write (``get_peft_model_state_dict``) and keeps the trainable parameters whose storage is not in
    it. peftlab's doctor makes this check as ``unsaved.trainable_outside_peft``.
    """
    return _unsaved_trainables


def exercise_3(ns: dict[str, Any]) -> int:
    """4: ``token_embedding``, ``patch_embedding`` and both towers' ``position_embedding``.

    A ``modules_to_save`` entry matches every module whose name ends with it (``str.endswith``, no dot
    needed), so ``"embedding"`` matches the four modules named ``...embedding``; the two
    ``...embeddings`` modules end in an ``s`` and do not match. With ``target_modules``' rule (the name
    is the entry or ends with ``.`` + the entry) the same entry would match none. CLIP's tables are
    ``nn.Embedding`` modules, so ``modules_to_save`` can train and save them, unlike ViT's table, an
    ``nn.Parameter``.
    """
    return 4


def _unsaved_by_storage(peft_model: torch.nn.Module) -> list[str]:
    """Another right form: the trainable parameters whose storage PEFT's saved state does not hold."""
    written = {t.data_ptr() for t in get_peft_model_state_dict(peft_model).values()}
    return [n for n, p in peft_model.named_parameters() if p.requires_grad and p.data_ptr() not in written]


def _every_trainable(peft_model: torch.nn.Module) -> list[str]:
    """A plausible wrong answer: every trainable parameter (LoRA and the modules_to_save copies are saved)."""
    return [n for n, p in peft_model.named_parameters() if p.requires_grad]


def _not_lora(peft_model: torch.nn.Module) -> list[str]:
    """A plausible wrong answer: forgets that the modules_to_save copies are saved too."""
    return [n for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n]


#: Right answers in other forms, per exercise.
VARIANTS = {1: ["Trained", " trained "], 2: [_unsaved_by_storage], 3: ["4", 4.0]}
#: Plausible wrong answers, per exercise.
WRONG = {1: ["base"], 2: [_every_trainable, _not_lora], 3: [0, 2, 6]}
#: The first plain wrong answer of each exercise, for tests/learner.py's one-kernel learner.
WRONG_ANSWERS = {k: wrong[0] for k, wrong in WRONG.items() if not callable(wrong[0])}
