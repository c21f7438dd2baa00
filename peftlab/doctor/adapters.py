"""Class 8, adapter/model key mismatch: a saved adapter whose tensors match no module of this model.

``PeftModel.from_pretrained`` loads an adapter by key; keys that name no module of the model are
reported only as a warning ("Found missing adapter keys"), and an adapter none of whose keys match
does nothing at all. This happens when the model's module names moved between the release the adapter
was saved on and the installed one (between the documented and the current stack, the image-text
models moved their language model under ``model.language_model``), or when the adapter was trained on
another model class.

The keys are read from the adapter file and mapped to module names as PEFT saves them; the renames the
installed libraries apply on load (the model class's own ``_checkpoint_conversion_mapping``, where the
installed PEFT reads it) are applied first, so a key that the load itself translates is not reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model

#: What PEFT puts around a module name in a saved adapter's keys.
PREFIX = "base_model.model."
ADAPTER_PARTS = re.compile(r"\.(lora_[A-Za-z_]+|modules_to_save)(\.[^.]+)?\.(weight|bias)$|\.(weight|bias)$")


def adapter_keys(folder: str | Path) -> list[str]:
    """The tensor names of a saved adapter (``adapter_model.safetensors`` or ``adapter_model.bin``)."""
    folder = Path(folder)
    if (folder / "adapter_model.safetensors").exists():
        from safetensors import safe_open

        with safe_open(folder / "adapter_model.safetensors", "pt") as f:
            return list(f.keys())
    if (folder / "adapter_model.bin").exists():
        return list(torch.load(folder / "adapter_model.bin", map_location="meta", weights_only=True))
    raise FileNotFoundError(f"No adapter_model.safetensors or adapter_model.bin in {folder}.")


def module_of(key: str) -> str:
    """The module a saved adapter key belongs to: ``base_model.model.a.b.lora_A.weight`` -> ``a.b``."""
    return ADAPTER_PARTS.sub("", key.removeprefix(PREFIX))


def _conversions(base: torch.nn.Module) -> dict[str, str]:
    """The key renames applied on load: the model class's ``_checkpoint_conversion_mapping`` where the
    installed PEFT reads that attribute (read from its code)."""
    import peft

    mapping = getattr(base, "_checkpoint_conversion_mapping", None) or {}
    if not mapping:
        return {}
    peft_dir = Path(peft.__file__).parent
    reads = any("_checkpoint_conversion_mapping" in p.read_text() for p in peft_dir.glob("*.py"))
    return dict(mapping) if reads else {}


def unmatched(model: torch.nn.Module, folder: str | Path) -> tuple[list[str], list[str]]:
    """(the adapter's module names, those that match no module of ``model`` after the load's renames)."""
    base = base_model(model)
    names = set(dict(base.named_modules()))
    conversions = _conversions(base)
    modules = sorted({module_of(k) for k in adapter_keys(folder)})
    missing = []
    for name in modules:
        converted = name
        for pattern, replacement in conversions.items():
            converted = re.sub(pattern, replacement, converted)
        if name not in names and converted not in names:
            missing.append(name)
    return modules, missing


def adapter_findings(model: torch.nn.Module, folder: str | Path) -> list[Finding]:
    """Class 8: adapter keys that match no module of ``model``."""
    modules, missing = unmatched(model, folder)
    if not missing:
        return []
    config = Path(folder) / "adapter_config.json"
    saved_on = json.loads(config.read_text()).get("base_model_name_or_path") if config.exists() else None
    nothing = len(missing) == len(modules)
    similar = _closest(model, missing[0])
    return [
        Finding(
            "adapter",
            "adapter.keys_match_no_module",
            "silent loss",
            (
                "No error, and this adapter will do nothing: "
                if nothing
                else "No error, and part of this adapter is dropped: "
            )
            + f"{len(missing)} of {len(modules)} adapted modules name no module of this model; from_pretrained "
            "only warns ('Found missing adapter keys') and the model behaves like the base for them.",
            f"Adapter module {missing[0]!r} is not in {type(base_model(model)).__name__}"
            + (f"; the closest module here is {similar!r}" if similar else "")
            + (f" (adapter saved from {saved_on!r})" if saved_on else "")
            + ".",
            "Load the adapter on the model class and library release it was saved with, or rename its keys to "
            "this model's module names (save_pretrained once on the right release) and check that the reloaded "
            "model's outputs differ from the base's.",
            when="load",
        )
    ]


def _closest(model: torch.nn.Module, name: str) -> str | None:
    """The module of ``model`` sharing the longest tail of name components with ``name``."""
    parts = name.split(".")
    best, best_len = None, 0
    for candidate, _ in base_model(model).named_modules():
        other = candidate.split(".")
        n = 0
        while n < min(len(parts), len(other)) and parts[-1 - n] == other[-1 - n]:
            n += 1
        if n > best_len:
            best, best_len = candidate, n
    return best if best_len >= 2 else None
