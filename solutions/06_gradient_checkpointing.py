"""Solutions to notebook 06's exercises (gradient checkpointing with a frozen base)."""


def exercise_1(ns: dict) -> str:
    """LoRA on the ViT alone, checkpointing on before get_peft_model, defaults.

    Depends on the installed transformers, which is why the notebook runs it. Where
    gradient_checkpointing_enable() defaults to reentrant checkpointing and enable_input_require_grads()
    hooks only the language model's token embeddings (transformers 4.x): "no gradient". The hook makes
    the OPT's input require grad, so the loss has a grad_fn and backward runs, but the ViT's
    checkpointed layers see pixels through a frozen patch embedding and their LoRA gets nothing.
    Where the default is non-reentrant (transformers 5): "learns".
    """
    return ns["vision_outcome"]


def exercise_2(ns: dict) -> str:
    """Answer b: reentrant checkpointing runs the layer under no_grad and gives its output a grad_fn only
    when one of its inputs requires grad; the parameters inside the layer are not consulted."""
    return "b"


def exercise_3(ns: dict) -> float:
    """The ratio of the two 'saved for backward' figures (checkpointing on / off), measured in the
    notebook: a checkpointed layer keeps only its input for the backward pass."""
    return ns["share"]
