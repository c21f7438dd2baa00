"""Solutions to notebook 07's exercises (LLaVA: LoRA that lands in the vision tower)."""

import re
from typing import Any


def exercise_1(ns: dict[str, Any]) -> Any:
    """0: ``get_peft_model`` refuses ("Target modules q_proj|v_proj not found in the base model").

    A string in ``target_modules`` is a regular expression that must match the whole module name
    (``re.fullmatch``); no name is just ``q_proj`` or ``v_proj``, so nothing matches. The list
    ``["q_proj", "v_proj"]`` is compared with the end of each name instead, and matched 8 layers of
    the tiny model.
    """
    return 0


def _part_of(name: str) -> str:
    if "vision_tower" in name:
        return "vision tower"
    return "projector" if "multi_modal_projector" in name else "language model"


def exercise_2(ns: dict[str, Any]) -> Any:
    """Both of PEFT's rules, on the vision tower's names::

    def vision_targets(model, target_modules):
        names = [n for n, _ in model.named_modules() if part_of(n) == "vision tower"]
        if isinstance(target_modules, str):  # a regular expression over the whole name
            return [n for n in names if re.fullmatch(target_modules, n)]
        return [n for n in names if any(n == t or n.endswith("." + t) for t in target_modules)]
    """

    def vision_targets(model: Any, target_modules: Any) -> list[str]:
        names = [n for n, _ in model.named_modules() if _part_of(n) == "vision tower"]
        if isinstance(target_modules, str):
            return [n for n in names if re.fullmatch(target_modules, n)]
        return [n for n in names if any(n == t or n.endswith("." + t) for t in target_modules)]

    return vision_targets


def exercise_3(ns: dict[str, Any]) -> Any:
    """2: the vision tower's two ``v_proj`` layers.

    A list in ``exclude_modules`` follows the list rule of ``target_modules``: every name ending in
    ``.self_attn.q_proj`` is excluded, in both towers, and the ``v_proj`` layers keep their adapters,
    in both towers too (2 in the vision tower, 2 in the language model).
    """
    return 2


def _vision_targets_by_suffix(model: Any, target_modules: Any) -> list[str]:
    """Another right form: the list rule as a regular expression (a dot or the start, then the entry, then the end)."""
    if isinstance(target_modules, str):
        pattern = target_modules
    else:
        pattern = r"(.*\.)?(" + "|".join(re.escape(t) for t in target_modules) + ")"
    return [
        n for n, _ in model.named_modules() if "vision_tower" in n and re.fullmatch(pattern, n) is not None
    ]


def _vision_targets_searching(model: Any, target_modules: Any) -> list[str]:
    """A plausible wrong answer: a string searched anywhere in the name (re.search), not matched whole."""
    names = [n for n, _ in model.named_modules() if "vision_tower" in n]
    if isinstance(target_modules, str):
        return [n for n in names if re.search(target_modules, n)]
    return [n for n in names if any(n == t or n.endswith("." + t) for t in target_modules)]


#: Right answers in other forms, per exercise.
VARIANTS = {1: ["0", " 0 "], 2: [_vision_targets_by_suffix], 3: ["2", "2.0"]}
#: Plausible wrong answers, per exercise.
WRONG = {1: [8, 4], 2: [_vision_targets_searching], 3: [0, 4]}
