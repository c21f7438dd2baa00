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
parameters train. Which stack feeds which is decided by the parts of the model
(:mod:`~peftlab.doctor.anatomy`), not by the order modules are registered in: a pixel tower is fed
only from inside; a language model by its token embeddings and, in an image-text model, by the image
features where they reach its layers' positional inputs (the installed code, read); registration
order is used only inside one part. With a batch, a trainable layer whose output the model never uses
(a pooling head the model drops: :mod:`~peftlab.doctor.image_path`) is no source of a gradient.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from peftlab.doctor.anatomy import anatomy, inside, module_name
from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model


@dataclass
class Stack:
    """Consecutive checkpointed layers under one parent, with what trains inside them."""

    parent: str
    layers: list[str] = field(default_factory=list)
    trainable: list[str] = field(default_factory=list)  # parameter names
    first: int = 0  # position of the first layer in named_modules()
    tower: str | None = None  # the pixel-fed tower it belongs to, if any
    features: str | None = None  # how image features would enter it (a language model's stack)
    live: bool | None = None  # decided: will its output require grad?


@dataclass(frozen=True)
class Source:
    """Where a tensor that requires grad enters: a hooked module or a trainable parameter's owner."""

    position: int  # in named_modules()
    name: str  # the module
    what: str  # "hook on ...", "trainable ..."


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
    return {n: r for n, r in layers.items() if not any(n != o and inside(n, o) for o in layers)}


def makes_grad(hook: object) -> bool:
    """True when a forward hook makes the output it is given require grad (tried on a scratch tensor)."""
    scratch = torch.zeros(1)
    try:
        result = hook(torch.nn.Identity(), (), scratch)
    except Exception:  # noqa: BLE001  (a hook of another kind: not ours to judge)
        return False
    return bool(scratch.requires_grad or (isinstance(result, torch.Tensor) and result.requires_grad))


def _stacks(base: torch.nn.Module, layers: dict[str, bool], order: dict[str, int]) -> list[Stack]:
    stacks: dict[str, Stack] = {}
    for name in sorted((n for n, r in layers.items() if r), key=order.__getitem__):
        parent = name.rsplit(".", 1)[0]
        stack = stacks.setdefault(parent, Stack(parent, first=order[name]))
        stack.layers.append(name)
    for pname, param in base.named_parameters():
        if param.requires_grad:
            for stack in stacks.values():
                if any(inside(pname, layer) for layer in stack.layers):
                    stack.trainable.append(pname)
    return sorted(stacks.values(), key=lambda s: s.first)


def _sources(base: torch.nn.Module, layers: dict[str, bool], order: dict[str, int]) -> list[Source]:
    """Where a tensor that requires grad enters: hooked modules and trainable parameters outside
    reentrant layers."""
    reentrant_layers = [n for n, r in layers.items() if r]
    found = []
    for name, module in base.named_modules():
        if any(inside(name, layer) or inside(layer, name) for layer in reentrant_layers):
            continue  # a layer, inside one, or a module around layers: its hook does not feed them
        if any(makes_grad(hook) for hook in module._forward_hooks.values()):
            found.append(Source(order[name], name, f"hook on {name}"))
    for pname, param in base.named_parameters():
        if param.requires_grad and not any(inside(pname, layer) for layer in reentrant_layers):
            owner = pname.rsplit(".", 1)[0] if "." in pname else ""
            found.append(Source(order.get(owner, 0), owner, f"trainable {pname}"))
    return found


def _forward_tree(module: torch.nn.Module) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(type(module).forward)))
    except (OSError, TypeError):
        return None
    node = ast.parse(source).body[0]
    return node if isinstance(node, ast.FunctionDef) else None


def _computes(tree: ast.FunctionDef | None, name: str) -> bool:
    """True when a forward assigns ``name``, or passes ``name=`` something other than its own ``name``."""
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                return True
        elif isinstance(node, ast.keyword) and node.arg == name:
            value = node.value
            if not (isinstance(value, ast.Name) and value.id == name) and not (
                isinstance(value, ast.Constant) and value.value is None
            ):
                return True
    return False


def feature_argument(base: torch.nn.Module, stack: Stack) -> tuple[str | None, bool]:
    """How image features reach a language model's checkpointed layers, read from the installed code.

    Returns ``(argument, positional)``: the layers' own ``*_states`` argument (after the first) that a
    model around them computes (cross-attention, e.g. ``cross_attention_states``), and whether the
    layer call passes it positionally (only positional inputs count for reentrant checkpointing).
    ``(None, True)`` when no such argument is fed: the features are merged into the hidden states,
    the layers' first, positional input.
    """
    modules = dict(base.named_modules())
    owner_name = stack.parent.rsplit(".", 1)[0] if "." in stack.parent else ""
    layer_params = list(inspect.signature(type(modules[stack.layers[0]]).forward).parameters)[2:]
    owner_tree = _forward_tree(modules[owner_name])
    owner_params = {a.arg for a in owner_tree.args.args + owner_tree.args.kwonlyargs} if owner_tree else set()
    ancestors = [""] + [owner_name[:i] for i, c in enumerate(owner_name) if c == "."] + [owner_name]
    for arg in (a for a in layer_params if a.endswith("_states") and a in owner_params):
        if any(
            _computes(_forward_tree(modules[a]), arg) for a in dict.fromkeys(ancestors) if a != owner_name
        ):
            positional = any(
                isinstance(n, ast.Call) and any(isinstance(x, ast.Name) and x.id == arg for x in n.args)
                for n in ast.walk(owner_tree)
            )
            return arg, positional
    return None, True


@dataclass
class Flow:
    """What :func:`flow` found: the stacks (each marked live or not), the sources, and whether the loss
    will have a ``grad_fn`` at all."""

    stacks: list[Stack]
    sources: list[Source]
    loss_has_grad: bool

    @property
    def dead(self) -> list[Stack]:
        """The stacks that train something and whose input will not require grad."""
        return [s for s in self.stacks if not s.live and s.trainable]


def flow(model: torch.nn.Module, unused: frozenset[str] = frozenset()) -> Flow:
    """Which reentrant stacks get a gradient, read from the model's parts (:mod:`~peftlab.doctor.anatomy`).

    A pixel tower is fed only from inside, before its layers. A language model is fed by its token
    embeddings and earlier live stacks of its own and, in an image-text generator, by the image features
    (any source outside it but the output head and a discrete tokenizer, or a live vision stack) where
    they reach its layers' positional inputs (:func:`feature_argument`). Anything else is fed by whatever
    runs before it. Registration order is used only inside one part.
    """
    base = base_model(model)
    layers = checkpointed_layers(base)
    if not any(layers.values()):
        return Flow([], [], True)
    order = {name: i for i, (name, _) in enumerate(base.named_modules())}
    stacks, parts, head = (
        _stacks(base, layers, order),
        anatomy(base),
        module_name(base, "get_output_embeddings"),
    )
    sources = [s for s in _sources(base, layers, order) if not any(inside(s.name, u) for u in unused)]
    generative = head is not None and bool(parts.pixel_layers)
    for stack in stacks:
        stack.tower = parts.tower_of(stack.parent)
        if stack.tower is not None:  # fed by pixels only
            stack.live = any(s.position < stack.first and inside(s.name, stack.tower) for s in sources)
    features = any(st.live and st.tower not in parts.discrete for st in stacks if st.tower) or any(
        parts.part_of(s.name) != "language model"
        and not (head and inside(s.name, head))
        and not any(inside(s.name, t) for t in parts.discrete)
        for s in sources
    )
    live_positions = [s.position for s in sources]
    for stack in [s for s in stacks if s.tower is None]:
        if parts.language is not None and inside(stack.parent, parts.language):
            own = [s.position for s in sources if inside(s.name, parts.language)]
            own += [st.first for st in stacks if st.live and inside(st.parent, parts.language)]
            stack.live = any(p < stack.first for p in own)
            if not stack.live and generative:
                argument, positional = feature_argument(base, stack)
                stack.features = argument or "hidden states"
                stack.live = features and positional
        else:
            stack.live = any(p < stack.first for p in live_positions)
        if stack.live:
            live_positions.append(stack.first)
    last = max(s.first for s in stacks)
    after = any(
        (head is not None and inside(s.name, head))
        or (s.position > last and (not generative or parts.part_of(s.name) == "language model"))
        for s in sources
    )
    return Flow(stacks, sources, any(s.live for s in stacks) or after)


def dead_stacks(
    model: torch.nn.Module, unused: frozenset[str] = frozenset()
) -> tuple[list[Stack], list[Source]]:
    """The reentrant stacks with trainable parameters whose input will not require grad, and every
    source of a gradient found (see :func:`flow`)."""
    found = flow(model, unused)
    return found.dead, found.sources


def checkpointing_findings(model: torch.nn.Module, batch: Mapping | None = None) -> list[Finding]:
    """Class 6: reentrant checkpointing where no input requires grad (an error) or one tower's does
    not (a silent loss). With a batch, a trainable layer whose output the model never uses
    (:mod:`~peftlab.doctor.image_path`) is no source of a gradient: one whose output the image
    features do not use, or one inside a pixel tower that the image path never runs (a pooling head
    that the model's code skips)."""
    unused: frozenset[str] = frozenset()
    if batch is not None and any(checkpointed_layers(model).values()):
        from peftlab.doctor.image_path import run

        base = base_model(model)
        trainable = {n.rsplit(".", 1)[0] for n, p in base.named_parameters() if p.requires_grad}
        path = run(model, batch, sorted(trainable))
        if path is not None:
            towers = anatomy(base).towers
            skipped = {n for n in trainable - path.ran if any(inside(n, t) for t in towers)}
            unused = frozenset(path.unused | skipped)
    found = flow(model, unused)
    dead, sources = found.dead, found.sources
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
        f"{', fed by pixels' if s.tower is not None else ''}"
        f"{f', image features passed by keyword ({s.features})' if s.features and s.features != 'hidden states' else ''})"
        for s in dead
    )
    entered = ", ".join(s.what for s in sources[:2])
    if not found.loss_has_grad:
        return [
            Finding(
                "checkpointing",
                "checkpointing.no_input_requires_grad",
                "error",
                "RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn, at loss.backward().",
                f"Reentrant checkpointing (use_reentrant=True) on every layer that trains: {where}. No input of "
                "those layers requires grad"
                + (f" (what does, {entered}, reaches none of their positional inputs)" if entered else "")
                + " and nothing trains after them, so the loss has no grad_fn.",
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
            f"Reentrant checkpointing gives a layer's output a gradient only when one of its positional inputs "
            f"requires grad; the input of {where} does not (gradients enter elsewhere: "
            f"{entered or 'an earlier tower'}).",
            fix,
            when="training",
        )
    ]
