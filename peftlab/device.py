"""Device choice, in one place: CUDA if present, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the best available device, or ``prefer`` ("cpu", "cuda", "mps") when given.

    Raises ``ValueError`` when the preferred device is not available here.
    """
    if prefer is not None:
        available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
        if prefer not in available:
            raise ValueError(f"Unknown device {prefer!r}: use one of {sorted(available)}.")
        if not available[prefer]:
            raise ValueError(f"Device {prefer!r} is not available on this machine; use 'cpu'.")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def placement(target: torch.device, quantization_config: object | None = None) -> dict:
    """``from_pretrained`` keywords that put a model on ``target``: none unquantised (move it after
    loading); with a bitsandbytes ``quantization_config``, the config and a ``device_map``, because
    bitsandbytes places the weights itself."""
    if quantization_config is None:
        return {}
    return {
        "quantization_config": quantization_config,
        "device_map": {"": (target.index or 0) if target.type == "cuda" else target.type},
    }


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that a notebook gives the same numbers on every run."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
