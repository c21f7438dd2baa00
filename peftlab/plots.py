"""Matplotlib figures the notebooks share: loss curves, parameter counts, signatures, images.

Every figure has its own white background and dark text, so it reads the same in a light or a
dark Jupyter theme. Each function returns the figure; Jupyter shows it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

#: A style that does not depend on the notebook theme.
STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": "#222222",
    "axes.labelcolor": "#222222",
    "axes.edgecolor": "#555555",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "axes.prop_cycle": matplotlib.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]),
}


def new_figure(
    width: float = 6.0, height: float = 3.2, ncols: int = 1, nrows: int = 1
) -> tuple[Figure, list]:
    """A new figure, closed in pyplot so that Jupyter shows it once: when a cell returns it."""
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    plt.close(fig)
    return fig, list(axes.flat)


def loss_curves(
    histories: dict[str, Sequence[float]], title: str = "training loss", smooth: int = 5
) -> Figure:
    """One line per run; a light raw curve under a moving average of ``smooth`` steps."""
    with plt.style.context(STYLE):
        fig, (ax,) = new_figure()
        offset = 0
        for i, (name, losses) in enumerate(histories.items()):
            colour = f"C{i}"
            steps = range(offset, offset + len(losses))
            ax.plot(steps, losses, color=colour, alpha=0.25, linewidth=1)
            if len(losses) >= smooth:
                avg = [sum(losses[j : j + smooth]) / smooth for j in range(len(losses) - smooth + 1)]
                ax.plot(list(steps)[smooth - 1 :], avg, color=colour, label=name, linewidth=2)
            else:
                ax.plot(steps, losses, color=colour, label=name, linewidth=2)
        ax.set(xlabel="optimiser step", ylabel="loss", title=title)
        ax.legend(frameon=False)
        fig.tight_layout()
    return fig


def parameter_counts(
    counts: dict[str, tuple[int, int]], title: str = "trainable (red) vs frozen (grey) parameters"
) -> Figure:
    """Horizontal stacked bars of ``{name: (trainable, total)}`` with the trainable share printed."""
    with plt.style.context(STYLE):
        fig, (ax,) = new_figure(height=1.0 + 0.5 * len(counts))
        names = list(counts)
        trainable = [counts[n][0] for n in names]
        frozen = [counts[n][1] - counts[n][0] for n in names]
        ax.barh(names, frozen, color="#bbbbbb", label="frozen")
        ax.barh(names, trainable, left=frozen, color="#d62728", label="trainable")
        for y, (t, f) in enumerate(zip(trainable, frozen)):
            ax.text(t + f, y, f"  {t:,} trainable ({t / max(t + f, 1):.1%})", va="center", fontsize=9)
        ax.set(xlabel="parameters", title=title)
        ax.set_xlim(0, max(t + f for t, f in zip(trainable, frozen)) * 1.7)
        ax.invert_yaxis()
        ax.grid(False)
        fig.tight_layout()
    return fig


def signature_names(fn: Callable) -> list[str]:
    """Parameter names of ``fn`` (``**kwargs`` shown as ``**kwargs``), without ``self``."""
    names = []
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self":
            continue
        names.append(
            ("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name
        )
    return names


def signature_comparison(wrapper: Callable, model: Callable, wrapper_title: str, model_title: str) -> Figure:
    """The wrapper's ``forward`` parameters beside the model's.

    Left: what the PEFT wrapper's ``forward`` names (it passes these on); red marks a name the
    model's ``forward`` does not declare. Right: the model's parameters; grey ones reach it only
    through the wrapper's ``**kwargs``. Used by notebooks 01 and 02.
    """
    a = [n for n in signature_names(wrapper) if n != "task_ids"]  # PEFT's own, never passed on
    b = signature_names(model)
    declared_b, declared_a = {n for n in b if not n.startswith("*")}, {n for n in a if not n.startswith("*")}
    model_has_kwargs = any(n.startswith("**") for n in b)
    with plt.style.context(STYLE):
        rows = max(len(a), len(b))
        fig, (ax,) = new_figure(width=9.5, height=0.7 + 0.26 * rows)
        ax.axis("off")
        ax.text(0.0, 1.0, wrapper_title, fontweight="bold", transform=ax.transAxes, va="bottom")
        ax.text(0.64, 1.0, model_title, fontweight="bold", transform=ax.transAxes, va="bottom")
        for i, name in enumerate(a):
            missing = not name.startswith("*") and name not in declared_b
            note = (
                ("  -> lands in the model's **kwargs" if model_has_kwargs else "  -> not accepted")
                if missing
                else ""
            )
            ax.text(
                0.0,
                1.0 - (i + 1) / (rows + 1),
                name + note,
                color="#d62728" if missing else "#222222",
                family="monospace",
                fontsize=9,
                transform=ax.transAxes,
                va="bottom",
            )
        for i, name in enumerate(b):
            via_kwargs = not name.startswith("*") and name not in declared_a
            ax.text(
                0.64,
                1.0 - (i + 1) / (rows + 1),
                name,
                color="#999999" if via_kwargs else "#222222",
                family="monospace",
                fontsize=9,
                transform=ax.transAxes,
                va="bottom",
            )
        fig.tight_layout()
    return fig


def image_grid(images: Sequence[Image.Image], titles: Sequence[str] | None = None, ncols: int = 8) -> Figure:
    """Images in a row (or rows), each with a small title above."""
    ncols = min(ncols, len(images))
    nrows = (len(images) + ncols - 1) // ncols
    with plt.style.context(STYLE):
        fig, axes = new_figure(1.6 * ncols, 1.9 * nrows, ncols=ncols, nrows=nrows)
        for ax in axes:
            ax.axis("off")
        for ax, image, title in zip(axes, images, titles or [""] * len(images)):
            ax.imshow(image)
            ax.set_title(title, fontsize=7, wrap=True)
        fig.tight_layout()
    return fig


def bars(values: dict[str, float], title: str, ylabel: str, percent: bool = True) -> Figure:
    """A bar per value, labelled with the number (as a percentage by default)."""
    with plt.style.context(STYLE):
        fig, (ax,) = new_figure(width=max(4.0, 1.3 * len(values)))
        names = list(values)
        ax.bar(names, [values[n] for n in names], color=[f"C{i}" for i in range(len(names))])
        for i, n in enumerate(names):
            ax.text(
                i, values[n], f"{values[n]:.0%}" if percent else f"{values[n]:.3g}", ha="center", va="bottom"
            )
        ax.set(title=title, ylabel=ylabel)
        if percent:
            ax.set_ylim(0, 1.1)
        fig.tight_layout()
    return fig


def staged_loss_curves(
    runs: dict[str, tuple[int, Sequence[float]]],
    title: str = "training loss",
    stages: dict[str, int] | None = None,
    log: bool = True,
) -> Figure:
    """Loss curves that start at different steps: ``{name: (first_step, losses)}``.

    A second stage starts where the first ended, so its curves continue the first one's; each
    ``stages`` entry ``{label: step}`` draws a dashed line where that stage begins. A log scale
    (the default) keeps small late losses visible. Used by notebook 03 (second LoRA stage).
    """
    with plt.style.context(STYLE):
        fig, (ax,) = new_figure(width=7.0, height=3.6)
        for i, (name, (start, losses)) in enumerate(runs.items()):
            ax.plot(range(start, start + len(losses)), losses, color=f"C{i}", label=name, linewidth=1.8)
        for label, step in (stages or {}).items():
            ax.axvline(step, color="#777777", linestyle="--", linewidth=1)
            ax.text(step, 1.0, f" {label}", transform=ax.get_xaxis_transform(), va="top", fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.set(xlabel="optimiser step", ylabel="loss" + (" (log scale)" if log else ""), title=title)
        ax.legend(frameon=False, fontsize=9)
        fig.tight_layout()
    return fig


def grouped_bars(
    groups: dict[str, dict[str, float]], title: str, ylabel: str, percent: bool = True
) -> Figure:
    """Bars side by side within each group: ``{group: {series: value}}``, one colour per series.

    Used by notebook 05 (retrieval before/after LoRA in both directions).
    """
    series = list(dict.fromkeys(s for values in groups.values() for s in values))
    width = 0.8 / max(len(series), 1)
    with plt.style.context(STYLE):
        fig, (ax,) = new_figure(width=max(4.0, 1.2 * len(groups) * len(series)))
        for j, name in enumerate(series):
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
            ys = [values.get(name, 0.0) for values in groups.values()]
            ax.bar(xs, ys, width, color=f"C{j}", label=name)
            for x, y in zip(xs, ys):
                ax.text(x, y, f"{y:.0%}" if percent else f"{y:.3g}", ha="center", va="bottom", fontsize=9)
        ax.set_xticks(range(len(groups)), list(groups))
        ax.set(title=title, ylabel=ylabel)
        if percent:
            ax.set_ylim(0, 1.3)
        ax.legend(frameon=False, fontsize=9, loc="upper center", ncol=len(series))
        fig.tight_layout()
    return fig
