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


def _figure(width: float = 6.0, height: float = 3.2, ncols: int = 1) -> tuple[Figure, list]:
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return fig, list(axes[0])


def loss_curves(histories: dict[str, Sequence[float]], title: str = "training loss", smooth: int = 5) -> Figure:
    """One line per run; a light raw curve under a moving average of ``smooth`` steps."""
    with plt.style.context(STYLE):
        fig, (ax,) = _figure()
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


def parameter_counts(counts: dict[str, tuple[int, int]], title: str = "trainable vs frozen parameters") -> Figure:
    """Horizontal stacked bars of ``{name: (trainable, total)}`` with the trainable share printed."""
    with plt.style.context(STYLE):
        fig, (ax,) = _figure(height=0.6 + 0.55 * len(counts))
        names = list(counts)
        trainable = [counts[n][0] for n in names]
        frozen = [counts[n][1] - counts[n][0] for n in names]
        ax.barh(names, frozen, color="#bbbbbb", label="frozen")
        ax.barh(names, trainable, left=frozen, color="#d62728", label="trainable")
        for y, (t, f) in enumerate(zip(trainable, frozen)):
            ax.text(t + f, y, f"  {t:,} trainable ({t / max(t + f, 1):.1%})", va="center", fontsize=9)
        ax.set(xlabel="parameters", title=title)
        ax.set_xlim(0, max(t + f for t, f in zip(trainable, frozen)) * 1.6)
        ax.invert_yaxis()
        ax.legend(frameon=False, loc="lower right")
        ax.grid(False)
        fig.tight_layout()
    return fig


def signature_names(fn: Callable) -> list[str]:
    """Parameter names of ``fn`` (``**kwargs`` shown as ``**kwargs``), without ``self``."""
    names = []
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self":
            continue
        names.append(("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name)
    return names


def signature_comparison(left: Callable, right: Callable, left_title: str, right_title: str) -> Figure:
    """Two columns of parameter names; a name missing from the other side is highlighted.

    Used by notebooks 01 and 02 to show what the PEFT wrapper's forward passes on to the model.
    """
    a, b = signature_names(left), signature_names(right)
    accepts_any_a, accepts_any_b = any(n.startswith("**") for n in a), any(n.startswith("**") for n in b)
    with plt.style.context(STYLE):
        rows = max(len(a), len(b))
        fig, (ax,) = _figure(width=7.5, height=0.6 + 0.26 * rows)
        ax.axis("off")
        for col, (names, other, other_any, title) in enumerate(
            [(a, b, accepts_any_b, left_title), (b, a, accepts_any_a, right_title)]
        ):
            x = 0.02 + 0.5 * col
            ax.text(x, 1.0, title, fontweight="bold", transform=ax.transAxes, va="bottom")
            for i, name in enumerate(names):
                missing = name.lstrip("*") not in {n.lstrip("*") for n in other} and not name.startswith("*")
                colour = "#d62728" if missing else "#222222"
                note = "  (only via **kwargs)" if missing and other_any else ("  (not accepted)" if missing else "")
                ax.text(x, 1.0 - (i + 1) / (rows + 1), name + (note if col == 0 else ""), color=colour,
                        family="monospace", fontsize=9, transform=ax.transAxes, va="bottom")
        fig.tight_layout()
    return fig


def image_grid(images: Sequence[Image.Image], titles: Sequence[str] | None = None, ncols: int = 8) -> Figure:
    """Images in a row (or rows), each with a small title underneath."""
    ncols = min(ncols, len(images))
    nrows = (len(images) + ncols - 1) // ncols
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for i, image in enumerate(images):
            ax = axes.flat[i]
            ax.imshow(image)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7, wrap=True)
        fig.tight_layout()
    return fig


def bars(values: dict[str, float], title: str, ylabel: str, percent: bool = True) -> Figure:
    """A bar per value, labelled with the number (as a percentage by default)."""
    with plt.style.context(STYLE):
        fig, (ax,) = _figure(width=max(4.0, 1.3 * len(values)))
        names = list(values)
        ax.bar(names, [values[n] for n in names], color=[f"C{i}" for i in range(len(names))])
        for i, n in enumerate(names):
            ax.text(i, values[n], f"{values[n]:.0%}" if percent else f"{values[n]:.3g}", ha="center", va="bottom")
        ax.set(title=title, ylabel=ylabel)
        if percent:
            ax.set_ylim(0, 1.1)
        fig.tight_layout()
    return fig
