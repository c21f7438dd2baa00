"""The registry of notebook 07 (``notebooks/07_lora_in_vision_tower.py``): its lesson and its failures.

Run on the two CI stacks (every push) and on single PEFT releases either side of ``exclude_modules``;
the Colab stacks have not been run (the matrix of ``docs/matrix/`` predates the notebook).
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="07_lora_in_vision_tower",
    fix="a regular expression over the whole module name (PEFT's `re.fullmatch`), or `exclude_modules` as "
    "one; the vision tower stays bit-identical",
)

#: What the detector says when LoRA reached the vision tower.
VISION_TOWER_ADAPTED = r"LoRA on [1-9]\d* layers of the vision tower"

FAILURES = (
    Failure(
        id="llava_qv_vision_tower",
        notebook=LESSON.notebook,
        title='LoRA target_modules=["q_proj", "v_proj"] on LLaVA adapts the vision tower too',
        expectations=(
            Expectation(
                when={},
                raises="VisionTowerAdaptedError",
                match=VISION_TOWER_ADAPTED,
                reason="A list entry matches every module whose name ends in '.q_proj' or '.v_proj': the CLIP "
                "vision tower names its attention layers exactly like the Llama does, so get_peft_model "
                "wraps both, silently.",
                measured=stacks_where() + ("peft 0.13.2", "peft 0.14.0"),
            ),
        ),
    ),
    Failure(
        id="llava_all_linear_vision_tower",
        notebook=LESSON.notebook,
        title='LoRA target_modules="all-linear" on LLaVA adapts the vision tower and the projector too',
        expectations=(
            Expectation(
                when={},
                raises="VisionTowerAdaptedError",
                match=VISION_TOWER_ADAPTED,
                reason="PEFT expands 'all-linear' to every linear layer of the model except the output layer "
                "(get_output_embeddings()), whatever tower it lies in.",
                measured=stacks_where() + ("peft 0.13.2", "peft 0.14.0"),
            ),
        ),
    ),
    Failure(
        id="llava_exclude_modules_list",
        notebook=LESSON.notebook,
        title='exclude_modules=["vision_tower"] excludes nothing inside the vision tower',
        expectations=(
            Expectation(
                when={"peft": change("peft_exclude_modules").before},
                raises="TypeError",
                match=r"unexpected keyword argument 'exclude_modules'",
                reason="LoraConfig has no exclude_modules yet.",
                measured=("peft 0.13.2",),
            ),
            Expectation(
                when={"peft": change("peft_exclude_modules").since},
                raises="VisionTowerAdaptedError",
                match=VISION_TOWER_ADAPTED,
                reason="A list in exclude_modules is matched like target_modules, against each candidate's own "
                "name (equal to an entry, or ending in '.' + entry): 'vision_tower' names the tower, not the "
                "q_proj layers inside it, so nothing is excluded. A regular expression (a string) over the "
                "whole name does exclude them.",
                measured=stacks_where(peft=change("peft_exclude_modules").since) + ("peft 0.14.0",),
            ),
        ),
    ),
)
