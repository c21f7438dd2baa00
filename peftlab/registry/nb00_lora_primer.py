"""The registry of notebook 00 (``notebooks/00_lora_primer.py``): a primer, no failure."""

from __future__ import annotations

from peftlab.registry.schema import Failure, Lesson

LESSON = Lesson(
    notebook="00_lora_primer",
    fix="none to fix: each argument's effect counted and measured (parameters vs `r`, rank of `B @ A`, "
    "the `lora_alpha / r` scale)",
    primer=True,
)

FAILURES: tuple[Failure, ...] = ()
