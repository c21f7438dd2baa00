"""The registry of notebook 02 (``notebooks/02_blip2_inputs_embeds.py``): its lesson and its failures.

``measured`` names the stacks (``peftlab/stacks/*.txt``, chosen by their pins with ``stacks_where``)
and the single releases the failing block was run on.
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="02_blip2_inputs_embeds",
    fix="no `task_type`; `AutoModelForImageTextToText`; QLoRA VQA fine-tune",
)

#: The releases whose BLIP-2 forward has **kwargs but not yet inputs_embeds.
KWARGS_WITHOUT_INPUTS_EMBEDS = (
    f"{change('blip2_forward_kwargs').since},{change('blip2_inputs_embeds').before}"
)

FAILURES = (
    Failure(
        id="blip2_vision2seq_import",
        notebook=LESSON.notebook,
        title="The report's `from transformers import AutoModelForVision2Seq`",
        expectations=(
            Expectation(
                when={"transformers": change("vision2seq_removed").before},
                raises=None,
                reason="AutoModelForVision2Seq exists in every transformers 4.x (from 4.54 it warns that it "
                "is deprecated in favour of AutoModelForImageTextToText, which exists on 4.x and 5.x).",
                measured=stacks_where(transformers=change("vision2seq_removed").before),
            ),
            Expectation(
                when={"transformers": change("vision2seq_removed").since},
                raises="ImportError",
                match=r"cannot import name 'AutoModelForVision2Seq' from 'transformers'",
                reason="transformers 5 removed AutoModelForVision2Seq; AutoModelForImageTextToText "
                "loads BLIP-2 as Blip2ForConditionalGeneration on 4.x and 5.x alike.",
                measured=stacks_where(transformers=change("vision2seq_removed").since),
            ),
        ),
    ),
    Failure(
        id="blip2_causal_lm_inputs_embeds",
        notebook=LESSON.notebook,
        title='BLIP-2 + LoRA with task_type="CAUSAL_LM"',
        expectations=(
            Expectation(
                when={"transformers": change("blip2_forward_kwargs").before},
                raises="TypeError",
                match=r"Blip2ForConditionalGeneration\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
                reason="PeftModelForCausalLM.forward passes inputs_embeds=None to the model, and "
                "Blip2ForConditionalGeneration.forward (no **kwargs yet) has no such parameter.",
                measured=stacks_where(transformers=change("blip2_forward_kwargs").before),
            ),
            Expectation(
                when={"transformers": KWARGS_WITHOUT_INPUTS_EMBEDS},
                raises="TypeError",
                match=r"got multiple values for keyword argument 'inputs_embeds'",
                reason="Blip2ForConditionalGeneration.forward has **kwargs but not yet inputs_embeds: "
                "the stray inputs_embeds=None lands in **kwargs and collides with the inputs_embeds BLIP-2 "
                "passes to its OPT.",
                measured=(
                    "transformers 4.52.0",
                    "transformers 4.52.4",
                    "transformers 4.53.0",
                    "transformers 4.53.3",
                )
                + stacks_where(transformers=KWARGS_WITHOUT_INPUTS_EMBEDS),
            ),
            Expectation(
                when={"transformers": change("blip2_inputs_embeds").since},
                raises=None,
                reason="Blip2ForConditionalGeneration.forward declares inputs_embeds, so "
                "PeftModelForCausalLM's inputs_embeds=None is accepted and ignored. The wrapper is still "
                "PeftModelForCausalLM, whose forward starts with input_ids, not pixel_values.",
                measured=("transformers 4.54.0", "transformers 4.55.0")
                + stacks_where(transformers=change("blip2_inputs_embeds").since),
            ),
        ),
    ),
    Failure(
        id="blip2_causal_lm_positional",
        notebook=LESSON.notebook,
        title="BLIP-2 called positionally, model(pixel_values, input_ids), through the CAUSAL_LM wrapper",
        expectations=(
            Expectation(
                when={"transformers": change("blip2_forward_kwargs").before},
                raises="TypeError",
                match=r"got an unexpected keyword argument 'inputs_embeds'",
                reason="The wrapper passes inputs_embeds=None whatever the call, and Python rejects that "
                "keyword before it looks at the arguments that are missing.",
                measured=stacks_where(transformers=change("blip2_forward_kwargs").before),
            ),
            Expectation(
                when={"transformers": change("blip2_forward_kwargs").since},
                raises="TypeError",
                match=r"missing 1 required positional argument: 'pixel_values'",
                reason="PeftModelForCausalLM.forward(input_ids, attention_mask, ...) takes the images as "
                "input_ids and the token ids as attention_mask, then calls BLIP-2 by keyword, with no "
                "pixel_values.",
                measured=(
                    "transformers 4.52.0",
                    "transformers 4.53.0",
                    "transformers 4.54.0",
                    "transformers 4.53.3",
                )
                + stacks_where(transformers=change("blip2_forward_kwargs").since),
            ),
        ),
    ),
)
