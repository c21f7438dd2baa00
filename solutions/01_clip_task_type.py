"""Solutions to the exercises of notebook 01 (CLIP + LoRA with a task_type)."""

import inspect
from typing import Any


def exercise_1(ns: dict[str, Any]) -> Any:
    """Yes.

    ``get_peft_model`` replaces the targeted layers of the model itself with LoRA layers; the task type
    only decides which class is put around it (and so which ``forward`` runs first). The inner CLIP
    carries every adapter.
    """
    return "yes"


def exercise_2(ns: dict[str, Any]) -> Any:
    """Fails (on every stack measured).

    ``PeftModelForSequenceClassification.forward`` names text keywords too (``inputs_embeds``,
    ``labels``) and passes them on; CLIP rejects them, or passes them down until one arrives twice.
    """
    return "fails"


def exercise_3(ns: dict[str, Any]) -> Any:
    """Declared, or swallowed by ``**kwargs``::

    def accepts(model_class, keyword):
        params = inspect.signature(model_class.forward).parameters.values()
        return any(p.name == keyword or p.kind == p.VAR_KEYWORD for p in params)
    """

    def accepts(model_class: type, keyword: str) -> bool:
        params = inspect.signature(model_class.forward).parameters.values()
        return any(p.name == keyword or p.kind == p.VAR_KEYWORD for p in params)

    return accepts


def _accepts_by_kind(model_class: type, keyword: str) -> bool:
    """Exercise 3 another right way: the named parameters, or a ``**kwargs`` of any name."""
    parameters = inspect.signature(model_class.forward).parameters
    return keyword in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def _declared_only(model_class: type, keyword: str) -> bool:
    """Exercise 3 half-right: forgets that ``**kwargs`` swallows any keyword."""
    return keyword in inspect.signature(model_class.forward).parameters


#: Right answers in other forms (judged the same).
VARIANTS = {1: ["Yes", " YES "], 2: ["Fails", "'fails'"], 3: [_accepts_by_kind]}
#: Plausible wrong answers.
WRONG = {1: ["no"], 2: ["runs"], 3: [_declared_only]}
#: The wrong answer the one-kernel learner test (tests/learner.py) tries first: a learner's typical one.
WRONG_ANSWERS = {k: wrong[0] for k, wrong in WRONG.items() if not callable(wrong[0])}
