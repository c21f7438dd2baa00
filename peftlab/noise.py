"""Third-party messages that teach nothing here, silenced narrowly, each at its source.

A notebook calls :func:`quiet_known_noise` once, in its first cell, before ``import peft``. Each entry
below names the one message it hides, where it comes from and why it is noise for a learner of these
notebooks; any other warning still shows. Nothing is silenced on ``import peftlab``.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Noise:
    """One known message: the logger (or warning category) that emits it, its pattern, and why it is noise."""

    source: str  # a logger name, or "warnings:<Category>"
    pattern: str  # regular expression matched at the start of the message
    why: str


KNOWN = (
    Noise(
        "warnings:FutureWarning",
        r"`is_gradient_checkpointing` is deprecated",
        "PEFT asks transformers 5 for this attribute inside get_peft_model; nothing in the notebook uses it.",
    ),
    Noise(
        "bitsandbytes.backends.cpu.ops",
        r"Failed to load CPU gemm_4bit_forward from kernels-community",
        "an optional CPU kernel that bitsandbytes would download from the Hub; 4-bit works without it.",
    ),
    Noise(
        "transformers.utils.generic",  # transformers 5: the model's forward, through its output-arguments decorator
        r"`use_cache=True` is incompatible with gradient checkpointing",
        "transformers switches the generation cache off while checkpointing; notebook 06 trains, it never "
        "generates, so the cache is not what its lesson is about.",
    ),
    Noise(
        "transformers.models.opt.modeling_opt",  # transformers 4: each model logs it itself
        r"`use_cache=True` is incompatible with gradient checkpointing",
        "the same message from OPT's own code on transformers 4.",
    ),
    Noise(
        "transformers.utils.import_utils",
        r"`\w+ImageProcessor` requires torchvision \(not installed\)",
        "the PIL image processor it falls back to gives the same pixels for these images.",
    ),
)


class _DropMatching(logging.Filter):
    """A logging filter that drops the records whose message matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(record.getMessage())


def quiet_known_noise(known: tuple[Noise, ...] = KNOWN) -> list[str]:
    """Silence exactly the messages in ``known``; return one line per message silenced (source: pattern)."""
    done = []
    for noise in known:
        if noise.source.startswith("warnings:"):
            category = {
                "FutureWarning": FutureWarning,
                "DeprecationWarning": DeprecationWarning,
                "UserWarning": UserWarning,
            }[noise.source.split(":", 1)[1]]
            warnings.filterwarnings("ignore", message=noise.pattern, category=category)
        else:
            logger = logging.getLogger(noise.source)
            if not any(getattr(f, "pattern", None) == re.compile(noise.pattern) for f in logger.filters):
                logger.addFilter(_DropMatching(noise.pattern))
        done.append(f"{noise.source}: {noise.pattern}")
    return done


class CapturedLog:
    """The lines transformers logged inside :func:`captured_transformers_log` (see ``lines``)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        """The captured lines, without blank ones."""
        return [line for line in self.stream.getvalue().splitlines() if line.strip()]


@contextmanager
def captured_transformers_log() -> Iterator[CapturedLog]:
    """Collect what transformers logs in the block instead of printing it (a report already shown once).

    It swaps the handlers of the library's root logger ("transformers") with plain ``logging`` calls:
    transformers 4.x's own ``remove_handler`` asserts the opposite of what it should.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers")  # makes sure the library has set up its root logger
    root = logging.getLogger("transformers")
    log, saved = CapturedLog(), list(root.handlers)
    for handler in saved:
        root.removeHandler(handler)
    root.addHandler(logging.StreamHandler(log.stream))
    try:
        yield log
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
