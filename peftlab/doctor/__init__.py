"""``peftlab.doctor``: a pre-flight check that predicts the collection's failure classes.

What the notebooks teach on their models, applied to any model, without training:

1. wrapper/forward mismatch (:mod:`~peftlab.doctor.signatures`, notebooks 01 and 02),
2. bad targets (:mod:`~peftlab.doctor.targeting`, notebooks 03, 04 and 05),
3. unsaved trainables (:mod:`~peftlab.doctor.saving`, notebooks 03 and 04),
4. checkpoint/config mismatch (:mod:`~peftlab.doctor.shapes`, notebook 05),
5. version advisories (:mod:`~peftlab.doctor.advisories`),
6. checkpointing with frozen inputs (:mod:`~peftlab.doctor.checkpointing`, notebook 06): reentrant
   gradient checkpointing where no input requires grad, or one tower's does not.

Every check reads the installed code and the model in front of it (signatures, module names and
types, tensor shapes), never a list of model classes (the one table of model types, in the
advisories, records a rename measured across library versions), and uses generic peftlab modules
only, none of a notebook's lesson. It works on a model built on the ``meta`` device, so a model of
any size is checked in well under a second or two.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from peftlab.doctor.findings import CLASSES, SEVERITIES, Diagnosis, Finding
from peftlab.module_names import base_model

__all__ = ["CLASSES", "SEVERITIES", "Diagnosis", "Finding", "doctor"]


def doctor(
    model: torch.nn.Module,
    peft_config: Any = None,
    checkpoint: str | Path | Mapping | None = None,
    *,
    batch: Mapping | None = None,
    adapter: str | Path | None = None,
) -> Diagnosis:
    """Inspect ``model`` (a transformers model or a PeftModel) before training; return the findings.

    * ``peft_config``: the config about to be applied with ``get_peft_model(model, peft_config)``.
      Leave it out for a PeftModel you are about to train (checks what it trains and saves).
    * ``checkpoint``: a checkpoint about to be loaded into this model (a ``save_pretrained`` folder,
      a weights file or a state dict): every tensor whose shape disagrees, and the config that fits.
    * ``batch``: a batch about to be trained on (a dict of tensors): image placeholder tokens against
      the image features the model makes, and inputs the model requires in training mode.
    * ``adapter``: a saved adapter folder about to be loaded: keys that match no module of this model.

    Nothing is trained, loaded or changed. Used by every notebook ("the doctor would have told you").
    """
    from peft import PeftModel

    from peftlab.doctor import (
        adapters,
        advisories,
        checkpointing,
        image_path,
        input_hooks,
        inputs,
        saving,
        shapes,
        signatures,
        targeting,
    )
    from peftlab.targets import adapter_layers

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"doctor() needs a torch model, not {type(model).__name__}.")
    start = time.perf_counter()
    findings: list[Finding] = []
    is_peft = isinstance(model, PeftModel)
    if peft_config is not None or is_peft:
        findings += signatures.wrapper_findings(model, peft_config)
    counts: dict = {}
    if peft_config is not None:
        findings += targeting.target_findings(model, peft_config)
        findings += saving.modules_to_save_findings(model, peft_config)
        findings += input_hooks.prepare_findings(model, peft_config)
        targets, _ = targeting.resolve_targets(model, peft_config)
        wrapped = targeting.wrapped_by(model, targets, getattr(peft_config, "exclude_modules", None)) or []
        findings += saving.tied_head_findings(model, peft_config, wrapped)
        findings += image_path.unused_findings(model, wrapped, batch, peft_config)
        counts = targeting.entry_counts(model, peft_config)
    elif is_peft:
        findings += saving.trainable_findings(model)
        findings += image_path.unused_findings(model, adapter_layers(base_model(model)), batch)
    if checkpoint is not None:
        findings += shapes.checkpoint_findings(model, checkpoint)
    if adapter is not None:
        findings += adapters.adapter_findings(model, adapter)
    if peft_config is not None or is_peft or batch is not None:
        findings += inputs.required_input_findings(model, batch)
    if batch is not None:
        findings += inputs.image_token_findings(model, batch)
    findings += advisories.advisory_findings(model, peft_config)
    findings += advisories.installed_pairing()
    findings += checkpointing.checkpointing_findings(model, batch)
    findings += input_hooks.hook_findings(model)
    subject = _subject(model, peft_config, checkpoint)
    return Diagnosis(subject, findings, time.perf_counter() - start, counts)


def _subject(model: torch.nn.Module, peft_config: Any, checkpoint: Any) -> str:
    base = base_model(model)
    parts = [type(model).__name__ + (f" around {type(base).__name__}" if base is not model else "")]
    if peft_config is not None:
        task = getattr(peft_config, "task_type", None)
        parts.append(
            f"{type(peft_config).__name__}(task_type={getattr(task, 'value', task)}, "
            f"target_modules={_short(getattr(peft_config, 'target_modules', None))})"
        )
    if checkpoint is not None:
        parts.append(
            f"checkpoint {Path(checkpoint).name if isinstance(checkpoint, (str, Path)) else '(state dict)'}"
        )
    return " + ".join(parts)


def _short(targets: Any) -> str:
    if targets is None or isinstance(targets, str):
        return repr(targets)
    return repr(sorted(targets))
