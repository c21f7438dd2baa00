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
