"""Device choice, in one place: CUDA if present, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from peftlab.parameters import ParameterError, check_seed

#: The device names a notebook's DEVICE may take besides None (a CUDA index may follow: "cuda:1").
DEVICE_NAMES = {"cpu": "the CPU", "cuda": "an NVIDIA GPU", "mps": "Apple's GPU"}


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the best available device, or ``prefer`` ("cpu", "cuda", "cuda:1", "mps") when given.

    Raises :class:`ParameterError` when ``prefer`` names no such device, or one this machine lacks.
    """
    if prefer is None:
        return _best()
    try:
        device = torch.device(prefer.lower() if isinstance(prefer, str) else prefer)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_NAMES:
        raise ParameterError(
            f"DEVICE={prefer!r} is not a device name: set DEVICE to None (picks CUDA, then MPS, then the CPU) "
            f"or to {_choices()}."
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"DEVICE={prefer!r}, but this machine has no CUDA GPU that torch can use: set DEVICE to None or "
            "'cpu' (on Colab, a GPU comes with Runtime > Change runtime type)."
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ParameterError(
            f"DEVICE={prefer!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0: "
            "set DEVICE to None or 'cuda'."
        )
    if device.type == "mps" and not _mps_available():
        raise ParameterError(
            f"DEVICE={prefer!r}, but MPS (Apple's GPU) is not available here: set DEVICE to None or 'cpu'."
        )
    return device


def _choices() -> str:
    named = [f"{name!r} ({what})" for name, what in DEVICE_NAMES.items()]
    return ", ".join(named[:-1]) + f" or {named[-1]}"


def _best() -> torch.device:
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
    """Seed Python, NumPy and torch so that a notebook gives the same numbers on every run.

    ``seed`` must be a whole number from 0 to 2**32 - 1 (NumPy's range), else :class:`ParameterError`.
    """
    import random

    import numpy as np

    check_seed(seed)

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
