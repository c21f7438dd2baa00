"""The shared figures draw the data they are given (not just a white canvas)."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from PIL import Image  # noqa: E402

from peftlab import plots  # noqa: E402


def rendered(fig) -> np.ndarray:
    """The figure as an RGB array, as Jupyter would show it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return np.asarray(Image.open(buffer).convert("RGB"))


def colours(picture: np.ndarray) -> int:
    """How many distinct colours a rendered figure has (a blank one has 1)."""
    return len(np.unique(picture.reshape(-1, 3), axis=0))


def test_a_blank_figure_fails_the_checks():
    fig, (ax,) = plots.new_figure()
    ax.axis("off")
    assert colours(rendered(fig)) == 1 and not ax.lines and not ax.patches and not ax.images


def test_loss_curves_draw_raw_and_smoothed_losses():
    a, b = [3.0, 2.0, 1.0, 0.5, 0.4, 0.3], [1.0, 0.9]
    fig = plots.loss_curves({"a": a, "b": b}, smooth=5)
    (ax,) = fig.axes
    lines = [list(line.get_ydata()) for line in ax.lines]
    assert lines[0] == a and lines[1] == [sum(a[:5]) / 5, sum(a[1:6]) / 5]  # raw, then moving average
    assert lines[2] == b and lines[3] == b  # too short to smooth: drawn as it is
    assert list(ax.lines[1].get_xdata()) == [4, 5] and list(ax.lines[2].get_xdata()) == [0, 1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert rendered(fig)[1, 1].tolist() == [255, 255, 255] and colours(rendered(fig)) > 50


def test_parameter_counts_stack_frozen_and_trainable():
    fig = plots.parameter_counts({"full": (100, 100), "lora": (5, 105)})
    (ax,) = fig.axes
    bars = [(p.get_x(), p.get_width()) for p in ax.patches]
    assert bars == [(0, 0), (0, 100), (0, 100), (100, 5)]  # frozen bars, then trainable after them
    assert [t.get_text().strip() for t in ax.texts] == ["100 trainable (100.0%)", "5 trainable (4.8%)"]


def test_signature_comparison_marks_what_the_model_does_not_take():
    def wrapper(input_ids=None, inputs_embeds=None, **kwargs):
        pass

    def model(input_ids=None, pixel_values=None):
        pass

    fig = plots.signature_comparison(wrapper, model, "wrapper", "model")
    texts = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert texts["inputs_embeds  -> not accepted"] == "#d62728" and texts["input_ids"] == "#222222"
    assert texts["pixel_values"] == "#999999" and {"wrapper", "model", "**kwargs"} <= set(texts)


def test_image_grid_shows_each_image_with_its_title():
    images = [Image.new("RGB", (8, 8), c) for c in ("red", "lime", "blue")]
    fig = plots.image_grid(images, ["x", "y", "z"])
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["x", "y", "z"]
    for ax, colour in zip(shown, ("red", "lime", "blue")):
        assert (ax.images[0].get_array()[0, 0] == np.array(to_rgb(colour)) * 255).all()
    picture = rendered(fig)
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        assert (picture == colour).all(axis=-1).sum() > 100  # each image is drawn, not a blank canvas


def test_bars_have_the_heights_and_labels_given():
    fig = plots.bars({"base": 0.5, "lora": 0.9}, "acc", "top-1")
    (ax,) = fig.axes
    assert [p.get_height() for p in ax.patches] == [0.5, 0.9]
    assert [t.get_text() for t in ax.texts] == ["50%", "90%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "lora"]


def test_grouped_and_staged_figures_carry_their_data():
    fig = plots.grouped_bars({"before": {"i2t": 0.25, "t2i": 0.5}, "after": {"i2t": 0.75}}, "r", "acc")
    assert [p.get_height() for p in fig.axes[0].patches] == [0.25, 0.75, 0.5, 0.0]
    fig = plots.staged_loss_curves({"one": (0, [2.0, 1.0]), "two": (2, [0.8, 0.5])}, stages={"stage 2": 2})
    (ax,) = fig.axes
    assert [list(line.get_xdata()) for line in ax.lines[:2]] == [[0, 1], [2, 3]]
    assert list(ax.lines[1].get_ydata()) == [0.8, 0.5] and ax.get_yscale() == "log"


def test_signature_names():
    def f(self, a, *args, b=1, **kwargs):
        pass

    assert plots.signature_names(f) == ["a", "*args", "b", "**kwargs"]
