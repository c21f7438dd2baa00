"""The registry of notebook 06 (``notebooks/06_gradient_checkpointing.py``): its lesson and its failures.

The tiny BLIP-2 was run on the documented and current stacks and on the six Colab runtimes' pins
when the notebook was written (2026-12-02). The matrix of ``docs/matrix/`` predates the notebook:
``tests/test_registry_static.py`` lists these claims as not yet recorded there.
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="06_gradient_checkpointing",
    fix='`gradient_checkpointing_kwargs={"use_reentrant": False}` and `enable_input_require_grads()` before '
    "`get_peft_model`; gradients checked per tower at step 1",
)

#: What the loss says when nothing before the first checkpointed layer requires grad.
NO_GRAD_FN = r"element 0 of tensors does not require grad and does not have a grad_fn"
NON_REENTRANT = change("gc_default_non_reentrant")
EVERY_TOWER = change("input_grads_every_tower")

FAILURES = (
    Failure(
        id="gc_enabled_after_peft_model",
        notebook=LESSON.notebook,
        title="gradient_checkpointing_enable() with its defaults, called after get_peft_model (LoRA on the OPT)",
        expectations=(
            Expectation(
                when={"transformers": NON_REENTRANT.before},
                raises="RuntimeError",
                match=NO_GRAD_FN,
                reason="gradient_checkpointing_enable() picks reentrant checkpointing, which gives a layer's output "
                "a grad_fn only when an input requires grad. Under the frozen base nothing before the OPT's first "
                "layer does: get_peft_model hooks the input embeddings only when checkpointing is already on.",
                measured=stacks_where(transformers=NON_REENTRANT.before),
            ),
            Expectation(
                when={"transformers": NON_REENTRANT.since},
                raises=None,
                reason="gradient_checkpointing_enable() defaults to non-reentrant checkpointing, which records the "
                "graph through the LoRA parameters inside each layer, whatever requires grad upstream.",
                measured=stacks_where(transformers=NON_REENTRANT.since),
            ),
        ),
    ),
    Failure(
        id="gc_reentrant_after_peft_model",
        notebook=LESSON.notebook,
        title='gradient_checkpointing_kwargs={"use_reentrant": True}, switched on after get_peft_model',
        expectations=(
            Expectation(
                when={},
                raises="RuntimeError",
                match=NO_GRAD_FN,
                reason="Reentrant checkpointing on every layer that trains, and no hook makes an input require "
                "grad (get_peft_model adds one only when checkpointing is already on; BLIP-2's main input is "
                "pixel_values, so transformers 5 does not add one either): the loss has no grad_fn.",
                # the stacks on both sides of the default's change: the same error on each
                measured=stacks_where(transformers=NON_REENTRANT.before)
                + stacks_where(transformers=NON_REENTRANT.since),
            ),
        ),
    ),
    Failure(
        id="gc_tower_without_gradient",
        notebook=LESSON.notebook,
        title="Checkpointing on before get_peft_model, LoRA on the ViT, Q-Former and OPT: a tower gets no gradient",
        expectations=(
            Expectation(
                when={"transformers": EVERY_TOWER.before},
                raises="SilentLossError",
                match=r"get no gradient: vision_model: 2 of 2",
                reason="Reentrant checkpointing (the default) and one require-grad hook, on the OPT's token "
                "embeddings (enable_input_require_grads, called by get_peft_model): the OPT learns, the ViT's "
                "layers see pixels through a frozen patch embedding and their LoRA gets no gradient. On the "
                "documented stack the Q-Former's layers are not checkpointed (its encoder reads "
                "config.gradient_checkpointing, which is never set) and learn; on later 4.x releases they are, "
                "and get no gradient either.",
                measured=stacks_where(transformers=EVERY_TOWER.before),
            ),
            Expectation(
                when={"transformers": EVERY_TOWER.since},
                raises=None,
                reason="Non-reentrant checkpointing by default, and enable_input_require_grads() hooks every "
                "tower's input embeddings: every adapted layer gets its gradient.",
                measured=stacks_where(transformers=EVERY_TOWER.since),
            ),
        ),
    ),
)
