"""A checkpoint's tensors against a model's, for any model: read, compare, summarise, prove a load.

* :func:`read_shapes` reads ``{name: shape}`` from a folder, a file or a state dict, without loading
  the weights where the format allows it (safetensors); :func:`read_state_dict` reads the tensors;
* :func:`as_loaded` renames them as ``from_pretrained`` will (recent transformers convert some),
  and :func:`align_names` puts them in the model's form (a wrapper prefix such as ``module.``
  dropped, the model's ``base_model_prefix`` added or removed);
* :func:`compare_shapes` lists every tensor whose shape disagrees, as ``(name, checkpoint shape,
  model shape)``; :func:`mismatches` reads the same triples from a size-mismatch message;
* :func:`summarise` folds such triples into one row per tensor family;
* :func:`assert_loaded` proves that a model holds every tensor of a checkpoint, bit for bit.

Used by the doctor (:mod:`peftlab.doctor.shapes`) and by notebook 05.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

import torch

from peftlab.detectors import WeightsNotLoadedError
from peftlab.tables import Table

Shapes = dict[str, tuple[int, ...]]
#: ``(tensor name, checkpoint shape, model shape)``; ``None``: the tensor is absent on that side.
Triple = tuple[str, "tuple[int, ...] | None", "tuple[int, ...] | None"]

# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _shapes_of(state: Mapping) -> Shapes:
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):  # a training-script .pt file
        state = state["state_dict"]
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def _file_shapes(path: Path) -> Shapes:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    return _shapes_of(torch.load(path, map_location="cpu", mmap=True, weights_only=True))


def read_shapes(source: str | Path | Mapping) -> Shapes:
    """``{tensor name: shape}`` of a checkpoint: a state dict, a weights file (``.safetensors``,
    ``.bin``, ``.pt``; a training script's ``.pt`` may keep them under ``"state_dict"``) or a folder
    written by ``save_pretrained`` (sharded ones included)."""
    if isinstance(source, Mapping):
        return _shapes_of(source)
    path = Path(source)
    if path.is_file():
        return _file_shapes(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a weights file nor a checkpoint folder.")
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).exists():
            files = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
            return {k: v for name in files for k, v in _file_shapes(path / name).items()}
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).exists():
            return _file_shapes(path / name)
    raise FileNotFoundError(f"{path} holds no model.safetensors or pytorch_model.bin.")


def model_shapes(model: torch.nn.Module) -> Shapes:
    """``{name: shape}`` of a model's state dict (works on the meta device)."""
    return read_shapes(model.state_dict())


def read_state_dict(source: str | Path | Mapping) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint (a state dict, a weights file or a ``save_pretrained`` folder)."""
    if isinstance(source, Mapping):
        return dict(source.get("state_dict", source))
    path = Path(source)
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{path} holds no weights file.")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(f)))
        else:
            state.update(read_state_dict(torch.load(f, map_location="cpu", weights_only=True)))
    return state


def as_loaded(checkpoint: Mapping[str, object], model: torch.nn.Module) -> dict[str, object]:
    """The checkpoint's entries under the names ``from_pretrained`` gives them in ``model``.

    Recent transformers rename the tensors of some families when they load them (DeiT's
    ``attention.attention.query`` becomes ``attention.q_proj``, for example) and write the old names
    back when they save: a file's names then differ from the model's own. A transformers without
    these conversions loads the names as saved: the checkpoint is returned as it is.
    """
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, rename_source_key
    except ImportError:
        return dict(checkpoint)
    if not hasattr(model, "config"):
        return dict(checkpoint)
    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if not isinstance(t, WeightConverter)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    return {rename_source_key(k, renamings, converters)[0]: v for k, v in checkpoint.items()}


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------


def align_names(checkpoint: Mapping[str, object], model: Mapping[str, object], prefix: str = "") -> dict:
    """The checkpoint's names in the model's form: as they are, without a first part that every name
    shares (``module.`` of DistributedDataParallel), and with the model's ``base_model_prefix``
    added or removed; whichever shares most names with the model (as they are, on a tie)."""
    heads = {k.split(".", 1)[0] for k in checkpoint}
    options = [checkpoint]
    if len(heads) == 1 and all("." in k for k in checkpoint):
        options.append({k.split(".", 1)[1]: v for k, v in checkpoint.items()})
    if prefix:
        options += [{f"{prefix}.{k}": v for k, v in o.items()} for o in list(options)]
        options += [{k.removeprefix(f"{prefix}."): v for k, v in o.items()} for o in options[:2]]
    return max(options, key=lambda o: len(o.keys() & model.keys()))


def compare_shapes(checkpoint: Shapes, model: Shapes) -> list[Triple]:
    """Every disagreement between a checkpoint's shapes and a model's, as ``(name, checkpoint shape,
    model shape)``: a size mismatch, a tensor only in the checkpoint (model shape ``None``), and a
    numbered-block tensor only in the model (checkpoint shape ``None``: a difference in depth; other
    tensors only in the model, such as a new head, are expected and left out)."""
    sized = [(k, s, model[k]) for k, s in checkpoint.items() if k in model and model[k] != s]
    extra = [(k, s, None) for k, s in checkpoint.items() if k not in model]
    deeper = [(k, None, s) for k, s in model.items() if k not in checkpoint and re.search(r"\.\d+\.", k)]
    return sized + extra + deeper


_SIZE = r"torch\.Size\(\[([\d, ]*)\]\)"
_MISMATCH_PATTERNS = (
    # torch's load_state_dict (and transformers 4.x from_pretrained, which goes through it)
    re.compile(
        rf"size mismatch for ([\w.]+): copying a param with shape {_SIZE} from checkpoint, "
        rf"the shape in current model is {_SIZE}"
    ),
    # transformers 4.x with ignore_mismatched_sizes=True (a warning)
    re.compile(rf"- ([\w.]+): found shape {_SIZE} in the checkpoint and {_SIZE} in the model"),
    # transformers 5.x LOAD REPORT (layer numbers already folded into {0, 1})
    re.compile(rf"^([\w.{{}}, ]+?)\s*\|\s*MISMATCH\s*\|.*?ckpt: {_SIZE} vs model:\s*{_SIZE}", re.M),
)


def mismatches(text: str | BaseException) -> list[Triple]:
    """Every ``(tensor name, checkpoint shape, model shape)`` in a size-mismatch message or log; a
    tensor only in the checkpoint (torch's "Unexpected key(s)") has model shape ``None``, one only
    in the model ("Missing key(s)") checkpoint shape ``None``."""
    text, found = str(text), []
    for pattern in _MISMATCH_PATTERNS:
        for m in pattern.finditer(text):
            shape = [tuple(int(x) for x in g.split(",") if x.strip()) for g in m.groups()[1:]]
            found.append((m.group(1).strip(), shape[0], shape[1]))
    for kind, m in re.findall(r"(Unexpected|Missing) key\(s\) in state_dict: ((?:\"[\w.]+\"(?:, )?)+)", text):
        for name in re.findall(r'"([\w.]+)"', m):
            found.append((name, (), None) if kind == "Unexpected" else (name, None, ()))
    return found


# ---------------------------------------------------------------------------------------------
# Summarising
# ---------------------------------------------------------------------------------------------


def tensor_family(name: str) -> str:
    """The family of a tensor: its name up to the first block number (``...layers.*``), else its
    module without the parameter (``vision_model.embeddings.patch_embedding.weight`` ->
    ``vision_model.embeddings``)."""
    parts = re.sub(r"\{[\d, ]+\}", "0", name).split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:i] + ["*"])
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def format_shape(shape: tuple[int, ...] | None) -> str:
    """``[64, 3]``; ``absent`` for ``None``; ``present`` for a tensor whose shape is not known (``()``)."""
    if shape is None:
        return "absent"
    return "[" + ", ".join(map(str, shape)) + "]" if shape else "present"


def _blocks(names: list[str]) -> str:
    numbers = sorted({int(m.group(1)) for n in names if (m := re.search(r"\.(\d+)\.", n))})
    return f"blocks {', '.join(map(str, numbers))}" if numbers else ""


def summarise(triples: list[Triple]) -> Table:
    """One row per tensor family: how many tensors, checkpoint vs model shapes, and the sizes that
    differ (the widths at a glance); blocks present on one side only show a difference in depth."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for name, ckpt, model in triples:
        kind = "only in checkpoint" if model is None else "only in model" if ckpt is None else "size"
        groups[(tensor_family(name), kind)].append((name, ckpt, model))
    rows = []
    for (family, kind), items in groups.items():
        ckpt_shapes = " ".join(dict.fromkeys(format_shape(c) for _, c, _ in items))
        model_shapes_ = " ".join(dict.fromkeys(format_shape(m) for _, _, m in items))
        if kind == "size":
            sizes = Counter(
                f"{a} -> {b}" for _, c, m in items if len(c) == len(m) for a, b in zip(c, m) if a != b
            )
            detail = ", ".join(s for s, _ in sizes.most_common())
        else:
            detail = f"{kind}: {_blocks([n for n, _, _ in items])}".rstrip(": ")
        rows.append([family, str(len(items)), ckpt_shapes, model_shapes_, detail])
    return Table(
        ["tensor family", "tensors", "checkpoint", "model", "what differs (checkpoint -> model)"], rows
    )


def summarise_mismatch(text: str | BaseException) -> Table:
    """:func:`summarise` of a size-mismatch error or log (torch's, transformers 4's and 5's formats)."""
    return summarise(mismatches(text))


# ---------------------------------------------------------------------------------------------
# Proving a load
# ---------------------------------------------------------------------------------------------


def _side_by_side(
    model: torch.nn.Module, source: str | Path | Mapping, ignore: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the model's state dict, the checkpoint's tensors under the model's names, ``ignore`` left out)."""
    have = model.state_dict()
    saved = align_names(
        as_loaded(read_state_dict(source), model), have, getattr(model, "base_model_prefix", "")
    )
    return have, {k: v for k, v in saved.items() if not any(i in k for i in ignore)}


def differences(
    model: torch.nn.Module,
    source: str | Path | Mapping,
    ignore: tuple[str, ...] = ("position_ids", ".pooler."),
) -> dict[str, list[str]]:
    """The checkpoint's tensors that ``model`` does not hold as saved, by kind: ``missing`` (no place
    in the model), ``reshaped`` (re-initialised at another shape), ``changed`` (same shape, other
    values); all three are empty after a faithful load. ``compared``: every tensor looked at.

    Checkpoint tensors whose names contain one of ``ignore`` are skipped: older saves keep
    ``position_ids`` buffers, and a model built without a pooler has no place for a saved one.
    """
    have, saved = _side_by_side(model, source, ignore)
    return {
        "missing": [k for k in saved if k not in have],
        "reshaped": [k for k in saved if k in have and have[k].shape != saved[k].shape],
        "changed": [
            k
            for k in saved
            if k in have
            and have[k].shape == saved[k].shape
            and not torch.equal(have[k].detach().cpu(), saved[k].to(have[k].dtype))
        ],
        "compared": list(saved),
    }


def assert_loaded(
    model: torch.nn.Module,
    source: str | Path | Mapping,
    ignore: tuple[str, ...] = ("position_ids", ".pooler."),
) -> int:
    """Check that ``model`` holds every tensor of the checkpoint, bit for bit; return their count.

    Raises :class:`WeightsNotLoadedError` (peftlab's detector: the libraries stay silent) listing what
    :func:`differences` finds: this is how the silent ``ignore_mismatched_sizes=True`` load is caught
    (its re-initialised tensors have the model's shape and random values; the tensors it had no place
    for are dropped).
    """
    found = differences(model, source, ignore)
    missing, reshaped, changed = found["missing"], found["reshaped"], found["changed"]
    if missing or reshaped or changed:
        have, saved = _side_by_side(model, source, ignore)
        first = (reshaped or changed or missing)[0]
        detail = (
            f"{first}: checkpoint {format_shape(tuple(saved[first].shape))}, "
            f"model {format_shape(tuple(have[first].shape))}"
            if first in have
            else f"{first}: not in the model"
        )
        raise WeightsNotLoadedError(
            f"{len(missing) + len(reshaped) + len(changed)} of {len(saved)} checkpoint tensors are not in the "
            f"model as saved: {len(reshaped)} re-initialised at another shape, {len(changed)} with other values, "
            f"{len(missing)} with no place in the model (first: {detail})."
        )
    return len(found["compared"])
