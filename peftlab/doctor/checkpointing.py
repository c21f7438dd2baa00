"""Class 6, checkpointing with frozen inputs: reentrant gradient checkpointing over a frozen base.

From notebook 06. ``torch.utils.checkpoint`` with ``use_reentrant=True`` runs each checkpointed layer
without recording a graph and gives its output a gradient only when one of its *inputs* requires
grad; the parameters inside (LoRA's included) are not looked at. Under a frozen base nothing before
the first layer requires grad unless something makes it: a forward hook on the input embeddings
(``enable_input_require_grads``), a trainable parameter before the layers, or an earlier tower whose
output requires grad. So:

* nothing makes any input require grad: the loss has no ``grad_fn`` and ``loss.backward()`` raises
  ``RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn``;
* one tower's input does not, while another's does: training runs, and the adapted layers of that
  tower get no gradient at all (their ``lora_B`` stays zero). In vision-language models this is the
  vision tower, whose input is pixels through a frozen patch embedding.

Everything is read from the model as it stands (call it after ``get_peft_model`` and after
``gradient_checkpointing_enable``): which modules checkpoint (the flag transformers sets, and the
installed code that reads it), the ``use_reentrant`` their checkpoint function was given, which
forward hooks make outputs require grad (each hook is called on a scratch tensor to see), and which
parameters train. A tower fed by pixels (it holds a convolution before its layers) has no other
input; any other stack of layers is taken to be fed by the modules registered before it, in order.
That order is right for encoder-decoder vision-language models (vision tower, bridge, language
model); for two parallel towers registered text-first (CLIP-like models) a dead text tower behind a
live vision tower would be missed, never wrongly flagged.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import torch

from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model

CONVOLUTIONS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


@dataclass
class Stack:
    """Consecutive checkpointed layers under one parent, with what trains inside them."""

    parent: str
    layers: list[str] = field(default_factory=list)
    trainable: list[str] = field(default_factory=list)  # parameter names
    first: int = 0  # position of the first layer in named_modules()
    tower: str | None = None  # the pixel-fed tower it belongs to, if any


def reentrant(func: object) -> bool:
    """True when a checkpoint function (a ``functools.partial`` of torch's) runs reentrant.

    torch's ``checkpoint`` treats a missing ``use_reentrant`` as True (with a warning).
    """
    keywords = getattr(func, "keywords", None) or {}
    return keywords.get("use_reentrant") is not False


@functools.cache
def _reads_its_flag(cls: type) -> bool:
    """True when ``cls.forward`` checkpoints its layers itself (the transformers 4.x style)."""
    try:
        source = inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return False
    return "self.gradient_checkpointing" in source and "_gradient_checkpointing_func" in source


def checkpointed_layers(model: torch.nn.Module) -> dict[str, bool]:
    """``{layer name: reentrant?}`` for every layer that will be checkpointed in training mode."""
    layers: dict[str, bool] = {}
    for name, module in base_model(model).named_modules():
        if getattr(module, "gradient_checkpointing", False) is not True:
            continue
        is_reentrant = reentrant(getattr(module, "_gradient_checkpointing_func", None))
        if any(c.__name__ == "GradientCheckpointingLayer" for c in type(module).__mro__):
            layers[name] = is_reentrant  # transformers 5 (and late 4.x): the layer checkpoints itself
        elif _reads_its_flag(type(module)):
            for child_name, child in module.named_children():
                if isinstance(child, torch.nn.ModuleList):
                    for index in range(len(child)):
                        layers.setdefault(f"{name}.{child_name}.{index}".lstrip("."), is_reentrant)
    # a layer inside another checkpointed layer (Swin's blocks in its stages) runs inside that one's checkpoint
    return {n: r for n, r in layers.items() if not any(n != o and _inside(n, o) for o in layers)}


def makes_grad(hook: object) -> bool:
    """True when a forward hook makes the output it is given require grad (tried on a scratch tensor)."""
    scratch = torch.zeros(1)
    try:
        result = hook(torch.nn.Identity(), (), scratch)
    except Exception:  # noqa: BLE001  (a hook of another kind: not ours to judge)
        return False
    return bool(scratch.requires_grad or (isinstance(result, torch.Tensor) and result.requires_grad))


def _inside(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def _stacks(base: torch.nn.Module, layers: dict[str, bool], order: dict[str, int]) -> list[Stack]:
    stacks: dict[str, Stack] = {}
    for name in sorted((n for n, r in layers.items() if r), key=order.__getitem__):
        parent = name.rsplit(".", 1)[0]
        stack = stacks.setdefault(parent, Stack(parent, first=order[name]))
        stack.layers.append(name)
    for pname, param in base.named_parameters():
        if param.requires_grad:
            for stack in stacks.values():
                if any(_inside(pname, layer) for layer in stack.layers):
                    stack.trainable.append(pname)
    return sorted(stacks.values(), key=lambda s: s.first)


def _pixel_towers(base: torch.nn.Module, layers: list[str]) -> list[str]:
    """The module owning each convolution that runs before checkpointed layers (a pixel-fed tower)."""
    towers = set()
    for name, module in base.named_modules():
        if not isinstance(module, CONVOLUTIONS) or any(_inside(name, layer) for layer in layers):
            continue
        parts = name.split(".")
        for cut in range(len(parts) - 1, -1, -1):
            prefix = ".".join(parts[:cut])
            if any(_inside(layer, prefix) for layer in layers):
                towers.add(prefix)
                break
    return sorted(towers)


def _sources(base: torch.nn.Module, layers: dict[str, bool], order: dict[str, int]) -> list[tuple[int, str]]:
    """Where a tensor that requires grad enters: hooked modules and trainable parameters outside
    reentrant layers, as ``(position in named_modules(), name)``."""
    reentrant_layers = [n for n, r in layers.items() if r]
    found = []
    for name, module in base.named_modules():
        if any(_inside(name, layer) or _inside(layer, name) for layer in reentrant_layers):
            continue  # a layer, inside one, or a module around layers: its hook does not feed them
        if any(makes_grad(hook) for hook in module._forward_hooks.values()):
            found.append((order[name], f"hook on {name}"))
    for pname, param in base.named_parameters():
        if param.requires_grad and not any(_inside(pname, layer) for layer in reentrant_layers):
            owner = pname.rsplit(".", 1)[0] if "." in pname else ""
            found.append((order.get(owner, 0), f"trainable {pname}"))
    return found


def dead_stacks(model: torch.nn.Module) -> tuple[list[Stack], list[tuple[int, str]]]:
    """The reentrant stacks with trainable parameters whose input will not require grad, and every
    source of a gradient found."""
    base = base_model(model)
    layers = checkpointed_layers(base)
    if not any(layers.values()):
        return [], []
    order = {name: i for i, (name, _) in enumerate(base.named_modules())}
    stacks = _stacks(base, layers, order)
    towers = _pixel_towers(base, [n for n, r in layers.items() if r])
    sources = _sources(base, layers, order)
    live_positions = [pos for pos, _ in sources]
    dead = []
    for stack in stacks:
        stack.tower = next((t for t in towers if _inside(stack.parent, t)), None)
        if stack.tower is not None:  # fed by pixels only: a source inside the tower, before the layers
            live = any(
                pos < stack.first and _inside(what.split(" ", 2)[-1], stack.tower) for pos, what in sources
            )
        else:  # fed by whatever runs before it
            live = any(pos < stack.first for pos in live_positions)
        if live:
            live_positions.append(stack.first)
        elif stack.trainable:
            dead.append(stack)
    return dead, sources


def checkpointing_findings(model: torch.nn.Module) -> list[Finding]:
    """Class 6: reentrant checkpointing where no input requires grad (an error) or one tower's does
    not (a silent loss)."""
    dead, sources = dead_stacks(model)
    if not dead:
        return []
    trainable = sum(p.requires_grad for p in base_model(model).parameters())
    n_dead = len({name for s in dead for name in s.trainable})
    fix = (
        "Checkpoint without reentrancy: model.gradient_checkpointing_enable(gradient_checkpointing_kwargs="
        '{"use_reentrant": False}); or make the first input of each tower require grad (a forward hook '
        "on its embeddings, as model.enable_input_require_grads() adds) before get_peft_model."
    )
    where = "; ".join(
        f"{s.parent} ({len(s.layers)} layers, {len(s.trainable)} trainable tensors"
        f"{', fed by pixels' if s.tower is not None else ''})"
        for s in dead
    )
    if not sources and n_dead == trainable:
        return [
            Finding(
                "checkpointing",
                "checkpointing.no_input_requires_grad",
                "error",
                "RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn, at loss.backward().",
                f"Reentrant checkpointing (use_reentrant=True) on every layer that trains: {where}. No forward hook "
                "makes an input require grad and nothing trains outside those layers, so the loss has no grad_fn.",
                fix,
                raises="RuntimeError",
                when="loss.backward()",
            )
        ]
    return [
        Finding(
            "checkpointing",
            "checkpointing.tower_without_gradient",
            "silent loss",
            f"No error, and {n_dead} of {trainable} trainable tensors never get a gradient (LoRA's lora_B stays "
            f"zero): those in {', '.join(s.parent for s in dead)}.",
            f"Reentrant checkpointing gives a layer's output a gradient only when one of its inputs requires grad; "
            f"the input of {where} does not (gradients enter elsewhere: "
            f"{', '.join(what for _, what in sources[:2]) or 'an earlier tower'}).",
            fix,
            when="training",
        )
    ]
