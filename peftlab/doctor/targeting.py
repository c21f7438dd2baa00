"""Class 2, bad targets: what ``target_modules`` will wrap, read before ``get_peft_model`` runs.

Built on :func:`peftlab.targets.preview_targets` (notebook 03), which applies PEFT's own matching
rules for the installed version: a type LoRA cannot wrap (a Dropout matched by the adapter name
``default``), nothing matched, layers that already carry an adapter. Added here: a contrastive
two-tower model (CLIP-like) whose targets adapt only one tower (notebook 05), and an image-text
generator (LLaVA-like) whose targets land in its vision tower as well as its language model
(notebook 07).
"""

from __future__ import annotations

from typing import Any

import torch

from peftlab.doctor.findings import Finding
from peftlab.module_names import all_linear_names, base_model, linear_layer_names, tower_of, vision_towers
from peftlab.registry import change
from peftlab.targets import adapter_layers, preview_targets, target_entry

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
        findings += _preview_findings(model, targets, preview)
        findings += _tower_findings(model, targets, preview.wrapped)
        wrapped = preview.wrapped if not preview.unsupported else []
        wraps = bool(preview.wrapped) and not preview.unsupported
    else:
        wrapped = [n for n in all_linear_names(model) if not (exclude and target_entry(n, exclude))]
        wraps = True
    findings += multi_tower_findings(model, targets, exclude, wrapped)
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


def _preview_findings(model: torch.nn.Module, targets: Any, preview: Any) -> list[Finding]:
    if preview.unsupported:
        return [
            Finding(
                "targets",
                "targets.unsupported_type",
                "error",
                f"ValueError: Target module {preview.unsupported[0].split(' (')[1].rstrip(')')}(...) is not supported.",
                f"target_modules={targets!r} matches {len(preview.unsupported)} modules LoRA cannot wrap, first "
                f"{preview.unsupported[0]}; PEFT matches names first and checks types afterwards.",
                f"Target the linear layers by their own names: {_names(model)}.",
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


def multi_tower_findings(
    model: torch.nn.Module, targets: Any, exclude: Any, wrapped: list[str]
) -> list[Finding]:
    """Targets that land in the vision tower of an image-text generator as well as in its language model.

    Applies to a model with a vision tower (by name, :func:`peftlab.module_names.vision_towers`) and an
    output layer, and no ``logit_scale`` (a contrastive model adapts both towers on purpose): LLaVA,
    PaliGemma, Idefics3, Qwen2-VL, BLIP-2... ``wrapped`` are the modules ``get_peft_model`` will wrap.
    """
    base = base_model(model)
    getter = getattr(base, "get_output_embeddings", None)
    if towers(model) or not callable(getter) or getter() is None or not vision_towers(base):
        return []
    parts = {"vision tower": [], "projector": [], "language model": []}
    for name in wrapped:
        parts[tower_of(name)].append(name)
    vision, language = parts["vision tower"], parts["language model"]
    if not vision or not language:
        return []
    tower = vision_towers(base)[0].rsplit(".", 1)[-1]
    named = [e for e in ([exclude] if isinstance(exclude, str) else exclude or []) if tower in e]
    trap = (
        (
            f" exclude_modules={exclude!r} leaves them in: a list entry is matched against each target's own "
            "name (equal, or ending in '.' + entry), so a tower's name excludes nothing inside it."
        )
        if named
        else ""
    )
    return [
        Finding(
            "targets",
            "targets.multi_tower",
            "warning",
            f"No error: get_peft_model puts LoRA on {len(vision)} layers of the vision tower as well as "
            f"{len(language)} of the language model ({len(parts['projector'])} in the projector): more trainable "
            "parameters than meant, a vision encoder that moves in training, and an adapter with vision-tower "
            "weights that a LoRA serving stack may refuse or drop (vLLM has done both).",
            f"target_modules={targets!r} matches {vision[0]} and {language[0]}, among others "
            f"(vision tower: {', '.join(vision_towers(base))}).{trap}",
            f"Anchor the targets on the language model, e.g. target_modules=r'^(?!.*{tower}).*\\.(q_proj|v_proj)' "
            "(a string is a regular expression over the whole module name), or add "
            f"exclude_modules=r'.*{tower}.*' (from {change('peft_exclude_modules').phrase()}). Adapt the vision "
            "tower only on purpose, and then serve the adapter with a stack that accepts it.",
            when="training",
        )
    ]
