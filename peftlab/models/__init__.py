"""One loader per model family of the collection; each returns ``(model, processor)``.

Every loader takes ``checkpoint="tiny"`` (built offline, pre-trained briefly, cached), a local
folder, or a Hub id. :func:`load_model` picks the loader by family name.
"""

from __future__ import annotations

from collections.abc import Callable

from peftlab.models.checkpoint import TINY, OfflineError
from peftlab.models.clip import load_clip

LOADERS: dict[str, Callable] = {"clip": load_clip}

__all__ = ["LOADERS", "TINY", "OfflineError", "load_clip", "load_model"]


def load_model(family: str, checkpoint: str = TINY, device: str | None = None) -> tuple:
    """Load ``family`` (one of :data:`LOADERS`) from ``checkpoint``; returns ``(model, processor)``."""
    if family not in LOADERS:
        raise ValueError(f"Unknown model family {family!r}; choose one of {sorted(LOADERS)}.")
    return LOADERS[family](checkpoint, device=device)
