"""Class 4, checkpoint/config mismatch: compare a checkpoint's tensor shapes with the model's.

Reuses notebook 05's tools (:mod:`peftlab.checkpoint_shapes`): shapes are read without loading the
weights where the format allows, folded into one row per tensor family, and, for Chinese-CLIP, the
published model is identified. For any other model the config that would match is searched: each
config number that a mismatch points at (a width, a depth, an image size) is tried, greedily, on a
model built on the ``meta`` device (no memory), and kept when fewer tensors disagree. The proposal
is only called verified when a model built from it has every tensor shape of the checkpoint.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from peftlab import checkpoint_shapes as cs
from peftlab.module_names import base_model
from peftlab.preflight.findings import Finding

Shapes = dict[str, tuple[int, ...]]


def model_shapes(model: torch.nn.Module) -> Shapes:
    """``{name: shape}`` of a model's state dict (works on the meta device)."""
    return cs.read_shapes(model.state_dict())


def align(want: Shapes, have: Shapes, prefix: str) -> Shapes:
    """The checkpoint's names, with the model's ``base_model_prefix`` added or removed as it fits best."""
    want = cs._strip_prefix(want)
    options = [want, {f"{prefix}.{k}": v for k, v in want.items()},
               {k.removeprefix(f"{prefix}."): v for k, v in want.items()}] if prefix else [want]  # fmt: skip
    return max(options, key=lambda o: len(set(o) & set(have)))


def disagreements(want: Shapes, have: Shapes) -> list[cs.Triple]:
    """(name, checkpoint shape, model shape) for every size mismatch, every tensor only in the
    checkpoint, and every numbered-block tensor only in the model (a depth difference)."""
    sized = [(k, s, have[k]) for k, s in want.items() if k in have and have[k] != s]
    extra = [(k, s, None) for k, s in want.items() if k not in have]
    deeper = [(k, None, s) for k, s in have.items() if k not in want and re.search(r"\.\d+\.", k)]
    return sized + extra + deeper


def checkpoint_findings(model: torch.nn.Module, checkpoint: str | Path | Mapping) -> list[Finding]:
    """Class 4: the checkpoint's tensors against ``model``; with the config that would match."""
    base = base_model(model)
    have = model_shapes(base)
    want = align(cs.read_shapes(checkpoint), have, getattr(base, "base_model_prefix", ""))
    triples = disagreements(want, have)
    if not triples:
        return []
    sized = [t for t in triples if t[1] is not None and t[2] is not None]
    table = cs._summarise(triples)
    evidence = "; ".join(f"{r[0]}: {r[1]} tensors, {r[4] or 'checkpoint ' + r[2] + ' vs model ' + r[3]}"
                         for r in table.rows[:4]) + (" ..." if len(table.rows) > 4 else "")  # fmt: skip
    return [Finding(
        "checkpoint", "checkpoint.shape_mismatch" if sized else "checkpoint.depth_mismatch",
        "error" if sized else "silent loss",
        (f"RuntimeError: size mismatch for {sized[0][0]} (and {len(sized) - 1} more) when the checkpoint "
         "is loaded into this model; ignore_mismatched_sizes=True would 'load' it with those tensors "
         "re-initialised.") if sized else
        ("from_pretrained only warns: blocks the model lacks are dropped, blocks the checkpoint lacks "
         "stay randomly initialised."),
        f"{len(triples)} of {len(want)} checkpoint tensors disagree with the model: {evidence}.",
        matching_config_text(base, want),
        raises="RuntimeError" if sized else None, when="load",
    )]  # fmt: skip


def matching_config_text(base: torch.nn.Module, want: Shapes) -> str:
    """The fix: the config that matches the checkpoint, as changes to the model's own config."""
    if type(base).__name__ == "ChineseCLIPModel":
        try:
            ident = cs.identify(want)
        except (ValueError, cs.UnknownCheckpointError):
            ident = None
        if ident is not None:
            return (f"Build the config from the checkpoint's shapes: it is {ident.name} "
                    "(config = checkpoint_shapes.build_config(checkpoint_shapes.identify(checkpoint))).")  # fmt: skip
    changes, left = matching_config(base, want)
    listed = ", ".join(f"{path} {old} -> {new}" for path, (old, new) in changes.items())
    if not changes:
        return (
            "No config change found that makes the shapes agree: is it a checkpoint of another model class?"
        )
    verdict = (
        "verified on the meta device: every tensor shape then matches"
        if not left
        else (f"{left} tensors still disagree after these changes")
    )
    return f"Build the model with the config that matches the checkpoint: {listed} ({verdict})."


def _int_fields(config: Any, path: str = "") -> dict[str, int]:
    """``{"vision_config.hidden_size": 48, ...}``: the integer settings of a config and its sub-configs."""
    from transformers import PretrainedConfig

    fields = {}
    for key, value in vars(config).items():
        if isinstance(value, PretrainedConfig) and not path:
            fields |= _int_fields(value, f"{key}.")
        elif isinstance(value, int) and not isinstance(value, bool) and not key.startswith("_"):
            fields[f"{path}{key}"] = value
    return fields


def _candidates(
    fields: dict[str, int], triples: list[cs.Triple], patch: dict[str, int]
) -> set[tuple[str, int]]:
    found = set()
    for name, ckpt, mine in triples:
        if ckpt and mine and len(ckpt) == len(mine):
            for a, b in zip(ckpt, mine):
                found |= {(path, a) for path, v in fields.items() if v == b and a != b}
            if "position" in name and ckpt[0] != mine[0]:
                for side in {math.isqrt(ckpt[0] - 1), math.isqrt(ckpt[0])}:
                    if side and side * side in (ckpt[0] - 1, ckpt[0]):
                        found |= {
                            (p.replace("patch_size", "image_size"), side * size) for p, size in patch.items()
                        }
    depth = _depths(triples)
    for mine, ckpt in depth:
        found |= {(path, ckpt) for path, v in fields.items() if "layer" in path and v == mine}
    return found


def _depths(triples: list[cs.Triple]) -> set[tuple[int, int]]:
    """(model depth, checkpoint depth) pairs read from blocks present on one side only."""
    pairs = set()
    for side in (1, 2):
        blocks: dict[str, set[int]] = {}
        for name, *shapes in triples:
            if (
                shapes[side - 1] is not None
                and shapes[2 - side] is None
                and (m := re.search(r"^(.*?)\.(\d+)\.", name))
            ):
                blocks.setdefault(m.group(1), set()).add(int(m.group(2)))
        for numbers in blocks.values():
            lowest, highest = min(numbers), max(numbers)
            pairs.add((lowest, highest + 1) if side == 1 else (highest + 1, lowest))
    return pairs


def _build(base: torch.nn.Module, config: Any) -> Shapes:
    with torch.device("meta"):
        return model_shapes(type(base)(config))


def matching_config(base: torch.nn.Module, want: Shapes, rounds: int = 8) -> tuple[dict, int]:
    """Greedy search for config changes that make ``type(base)`` match ``want``.

    Returns ``({setting: (old, new)}, tensors still disagreeing)``.
    """
    config, changes = copy.deepcopy(base.config), {}
    triples = disagreements(want, model_shapes(base))  # then those of the best config found so far
    for _ in range(rounds):
        fields = _int_fields(config)
        patch = {p: v for p, v in fields.items() if p.endswith("patch_size")}
        best = None
        for path, value in sorted(_candidates(fields, triples, patch)):
            trial = copy.deepcopy(config)
            _set(trial, path, value)
            try:
                left = disagreements(want, _build(base, trial))
            except Exception:  # noqa: BLE001  (an impossible config, e.g. width not divisible by heads)
                continue
            if len(left) < len(triples) and (best is None or len(left) < len(best[0])):
                best = (left, path, value, trial)
        if best is None:
            break
        triples, path, value, config = best
        changes[path] = (changes.get(path, (_int_fields(base.config)[path], None))[0], value)
        if not triples:
            break
    return changes, len(triples)


def _set(config: Any, path: str, value: int) -> None:
    *parents, key = path.split(".")
    for parent in parents:
        config = getattr(config, parent)
    setattr(config, key, value)
