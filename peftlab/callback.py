"""``peftlab.DoctorCallback``: the doctor inside a ``transformers.Trainer`` (or TRL's ``SFTTrainer``).

At ``on_train_begin`` it runs :func:`peftlab.doctor` on the model the trainer is about to train and on
the first batch of its training dataloader (moved to the model's device), before any optimizer step.
An error stops the run there, with the finding (:class:`DoctorStop`); warnings and silent losses are
logged once each. Nothing is changed: the batch is drawn from a fresh iterator of the dataloader.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import TrainerCallback

from peftlab.doctor import Diagnosis, doctor

logger = logging.getLogger("peftlab.doctor")


class DoctorStop(RuntimeError):
    """The doctor predicted an error for this training run; raised before step 1."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(f"peftlab's doctor stopped training before step 1:\n{diagnosis}")
        self.diagnosis = diagnosis


def first_batch(dataloader: Any, device: torch.device | None) -> dict | None:
    """The first batch of ``dataloader`` as a dict of tensors on ``device``, or None if it has none."""
    if dataloader is None:
        return None
    try:
        batch = next(iter(dataloader))
    except (StopIteration, TypeError):
        return None
    if not isinstance(batch, dict):
        return None
    return {k: (v.to(device) if isinstance(v, torch.Tensor) and device else v) for k, v in batch.items()}


class DoctorCallback(TrainerCallback):
    """Run the doctor when training begins; stop on a predicted error, log each warning once.

    ``peft_config`` is only needed for a model not yet wrapped by PEFT; ``use_batch=False`` skips the
    checks on the first batch.
    """

    def __init__(self, peft_config: Any = None, use_batch: bool = True) -> None:
        self.peft_config = peft_config
        self.use_batch = use_batch
        self.diagnosis: Diagnosis | None = None
        self._logged: set[str] = set()

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):  # noqa: ANN001, ANN201
        """Diagnose the model (and first batch) the trainer is about to train."""
        if model is None:
            return control
        device = next((p.device for p in model.parameters()), None)
        batch = first_batch(train_dataloader, device) if self.use_batch else None
        self.diagnosis = doctor(model, self.peft_config, batch=batch)
        for finding in self.diagnosis.findings:
            if finding.severity != "error" and finding.code not in self._logged:
                self._logged.add(finding.code)
                logger.warning("%s", finding)
        if any(f.severity == "error" for f in self.diagnosis.findings):
            raise DoctorStop(self.diagnosis)
        return control
