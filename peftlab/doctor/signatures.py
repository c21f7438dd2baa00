"""Class 1, wrapper/forward mismatch: follow each keyword a PEFT wrapper passes into the model.

A ``task_type`` picks a wrapper class (``PeftModelForCausalLM``, ...) whose ``forward`` calls the
model with a fixed set of keywords, ``inputs_embeds=None`` among them. What happens to a keyword is
decided by the installed code, so this module reads it: the signature of the model's ``forward``
(does it name the keyword? does it take ``**kwargs``?) and, where the keyword disappears into
``**kwargs``, the source of that ``forward``, to see which submodule receives ``**kwargs`` next
and whether that call already passes the same keyword (Python's "got multiple values").
Used by notebooks 01 and 02 through :func:`peftlab.doctor`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

import torch

from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model


@dataclass(frozen=True)
class Fate:
    """What happens to one keyword: accepted, rejected, a collision, or not decidable."""

    outcome: str  # "accepted", "unexpected", "collision", "unknown"
    where: str  # "CLIPModel.forward", or "CLIPTextTransformer.forward -> self.encoder(...)"


def wrapper_class(peft_config: Any) -> type | None:
    """The PeftModel class ``get_peft_model`` returns for this config's ``task_type``."""
    from peft import PeftModel
    from peft.auto import MODEL_TYPE_TO_PEFT_MODEL_MAPPING

    task_type = getattr(peft_config, "task_type", None)
    if task_type is None:
        return PeftModel
    return MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(str(getattr(task_type, "value", task_type)))


def _function_ast(fn: Any) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(fn)))
    except (OSError, TypeError):
        return None
    node = ast.parse(source).body[0]
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def passed_keywords(wrapper: type) -> list[str]:
    """The keywords the wrapper's ``forward`` passes by name to the model, in call order.

    Read from the ``self.base_model(...)`` call with the most explicit keywords (the LoRA path);
    the plain ``PeftModel`` passes only what it is given, so ``[]`` for it.
    """
    from peft import PeftModel

    if wrapper.forward is PeftModel.forward:
        return []
    tree = _function_ast(wrapper.forward)
    calls = (
        [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "self.base_model"
        ]
        if tree
        else []
    )
    if not calls:
        params = inspect.signature(wrapper.forward).parameters.values()
        return [
            p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.name not in ("self", "task_ids")
        ]
    best = max(calls, key=lambda call: len(call.keywords))
    return [k.arg for k in best.keywords if k.arg is not None]


def _var_keyword(fn: Any) -> str | None:
    params = inspect.signature(fn).parameters.values()
    return next((p.name for p in params if p.kind == p.VAR_KEYWORD), None)


def _callees(owner: torch.nn.Module, tree: ast.FunctionDef, var_kw: str) -> list[tuple[Any, str, set[str]]]:
    """Each call in ``tree`` that forwards ``**var_kw``, in source order: (callee, call text, explicit
    keywords). The callee is ``(module, function)`` for ``self.<submodule>(...)`` and
    ``self.<method>(...)``, else None (a local variable, ``super()``: not followed)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not any(
            k.arg is None and isinstance(k.value, ast.Name) and k.value.id == var_kw for k in node.keywords
        ):
            continue
        text, target = ast.unparse(node.func), None
        if text.startswith("self.") and text.count(".") == 1:
            attr = getattr(owner, text[5:], None)
            if isinstance(attr, torch.nn.Module):
                target = (attr, type(attr).forward)
            elif callable(attr) and hasattr(attr, "__func__"):
                target = (owner, attr.__func__)
        found.append((node.lineno, node.col_offset, target, text, {k.arg for k in node.keywords if k.arg}))
    return [item[2:] for item in sorted(found, key=lambda item: item[:2])]


def _decorator_taking(fn: Any, keyword: str) -> str | None:
    """The decorator around ``fn`` whose wrapper handles ``keyword`` by name (transformers'
    ``can_return_tuple`` pops ``return_dict`` before the function sees it), or None."""
    while hasattr(fn, "__wrapped__"):
        try:  # the wrapper's own code (inspect.getsource(fn) would unwrap it)
            source = textwrap.dedent(inspect.getsource(fn.__code__))
        except (AttributeError, OSError, TypeError):
            source = ""
        if any(isinstance(n, ast.Constant) and n.value == keyword for n in ast.walk(ast.parse(source))):
            return fn.__qualname__.split(".<locals>")[0]
        fn = fn.__wrapped__
    return None


def keyword_fate(module: torch.nn.Module, keyword: str, fn: Any = None, depth: int = 0) -> Fate:
    """Follow ``keyword`` from ``module``'s ``forward`` (or ``fn``) through ``**kwargs`` to where it ends."""
    fn = fn or type(module).forward
    name = f"{type(module).__name__}.{getattr(inspect.unwrap(fn), '__name__', 'forward')}"
    signature = inspect.signature(fn)
    if keyword in signature.parameters:
        return Fate("accepted", name)
    decorator = _decorator_taking(fn, keyword)
    if decorator:
        return Fate("accepted", f"{name} (taken by its decorator {decorator})")
    var_kw = _var_keyword(fn)
    if var_kw is None:
        return Fate("unexpected", name)
    tree = _function_ast(fn)
    if (
        depth >= 4
        or tree is None
        or any(isinstance(n, ast.Constant) and n.value == keyword for n in ast.walk(tree))
    ):  # the function handles the keyword by name: not decidable from here
        return Fate("unknown", name)
    for target, text, explicit in _callees(module, tree, var_kw):
        if keyword in explicit:
            return Fate("collision", f"{name} -> {text}(...)")
        if target is None:
            continue
        fate = keyword_fate(target[0], keyword, target[1], depth + 1)
        if fate.outcome in ("unexpected", "collision"):
            return Fate(fate.outcome, f"{name} -> {fate.where}")
    return Fate("accepted", f"{name} (absorbed by **{var_kw})")


def wrapper_findings(model: torch.nn.Module, peft_config: Any) -> list[Finding]:
    """Class 1: what the wrapper of ``peft_config.task_type`` (or of a PeftModel) does to ``model``."""
    from peft import PeftModel

    wrapper = wrapper_class(peft_config) if peft_config is not None else type(model)
    base = base_model(model)
    if wrapper is None or wrapper.forward is PeftModel.forward:
        return []
    base_name = f"{type(base).__name__}.forward"
    task_type = getattr(peft_config, "task_type", None)
    task = f"task_type={getattr(task_type, 'value', task_type)}" if task_type else "a task-specific wrapper"
    fix = (
        "Leave task_type out (get_peft_model then returns the plain PeftModel, which passes on exactly "
        "what it is given), or call the base model yourself."
    )
    findings = []
    passed = passed_keywords(wrapper)
    for keyword in passed:
        fate = keyword_fate(base, keyword)
        if fate.outcome == "unexpected":
            what = (
                f"TypeError: {fate.where.split(' -> ')[-1]}() got an unexpected keyword argument '{keyword}'"
            )
        elif fate.outcome == "collision":
            what = f"TypeError: got multiple values for keyword argument '{keyword}'"
        else:
            continue
        findings.append(
            Finding(
                "wrapper",
                f"wrapper.{fate.outcome}_keyword",
                "error",
                f"{what} at the first forward pass.",
                f"{wrapper.__name__}.forward ({task}) always passes {keyword}=...; followed through "
                f"the installed code: {fate.where}.",
                fix,
                raises="TypeError",
                when="first forward",
            )
        )
        break  # Python stops at the first bad keyword
    params = inspect.signature(type(base).forward).parameters.values()
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]
    missing = [n for n in required if n not in passed]
    if missing:
        order = [p for p in inspect.signature(wrapper.forward).parameters if p != "self"][:2]
        findings.append(
            Finding(
                "wrapper",
                "wrapper.required_argument_not_named",
                "warning",
                f"A positional call model({', '.join(required[:2])}) puts {required[0]} into {order[0]}: "
                f"TypeError: missing 1 required positional argument: '{missing[0]}'. Calls by keyword work.",
                f"{base_name} requires {missing}; {wrapper.__name__}.forward does not name "
                f"{'it' if len(missing) == 1 else 'them'} and begins ({', '.join(order)}, ...).",
                fix,
                raises="TypeError",
                when="a positional call",
            )
        )
    return findings


def named_parameters_of(fn: object) -> set[str]:
    """The explicitly named parameters of a callable (``*args``/``**kwargs`` excluded)."""
    return {
        p.name
        for p in inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    }


def unaccepted_wrapper_arguments(peft_model: torch.nn.Module) -> list[str]:
    """Arguments the PEFT wrapper's ``forward`` always passes on that the model does not name.

    Used by notebooks 01 and 02. The wrapper of a ``task_type`` (``PeftModelForFeatureExtraction``,
    ``PeftModelForCausalLM``, ...) calls the base model with a fixed set of keywords, ``None`` or
    not. Any keyword the model's own ``forward`` does not declare either raises a TypeError, or,
    where the model takes ``**kwargs``, travels further down and can collide there. The plain
    ``PeftModel`` passes only what it is given, so this returns ``[]`` for it.
    """
    from peft import PeftModel

    wrapper_forward = type(peft_model).forward
    if wrapper_forward is PeftModel.forward:
        return []
    base = peft_model.get_base_model()
    passed = named_parameters_of(wrapper_forward) - {"task_ids"}  # task_ids is PEFT's own
    return sorted(passed - named_parameters_of(type(base).forward))
