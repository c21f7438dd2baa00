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


def exercise_3(ns: dict) -> str:
    """no: with ``use_reentrant=False``, prepare_model_for_kbit_training switches checkpointing on but skips
    enable_input_require_grads() (peft ``utils/other.py``: "When having `use_reentrant=False` +
    gradient_checkpointing, there is no need for this hack").

    It adds the hook only for reentrant checkpointing, which needs it. The notebook's fix calls
    enable_input_require_grads() itself: the hook costs nothing and covers a later switch to reentrant.
    """
    return "yes" if ns["prepared_hooks"] else "no"


#: Right answers in other forms, per exercise. Exercise 1's right answer depends on the installed
#: transformers: its other forms are the learner test's (the stored solution in upper case and with
#: spaces around it, tests/learner.py), judged against the notebook's own run.
VARIANTS = {
    1: [],
    2: ["B", " b ", "'b'"],
    3: ["No", " no ", "'no'"],
}
#: Plausible wrong answers, per exercise ("error" is wrong on every stack: backward runs in exercise 1).
WRONG = {
    1: ["error"],
    2: ["a", "c"],
    3: ["yes"],
}
#: The wrong answer the one-kernel learner test gives first (tests/learner.py).
WRONG_ANSWERS = {k: answers[0] for k, answers in WRONG.items()}
