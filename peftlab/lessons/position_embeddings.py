"""A ViT's position embeddings at a new resolution, and keeping them through save and reload.

Used by notebook 04. A ViT learns one position embedding per patch of its pre-training grid (plus
one for the class token). At a new resolution the grid changes, so the table must be interpolated:
:func:`resize_position_embeddings` does it once, in place, and updates every recorded image size.

The table is an ``nn.Parameter``, not a module. PEFT's ``modules_to_save`` matches module names
only, so it neither trains nor saves the table. :func:`save_extra_parameters` and
:func:`load_extra_parameters` keep such parameters in a sidecar safetensors file beside the adapter.
:func:`require_trainable` and :func:`require_same_parameters` turn the two silent losses into a
:class:`SilentLossError`, so that a notebook can assert them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from safetensors.torch import load_file, save_file

from peftlab.detectors import SilentLossError
from peftlab.module_names import base_model

#: The sidecar file that :func:`save_extra_parameters` writes beside ``adapter_model.safetensors``.
SIDECAR = "extra_parameters.safetensors"


def vit_embeddings(model: torch.nn.Module) -> torch.nn.Module:
    """The ``ViTEmbeddings`` module of a ViT model or of a ``PeftModel`` around one."""
    for module in base_model(model).modules():
        if hasattr(module, "position_embeddings") and hasattr(module, "patch_embeddings"):
            return module
    raise ValueError(
        f"{type(model).__name__} has no ViT embeddings (position_embeddings + patch_embeddings)."
    )


def interpolate_table(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ``(1, 1 + h*w, dim)`` table to a ``grid`` of patches; the class token is kept as is.

    The patch part is reshaped to its square ``h x w`` grid and resized bicubically, exactly as
    transformers' ``interpolate_pos_encoding=True`` does at every forward pass.
    """
    cls, patches = table[:, :1], table[:, 1:]
    side, dim = int(patches.shape[1] ** 0.5), table.shape[-1]
    if side * side != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch positions do not form a square grid.")
    patches = patches.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
    return torch.cat((cls, patches.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


@torch.no_grad()
def resize_position_embeddings(model: torch.nn.Module, image_size: int) -> torch.nn.Module:
    """Make a ViT take ``image_size`` px images: interpolate its table once and record the new size.

    Updates the table and every place that remembers the size (``config.image_size``,
    ``patch_embeddings.image_size`` and ``num_patches``, and ``embeddings.image_size`` where the
    installed transformers has it), so the size check passes with no extra forward argument.
    Returns ``model``.
    """
    embeddings = vit_embeddings(model)
    patch = embeddings.patch_embeddings.patch_size
    patch = patch if isinstance(patch, int) else patch[0]
    if image_size % patch:
        raise ValueError(f"image_size {image_size} is not a multiple of the patch size {patch}.")
    grid = (image_size // patch, image_size // patch)
    old = embeddings.position_embeddings
    table = interpolate_table(old.detach(), grid)
    embeddings.position_embeddings = torch.nn.Parameter(table, requires_grad=old.requires_grad)
    embeddings.patch_embeddings.image_size = (image_size, image_size)
    embeddings.patch_embeddings.num_patches = grid[0] * grid[1]
    if hasattr(
        embeddings, "image_size"
    ):  # the rewritten ViT (CHANGES["vit_attention_renamed"]) checks it here
        embeddings.image_size = (image_size, image_size)
    base_model(model).config.image_size = image_size
    return model


def similarity(table: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every pair of patch positions (the class token left out)."""
    patches = F.normalize(table.detach().float().reshape(-1, table.shape[-1])[1:], dim=-1)
    return patches @ patches.T


def similarity_mosaic(table: torch.Tensor) -> torch.Tensor:
    """One image of the similarity grids: tile (i, j) shows how position (i, j) resembles every other.

    This is the picture of the ViT paper (Dosovitskiy et al., 2021, figure 7). Tiles are separated
    by a one-pixel gap of NaN (drawn blank).
    """
    sim = similarity(table)
    side = int(sim.shape[0] ** 0.5)
    mosaic = torch.full((side * (side + 1) - 1, side * (side + 1) - 1), float("nan"))
    for k in range(side * side):
        i, j = divmod(k, side)
        top, left = i * (side + 1), j * (side + 1)
        mosaic[top : top + side, left : left + side] = sim[k].reshape(side, side)
    return mosaic


def plot_similarity(tables: dict[str, torch.Tensor]) -> Figure:
    """Similarity grids of one or more position-embedding tables, side by side (shared colours)."""
    import matplotlib.pyplot as plt

    from peftlab.plots import STYLE

    with plt.style.context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 3.9), squeeze=False)
        plt.close(fig)
        for ax, (title, table) in zip(axes[0], tables.items()):
            side = int((table.shape[1] - 1) ** 0.5)
            image = ax.imshow(similarity_mosaic(table), cmap="viridis", vmin=-1, vmax=1)
            ax.set_title(f"{title}\n{side} x {side} patches", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="cosine similarity")
    return fig


def wrapped_modules(model: torch.nn.Module) -> list[str]:
    """Names (in the base model) of the modules that ``modules_to_save`` wrapped, nested ones included."""
    return [
        name.removeprefix("base_model.model.")
        for name, module in model.named_modules()
        if type(module).__name__ == "ModulesToSaveWrapper"
    ]


def _matching(model: torch.nn.Module, names: Sequence[str]) -> dict[str, torch.nn.Parameter]:
    """Parameters of the base model whose name is one of ``names`` or ends with ``.name``."""
    return {
        key: p
        for key, p in base_model(model).named_parameters()
        if any(key == n or key.endswith(f".{n}") for n in names)
    }


def require_trainable(model: torch.nn.Module, names: Sequence[str]) -> None:
    """Raise :class:`SilentLossError` unless every parameter named ``names`` exists and is trainable."""
    found = _matching(model, names)
    frozen = [f"{k} ({p.numel():,} values)" for k, p in found.items() if not p.requires_grad]
    missing = [n for n in names if not any(k == n or k.endswith(f".{n}") for k in found)]
    if frozen or missing:
        raise SilentLossError(
            f"Not trainable: {', '.join(frozen + missing)}. PEFT raised nothing, but training will not "
            "change these values: modules_to_save matches modules, and a parameter is not a module."
        )


def require_same_parameters(
    trained: torch.nn.Module, reloaded: torch.nn.Module, names: Sequence[str]
) -> None:
    """Raise :class:`SilentLossError` when a parameter named ``names`` differs after a reload."""
    before, after = _matching(trained, names), _matching(reloaded, names)
    lost = []
    for key, value in before.items():
        other = after.get(key)
        if other is None or other.shape != value.shape:
            lost.append(f"{key} (absent or of another shape)")
        elif not torch.equal(other.detach().cpu(), value.detach().cpu()):
            diff = (other.detach().cpu() - value.detach().cpu()).abs().max().item()
            lost.append(f"{key} (max |difference| {diff:.3g})")
    if lost:
        raise SilentLossError(
            f"The reloaded model does not carry the trained {', '.join(lost)}. save_pretrained wrote "
            "the adapter without these values and from_pretrained raised nothing: the training is lost."
        )


def save_extra_parameters(model: torch.nn.Module, folder: str | Path, names: Sequence[str]) -> Path:
    """Save the parameters named ``names`` (e.g. ``["position_embeddings"]``) to ``folder``/:data:`SIDECAR`.

    For parameters PEFT does not save: call it after ``save_pretrained(folder)``. Keys are the
    parameter names in the base model, e.g. ``vit.embeddings.position_embeddings``.
    """
    found = _matching(model, names)
    if not found:
        raise ValueError(f"No parameter named {list(names)} in {type(base_model(model)).__name__}.")
    path = Path(folder) / SIDECAR
    save_file({k: p.detach().cpu().contiguous() for k, p in found.items()}, str(path))
    return path


@torch.no_grad()
def load_extra_parameters(model: torch.nn.Module, folder: str | Path) -> list[str]:
    """Copy the tensors of ``folder``/:data:`SIDECAR` into ``model`` (a base model or a PeftModel).

    The model must be prepared as the saved one was (same resolution), else a clear ``ValueError``.
    Returns the names restored.
    """
    tensors = load_file(str(Path(folder) / SIDECAR))
    base = base_model(model)
    for key, value in tensors.items():
        target = base.get_parameter(key)
        if target.shape != value.shape:
            raise ValueError(
                f"{key} was saved with shape {tuple(value.shape)} but the model has {tuple(target.shape)}: "
                "prepare the base model as before saving (e.g. resize_position_embeddings) first."
            )
        target.copy_(value.to(target.device, target.dtype))
    return sorted(tensors)
