"""The registry of notebook 05 (``notebooks/05_chinese_clip_shapes.py``): its lesson and its failures.

``measured`` names the stacks (``peftlab/stacks/*.txt``, chosen by their pins with ``stacks_where``)
and the single releases the failing block was run on.
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="05_chinese_clip_shapes",
    fix="read the architecture from the checkpoint's tensor shapes; LoRA on both towers",
)

FAILURES = (
    Failure(
        id="chinese_clip_size_mismatch",
        notebook=LESSON.notebook,
        title="A 'large' Chinese-CLIP checkpoint loaded into a model built from the 'base' config",
        expectations=(
            Expectation(
                when={},  # torch's load_state_dict, the same on every transformers version
                raises="RuntimeError",
                match=r"Error\(s\) in loading state_dict for ChineseCLIPModel:[\s\S]*size mismatch for vision_model\.",
                reason="load_state_dict compares every tensor's shape with the model's, strict or not, and "
                "lists one line per tensor that differs (then the blocks only one side has): the vision "
                "tower and both projections are wider in the checkpoint; the shared text tower fits.",
                measured=stacks_where(),
            ),
        ),
    ),
    Failure(
        id="chinese_clip_wrong_config",
        notebook=LESSON.notebook,
        title="ChineseCLIPModel.from_pretrained(checkpoint, config=<the other size's config>)",
        expectations=(
            Expectation(
                when={"transformers": change("load_report").before},
                raises="RuntimeError",
                match=r"Error\(s\) in loading state_dict for \w+:\s+size mismatch for \w+: copying a param with shape",
                reason="transformers 4.x copies the checkpoint tensor by tensor into the module that owns it, "
                "so the first mismatched tensor in the file stops the load, and torch's message names only "
                "that module's class (e.g. Linear) and the parameter's short name (weight).",
                measured=stacks_where(transformers=change("load_report").before),
            ),
            Expectation(
                when={"transformers": change("load_report").since},
                raises="RuntimeError",
                match=r"You set `ignore_mismatched_sizes` to `False`, thus raising an error",
                reason="transformers 5 loads every tensor, logs a LOAD REPORT table (one row per tensor, "
                "layer numbers folded, each MISMATCH with both shapes) and then raises, pointing at it.",
                measured=stacks_where(transformers=change("load_report").since),
            ),
        ),
    ),
    Failure(
        id="chinese_clip_ignore_mismatched_sizes",
        notebook=LESSON.notebook,
        title="from_pretrained(..., ignore_mismatched_sizes=True) loads, with the weights re-initialised",
        expectations=(
            Expectation(
                when={},
                raises="WeightsNotLoadedError",
                match=r"checkpoint tensors are not in the model as saved: [1-9]\d* re-initialised at another shape",
                reason="ignore_mismatched_sizes=True replaces every tensor whose shape disagrees with a freshly "
                "initialised one and drops those the model has no place for; from_pretrained succeeds (a "
                "warning on 4.x, a LOAD REPORT on 5.x), so only a comparison with the checkpoint shows it.",
                measured=stacks_where(),
            ),
        ),
    ),
)
