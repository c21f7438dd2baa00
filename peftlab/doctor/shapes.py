"""Class 4, checkpoint/config mismatch: compare a checkpoint's tensor shapes with the model's.

Built on :mod:`peftlab.checkpoints`: shapes are read without loading the weights where the format
allows, compared with the model's, and folded into one row per tensor family. Then the config that
would match is searched, for any model class: each config number that a mismatch points at (a
width, a depth, an image size) is tried, greedily, on a model built on the ``meta`` device (no
memory), and kept when fewer tensors disagree; a width change keeps the head width where the head
count would no longer divide it. The proposal is only called verified when a model built from it
has every tensor shape of the checkpoint.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from peftlab.checkpoints import (
    Shapes,
    Triple,
    align_names,
    as_loaded,
    compare_shapes,
    model_shapes,
    read_shapes,
    summarise,
)
from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model


def checkpoint_findings(model: torch.nn.Module, checkpoint: str | Path | Mapping) -> list[Finding]:
    """Class 4: the checkpoint's tensors against ``model``; with the config that would match."""
    base = base_model(model)
    have = model_shapes(base)
    want = align_names(as_loaded(read_shapes(checkpoint), base), have, getattr(base, "base_model_prefix", ""))
    triples = compare_shapes(want, have)
    if not triples:
        return []
    sized = [t for t in triples if t[1] is not None and t[2] is not None]
    table = summarise(triples)
    evidence = "; ".join(
        f"{r[0]}: {r[1]} tensors, {r[4] or 'checkpoint ' + r[2] + ' vs model ' + r[3]}"
        for r in table.rows[:4]
    ) + (" ..." if len(table.rows) > 4 else "")
    return [
        Finding(
            "checkpoint",
            "checkpoint.shape_mismatch" if sized else "checkpoint.depth_mismatch",
            "error" if sized else "silent loss",
            (
                f"RuntimeError: size mismatch for {sized[0][0]} (and {len(sized) - 1} more) when the checkpoint "
                "is loaded into this model; ignore_mismatched_sizes=True would 'load' it with those tensors "
                "re-initialised."
            )
            if sized
            else (
                "from_pretrained only warns: blocks the model lacks are dropped, blocks the checkpoint lacks "
                "stay randomly initialised."
            ),
            f"{len(triples)} of {len(want)} checkpoint tensors disagree with the model: {evidence}.",
            matching_config_text(base, want),
            raises="RuntimeError" if sized else None,
            when="load",
        )
    ]


def matching_config_text(base: torch.nn.Module, want: Shapes) -> str:
    """The fix: the config that matches the checkpoint, as changes to the model's own config."""
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
    widths = [path for path in changes if path.endswith("hidden_size")]
    heads = (
        f" No tensor shape shows the head count: check num_attention_heads against the checkpoint's "
        f"config.json (where {', '.join(widths)} changed)."
        if widths
        else ""
    )
    return f"Build the model with the config that matches the checkpoint: {listed} ({verdict}).{heads}"


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


def _candidates(fields: dict[str, int], triples: list[Triple], patch: dict[str, int]) -> set[tuple[str, int]]:
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


def _depths(triples: list[Triple]) -> set[tuple[int, int]]:
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
    for sub in [config, *(v for v in vars(config).values() if hasattr(v, "to_dict"))]:
        width, heads = getattr(sub, "hidden_size", None), getattr(sub, "num_attention_heads", None)
        if isinstance(width, int) and isinstance(heads, int) and heads and width % heads:
            raise ValueError(f"hidden_size {width} is not a multiple of num_attention_heads {heads}")
    with torch.device("meta"):
        return model_shapes(type(base)(config))


def _trial(config: Any, path: str, value: int) -> Any:
    """A copy of ``config`` with ``path`` set to ``value``. A new ``hidden_size`` keeps the head count
    where it divides the new width, else the head width (no shape shows the head count)."""
    trial = copy.deepcopy(config)
    *parents, key = path.split(".")
    owner = trial
    for parent in parents:
        owner = getattr(owner, parent)
    heads, width = getattr(owner, "num_attention_heads", None), getattr(owner, key)
    _set(trial, path, value)
    if key == "hidden_size" and isinstance(heads, int) and heads and value % heads and not width % heads:
        head_width = width // heads
        if not value % head_width:
            owner.num_attention_heads = value // head_width
    return trial


def matching_config(base: torch.nn.Module, want: Shapes, rounds: int = 8) -> tuple[dict, int]:
    """Greedy search for config changes that make ``type(base)`` match ``want``.

    Returns ``({setting: (old, new)}, tensors still disagreeing)``.
    """
    config = copy.deepcopy(base.config)
    triples = compare_shapes(want, model_shapes(base))  # then those of the best config found so far
    for _ in range(rounds):
        fields = _int_fields(config)
        patch = {p: v for p, v in fields.items() if p.endswith("patch_size")}
        best = None
        for path, value in sorted(_candidates(fields, triples, patch)):
            trial = _trial(config, path, value)
            try:
                left = compare_shapes(want, _build(base, trial))
            except Exception:  # noqa: BLE001  (an impossible config, e.g. width not divisible by heads)
                continue
            if len(left) < len(triples) and (best is None or len(left) < len(best[0])):
                best = (left, trial)
        if best is None:
            break
        triples, config = best
        if not triples:
            break
    old, new = _int_fields(base.config), _int_fields(config)
    return {path: (value, new[path]) for path, value in old.items() if new.get(path) != value}, len(triples)


def _set(config: Any, path: str, value: int) -> None:
    *parents, key = path.split(".")
    for parent in parents:
        config = getattr(config, parent)
    setattr(config, key, value)
