"""Quick checks to run before training (the "check before you train" cells of the notebooks)."""

from __future__ import annotations

import inspect

import torch


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain transformers model inside a ``PeftModel`` (or ``model`` itself). Used by the doctor
    (:mod:`peftlab.preflight`) and notebook 04's :mod:`peftlab.position_embeddings`."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def named_parameters_of(fn: object) -> set[str]:
    """The explicitly named parameters of a callable (``*args``/``**kwargs`` excluded)."""
    return {
        p.name
        for p in inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    }


def unaccepted_wrapper_arguments(peft_model: torch.nn.Module) -> list[str]:
    """Arguments the PEFT wrapper's ``forward`` always passes on that the model does not name.

    Used by notebooks 01 and 02. The wrapper of a ``task_type`` (``PeftModelForFeatureExtraction``,
    ``PeftModelForCausalLM``, ...) calls the base model with a fixed set of keywords, ``None`` or
    not. Any keyword the model's own ``forward`` does not declare either raises a TypeError, or,
    where the model takes ``**kwargs``, travels further down and can collide there. The plain
    ``PeftModel`` passes only what it is given, so this returns ``[]`` for it.
    """
    from peft import PeftModel

    wrapper_forward = type(peft_model).forward
    if wrapper_forward is PeftModel.forward:
        return []
    base = peft_model.get_base_model()
    passed = named_parameters_of(wrapper_forward) - {"task_ids"}  # task_ids is PEFT's own
    return sorted(passed - named_parameters_of(type(base).forward))
