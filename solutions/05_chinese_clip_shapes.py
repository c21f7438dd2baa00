"""Solutions to the exercises of notebook 05 (Chinese-CLIP shapes); ``ns`` is the notebook's namespace."""

from typing import Any

import torch


def exercise_1(ns: dict[str, Any]) -> Any:
    """Predict first: **all** of the text tower's tensors arrive as saved.

    ``ignore_mismatched_sizes=True`` re-initialises only the tensors whose shapes disagree (the vision
    tower and both projections here) and drops those the model has no place for (the third vision
    block); the text tower has the same shapes in both configs and loads as saved. Retrieval is at
    chance all the same: one random tower (and projection) breaks every image-caption match.
    """
    return "all"


def exercise_2(ns: dict[str, Any]) -> Any:
    """Predict first: it **passes**.

    The head count splits each attention layer's width into heads; it changes no tensor's shape, so
    every tensor arrives bit for bit and ``assert_loaded`` is satisfied. The model computes something
    else, though: zero-shot retrieval falls. No shape shows the head count: ``build_config`` takes it
    from the identified model, and a load is proven by its outputs as well as its tensors.
    """
    return "passes"


def exercise_3(ns: dict[str, Any]) -> Any:
    """Names, then shapes, then values::

    def not_as_saved(model, saved):
        have = model.state_dict()
        return [
            name
            for name, tensor in saved.items()
            if name not in have
            or have[name].shape != tensor.shape
            or not torch.equal(have[name].cpu(), tensor.cpu())
        ]
    """

    def not_as_saved(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> list[str]:
        have = model.state_dict()
        return [
            name
            for name, tensor in saved.items()
            if name not in have
            or have[name].shape != tensor.shape
            or not torch.equal(have[name].cpu(), tensor.cpu())
        ]

    return not_as_saved


def _not_as_saved_by_kind(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> list[str]:
    """Another right form: the three kinds collected one after the other."""
    have = model.state_dict()
    missing = [k for k in saved if k not in have]
    reshaped = [k for k in saved if k in have and have[k].shape != saved[k].shape]
    changed = [
        k
        for k in saved
        if k in have and have[k].shape == saved[k].shape and not torch.equal(have[k].cpu(), saved[k].cpu())
    ]
    return missing + reshaped + changed


def _shapes_only(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> list[str]:
    """A plausible wrong answer: names and shapes, not values (misses a re-initialised tensor)."""
    have = model.state_dict()
    return [k for k in saved if k not in have or have[k].shape != saved[k].shape]


#: Right answers in other forms, per exercise.
VARIANTS = {1: ["All", " all "], 2: ["Passes", "passes"], 3: [_not_as_saved_by_kind]}
#: Plausible wrong answers, per exercise.
WRONG = {1: ["some", "none"], 2: ["raises"], 3: [_shapes_only]}
