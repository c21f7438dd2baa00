"""One loader per model family of the collection; each returns ``(model, processor)``.

Every loader takes ``checkpoint="tiny"`` (built offline, pre-trained briefly, cached), a local
folder, or a Hub id, and ``device`` (``None`` picks CUDA, MPS or the CPU). :func:`load_model` picks
the loader by family name. Loaders are imported on first use, so ``import peftlab`` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from peftlab.hub import OfflineError
from peftlab.models.cache import TINY

#: family -> "module:function"; the notebook that uses each family is in the module's docstring.
LOADERS: dict[str, str] = {
    "clip": "peftlab.models.clip:load_clip",
    "blip2": "peftlab.models.blip2:load_blip2",
    "opt": "peftlab.models.opt:load_opt",
    "vit": "peftlab.models.vit:load_vit",
    "chinese_clip": "peftlab.models.chinese_clip:load_chinese_clip",
}

__all__ = ["LOADERS", "TINY", "OfflineError", "load_model", *(v.split(":")[1] for v in LOADERS.values())]


def loader(family: str) -> Callable:
    """The loader function of ``family``, with a clear error for an unknown family."""
    if family not in LOADERS:
        raise ValueError(f"Unknown model family {family!r}; choose one of {sorted(LOADERS)}.")
    module, function = LOADERS[family].split(":")
    return getattr(importlib.import_module(module), function)


def load_model(family: str, checkpoint: str = TINY, device: str | None = None) -> tuple:
    """Load ``family`` (one of :data:`LOADERS`) from ``checkpoint``; returns ``(model, processor)``."""
    return loader(family)(checkpoint, device=device)


def __getattr__(name: str) -> Callable:  # ``from peftlab.models import load_clip`` and friends
    for family, target in LOADERS.items():
        if target.endswith(f":{name}"):
            return loader(family)
    raise AttributeError(f"module 'peftlab.models' has no attribute {name!r}")
