"""Class 2, bad targets: what ``target_modules`` will wrap, read before ``get_peft_model`` runs.

Built on :func:`peftlab.targets.preview_targets` (notebook 03), which applies PEFT's own matching
rules for the installed version: a type LoRA cannot wrap (a Dropout matched by the adapter name
``default``), nothing matched, layers that already carry an adapter. Added here: a contrastive
two-tower model (CLIP-like) whose targets adapt only one tower (notebook 05), and an image-text
generator (LLaVA-like) whose targets land in its vision tower as well as its language model
(notebook 07).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from peftlab.doctor.anatomy import PARTS, anatomy, inside, module_name
from peftlab.doctor.findings import Finding
from peftlab.module_names import all_linear_names, base_model, linear_layer_names
from peftlab.registry import change
from peftlab.targets import adapter_layers, lora_can_wrap, preview_targets, target_entry

#: Words in a child module's name that mark a vision tower or a text tower.
TOWER_WORDS = {"vision": ("vision", "visual", "image"), "text": ("text", "language")}


def resolve_targets(model: torch.nn.Module, peft_config: Any) -> tuple[Any, Finding | None]:
    """The config's ``target_modules``, or PEFT's default for the model type; a finding if neither."""
    targets = getattr(peft_config, "target_modules", None)
    if targets is not None:
        return (targets if isinstance(targets, str) else sorted(targets)), None
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = getattr(getattr(base_model(model), "config", None), "model_type", None)
    if model_type in DEFAULTS:
        return DEFAULTS[model_type], None
    return None, Finding(
        "targets",
        "targets.no_default",
        "error",
        "ValueError: Please specify `target_modules` in `peft_config`.",
        f"target_modules is None and PEFT has no default list for model_type={model_type!r}.",
        f"Name the layers to adapt; this model's linear layers: {_names(model)}.",
        raises="ValueError",
        when="get_peft_model",
    )


def _names(model: torch.nn.Module, limit: int = 8) -> str:
    counts = sorted(linear_layer_names(model).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} (x{n})" for name, n in counts[:limit]) + (" ..." if len(counts) > limit else "")


def towers(model: torch.nn.Module) -> dict[str, list[str]]:
    """``{"vision": [...], "text": [...]}``: names of a contrastive two-tower model's towers, else ``{}``.

    A model counts as two-tower when it has a ``logit_scale`` (CLIP, SigLIP, AltCLIP, Chinese-CLIP...)
    and child modules whose names mark each modality. Generative models (BLIP-2, LLaVA) are left
    out on purpose: adapting only their language model is a normal choice.
    """
    base = base_model(model)
    if not any(name.endswith("logit_scale") for name, _ in base.named_parameters()):
        return {}
    found: dict[str, list[str]] = {"vision": [], "text": []}
    for name, _ in base.named_children():
        for tower, words in TOWER_WORDS.items():
            if any(w in name for w in words) and "projection" not in name:
                found[tower].append(name)
    return found if all(found.values()) else {}


def target_findings(model: torch.nn.Module, peft_config: Any) -> list[Finding]:
    """Class 2 for ``get_peft_model(model, peft_config)``."""
    targets, missing = resolve_targets(model, peft_config)
    if missing:
        return [missing]
    findings = []
    adapters = adapter_layers(model)
    exclude = getattr(peft_config, "exclude_modules", None)
    if targets != "all-linear":
        preview = preview_targets(model, targets, exclude)
        findings += _preview_findings(model, targets, preview, exclude)
        findings += _tower_findings(model, targets, preview.wrapped)
        wrapped = preview.wrapped if not preview.unsupported else []
        wraps = bool(preview.wrapped) and not preview.unsupported
    else:
        wrapped = [n for n in all_linear_names(model) if not (exclude and target_entry(n, exclude))]
        wraps = True
    findings += multi_tower_findings(model, targets, exclude, wrapped)
    findings += discrete_findings(model, targets, exclude, wrapped)
    if adapters:
        findings.append(
            Finding(
                "targets",
                "targets.already_adapted",
                "silent loss" if wraps else "warning",
                (
                    "get_peft_model wraps this PeftModel in a second one, with only a warning; the second adapter's "
                    "saved keys carry a doubled 'base_model.model.' prefix, so PeftModel.from_pretrained later loads "
                    "none of them and the reload behaves like the untrained base."
                )
                if wraps
                else "The error above comes from applying get_peft_model to a model that carries adapters.",
                f"{len(adapters)} modules already are adapter layers (first: {adapters[0]}).",
                "Continue the stage with PeftModel.from_pretrained(base, adapter_dir, is_trainable=True); for a "
                "new adapter use add_adapter, or merge_and_unload() first and wrap the merged model.",
                when="reload" if wraps else "get_peft_model",
            )
        )
    return findings


def _preview_findings(
    model: torch.nn.Module, targets: Any, preview: Any, exclude: Any = None
) -> list[Finding]:
    if preview.unsupported:
        first = preview.unsupported[0].split(" (")[0]
        inner = unwrapped_fix(model, targets, preview, exclude)
        return [
            Finding(
                "targets",
                "targets.unsupported_type",
                "error",
                f"ValueError: Target module {preview.unsupported[0].split(' (')[1].rstrip(')')}(...) is not supported.",
                f"target_modules={targets!r} matches {len(preview.unsupported)} modules LoRA cannot wrap, first "
                f"{preview.unsupported[0]}; PEFT matches names first and checks types afterwards."
                + (f" {first} holds linear layers of its own: {', '.join(inner[1])}." if inner else ""),
                (
                    f"Target the linear layers inside: target_modules={inner[0]!r} (checked with PEFT's matching: "
                    "it wraps them and nothing LoRA cannot wrap)."
                    if inner
                    else f"Target the linear layers by their own names: {_names(model)}."
                ),
                raises="ValueError",
                when="get_peft_model",
            )
        ]
    if not preview.wrapped:
        return [
            Finding(
                "targets",
                "targets.no_match",
                "error",
                f"{preview.predicted_error}: Target modules {targets!r} not found in the base model.",
                preview.notes[0] + f" The model's linear layers: {_names(model)}.",
                "Choose target_modules from the names above (they change between library versions: read them "
                "from the installed model rather than copying a list).",
                raises=preview.predicted_error,
                when="get_peft_model",
            )
        ]
    return []


def _tower_findings(model: torch.nn.Module, targets: Any, wrapped: list[str]) -> list[Finding]:
    pairs = towers(model)
    if not pairs:
        return []
    base_prefix = "base_model.model." if hasattr(model, "get_base_model") else ""
    count = {
        tower: sum(any(w.startswith(f"{base_prefix}{n}.") for n in names) for w in wrapped)
        for tower, names in pairs.items()
    }
    idle = [tower for tower, n in count.items() if n == 0]
    if len(idle) != 1:
        return []
    busy = next(t for t in count if t not in idle)
    names = linear_layer_names(getattr(base_model(model), pairs[idle[0]][0]))
    return [
        Finding(
            "targets",
            "targets.one_tower",
            "warning",
            f"No error: get_peft_model adapts {count[busy]} layers of the {busy} tower and none of the "
            f"{idle[0]} tower, which keeps its pre-trained embeddings while the other one moves.",
            f"target_modules={targets!r}; the {idle[0]} tower ({', '.join(pairs[idle[0]])}) names its linear "
            f"layers {sorted(names)}.",
            f"Add the {idle[0]} tower's names for the same projections to target_modules (for example its query "
            "and value layers), or freeze one tower on purpose and say so.",
            when="training",
        )
    ]


def wrapped_by(model: torch.nn.Module, targets: Any, exclude: Any) -> list[str] | None:
    """The modules ``get_peft_model`` wraps for these targets (PEFT's matching, :mod:`peftlab.targets`),
    or None when it raises (a type LoRA cannot wrap, or nothing matched)."""
    if targets == "all-linear":
        return [n for n in all_linear_names(model) if not (exclude and target_entry(n, exclude))] or None
    preview = preview_targets(model, targets, exclude)
    return preview.wrapped if preview.wrapped and not preview.unsupported else None


def _exclude_phrase(exclude: Any) -> str:
    if isinstance(exclude, str):
        return f"exclude_modules=r{exclude!r} (a regular expression over the whole module name)"
    return f"exclude_modules={sorted(exclude)!r} (a list: each entry matched against a name's end)"


def multi_tower_findings(
    model: torch.nn.Module, targets: Any, exclude: Any, wrapped: list[str]
) -> list[Finding]:
    """Targets that land in the vision tower of an image-text generator as well as in its language model.

    Applies to a model with a pixel tower (:mod:`~peftlab.doctor.anatomy`: a tower is what consumes
    pixels, whatever it is called) and an output layer, and no ``logit_scale`` (a contrastive model adapts
    both towers on purpose). Each fix offered is checked with PEFT's matching before it is printed.
    """
    base = base_model(model)
    parts = anatomy(base)
    live_towers = [t for t in parts.towers if t not in parts.discrete]
    if towers(model) or module_name(base, "get_output_embeddings") is None or not live_towers:
        return []
    split: dict[str, list[str]] = {p: [] for p in PARTS}
    for name in wrapped:
        split["vision tower" if any(inside(name, t) for t in live_towers) else parts.part_of(name)].append(
            name
        )
    vision, language = split["vision tower"], split["language model"]
    if not vision or not language:
        return []
    trap = ""
    if exclude and any(inside(v, t) for v in vision for t in live_towers):
        trap = f" {_exclude_phrase(exclude)} leaves them in"
        trap += (
            ": a list entry is matched against each target's own name (equal, or ending in '.' + entry), so "
            "a tower's name excludes nothing inside it."
            if not isinstance(exclude, str)
            else ": it does not match their full names."
        )
    fixes = _tower_fixes(model, targets, exclude, live_towers)
    return [
        Finding(
            "targets",
            "targets.multi_tower",
            "warning",
            f"No error: get_peft_model puts LoRA on {len(vision)} layers of the vision tower as well as "
            f"{len(language)} of the language model ({len(split['other'])} elsewhere): more trainable "
            "parameters than meant, a vision encoder that moves in training, and an adapter with vision-tower "
            "weights that a LoRA serving stack may refuse or drop (vLLM has done both).",
            f"target_modules={targets!r} matches {vision[0]} and {language[0]}, among others (vision tower, "
            f"the module that consumes the pixels: {', '.join(live_towers)}).{trap}",
            (
                " or ".join(fixes) + " (each checked with PEFT's matching: no vision-tower layer, "
                "the language model's kept). "
                if fixes
                else "No single regex found that keeps only the language "
                "model's layers: list them by full name. "
            )
            + "Adapt the vision tower only on purpose, and then serve the adapter with a stack that accepts it.",
            when="training",
        )
    ]


def _tower_fixes(model: torch.nn.Module, targets: Any, exclude: Any, live_towers: list[str]) -> list[str]:
    """Fixes that keep the targets out of the vision towers, each verified with PEFT's matching."""
    parts = anatomy(model)
    words = sorted({t.rsplit(".", 1)[-1] for t in live_towers})
    away = "|".join(re.escape(w) for w in words)
    if targets == "all-linear":
        names = sorted(
            {n.rsplit(".", 1)[-1] for n in all_linear_names(model) if parts.part_of(n) == "language model"}
        )
    elif isinstance(targets, str):
        names = []
    else:
        names = sorted(targets)
    candidates = []
    if names:
        regex = rf"^(?!(.*\.)?({away})\.).*\.({'|'.join(re.escape(n) for n in names)})"
        candidates.append((f"target_modules=r'{regex}'", regex, None))
    regex = rf"(.*\.)?({away})\..*"
    if not (isinstance(exclude, str) and exclude == regex):
        candidates.append(
            (
                f"keep target_modules and set exclude_modules=r'{regex}' "
                f"(from {change('peft_exclude_modules').phrase()})",
                targets,
                regex,
            )
        )
    kept = []
    for text, new_targets, new_exclude in candidates:
        wrapped = wrapped_by(model, new_targets, new_exclude)
        if (
            wrapped
            and not any(inside(w, t) for w in wrapped for t in live_towers)
            and any(parts.part_of(w) == "language model" for w in wrapped)
        ):
            kept.append(text)
    return kept


def discrete_findings(
    model: torch.nn.Module, targets: Any, exclude: Any, wrapped: list[str]
) -> list[Finding]:
    """LoRA inside an image tokenizer that ends in discrete codes (a VQ-VAE): no gradient reaches it.

    The tokenizer's forward picks codes with ``argmin``/``argmax`` (read from the installed code by
    :mod:`~peftlab.doctor.anatomy`); what runs before the codes gets no gradient, and a decoder that the
    training forward does not run gets none either.
    """
    parts = anatomy(model)
    caught = [w for w in wrapped if any(inside(w, t) for t in parts.discrete)]
    if not caught:
        return []
    fixes = _tower_fixes(model, targets, exclude, list(parts.discrete))
    return [
        Finding(
            "targets",
            "targets.no_gradient_path",
            "silent loss",
            f"No error, and {len(caught)} of {len(wrapped)} LoRA layers never train: they lie in "
            f"{', '.join(parts.discrete)}, an image tokenizer whose output is discrete codes; no gradient "
            "flows back through a code choice.",
            f"target_modules={targets!r} matches {caught[0]} among others; a module inside "
            f"{parts.discrete[0]} picks codes with argmin/argmax (the installed code, read).",
            (
                " or ".join(fixes) + " (each checked with PEFT's matching). "
                if fixes
                else "Name the language model's layers by full name. "
            )
            + "To adapt the image tokenizer, train it on its own reconstruction "
            "loss, not through the language model.",
            when="training",
        )
    ]


def entry_counts(model: torch.nn.Module, peft_config: Any) -> dict[str, dict[str, int]]:
    """For each ``target_modules`` entry, the modules it matches by name (not excluded), per
    part of the model: ``{"q_proj": {"vision tower": 4, "language model": 2, "other": 0}, "qkv": {...}}``.

    An entry whose counts are all 0 matches nothing, which PEFT does not report while another entry
    matches (the ask of peft #3658). A regex or ``"all-linear"`` is one entry.
    """
    targets, missing = resolve_targets(model, peft_config)
    if missing or targets is None:
        return {}
    exclude = getattr(peft_config, "exclude_modules", None)
    parts = anatomy(model)
    entries = [targets] if isinstance(targets, str) else list(targets)
    counts = {entry: dict.fromkeys(PARTS, 0) for entry in entries}
    names = (
        all_linear_names(model)
        if targets == "all-linear"
        else [n for n, _ in base_model(model).named_modules() if n]
    )
    for name in names:
        if exclude and target_entry(name, exclude):
            continue
        for entry in entries:
            if entry == "all-linear" or target_entry(name, entry if isinstance(targets, str) else [entry]):
                counts[entry][parts.part_of(name)] += 1
    return counts


def unwrapped_fix(
    model: torch.nn.Module, targets: Any, preview: Any, exclude: Any
) -> tuple[Any, list[str]] | None:
    """For targets that match a module LoRA cannot wrap but that holds linear layers (a wrapper around
    ``nn.Linear``, an MLP block): the same targets pointing at those layers, if PEFT's matching then wraps
    without error. Returns ``(new target_modules, the inner names)`` or None."""
    inner: set[str] = set()
    for item in preview.unsupported:
        module = model.get_submodule(item.split(" (")[0])
        inner |= {
            n for n, m in module.named_modules() if n and lora_can_wrap(m) and isinstance(m, torch.nn.Linear)
        }
    if not inner:
        return None
    suffixes = sorted(inner)
    if isinstance(targets, str):
        new: Any = rf"(?:{targets})\.({'|'.join(re.escape(n) for n in suffixes)})"
    else:
        bad = {target_entry(item.split(" (")[0], targets) for item in preview.unsupported}
        new = sorted({t for t in targets if t not in bad} | {f"{b}.{n}" for b in bad for n in suffixes})
    check = preview_targets(model, new, exclude)
    return (new, suffixes) if check.wrapped and not check.unsupported else None
