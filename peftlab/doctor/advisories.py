"""Class 5, version advisories: API changes between the CI stacks that this model or config touches.

Each advisory is measured, not remembered: the renamed attention layers were found by building every
image model type of the documented and current stacks on the meta device and comparing their
linear-layer names (with accelerate's ``init_empty_weights``); notebook 04 shows the ViT case, whose
release is ``registry.CHANGES["vit_attention_renamed"]``. An advisory does not mean this run fails; it
says what changes when the libraries do. Versions are read from the registry and the stack files.
"""

from __future__ import annotations

from typing import Any

import torch
from packaging.version import Version

from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model, linear_layer_names
from peftlab.registry import change
from peftlab.versions import pinned_versions, version_of

#: Model types whose attention projections are query/key/value on the documented stack and
#: q_proj/k_proj/v_proj (with o_proj) on the current one (measured on both).
RENAMED_ATTENTION = (
    "beit",
    "deit",
    "dinov2",
    "dinov2_with_registers",
    "ijepa",
    "segformer",
    "swin",
    "vit",
    "vit_msn",
)
OLD_TO_NEW = {"query": "q_proj", "key": "k_proj", "value": "v_proj"}


def renamed_attention(model: torch.nn.Module, peft_config: Any) -> list[Finding]:
    """``target_modules`` naming attention layers that transformers 5 renamed, for such a model."""
    model_type = getattr(getattr(base_model(model), "config", None), "model_type", "")
    targets = getattr(peft_config, "target_modules", None)
    if model_type not in RENAMED_ATTENTION or not targets or isinstance(targets, str):
        return []
    old = [t for t in targets if t in OLD_TO_NEW]
    if not old:
        return []
    new = [OLD_TO_NEW[t] for t in old]
    here = linear_layer_names(model)
    if all(t in here for t in old):  # the installed transformers still has the old names
        what = (
            f"Works here; on later transformers (ViT: from {change('vit_attention_renamed').phrase()}) {old} "
            "match nothing (get_peft_model raises), and adapters saved here carry the old names."
        )
    else:
        what = f"{old} are this model's names before transformers 5; the installed version calls them {new}."
    return [
        Finding(
            "versions",
            "versions.renamed_attention",
            "advisory",
            what,
            f"model_type={model_type!r}: attention layers query/key/value on transformers "
            f"{pinned_versions('documented')['transformers']}, q_proj/k_proj/v_proj/o_proj on "
            f"{pinned_versions('current')['transformers']} (measured).",
            "Read the names from the installed model (peftlab.module_names.attention_targets) instead "
            "of hard-coding them, and pin transformers beside any saved adapter.",
            when="another transformers version",
        )
    ]


def removed_auto_class(model: torch.nn.Module) -> list[Finding]:
    """A model that transformers 4 loads through ``AutoModelForVision2Seq``, removed in 5.0."""
    if change("vision2seq_removed").holds():
        return []
    from transformers.models.auto.modeling_auto import MODEL_FOR_VISION_2_SEQ_MAPPING_NAMES

    name = type(base_model(model)).__name__
    if name not in MODEL_FOR_VISION_2_SEQ_MAPPING_NAMES.values():
        return []
    return [
        Finding(
            "versions",
            "versions.removed_auto_class",
            "advisory",
            "Code that loads this model with AutoModelForVision2Seq raises ImportError from "
            f"{change('vision2seq_removed').phrase()} on.",
            f"{name} is in AutoModelForVision2Seq's mapping on the installed transformers "
            f"{version_of('transformers')}.",
            "Load it with AutoModelForImageTextToText (or the model class itself), which works on 4.x and 5.x.",
            when="another transformers version",
        )
    ]


def advisory_findings(model: torch.nn.Module, peft_config: Any) -> list[Finding]:
    """Class 5: every advisory that applies."""
    return renamed_attention(model, peft_config) + removed_auto_class(model)


def installed_pairing() -> list[Finding]:
    """The installed transformers' own minimum PEFT for its adapter API, against the installed PEFT.

    Read from the installed transformers (``MIN_PEFT_VERSION`` of its PEFT integration), never typed:
    ``get_peft_model`` and ``PeftModel`` do not check it, but ``model.add_adapter``/``load_adapter``/
    ``set_adapter`` and a Trainer resuming a PEFT checkpoint raise below it.
    """
    try:
        from transformers.integrations import peft as integration
    except ImportError:
        return []
    minimum = getattr(integration, "MIN_PEFT_VERSION", None)
    have = version_of("peft")
    if minimum is None or have is None or have >= Version(minimum):
        return []
    return [
        Finding(
            "versions",
            "versions.peft_below_transformers_minimum",
            "warning",
            "ValueError: The version of PEFT you are using is not compatible, please use a version >= "
            f"{minimum}, from transformers' own adapter API (add_adapter, load_adapter, set_adapter, a "
            "Trainer resuming a PEFT checkpoint); get_peft_model and PeftModel are not affected.",
            f"The installed transformers {version_of('transformers')} sets MIN_PEFT_VERSION = {minimum!r} "
            f"(transformers.integrations.peft); the installed peft is {have}.",
            f"Install peft >= {minimum} where it exists; otherwise use the transformers release before this "
            "minimum was raised, or stay with get_peft_model / PeftModel.from_pretrained (which do not check it).",
            raises="ValueError",
            when="model.load_adapter / add_adapter / Trainer resume",
        )
    ]
