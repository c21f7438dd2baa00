"""Where checkpoints come from: a tiny one shipped with peftlab or made here, a local folder, or the Hub.

``checkpoint="tiny"`` (the default everywhere) is a small model built from a config and pre-trained
briefly and deterministically on peftlab's synthetic data. peftlab ships these pre-trained tiny
checkpoints (:data:`SHIPPED`, package data: safetensors, config, tokenizer and processor files,
written by ``peftlab ship-tiny``), so a fresh runtime loads them with ``from_pretrained`` and
pre-trains nothing. A tiny checkpoint comes from the shipped files when its recipe hash (the
family, the recipe's settings including the pre-training seed, and the source code of the recipe:
:func:`recipe_hash`) equals the one recorded when they were made; that holds for
``PEFTLAB_PRETRAIN_SEED`` 0 (the default) on an unedited peftlab. Any other seed, an edited recipe
or ``PEFTLAB_SHIPPED=0`` pre-trains one here instead, once, into the cache folder
(:func:`cache_root`), keyed by the recipe hash, the library versions and the CPU thread count.
Either way the model is loaded with ``from_pretrained`` from a folder, as a real checkpoint would be.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import random
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from peftlab.hub import OfflineError, hub_reachable, in_hub_cache
from peftlab.parameters import ParameterError, check_seed
from peftlab.versions import installed

TINY = "tiny"
#: The shipped tiny checkpoints: one folder per name of :data:`peftlab.models.TINY_RECIPES`, and
#: ``manifest.json`` (what made them, their recipe hashes and the premises measured on them).
SHIPPED = Path(__file__).with_name("tiny")


class TinyRecipe(NamedTuple):
    """How a tiny checkpoint is made: ``build(folder)`` saves it; ``sources`` are the code it depends on."""

    family: str
    recipe: dict
    build: Callable[[Path], None]
    sources: tuple = ()


def cache_root() -> Path:
    """``$PEFTLAB_CACHE``, else ``$XDG_CACHE_HOME/peftlab``, else ``~/.cache/peftlab``."""
    if os.environ.get("PEFTLAB_CACHE"):
        return Path(os.environ["PEFTLAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "peftlab"


def pretrain_seed() -> int:
    """The seed of the tiny checkpoints' pre-training: ``$PEFTLAB_PRETRAIN_SEED``, else 0.

    Another seed gives another tiny checkpoint (its own cache folder): a stand-in for the float
    rounding of other machines when measuring how much a notebook's figures vary.
    """
    value = os.environ.get("PEFTLAB_PRETRAIN_SEED", "0")
    try:
        return check_seed(int(value), "PEFTLAB_PRETRAIN_SEED")
    except ValueError:
        raise ParameterError(
            f"PEFTLAB_PRETRAIN_SEED={value!r}: a pre-training seed is a whole number from 0; set it to 0 (the "
            "shipped checkpoints) or another whole number, or unset it."
        ) from None


def recipe_hash(family: str, recipe: dict, sources: tuple[object, ...]) -> str:
    """What makes a tiny checkpoint, the same on every machine: family, settings, recipe source code."""
    code = "".join(inspect.getsource(obj) for obj in sources).replace("\r\n", "\n")  # type: ignore[arg-type]
    blob = json.dumps([family, recipe, code], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _key(recipe_id: str) -> str:
    """The cache key: the recipe hash, the library versions and the CPU thread count (float rounding)."""
    versions = installed(("torch", "transformers", "tokenizers"))
    blob = json.dumps([recipe_id, versions, torch.get_num_threads()], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def shipped_manifest() -> dict:
    """``SHIPPED/manifest.json`` (empty when peftlab ships no tiny checkpoints)."""
    path = SHIPPED / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def shipped_folder(family: str, recipe_id: str, seed: int | None = None) -> Path | None:
    """The shipped folder of ``family`` if it was made by the recipe ``recipe_id``, else ``None``.

    Warns when the shipped checkpoint has the same pre-training seed but another recipe hash: the
    recipe's code or settings were edited since ``peftlab ship-tiny`` ran, so one is pre-trained here.
    """
    if os.environ.get("PEFTLAB_SHIPPED", "1") == "0":
        return None
    entry = shipped_manifest().get("checkpoints", {}).get(family)
    if entry is None:
        return None
    if entry["recipe"] == recipe_id and (SHIPPED / family / "config.json").exists():
        return SHIPPED / family
    if seed == entry["seed"]:
        warnings.warn(
            f"The shipped tiny {family} checkpoint was made by another recipe (hash {entry['recipe']}, "
            f"this code's is {recipe_id}): pre-training one into {cache_root()} instead. "
            "`peftlab ship-tiny` remakes the shipped ones.",
            stacklevel=3,
        )
    return None


@contextlib.contextmanager
def _own_random_state() -> Iterator[None]:
    """Run the body with torch's, Python's and NumPy's global random states restored afterwards.

    A tiny checkpoint is built the first time a notebook loads it, after the notebook has seeded
    everything: without this, the build's ``torch.manual_seed`` would change every random number the
    notebook draws next (LoRA's initialisation, the data order), so a first run and a cached run of
    the same notebook and SEED would give different figures.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():  # the CPU and every CUDA device
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def tiny_checkpoint(family: str, recipe: dict, build: Callable[[Path], None], sources: tuple = ()) -> Path:
    """The folder of the tiny ``family`` checkpoint made by ``recipe``: the shipped one when it was
    made by this recipe (:func:`shipped_folder`), else the cached one, calling ``build(folder)`` the
    first time (see :func:`build_into`). ``build`` must ``save_pretrained`` the model and its
    processor into the folder it is given.
    """
    recipe_id = recipe_hash(family, recipe, (build, *sources))
    shipped = shipped_folder(family, recipe_id, recipe.get("seed"))
    if shipped is not None:
        return shipped
    folder = cache_root() / f"{family}-{_key(recipe_id)}"
    if not (folder / "config.json").exists():
        build_into(folder, build)
    return folder


def build_into(folder: Path, build: Callable[[Path], None]) -> None:
    """Run ``build`` on a temporary folder beside ``folder``, then rename it to ``folder``.

    Parallel runs and interrupted builds never leave a half-written checkpoint behind; when another
    process finished first, its copy is kept. The caller's random state is left as it was.
    """
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with _own_random_state():  # a cold cache must leave the caller's random numbers as a warm one does
            build(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first: keep its copy
            if not (folder / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def quiet_loading(quiet: bool) -> Iterator[None]:
    """Load without transformers' "Loading weights" bar and its warnings when ``quiet`` (the tiny models:
    read from the local cache in a blink, several times a notebook, with nothing to warn about that the
    notebook does not say itself). A real checkpoint keeps its bars and warnings; errors are still raised."""
    from transformers.utils import logging as hf_logging

    if not quiet:
        yield
        return
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity(hf_logging.CRITICAL)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def resolve(
    checkpoint: str,
    family: str,
    make_tiny: Callable[[], Path],
    parameter: str = "CHECKPOINT",
    tiny: str = TINY,
    weights: bool = True,
) -> str:
    """Turn a ``checkpoint`` argument into something ``from_pretrained`` can load.

    ``"tiny"`` -> the tiny checkpoint's folder (shipped or cached); an existing folder -> itself (it
    must hold a config.json and, with ``weights``, a weights file); anything else is taken as a Hub
    id, which must already be in the local Hub cache or the Hub must be reachable. Anything that
    cannot load raises :class:`ParameterError` (or its :class:`OfflineError`) naming ``parameter``
    and saying what to set it to (``tiny``: the name that works offline).
    """
    fix = f"set {parameter} to {tiny!r} (runs offline) or to a folder written by save_pretrained"
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ParameterError(f"{parameter}={checkpoint!r} names no checkpoint: {fix}.")
    if checkpoint == TINY:
        return str(make_tiny())
    folder = Path(checkpoint).expanduser()
    if folder.is_dir():
        return str(_checked_folder(folder, parameter, fix, weights))
    if _looks_like_a_path(checkpoint):
        raise ParameterError(
            f"{parameter}={checkpoint!r} looks like a folder, but there is no such folder here: {fix}."
        )
    if in_hub_cache(checkpoint):
        return checkpoint
    ok, reason = hub_reachable()
    if not ok:
        raise OfflineError(
            f"{parameter}={checkpoint!r} is not a folder here, and the Hugging Face Hub, where a {family} id is "
            f"fetched from, cannot be reached ({reason}): {fix}."
        )
    return checkpoint


def _looks_like_a_path(name: str) -> bool:
    """A Hub id is ``name`` or ``owner/name``; anything with more parts or a path's start is a path."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


#: Files that hold a transformers checkpoint's weights (single or sharded).
WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json")


def _checked_folder(folder: Path, parameter: str, fix: str, weights: bool) -> Path:
    """``folder`` if it holds a checkpoint (config.json, and weights if asked), else ParameterError."""
    if (folder / "adapter_config.json").exists() and not (folder / "config.json").exists():
        raise ParameterError(
            f"{parameter}={str(folder)!r} holds a PEFT adapter, not a model: set {parameter} to its base model "
            "and load the adapter with PeftModel.from_pretrained(model, folder)."
        )
    if not (folder / "config.json").exists():
        raise ParameterError(
            f"{parameter}={str(folder)!r} is a folder without config.json, so not a checkpoint: {fix}."
        )
    if weights and not any(any(folder.glob(pattern)) for pattern in WEIGHTS):
        raise ParameterError(
            f"{parameter}={str(folder)!r} holds a config.json but no weights (no *.safetensors or "
            f"pytorch_model*.bin): {fix}."
        )
    return folder
