"""One loader per model family of the collection; each returns ``(model, processor)``.

Every loader takes ``checkpoint="tiny"`` (a small model pre-trained briefly offline: shipped with
peftlab, see :mod:`peftlab.models.cache`), a local folder, or a Hub id, and ``device`` (``None`` picks CUDA, MPS or the CPU). :func:`load_model` picks
the loader by family name. Loaders are imported on first use, so ``import peftlab`` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from peftlab.hub import OfflineError
from peftlab.models.cache import TINY, TinyRecipe, recipe_hash, shipped_manifest

#: family -> "module:function"; the notebook that uses each family is in the module's docstring.
LOADERS: dict[str, str] = {
    "clip": "peftlab.models.clip:load_clip",
    "blip2": "peftlab.models.blip2:load_blip2",
    "opt": "peftlab.models.opt:load_opt",
    "vit": "peftlab.models.vit:load_vit",
    "chinese_clip": "peftlab.models.chinese_clip:load_chinese_clip",
}

#: The tiny checkpoints that ship with peftlab: name -> ("module:function" giving its TinyRecipe,
#: keyword arguments). The name is the checkpoint's family in peftlab.models.cache (and its folder).
TINY_RECIPES: dict[str, tuple[str, dict]] = {
    "clip": ("peftlab.models.clip:tiny_recipe", {}),
    "blip2": ("peftlab.models.blip2:tiny_recipe", {}),
    "opt": ("peftlab.models.opt:tiny_recipe", {}),
    "vit": ("peftlab.models.vit:tiny_recipe", {}),
    "chinese_clip-base": ("peftlab.models.chinese_clip:tiny_recipe", {"size": "base"}),
    "chinese_clip-large": ("peftlab.models.chinese_clip:tiny_recipe", {"size": "large"}),
    "llava": ("peftlab.models.llava:tiny_recipe", {}),
}

__all__ = [
    "LOADERS",
    "TINY_RECIPES",
    "tiny_recipe",
    "todays_recipe_hash",
    "stale_shipped",
    "TINY",
    "OfflineError",
    "load_model",
    *(v.split(":")[1] for v in LOADERS.values()),
]


def loader(family: str) -> Callable:
    """The loader function of ``family``, with a clear error for an unknown family."""
    if family not in LOADERS:
        raise ValueError(f"Unknown model family {family!r}; choose one of {sorted(LOADERS)}.")
    module, function = LOADERS[family].split(":")
    return getattr(importlib.import_module(module), function)


def tiny_recipe(name: str) -> TinyRecipe:
    """How the shipped tiny checkpoint ``name`` (one of :data:`TINY_RECIPES`) is made."""
    if name not in TINY_RECIPES:
        raise ValueError(f"Unknown tiny checkpoint {name!r}; choose one of {sorted(TINY_RECIPES)}.")
    target, kwargs = TINY_RECIPES[name]
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(**kwargs)


def todays_recipe_hash(name: str, seed: int = 0) -> str:
    """The recipe hash this code gives the tiny checkpoint ``name`` pre-trained with ``seed``."""
    spec = tiny_recipe(name)
    return recipe_hash(spec.family, {**spec.recipe, "seed": seed}, (spec.build, *spec.sources))


def stale_shipped() -> list[str]:
    """The shipped tiny checkpoints whose recipe changed since ``peftlab ship-tiny`` (a notebook would
    pre-train its own instead of loading them)."""
    shipped = shipped_manifest().get("checkpoints", {})
    return [
        name for name, entry in shipped.items() if entry["recipe"] != todays_recipe_hash(name, entry["seed"])
    ]


def load_model(family: str, checkpoint: str = TINY, device: str | None = None) -> tuple:
    """Load ``family`` (one of :data:`LOADERS`) from ``checkpoint``; returns ``(model, processor)``."""
    return loader(family)(checkpoint, device=device)


def __getattr__(name: str) -> Callable:  # ``from peftlab.models import load_clip`` and friends
    for family, target in LOADERS.items():
        if target.endswith(f":{name}"):
            return loader(family)
    raise AttributeError(f"module 'peftlab.models' has no attribute {name!r}")
