"""The registry of notebook 01 (``notebooks/01_clip_task_type.py``): its lesson and its failure.

``measured`` names the stacks (``peftlab/stacks/*.txt``, chosen by their pins with ``stacks_where``)
and the single releases the failing block was run on.
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="01_clip_task_type",
    fix="no `task_type`: the plain `PeftModel` keeps CLIP's forward",
)

FAILURES = (
    Failure(
        id="clip_task_type",
        notebook=LESSON.notebook,
        title="CLIP + LoRA with task_type=FEATURE_EXTRACTION",
        expectations=(
            Expectation(
                when={"transformers": change("clip_forward_kwargs").before},
                raises="TypeError",
                match=r"CLIPModel\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
                reason="PeftModelForFeatureExtraction.forward passes inputs_embeds=None to the base "
                "model, and CLIPModel.forward has no such parameter.",
                measured=stacks_where(transformers=change("clip_forward_kwargs").before),
            ),
            Expectation(
                when={"transformers": change("clip_forward_kwargs").since},
                raises="TypeError",
                match=r"got multiple values for keyword argument 'inputs_embeds'",
                reason="CLIPModel.forward accepts **kwargs since transformers 5, so the stray inputs_embeds=None "
                "travels on with them. The image tower runs first: CLIPVisionModel.forward calls its encoder "
                "with inputs_embeds=hidden_states and **kwargs, which hold inputs_embeds a second time.",
                measured=stacks_where(transformers=change("clip_forward_kwargs").since),
            ),
        ),
    ),
)
