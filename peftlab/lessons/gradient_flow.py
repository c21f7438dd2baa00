"""Gradients per part of BLIP-2 under gradient checkpointing (notebook 06), and the memory it saves.

The lesson's own lines (the per-tower gradient check and the fix) are written in the notebook; this
module holds the plumbing: which part of BLIP-2 a LoRA layer sits in, the detector that turns "some
adapted layers got no gradient" into an error, the memory measurement and the figures.

Memory is measured two ways. On a CUDA GPU, the peak of ``torch.cuda.max_memory_allocated`` over one
training step (forward and backward) above what was allocated before it. On any device,
:func:`saved_activation_bytes`: the bytes of the tensors autograd keeps for the backward pass during
the forward pass (each storage counted once; the model's own parameters, which autograd keeps by
reference, left out). That is the memory gradient checkpointing trades for recomputation: with
checkpointing, a checkpointed layer keeps only its inputs (its saved tensors are dropped and
recomputed in the backward pass). The CPU has no allocator statistics to compare with, and a
process's resident memory moves with the allocator's caching, so the saved-tensor count is what is
shown there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from matplotlib.figure import Figure

from peftlab.detectors import SilentLossError
from peftlab.models.blip2 import COMPONENTS
from peftlab.plots import STYLE, new_figure

#: Short labels of BLIP-2's parts, in the order an image goes through them.
PARTS = {
    "vision_model": "vision tower",
    "qformer": "Q-Former",
    "language_projection": "projection",
    "language_model": "OPT",
}


def part_of(name: str) -> str:
    """The BLIP-2 part a parameter name belongs to (``vision_model``, ``qformer``, ...)."""
    name = name.removeprefix("base_model.model.").removeprefix("model.")
    return next((part for part in COMPONENTS if name.startswith(part + ".")), "other")


def assert_every_adapter_learns(norms: Mapping[str, float | None]) -> None:
    """Raise :class:`SilentLossError` naming the adapted layers (``{name: gradient norm or None}``)
    that got no gradient, part by part; do nothing when every one got a non-zero gradient."""
    dead = [name for name, norm in norms.items() if not norm]
    if not dead:
        return
    parts = {}
    for name in dead:
        parts.setdefault(part_of(name), []).append(name)
    total = {part: sum(part_of(n) == part for n in norms) for part in parts}
    raise SilentLossError(
        "No error was raised, yet these LoRA layers get no gradient: "
        + "; ".join(
            f"{part}: {len(names)} of {total[part]} ({names[0].split('.lora_B')[0]} ...)"
            for part, names in parts.items()
        )
        + ". Their lora_B stays zero: they are trained in name only."
    )


def saved_activation_bytes(forward: Callable[[], torch.Tensor], model: torch.nn.Module) -> int:
    """Bytes autograd keeps for the backward pass while ``forward()`` runs (see the module docstring).

    ``forward`` returns the loss; the graph is released before returning.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params and tensor.device.type != "meta":
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = forward()
    del loss
    return sum(seen.values())


def cuda_peak_bytes(step: Callable[[], None], device: torch.device) -> int | None:
    """The peak memory ``step()`` allocates on a CUDA device above what was there before; None elsewhere."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def gradient_norms_figure(setups: Mapping[str, Mapping[str, float | None]], title: str) -> Figure:
    """Each adapted layer's lora_B gradient norm at step 1, one panel per setup (no gradient: a red x)."""
    import matplotlib.pyplot as plt

    with plt.style.context(STYLE):
        fig, axes = new_figure(width=4.2 * len(setups), height=3.6, ncols=len(setups))
        for ax, (setup, norms) in zip(axes, setups.items()):
            names = list(norms)
            ys = range(len(names))
            values = [norms[n] or 0.0 for n in names]
            colours = [f"C{list(PARTS).index(part_of(n)) if part_of(n) in PARTS else 4}" for n in names]
            ax.barh(ys, [v if v > 0 else float("nan") for v in values], color=colours)
            smallest = min((v for v in values if v > 0), default=1e-3)
            for y, v in zip(ys, values):
                if v <= 0:
                    ax.plot(smallest / 3, y, "x", color="#c62828", markersize=8)
            ax.set_xscale("log")
            ax.set_yticks(list(ys), [_short(n) for n in names], fontsize=7)
            ax.invert_yaxis()
            ax.set(title=setup, xlabel="|grad of lora_B| at step 1 (log)")
        handles = [
            plt.Rectangle((0, 0), 1, 1, color=f"C{i}")
            for i, part in enumerate(PARTS)
            if part != "language_projection"
        ]
        fig.legend(
            handles,
            [PARTS[p] for p in PARTS if p != "language_projection"],
            loc="lower center",
            ncol=3,
            frameon=False,
            fontsize=8,
        )
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _short(name: str) -> str:
    """``vision_model.encoder.layers.0.self_attn.qkv.lora_B.default.weight`` -> ``vision 0 qkv``."""
    name = name.removeprefix("base_model.model.").split(".lora_B")[0]
    parts = name.split(".")
    index = next((p for p in parts if p.isdigit()), "")
    return f"{PARTS.get(part_of(name), parts[0]).split()[0]} {index} {parts[-1]}"


def memory_figure(measured: Mapping[str, int], title: str) -> Figure:
    """Bars: memory per setup (bytes), labelled in MB, with the saving relative to the first bar."""
    import matplotlib.pyplot as plt

    with plt.style.context(STYLE):
        fig, (ax,) = new_figure(width=max(4.5, 1.6 * len(measured)))
        names = list(measured)
        first = measured[names[0]]
        ax.bar(names, [measured[n] / 1e6 for n in names], color=[f"C{i}" for i in range(len(names))])
        for i, n in enumerate(names):
            note = "" if i == 0 else f"\n({measured[n] / first:.0%} of the first)"
            ax.text(
                i,
                measured[n] / 1e6,
                f"{measured[n] / 1e6:.1f} MB{note}",
                ha="center",
                va="bottom",
                fontsize=9,
            )
        ax.set(title=title, ylabel="MB")
        ax.set_ylim(0, first / 1e6 * 1.3)
        fig.tight_layout()
    return fig
