"""``peftlab ship-tiny``: pre-train the tiny checkpoints afresh and write them into the package.

Each checkpoint of :data:`peftlab.models.TINY_RECIPES` is built by its own recipe with pre-training
seed 0, loaded back with ``from_pretrained``, held to its premises (:mod:`peftlab.models.premises`:
a checkpoint that misses one is not shipped) and written to ``peftlab/models/tiny/<name>/``;
``manifest.json`` records its recipe hash, the versions and thread count that made it, the seconds
its pre-training took and its measured premises.

It runs on the documented stack only: files saved by its transformers (the oldest pinned) load on every
later release (as the Hub's checkpoints do), while a newer major release saves a processor, a tokenizer
class and LLaVA's weight names that the older one cannot read. Run it after any change to a recipe (tests/test_tiny_checkpoints.py
fails until then) and commit the folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import torch

from peftlab.versions import installed, stack_pins

#: The stack whose transformers writes the shipped files (the oldest pinned: what it saves, every
#: later release reads).
SHIP_STACK = "documented"
#: What must equal the stack's pins for the files to be readable everywhere.
WRITERS = ("transformers", "tokenizers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab ship-tiny``."""
    from peftlab.models import TINY_RECIPES

    parser.add_argument("--only", nargs="+", choices=sorted(TINY_RECIPES), help="these checkpoints only")


def wrong_stack() -> str | None:
    """Why this environment may not write the shipped files, or ``None`` when it may."""
    pins, have = stack_pins(SHIP_STACK), installed(WRITERS)
    differ = [
        f"{lib} {have[lib]} (the {SHIP_STACK} stack pins {pins[lib]})"
        for lib in WRITERS
        if have[lib] != pins[lib]
    ]
    if differ:
        return (
            f"ship-tiny writes files every stack must read, so it runs on the {SHIP_STACK} stack; installed: "
            + ", ".join(differ)
            + f". Use: pip install -r peftlab/stacks/{SHIP_STACK}.txt -e ."
        )
    return None


def ship(name: str) -> dict:
    """Build, check and write the shipped checkpoint ``name``; return its manifest entry."""
    from peftlab.models import premises, tiny_recipe
    from peftlab.models.cache import SHIPPED, build_into, recipe_hash

    spec = tiny_recipe(name)
    new = SHIPPED / f"{name}.new"
    shutil.rmtree(new, ignore_errors=True)
    started = time.process_time()
    build_into(new, spec.build)
    seconds = time.process_time() - started
    measured = premises.measure(name, *premises.load(name, str(new)))
    if missed := premises.broken(name, measured):
        shutil.rmtree(new)
        raise SystemExit("not shipped, a premise is missed:\n  " + "\n  ".join(missed))
    shutil.rmtree(SHIPPED / name, ignore_errors=True)
    new.rename(SHIPPED / name)
    return {
        "recipe": recipe_hash(spec.family, spec.recipe, (spec.build, *spec.sources)),
        "seed": spec.recipe["seed"],
        "made_with": {**installed(("torch", *WRITERS)), "threads": torch.get_num_threads()},
        "pretraining_cpu_seconds": round(seconds, 1),
        "premises": {k: round(v, 4) for k, v in measured.items()},
    }


def main(args: argparse.Namespace) -> int:
    """Remake the shipped tiny checkpoints (all, or ``--only`` some) and their manifest."""
    from peftlab.models import TINY_RECIPES
    from peftlab.models.cache import SHIPPED, shipped_manifest

    if reason := wrong_stack():
        print(reason)
        return 2
    os.environ["PEFTLAB_PRETRAIN_SEED"] = "0"  # the shipped files are seed 0's
    SHIPPED.mkdir(exist_ok=True)
    manifest = shipped_manifest() or {"checkpoints": {}}
    for name in args.only or TINY_RECIPES:
        entry = ship(name)
        manifest["checkpoints"][name] = entry
        print(f"{name}: recipe {entry['recipe']}, {entry['pretraining_cpu_seconds']} s of CPU, premises hold")
        (SHIPPED / "manifest.json").write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    return 0
