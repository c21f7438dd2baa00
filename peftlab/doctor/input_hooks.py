"""Class 6 (continued): where the hook that makes an input require grad breaks the first forward pass.

``enable_input_require_grads()`` puts a forward hook on the input embeddings that calls
``output.requires_grad_(True)``; get_peft_model adds it when gradient checkpointing is already on, and
transformers 5's ``gradient_checkpointing_enable`` adds it to models fed ``input_ids``. Two things the
hook cannot survive, both read from the installed code:

* the hooked module returns a tuple (Swin-style patch embeddings return the embeddings and the grid
  size): ``AttributeError: 'tuple' object has no attribute 'requires_grad_'``;
* its output comes from frozen weights, so the hook makes it a *leaf* that requires grad, and the code
  that called the module modifies it in place (``embeddings += position_embeddings``,
  ``inputs_embeds[mask] = image_embeds``): ``RuntimeError: a leaf Variable that requires grad is being
  used in an in-place operation``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

import torch

from peftlab.doctor.anatomy import module_name
from peftlab.doctor.checkpointing import makes_grad
from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model

FIX = (
    "Remove the hook (model.disable_input_require_grads()) and checkpoint with "
    'gradient_checkpointing_kwargs={"use_reentrant": False}, which needs no input that requires grad; or '
    "hook a later module whose output is a tensor that nothing modifies in place."
)


def grad_hooks(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module, object]]:
    """``(name, module, hook)`` for each forward hook that makes its module's output require grad."""
    return [
        (name, module, hook)
        for name, module in base_model(model).named_modules()
        for hook in module._forward_hooks.values()
        if makes_grad(hook)
    ]


def fails_on_tuple(hook: object) -> bool:
    """True when the hook raises AttributeError on a tuple output (it calls a tensor method on it)."""
    try:
        hook(torch.nn.Identity(), (), (torch.zeros(1),))
    except AttributeError:
        return True
    except Exception:  # noqa: BLE001  (another failure: not this one)
        return False
    return False


@functools.cache
def returns_tuple(cls: type) -> bool:
    """True when every ``return`` of ``cls.forward`` returns a tuple literal (the installed code, read)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(cls.forward))))
    except (OSError, TypeError, SyntaxError):
        return False
    returns = [n for n in ast.walk(tree) if isinstance(n, ast.Return) and n.value is not None]
    return bool(returns) and all(isinstance(n.value, ast.Tuple) for n in returns)


def _in_place_on(function: ast.FunctionDef, variable: str, after: int) -> ast.AST | None:
    """The first statement after line ``after`` of ``function`` that modifies ``variable`` in place."""
    for node in sorted(ast.walk(function), key=lambda n: getattr(n, "lineno", 0)):
        if getattr(node, "lineno", 0) <= after:
            continue
        if (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == variable
        ):
            return node
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Subscript) and ast.unparse(t.value) == variable for t in targets):
            return node
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and ast.unparse(node.func.value) == variable
            and node.func.attr.endswith("_")
            and not node.func.attr.startswith("_")
        ):
            return node
    return None


#: Decorators under which a function runs without autograd: an in-place change there raises nothing.
NO_GRAD = {"torch.no_grad", "no_grad", "torch.inference_mode", "inference_mode"}


def runs_with_grad(function: ast.FunctionDef) -> bool:
    """False for a function decorated with ``torch.no_grad()`` or ``torch.inference_mode()`` (``generate``)."""
    return not any(ast.unparse(d).removesuffix("()") in NO_GRAD for d in function.decorator_list)


@functools.cache
def _class_functions(cls: type) -> tuple[ast.FunctionDef, ...]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return ()
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    return tuple(n for n in body if isinstance(n, ast.FunctionDef) and runs_with_grad(n))


def embedding_calls(modules: dict[str, torch.nn.Module], owner: str, rest: list[str]) -> set[str]:
    """How code in module ``owner`` can call the module ``owner.<rest>`` through ``get_input_embeddings``:
    ``self.get_input_embeddings()``, ``self.language_model.get_input_embeddings()``, ..."""
    found = set()
    for k in range(len(rest)):
        holder = ".".join(rest[:k])
        if module_name(
            modules[".".join(p for p in (owner, holder) if p)], "get_input_embeddings"
        ) == ".".join(rest[k:]):
            found.add(f"self.{holder + '.' if holder else ''}get_input_embeddings()")
    return found


def modified_in_place(base: torch.nn.Module, name: str) -> str | None:
    """Where the code that calls module ``name`` modifies its output in place: ``"GitEmbeddings.forward:
    embeddings += position_embeddings"``, or None. Each module around ``name`` is read, as far as its
    calls name the module (``self.<path>(...)``, or ``self.get_input_embeddings()(...)``)."""
    modules = dict(base.named_modules())
    parts = name.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        owner_name = ".".join(parts[:depth])
        owner = modules[owner_name]
        calls = {f"self.{'.'.join(parts[depth:])}"} | embedding_calls(modules, owner_name, parts[depth:])
        for cls in type(owner).__mro__:
            if cls.__module__.startswith(("torch.", "builtins", "transformers.modeling_utils")):
                break  # the shared base classes: no model's own code
            for function in _class_functions(cls):
                for node in ast.walk(function):
                    if (
                        isinstance(node, ast.Assign)
                        and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name)
                        and isinstance(node.value, ast.Call)
                        and ast.unparse(node.value.func) in calls
                    ):
                        found = _in_place_on(function, node.targets[0].id, node.lineno)
                        if found is not None:
                            return f"{cls.__name__}.{function.name}: {ast.unparse(found).splitlines()[0]}"
    return None


def hook_findings(model: torch.nn.Module) -> list[Finding]:
    """A grad hook on a module that returns a tuple, or whose frozen output its caller modifies in place."""
    base = base_model(model)
    findings = []
    for name, module, hook in grad_hooks(model):
        kind = type(module).__name__
        if fails_on_tuple(hook) and returns_tuple(type(module)):
            findings.append(
                Finding(
                    "checkpointing",
                    "checkpointing.hook_on_tuple_output",
                    "error",
                    "AttributeError: 'tuple' object has no attribute 'requires_grad_', at the first forward pass.",
                    f"A forward hook on {name} ({kind}) calls output.requires_grad_(True) "
                    f"(enable_input_require_grads), and {kind}.forward returns a tuple (the installed code, read).",
                    FIX,
                    raises="AttributeError",
                    when="first forward",
                )
            )
            continue
        if any(p.requires_grad for p in module.parameters()):
            continue  # a trainable module's output is not a leaf
        where = modified_in_place(base, name)
        if where:
            findings.append(
                Finding(
                    "checkpointing",
                    "checkpointing.hook_output_modified_in_place",
                    "error",
                    "RuntimeError: a leaf Variable that requires grad is being used in an in-place operation, at "
                    "the first forward pass.",
                    f"A forward hook on {name} ({kind}, frozen) makes its output a leaf that requires grad "
                    f"(enable_input_require_grads), and the code that calls it changes it in place: {where}.",
                    FIX,
                    raises="RuntimeError",
                    when="first forward",
                )
            )
    return findings


def prepare_findings(model: torch.nn.Module, peft_config: object) -> list[Finding]:
    """get_peft_model on a model with gradient checkpointing on calls ``enable_input_require_grads()``
    (the installed PEFT's code, read); where that calls ``get_input_embeddings()`` without catching
    ``NotImplementedError`` (transformers 4.x) and the model has none (a vision model), it raises."""
    base = base_model(model)
    if peft_config is None or not getattr(base, "is_gradient_checkpointing", False):
        return []
    from peft import PeftModel

    prepare = getattr(PeftModel, "_prepare_model_for_gradient_checkpointing", None)
    enable = getattr(type(base), "enable_input_require_grads", None)
    if prepare is None or enable is None or "enable_input_require_grads" not in inspect.getsource(prepare):
        return []
    if "NotImplementedError" in inspect.getsource(enable):
        return []  # transformers 5 skips a model without input embeddings, with a warning
    try:
        base.get_input_embeddings()
    except NotImplementedError:
        pass
    else:
        return []
    return [
        Finding(
            "checkpointing",
            "checkpointing.no_input_embeddings",
            "error",
            "NotImplementedError, from get_peft_model: with gradient checkpointing on, PEFT calls "
            "enable_input_require_grads(), which asks the model for its input embeddings.",
            f"{type(base).__name__}.get_input_embeddings() raises NotImplementedError, and the installed "
            f"transformers' enable_input_require_grads does not catch it.",
            "Switch checkpointing on after get_peft_model, with gradient_checkpointing_kwargs="
            '{"use_reentrant": False} (which needs no input that requires grad).',
            raises="NotImplementedError",
            when="get_peft_model",
        )
    ]
