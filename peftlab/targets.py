"""Which modules a LoRA ``target_modules`` list would wrap, seen before wrapping (notebook 03).

PEFT matches each module *name* of the model against ``target_modules``: a list entry matches a
name equal to it or ending in ``"." + entry``; a single string is a regular expression that must
match the whole name. Only then does it look at the module's *type*. So a name such as
``default`` (the adapter's name in ``lora_A.default``, ``lora_B.default`` and
``lora_dropout.default``) matches a Dropout as readily as a Linear layer. :func:`preview_targets`
applies the same rules to a model and shows, module by module, what ``get_peft_model`` will do
with the installed PEFT: wrap it, skip it, or fail on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from packaging.version import Version

from peftlab.registry import change
from peftlab.tables import Table

#: Module types that LoRA can wrap (the list PEFT's "is not supported" error names).
LORA_TYPES = (
    torch.nn.Linear,
    torch.nn.Embedding,
    torch.nn.Conv1d,
    torch.nn.Conv2d,
    torch.nn.Conv3d,
    torch.nn.MultiheadAttention,
)


@dataclass(repr=False)
class TargetPreview(Table):
    """What :func:`preview_targets` found: the table, plus the modules to wrap and the predicted error."""

    wrapped: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def predicted_error(self) -> str | None:
        """The exception class ``get_peft_model`` will raise, or None when it will wrap something.

        "Nothing matched" is a ``NoMatchingPeftModuleError`` (a ValueError) where the installed PEFT
        has that class, and a plain ``ValueError`` on older ones such as 0.15.2.
        """
        if self.unsupported:
            return "ValueError"
        if self.wrapped:
            return None
        try:
            from peft.utils.error import NoMatchingPeftModuleError  # noqa: F401
        except ImportError:
            return "ValueError"
        return "NoMatchingPeftModuleError"


def target_entry(name: str, target_modules: str | Iterable[str]) -> str | None:
    """The entry of ``target_modules`` that matches the module ``name`` under PEFT's rules, or None.

    A string is a regular expression that must match the whole name; a list entry matches the
    name itself or any name that ends with ``"." + entry``.
    """
    if isinstance(target_modules, str):
        return target_modules if re.fullmatch(target_modules, name) else None
    for entry in target_modules:
        if name == entry or name.endswith(f".{entry}"):
            return entry
    return None


def type_name(module: torch.nn.Module) -> str:
    """``Linear`` for a torch layer, ``lora.Linear`` for PEFT's LoRA layer of the same name."""
    parts = type(module).__module__.split(".")
    if parts[0] == "peft" and len(parts) > 2:
        return f"{parts[2]}.{type(module).__name__}"
    return type(module).__name__


def adapter_layers(model: torch.nn.Module) -> list[str]:
    """Names of the modules that are PEFT adapter layers already (e.g. a LoRA ``Linear``)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


def lora_can_wrap(module: torch.nn.Module) -> bool:
    """True when LoRA can wrap ``module`` (an adapter layer counts: PEFT adds the adapter to it)."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (BaseTunerLayer, Conv1D, *LORA_TYPES))


def skips_adapter_internals(peft_version: Version | None = None) -> bool:
    """Does this PEFT skip modules that lie inside an existing adapter layer?

    PEFT's PR #2539 ("Prevent adapters targeting themselves") added the skip; the release that
    first has it is ``registry.CHANGES["peft_skips_adapter_layers"]``.
    """
    return change("peft_skips_adapter_layers").holds(peft_version)


def preview_targets(
    model: torch.nn.Module,
    target_modules: str | Iterable[str],
    exclude_modules: str | Iterable[str] | None = None,
    peft_version: Version | None = None,
    under: str = "",
) -> TargetPreview:
    """Every module ``target_modules`` matches by name, its type, and what ``get_peft_model`` does.

    Mirrors PEFT's matching (see :func:`target_entry`) and, with ``peft_version`` (the installed
    one by default), its skipping of modules inside existing adapter layers. Not covered:
    ``layers_to_transform``, ``modules_to_save`` and the special string ``"all-linear"``.
    The table's notes predict the outcome for the whole model: which modules get wrapped, or which
    error comes; ``under`` (a module name) limits the rows shown to that part of the model.
    """
    if isinstance(target_modules, str) and target_modules == "all-linear":
        raise ValueError("preview_targets does not expand 'all-linear'; pass the list of names instead.")
    if not isinstance(target_modules, str):
        target_modules = list(target_modules)
    skip = skips_adapter_internals(peft_version)
    adapters = adapter_layers(model)
    rows, wrapped, unsupported, skipped = [], [], [], 0
    for name, module in model.named_modules():
        entry = target_entry(name, target_modules) if name else None
        if entry is None:
            continue
        inside = any(name.startswith(f"{a}.") for a in adapters)
        if exclude_modules and target_entry(name, exclude_modules):
            verdict = "excluded"
        elif inside and skip:
            verdict, skipped = "skipped: inside an adapter layer", skipped + 1
        elif not lora_can_wrap(module):
            verdict = "ValueError: type not supported"
            unsupported.append(f"{name} ({type_name(module)})")
        else:
            verdict = "wrapped" + (" (LoRA inside LoRA)" if inside else "")
            wrapped.append(name)
        if not under or name == under or name.startswith(f"{under}."):
            rows.append((name, type_name(module), entry, "yes" if inside else "no", verdict))
    notes = [_outcome(wrapped, unsupported, skipped)]
    if adapters and wrapped and not unsupported:
        notes.append(
            f"This model already carries {len(adapters)} adapter layers: get_peft_model would wrap it a "
            "second time. Continue with PeftModel.from_pretrained(..., is_trainable=True), add_adapter, "
            "or merge_and_unload first."
        )
    columns = ("module", "type", "matched by", "inside an adapter layer", "get_peft_model")
    shown = target_modules if isinstance(target_modules, str) else sorted(target_modules)
    title = f"target_modules={shown!r}" + (f", rows under {under}" if under else "")
    return TargetPreview(columns, rows, title, notes, wrapped, unsupported, skipped)


def _outcome(wrapped: list[str], unsupported: list[str], skipped: int) -> str:
    if unsupported:
        return (
            f"Outcome: ValueError 'Target module ... is not supported' at the first of "
            f"{len(unsupported)} modules LoRA cannot wrap: {unsupported[0]}."
        )
    if not wrapped:
        why = (
            f"all {skipped} matches lie inside adapter layers and are skipped"
            if skipped
            else "nothing matches"
        )
        return f"Outcome: {why}; get_peft_model raises 'Target modules ... not found in the base model'."
    return f"Outcome: {len(wrapped)} modules wrapped."


def module_table(
    model: torch.nn.Module, under: str = "", target_modules: str | Iterable[str] | None = None
) -> Table:
    """The modules at and below the name ``under`` with their types (and, given ``target_modules``,
    the entry each one matches): the picture of why a name such as ``default`` matches a Dropout.
    """
    rows = []
    for name, module in model.named_modules():
        if under and not (name == under or name.startswith(f"{under}.")):
            continue
        short = name[len(under) - len(under.rsplit(".", 1)[-1]) :] if under else name
        row = [short or "(model)", type_name(module)]
        if target_modules is not None:
            row.append(target_entry(name, target_modules) or "")
        rows.append(row)
    columns = ["module", "type"] + (["matched by"] if target_modules is not None else [])
    return Table(columns, rows, f"modules under {under}" if under else "modules")
