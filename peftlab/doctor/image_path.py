"""The image path of an image-text model, run once on a batch: how many image features it makes, and
which of its layers feed them.

The model's own ``get_image_features`` (on the model, or on the model inside it) is called with the
batch's pixels (and whatever else of the batch it accepts): on the meta device when the model is there
(shapes only), otherwise with the model's weights, once, in eval mode. Nothing changes: gradients are
taken with ``torch.autograd.grad`` against zero probes added to the watched layers' outputs, never
accumulated into ``.grad``. A watched layer whose probe gets no gradient (None; with real weights, also
all zeros) does not feed the image features: a layer after the one the model reads (LLaVA-NeXT reads
the second-to-last), a pooling head whose output is dropped, the text half of a Q-Former's last layer.
A model without ``get_image_features`` on the installed transformers (Idefics2, InstructBLIP and
Qwen2.5-VL on transformers 4.x) is run through its own ``forward`` instead, stopped where it calls its
language model: its image features are the last output, in the language model's width, of a module
outside the language model (:func:`features_by_forward`).
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model


@dataclass
class ImagePath:
    """What one run of the image path showed."""

    getter: str  # "Gemma3ForConditionalGeneration.get_image_features"
    features: int | None  # image features made (None: not a float output)
    ran: set[str] = field(default_factory=set)  # watched modules that ran
    unused: set[str] = field(default_factory=set)  # watched modules that ran and do not feed the features


#: The methods that give an image-text model's image features (or, for a VQ tokenizer, its codes).
GETTERS = ("get_image_features", "get_image_tokens")


def getter(base: torch.nn.Module) -> tuple[torch.nn.Module, Any] | None:
    """``(owner, method)``: the model's ``get_image_features`` (else ``get_image_tokens``, the codes of a
    VQ tokenizer: Chameleon on transformers 4.x), on the model or on the model inside it (transformers
    5 puts it on ``model.model`` for some families); None when neither has one."""
    inner = getattr(base, getattr(base, "base_model_prefix", "") or "model", None)
    for name in GETTERS:
        for owner in (base, inner):
            fn = getattr(owner, name, None) if isinstance(owner, torch.nn.Module) else None
            if callable(fn):
                return owner, fn
    return None


def _arguments(base: torch.nn.Module, fn: Any, batch: Mapping, on_meta: bool) -> dict:
    accepted = inspect.signature(fn).parameters
    kwargs = {
        k: (v.to("meta") if on_meta and isinstance(v, torch.Tensor) and v.is_floating_point() else v)
        for k, v in batch.items()
        if k in accepted and k not in ("input_ids", "labels")
    }
    config = getattr(base, "config", None)
    for name, param in accepted.items():  # settings the getter needs (4.x): the config's own values
        if name not in kwargs and param.default is param.empty and hasattr(config, name):
            kwargs[name] = getattr(config, name)
    return kwargs


def follow_up(owner: torch.nn.Module, output: Any, batch: Mapping) -> Any:
    """The features as the model's ``forward`` counts them: where it passes ``get_image_features``'s
    result through another of its own methods first (LLaVA-NeXT's ``pack_image_features`` on
    transformers 4.x), the same call, its arguments read from the call (the batch's tensors, the model's
    attributes, its config's settings). Raises ValueError when an argument cannot be read."""
    tree = _forward_tree(type(owner))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)] if tree else []
    names = [
        _first_name(n.targets[0])
        for n in calls
        if isinstance(n.value, ast.Call) and ast.unparse(n.value.func) == "self.get_image_features"
    ]
    for node in calls:
        call = node.value
        if (
            names
            and isinstance(call, ast.Call)
            and ast.unparse(call.func).startswith("self.")
            and ast.unparse(call.func) != "self.get_image_features"
            and call.args
            and isinstance(call.args[0], ast.Name)
            and call.args[0].id == names[0]
            and _first_name(node.targets[0]) == names[0]
        ):
            method = getattr(owner, ast.unparse(call.func)[5:])
            args = [_value(owner, a, batch) for a in call.args[1:]]
            kwargs = {k.arg: _value(owner, k.value, batch) for k in call.keywords if k.arg}
            result = method(output, *args, **kwargs)
            return result[0] if isinstance(result, tuple) else result
    return output


def _forward_tree(cls: type) -> ast.FunctionDef | None:
    try:
        node = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(cls.forward)))).body[0]
    except (OSError, TypeError, SyntaxError):
        return None
    return node if isinstance(node, ast.FunctionDef) else None


def _first_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Tuple) and target.elts:
        target = target.elts[0]
    return target.id if isinstance(target, ast.Name) else None


def _value(owner: torch.nn.Module, node: ast.expr, batch: Mapping) -> Any:
    """An argument of a call in the model's forward: a constant, ``self.<attribute>``, or a name that
    the batch or the model's config holds."""
    config = getattr(owner, "config", None)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "self":
        return getattr(owner, node.attr)
    if isinstance(node, ast.Name) and node.id in batch:
        return batch[node.id]
    if isinstance(node, ast.Name) and hasattr(config, node.id):
        return getattr(config, node.id)
    raise ValueError(f"cannot read {ast.unparse(node)} outside the forward")


def feature_tensors(output: Any) -> list[torch.Tensor]:
    """The image features in what ``get_image_features`` returns: its ``pooler_output`` (transformers 5
    puts the projected features there), else ``last_hidden_state``, else the tensors themselves."""
    if hasattr(output, "pooler_output") and output.pooler_output is not None:
        output = output.pooler_output
    elif hasattr(output, "last_hidden_state") and not isinstance(output, torch.Tensor):
        output = output.last_hidden_state
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for o in output if o is not None for t in feature_tensors(o)]
    raise TypeError(f"cannot find image features in a {type(output).__name__}")


def count(tensors: list[torch.Tensor]) -> int:
    """Image features: one per position (every dimension but the last), summed over the tensors."""
    return sum(t.numel() // t.shape[-1] if t.ndim >= 2 else t.numel() for t in tensors)


def run(model: torch.nn.Module, batch: Mapping, watch: Iterable[str] = ()) -> ImagePath | None:
    """Run the image path on ``batch``; watch the modules named in ``watch`` (names in the base model).
    None when the batch has no ``pixel_values``, or the run fails."""
    base = base_model(model)
    if batch.get("pixel_values") is None:
        return None
    found = getter(base)
    on_meta = any(p.is_meta for p in base.parameters())
    modules = dict(base.named_modules())
    label = f"{type(found[0]).__name__}.{found[1].__name__}" if found else f"{type(base).__name__}.forward"
    path = ImagePath(label, None)
    probes: dict[str, torch.Tensor] = {}

    def hook(name: str):  # noqa: ANN202
        def add_probe(module: torch.nn.Module, args: Any, output: Any) -> Any:
            path.ran.add(name)
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                probes[name] = torch.zeros_like(output, requires_grad=True)
                return output + probes[name]
            return None

        return add_probe

    handles = [modules[n].register_forward_hook(hook(n)) for n in watch if n in modules]
    was_training = base.training
    try:
        base.eval()
        with torch.enable_grad():
            if found is None:
                found_tensors = features_by_forward(base, batch, on_meta)
                codes = False
            else:
                owner, fn = found
                output = follow_up(owner, fn(**_arguments(base, fn, batch, on_meta)), batch)
                found_tensors = feature_tensors(output)
                codes = fn.__name__ == "get_image_tokens"  # one code per image token
            tensors = [t for t in found_tensors if t.is_floating_point()]
        if not found_tensors:
            return None
        path.features = (
            sum(t.numel() for t in found_tensors) if codes else count(tensors) if tensors else None
        )
        path.unused = _unused(tensors, probes, on_meta)
    except Exception:  # noqa: BLE001  (features that need more than the batch gives: no verdict)
        return None
    finally:
        for handle in handles:
            handle.remove()
        base.train(was_training)
    return path


class _AtTheLanguageModel(Exception):
    """Raised when the forward calls the language model: the image features are made by then."""


def features_by_forward(base: torch.nn.Module, batch: Mapping, on_meta: bool) -> list[torch.Tensor]:
    """The image features as the model's own ``forward`` makes them, for a model without a getter: run
    on the batch and stopped where it calls its language model. They are the last output, in the
    language model's width (its input embeddings'), of a module outside the language model, not around
    it, not the output head. Empty when none was made, or when the run failed inside such a module (the
    image path itself did not complete), or when the language model is handed them beside its input
    embeddings (cross-attention: no placeholder tokens to count). An error after the image path (the
    merge's own count check) is the failure being predicted, not a reason to give up."""
    from peftlab.doctor.anatomy import anatomy, inside, module_name

    parts, embed = anatomy(base), module_name(base, "get_input_embeddings")
    if parts.language is None or embed is None:
        return []
    width = base.get_submodule(embed).embedding_dim
    head = module_name(base, "get_output_embeddings")
    owner = embed.rpartition(".")[0]
    text_side = owner if owner and not inside(owner, parts.language) else None
    image_side = [
        m
        for n, m in base.named_modules()
        if n
        and not inside(n, parts.language)
        and not inside(parts.language, n)
        and not inside(embed, n)  # what holds the token embeddings
        and not (text_side and inside(n, text_side))  # GIT's text embeddings, beside its image path
        and not (head and inside(n, head))
    ]
    seen: list[torch.Tensor] = []
    running = [0]  # image-side forwards started and not finished

    def started(module: torch.nn.Module, args: Any) -> None:
        running[0] += 1

    def finished(module: torch.nn.Module, args: Any, output: Any) -> None:
        running[0] -= 1
        wide = [t for t in _tensors(output) if t.is_floating_point() and t.ndim >= 2 and t.shape[-1] == width]
        if wide:
            seen[:] = wide[:1]

    def stop(module: torch.nn.Module, args: Any, kwargs: dict) -> None:
        beside = [v for k, v in kwargs.items() if k != "inputs_embeds" and isinstance(v, torch.Tensor)]
        if seen and any(v.is_floating_point() and v.numel() == seen[0].numel() for v in [*args, *beside]):
            seen.clear()  # the features enter beside the tokens (cross-attention: Mllama), not in placeholders
        raise _AtTheLanguageModel

    handles = [m.register_forward_pre_hook(started) for m in image_side]
    handles += [m.register_forward_hook(finished) for m in image_side]
    handles.append(base.get_submodule(parts.language).register_forward_pre_hook(stop, with_kwargs=True))
    accepted = inspect.signature(base.forward).parameters
    kwargs = {
        k: (v.to("meta") if on_meta and isinstance(v, torch.Tensor) and v.is_floating_point() else v)
        for k, v in batch.items()
        if k in accepted and k != "labels"
    }
    try:
        base(**kwargs)
    except _AtTheLanguageModel:
        pass
    except Exception:  # noqa: BLE001  (the merge's error comes after the image path; one inside it does not)
        if running[0]:
            return []
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors a module returned: itself, or the tensors of a tuple or model output."""
    if isinstance(output, torch.Tensor):
        return [output]
    values = (
        output.values()
        if isinstance(output, Mapping)
        else output
        if isinstance(output, (list, tuple))
        else ()
    )
    return [t for v in values if isinstance(v, torch.Tensor) for t in [v]]


def _unused(tensors: list[torch.Tensor], probes: dict[str, torch.Tensor], on_meta: bool) -> set[str]:
    """The probed modules whose output does not reach the features (a random projection of them)."""
    if not probes:
        return set()
    generator = torch.Generator().manual_seed(0)
    target = sum(
        (t.float() * torch.randn(t.shape, generator=generator).to(t.device)).sum()
        for t in tensors
        if t.requires_grad
    )
    if not isinstance(target, torch.Tensor):
        return set(probes)  # nothing that requires grad reached the features
    grads = torch.autograd.grad(target, list(probes.values()), allow_unused=True)
    return {
        name
        for name, grad in zip(probes, grads)
        if grad is None or (not on_meta and not bool(grad.abs().sum() > 0))
    }


def unused_findings(
    model: torch.nn.Module, wrapped: list[str], batch: Mapping | None, peft_config: Any = None
) -> list[Finding]:
    """LoRA layers that will never train because the model never uses their output: in the image path
    but not feeding the features, or outside the language model and never run by the image path
    (Janus's image-generation head, which only generation runs)."""
    from peftlab.doctor.anatomy import anatomy, inside, module_name

    if batch is None or not wrapped:
        return []
    path = run(model, batch, wrapped)
    if path is None:
        return []
    base = base_model(model)
    parts, head = anatomy(base), module_name(base, "get_output_embeddings")
    never_run = [
        w
        for w in wrapped
        if w not in path.ran
        and parts.language is not None
        and not inside(w, parts.language)
        and not (head and inside(w, head))
    ]
    unused = [w for w in wrapped if w in path.unused]
    if not unused and not never_run:
        return []
    how = "on the meta device" if any(p.is_meta for p in base.parameters()) else "with the model's weights"
    evidence = []
    if unused:
        evidence.append(
            f"{path.getter}, run once on the batch ({how}), does not use the output of {_few(unused)}"
        )
    if never_run:
        evidence.append(f"neither it nor the language model ({parts.language}) runs {_few(never_run)}")
    return [
        Finding(
            "targets",
            "targets.output_unused",
            "silent loss",
            f"No error, and {len(unused) + len(never_run)} of {len(wrapped)} LoRA layers never train: the "
            "training forward never uses their output, so their lora_B gets no gradient and stays zero.",
            "; ".join(evidence) + ".",
            _unused_fix(model, peft_config, unused + never_run),
            when="training",
        )
    ]


def _few(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _unused_fix(model: torch.nn.Module, peft_config: Any, dead: list[str]) -> str:
    """Leave the dead layers out: an exclude_modules that PEFT's matching confirms, where one exists."""
    from peftlab.doctor.targeting import resolve_targets, wrapped_by

    tail = " Adapting them only adds parameters that stay as initialised."
    if peft_config is None:
        return "Leave these layers out of target_modules when the adapter is made." + tail
    targets, _ = resolve_targets(model, peft_config)
    user = getattr(peft_config, "exclude_modules", None)
    if isinstance(user, str):  # a regex stays a regex
        exclude: Any = rf"(?:{user})|(?:{'|'.join(re.escape(d) for d in dead)})"
    else:
        exclude = sorted(set(dead) | set(user or []))
    kept = wrapped_by(model, targets, exclude) or []
    if kept and not set(kept) & set(dead):
        shown = (
            f"r{exclude!r}"
            if isinstance(exclude, str)
            else exclude
            if len(exclude) <= 6
            else f"[... {len(exclude)} full module names ...]"
        )
        return (
            f"Keep target_modules and set exclude_modules={shown} (checked with PEFT's matching: "
            f"{len(kept)} layers still wrapped, none of these)." + tail
        )
    return "List the layers to adapt by full name, without these." + tail
