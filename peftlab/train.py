"""A small training loop: AdamW, optional gradient accumulation and autocast, a progress bar.

``tqdm.auto`` draws an ipywidgets bar in Jupyter and plain text in a headless run or a terminal.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping

import torch
from tqdm.auto import tqdm

from peftlab.detectors import NothingToTrainError

Batch = Mapping[str, torch.Tensor]
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


#: Wall seconds of every optimiser step :func:`train` ran in this process (the scorecard's s/step).
STEP_SECONDS: list[float] = []


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """Return ``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def default_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The model's own loss (``labels`` or ``return_loss`` in the batch)."""
    return model(**batch).loss


def interleave(a: list, b: list) -> list:
    """The items of ``a`` and ``b`` in one list, ``b``'s (the shorter) spread evenly among ``a``'s."""
    every = len(a) / len(b)
    keyed = [(i, x) for i, x in enumerate(a)] + [((j + 0.5) * every, y) for j, y in enumerate(b)]
    return [x for _, x in sorted(keyed, key=lambda t: t[0])]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def to_device(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """Move every tensor of ``batch`` to ``device``."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    steps: int,
    lr: float = 1e-3,
    loss_fn: LossFn = default_loss,
    grad_accum: int = 1,
    autocast_dtype: torch.dtype | None = None,
    weight_decay: float = 0.0,
    desc: str = "training",
    progress: bool = True,
    schedule: Callable[[int], float] | None = None,
) -> list[float]:
    """Train ``model`` for ``steps`` optimiser steps on ``batches`` (cycled); return the losses.

    Each step averages ``grad_accum`` micro-batches. ``autocast_dtype`` (e.g. ``torch.bfloat16``)
    turns on mixed precision on the model's device. ``schedule(step)`` multiplies ``lr`` at each
    step (e.g. :func:`warmup_cosine`); without it the rate is constant. Refuses to run when nothing
    is trainable.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise NothingToTrainError(
            f"{type(model).__name__} has 0 trainable parameters: training would change nothing. "
            "If you loaded an adapter with PeftModel.from_pretrained, pass is_trainable=True."
        )
    if steps < 1 or grad_accum < 1:
        raise ValueError(f"steps and grad_accum must be at least 1 (got {steps}, {grad_accum}).")
    device = model_device(model)
    scaler = grad_scaler(device, autocast_dtype)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule) if schedule else None
    source = itertools.cycle(list(batches))
    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5)
    for _ in bar:
        started, total = time.perf_counter(), 0.0
        for _ in range(grad_accum):
            batch = to_device(next(source), device)
            with _autocast(device, autocast_dtype):
                loss = loss_fn(model, batch) / grad_accum
            (scaler.scale(loss) if scaler else loss).backward()
            total += loss.item()
        if scaler:  # fp16: unscale, skip the step on inf/nan gradients, adapt the scale
            scaler.step(optimiser)
            scaler.update()
        else:
            optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        STEP_SECONDS.append(time.perf_counter() - started)
        if scheduler is not None:
            scheduler.step()
        losses.append(total)
        bar.set_postfix(loss=f"{total:.3f}", refresh=False)
    bar.close()
    model.eval()
    return losses


def warmup_cosine(steps: int, warmup: int) -> Callable[[int], float]:
    """A ``schedule`` for :func:`train`: linear warm-up over ``warmup`` steps, then a cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def needs_grad_scaler(device: torch.device | str, dtype: torch.dtype | None) -> bool:
    """True for float16 autocast on CUDA (a T4 has no bf16): small gradients underflow in fp16
    unless the loss is scaled. bfloat16 has float32's range and needs none; the CPU has no fp16 autocast."""
    return dtype == torch.float16 and torch.device(device).type == "cuda"


def grad_scaler(device: torch.device | str, dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A ``torch.amp.GradScaler`` when :func:`needs_grad_scaler`, else None."""
    return torch.amp.GradScaler("cuda") if needs_grad_scaler(device, dtype) else None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
