"""Where checkpoints come from: a tiny one made and cached here, a local folder, or the Hub.

``checkpoint="tiny"`` (the default everywhere) builds a small model from a config, pre-trains it
briefly and deterministically on peftlab's synthetic data, and saves it with ``save_pretrained``
into the cache folder; every later load goes through ``from_pretrained`` on that folder, as a real
checkpoint would. The cache key covers the config, the library versions and the source code of
the recipe, so a change to any of them builds a fresh checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from peftlab.hub import OfflineError, hub_reachable, in_hub_cache
from peftlab.versions import installed

TINY = "tiny"


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
    return int(os.environ.get("PEFTLAB_PRETRAIN_SEED", "0"))


def _key(family: str, recipe: dict, sources: tuple[object, ...]) -> str:
    """Config, versions, recipe code and the CPU thread count (which changes float rounding)."""
    code = "".join(inspect.getsource(obj) for obj in sources)  # type: ignore[arg-type]
    versions = installed(("torch", "transformers", "tokenizers"))
    blob = json.dumps([family, recipe, versions, torch.get_num_threads(), code], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


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
    """Return the cached folder for ``family``/``recipe``, calling ``build(folder)`` the first time.

    ``build`` must ``save_pretrained`` the model and its processor into the folder it is given.
    The folder is written under a temporary name and renamed at the end, so parallel runs and
    interrupted builds never leave a half-written checkpoint behind.
    """
    folder = cache_root() / f"{family}-{_key(family, recipe, (build, *sources))}"
    if (folder / "config.json").exists():
        return folder
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
    return folder


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


def resolve(checkpoint: str, family: str, make_tiny: Callable[[], Path]) -> str:
    """Turn a ``checkpoint`` argument into something ``from_pretrained`` can load.

    ``"tiny"`` -> the cached tiny folder; an existing folder -> itself; anything else is taken as
    a Hub id, which must already be in the local Hub cache or the Hub must be reachable.
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ValueError(f"checkpoint must be 'tiny', a local folder or a Hub id, not {checkpoint!r}.")
    if checkpoint == TINY:
        return str(make_tiny())
    if Path(checkpoint).is_dir():
        if not (Path(checkpoint) / "config.json").exists():
            raise FileNotFoundError(f"{checkpoint} is a folder but holds no config.json: not a checkpoint.")
        return checkpoint
    if in_hub_cache(checkpoint):
        return checkpoint
    ok, reason = hub_reachable()
    if not ok:
        raise OfflineError(
            f"Cannot load the {family} checkpoint {checkpoint!r}: the Hugging Face Hub is not reachable "
            f"({reason}) and the checkpoint is not in the local Hub cache. To run offline, use "
            f"checkpoint='tiny' (the default), or pass the path of a local folder holding the checkpoint. "
            "On Colab or a machine with internet access, the Hub id works as it is."
        )
    return checkpoint
