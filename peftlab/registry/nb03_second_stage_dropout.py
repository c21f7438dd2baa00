"""The registry of notebook 03 (``notebooks/03_second_stage_dropout.py``): its lesson and its failures.

``measured`` names the stacks (``peftlab/stacks/*.txt``, chosen by their pins with ``stacks_where``)
and the single releases the failing block was run on.
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="03_second_stage_dropout",
    fix="`PeftModel.from_pretrained(..., is_trainable=True)`; a second adapter; or merge and re-wrap",
)

#: What both second-stage recipes raise before PEFT skipped the modules inside adapter layers.
DROPOUT_NOT_SUPPORTED = Expectation(
    when={"peft": change("peft_skips_adapter_layers").before},
    raises="ValueError",
    match=r"Target module Dropout\(p=[\d.]+, inplace=False\) is not supported",
    reason="The recipe's names 'base_layer' and 'default' match modules inside the LoRA layers; "
    "'default' also names each lora_dropout.default, a Dropout, and LoRA cannot wrap a Dropout.",
    measured=stacks_where(peft=change("peft_skips_adapter_layers").before),
)

#: The releases that skip adapter layers and still raise a plain ValueError for an empty match.
SKIPS_WITH_PLAIN_VALUE_ERROR = (
    f"{change('peft_skips_adapter_layers').since},{change('peft_no_matching_module_error').before}"
)

FAILURES = (
    Failure(
        id="second_stage_dropout",
        notebook=LESSON.notebook,
        title="Second LoRA stage with get_peft_model on a model that carries LoRA (stage one: every linear layer)",
        expectations=(
            DROPOUT_NOT_SUPPORTED,
            Expectation(
                when={"peft": SKIPS_WITH_PLAIN_VALUE_ERROR},
                raises="ValueError",
                match=r"No modules were targeted for adaptation",
                reason="PEFT skips modules inside an existing adapter layer (PR #2539); every match of "
                "'base_layer' and 'default' lies inside one, so nothing is left to wrap, and these releases "
                "say so with a plain ValueError.",
                measured=("peft 0.16.0", "peft 0.17.1", "peft 0.18.1", "peft 0.19.1", "peft 0.20.0")
                + stacks_where(peft=SKIPS_WITH_PLAIN_VALUE_ERROR),
            ),
            Expectation(
                when={"peft": change("peft_no_matching_module_error").since},
                raises="NoMatchingPeftModuleError",
                match=r"Target modules \{.*\} not found in the base model",
                reason="PEFT skips modules inside an existing adapter layer (PR #2539); every match of "
                "'base_layer' and 'default' lies inside one, so nothing is left to wrap, and "
                "NoMatchingPeftModuleError (a ValueError) says no target matched.",
                measured=("peft 0.21.0",) + stacks_where(peft=change("peft_no_matching_module_error").since),
            ),
        ),
    ),
    Failure(
        id="second_stage_nothing_to_train",
        notebook=LESSON.notebook,
        title="Training an adapter loaded with PeftModel.from_pretrained without is_trainable=True",
        expectations=(
            Expectation(
                when={},
                raises="NothingToTrainError",
                match=r"has 0 trainable parameters",
                reason="PeftModel.from_pretrained loads an adapter for inference unless is_trainable=True; "
                "peftlab.train.train refuses a model with nothing to train.",
                measured=("peft 0.16.0", "peft 0.20.0", "peft 0.21.0") + stacks_where(),
            ),
        ),
    ),
    Failure(
        id="second_stage_double_wrap",
        notebook=LESSON.notebook,
        title="Second LoRA stage with get_peft_model on a model that carries LoRA (stage one: q_proj, v_proj)",
        expectations=(
            DROPOUT_NOT_SUPPORTED,
            Expectation(
                when={"peft": change("peft_skips_adapter_layers").since},
                raises=None,
                reason="PEFT skips the matches inside the LoRA layers but still wraps the linear layers "
                "stage one left alone (fc1, fc2, k_proj, out_proj): a PeftModel inside a PeftModel, with only "
                "a warning. Its saved keys carry a doubled 'base_model.model.' prefix, so a later "
                "PeftModel.from_pretrained loads none of them.",
                measured=("peft 0.16.0", "peft 0.20.0", "peft 0.21.0")
                + stacks_where(peft=change("peft_skips_adapter_layers").since),
            ),
        ),
    ),
)
