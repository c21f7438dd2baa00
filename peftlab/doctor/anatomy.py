"""The parts of a model, told apart by what they consume, not by what they are called.

* a **pixel tower**: the largest module around a layer that consumes pixels (a convolution whose input
  channels are the image's, or a linear layer whose input is one flattened patch) that holds a stack
  of layers and not the token embeddings. A lone patch projection (a linear layer with no layers
  after it) is not a tower; neither is an output head that produces image tokens (it consumes the
  language model's hidden states, not pixels).
* a **discrete bottleneck**: a pixel tower whose forward passes its features through ``argmin`` or
  ``argmax`` (a vector quantiser, VQ-VAE image tokenizers): no gradient flows back through the codes.
* the **language model**: the smallest module around the token embeddings
  (``get_input_embeddings()``) that holds a stack of layers and no pixel tower; where that module holds
  the pixel tower too (GIT: embeddings, image encoder and text layers side by side), its one other
  child that holds a stack of layers.

Everything is read from the model's modules, its config's integer settings and the installed code of
its module classes, so it works on models built on the ``meta`` device.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass

import torch

from peftlab.module_names import base_model

CONVOLUTIONS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
PARTS = ("vision tower", "language model", "other")


@dataclass(frozen=True)
class Anatomy:
    """Where the pixel towers and the language model are, by module name (``""`` is the model)."""

    towers: tuple[str, ...]  # pixel towers
    discrete: tuple[str, ...]  # the pixel towers behind a discrete bottleneck
    language: str | None  # the language model, or None
    pixel_layers: tuple[str, ...]  # every module that consumes pixels (towers' and lone projections)

    def part_of(self, name: str) -> str:
        """``"vision tower"``, ``"language model"`` or ``"other"`` (projector, heads, patch projection)."""
        if any(inside(name, t) for t in self.towers):
            return "vision tower"
        if self.language is not None and inside(name, self.language):
            return "language model"
        return "other"

    def tower_of(self, name: str) -> str | None:
        """The pixel tower ``name`` lies in, or None."""
        return next((t for t in self.towers if inside(name, t)), None)


def inside(name: str, prefix: str) -> bool:
    """True when the module ``name`` is ``prefix`` or lies inside it (every module lies inside ``""``)."""
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def _config_ints(config: object, key: str) -> set[int]:
    """Every integer value of ``key`` in a config and its sub-configs (``vision_config.num_channels``...)."""
    found: set[int] = set()
    if config is None:
        return found
    for k, v in vars(config).items():
        if hasattr(v, "to_dict") and not k.startswith("_"):
            found |= _config_ints(v, key)
        elif k == key and isinstance(v, int) and not isinstance(v, bool):
            found.add(v)
    return found


def pixel_layers(base: torch.nn.Module) -> list[str]:
    """Modules that take pixels in: a convolution over the image's channels, or a linear layer whose
    input width is one flattened patch (channels x patch x patch, times frames where configured)."""
    config = getattr(base, "config", None)
    channels = _config_ints(config, "num_channels") | _config_ints(config, "in_channels") or {3}
    patches = _config_ints(config, "patch_size")
    frames = _config_ints(config, "temporal_patch_size") | {1}
    flat = {c * p * p * f for c in channels for p in patches for f in frames}
    found = []
    in_stack = [n for n, m in base.named_modules() if isinstance(m, torch.nn.ModuleList)]
    for name, module in base.named_modules():
        if any(name.startswith(f"{s}.") for s in in_stack):
            continue  # inside a layer of a stack: not where pixels enter
        if (
            isinstance(module, CONVOLUTIONS)
            and module.in_channels in channels
            or isinstance(module, torch.nn.Linear)
            and module.in_features in flat
        ):
            found.append(name)
    return found


def _has_stack(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.ModuleList) and len(m) > 0 for m in module.modules())


def _prefixes(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]``."""
    parts = name.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


@functools.cache
def _quantises(cls: type) -> bool:
    """True when ``cls.forward`` picks discrete codes (``argmin``/``argmax``): the installed code, read."""
    try:
        source = inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return False
    return re.search(r"\barg(min|max)\(", source) is not None


def module_name(base: torch.nn.Module, getter_name: str) -> str | None:
    """The name of the module ``base.<getter_name>()`` returns (``get_input_embeddings``,
    ``get_output_embeddings``), or None when there is none or the model does not say."""
    getter = getattr(base, getter_name, None)
    try:
        module = getter() if callable(getter) else None
    except (NotImplementedError, AttributeError):
        return None
    if module is None:
        return None
    return next((n for n, m in base.named_modules() if m is module), None)


def anatomy(model: torch.nn.Module) -> Anatomy:
    """The pixel towers, discrete bottlenecks and language model of ``model`` (a PeftModel or not)."""
    base = base_model(model)
    modules = dict(base.named_modules())
    embed = module_name(base, "get_input_embeddings")
    consumers = pixel_layers(base)
    towers: list[str] = []
    for name in consumers:
        pure = embed is None or inside(name, embed)  # a vision model: its input embeddings take pixels
        candidates = [p for p in _prefixes(name) if pure or not inside(embed, p)] + ([""] if pure else [])
        tower = next((p for p in candidates if _has_stack(modules[p])), None)
        if tower is not None and not any(inside(tower, t) for t in towers):
            towers = [t for t in towers if not inside(t, tower)] + [tower]
    discrete = tuple(t for t in towers if any(_quantises(type(m)) for m in modules[t].modules()))
    language = None
    if embed is not None and not any(inside(embed, t) for t in towers):
        for p in reversed(["", *_prefixes(embed)]):
            if not _has_stack(modules[p]):
                continue
            if not any(inside(t, p) for t in towers):
                language = p
            else:  # the embeddings' owner holds the tower too (GIT): its one other child with layers
                stacks = [
                    f"{p}.{c}".lstrip(".")
                    for c, child in modules[p].named_children()
                    if _has_stack(child) and not any(inside(t, f"{p}.{c}".lstrip(".")) for t in towers)
                ]
                language = stacks[0] if len(stacks) == 1 else None
            break
    return Anatomy(tuple(sorted(towers)), discrete, language, tuple(consumers))
