"""The doctor's inputs from files: a model from a folder (or a Hub id), built on the meta device,
and a PEFT config from a saved ``adapter_config.json``. The command line is :mod:`peftlab.tools.doctor_command`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from peftlab.hub import OfflineError, hub_reachable


def model_config(source: str) -> Any:
    """The transformers config of a local folder (``config.json``) or of a Hub id (needs the Hub)."""
    from transformers import AutoConfig

    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} holds no config.json: not a model folder.")
        return AutoConfig.from_pretrained(path)
    if path.suffix == ".json" and path.is_file():
        return AutoConfig.from_pretrained(path.parent) if path.name == "config.json" else _config_file(path)
    ok, reason = hub_reachable()
    if not ok:
        raise OfflineError(
            f"{source!r} is not a local folder and the Hugging Face Hub is not reachable "
            f"({reason}). Pass a folder written by save_pretrained."
        )
    return AutoConfig.from_pretrained(source)


def _config_file(path: Path) -> Any:
    from transformers import AutoConfig

    data = json.loads(path.read_text())
    return AutoConfig.for_model(data.pop("model_type"), **data)


def meta_model(source: str) -> torch.nn.Module:
    """The model a folder's config describes, built on the meta device: shapes, no memory, no weights."""
    import transformers

    config = model_config(source)
    names = getattr(config, "architectures", None) or []
    cls = next((getattr(transformers, n) for n in names if hasattr(transformers, n)), None)
    with torch.device("meta"):
        if cls is not None:
            return cls(config)
        return transformers.AutoModel.from_config(config)


def peft_config(source: str) -> Any:
    """A PEFT config from an adapter folder or an ``adapter_config.json`` file."""
    from peft import PeftConfig

    path = Path(source)
    if path.is_dir():
        path = path / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"No adapter config at {path}.")
    return PeftConfig.from_peft_type(**json.loads(path.read_text()))


def has_weights(folder: str) -> bool:
    """Does ``folder`` hold a weights file that :func:`peftlab.checkpoints.read_shapes` reads?"""
    path = Path(folder)
    return path.is_dir() and (any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin")))
