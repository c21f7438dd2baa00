"""Synthetic images of simple shapes, with English and Chinese captions, questions and labels.

Every notebook trains and evaluates on this data, so nothing needs a dataset hub. A sample is a
coloured shape at one of four positions on a light, slightly noisy background; everything is
drawn from a seeded generator, so the same seed gives the same pixels on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from peftlab.parameters import ParameterError, check_seed, whole_number

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 119, 220),
    "yellow": (235, 200, 20),
}
POSITIONS = ("left", "right", "top", "bottom")

#: Chinese words for the captions used by notebook 05 (Chinese-CLIP).
CHINESE = {
    "circle": "圆形",
    "square": "方形",
    "triangle": "三角形",
    "cross": "十字",
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "left": "左边",
    "right": "右边",
    "top": "上边",
    "bottom": "下边",
}

#: The colours the tiny models see in pre-training; fine-tuning adds the rest (see pretraining).
BASE_COLOURS = ("red", "green", "blue")


@dataclass(frozen=True)
class Sample:
    """One synthetic image and everything that can be said about it."""

    image: Image.Image = field(repr=False)
    shape: str
    colour: str
    position: str

    @property
    def caption(self) -> str:
        """English caption, e.g. ``"a red circle on the left"`` or ``"... at the top"``."""
        preposition = "on" if self.position in ("left", "right") else "at"
        return f"a {self.colour} {self.shape} {preposition} the {self.position}"

    @property
    def caption_zh(self) -> str:
        """Chinese caption, e.g. ``"左边的红色圆形"``."""
        return f"{CHINESE[self.position]}的{CHINESE[self.colour]}{CHINESE[self.shape]}"

    @property
    def questions(self) -> list[tuple[str, str]]:
        """Question/answer pairs about the image."""
        return [
            ("what colour is the shape?", self.colour),
            ("what shape is it?", self.shape),
            ("where is the shape?", self.position),
        ]

    def label(self, by: str = "shape") -> int:
        """Class index by ``shape``, ``colour``, ``position`` or ``colour_shape``."""
        colours = list(COLOURS)
        if by == "shape":
            return SHAPES.index(self.shape)
        if by == "colour":
            return colours.index(self.colour)
        if by == "position":
            return POSITIONS.index(self.position)
        if by == "colour_shape":
            return colours.index(self.colour) * len(SHAPES) + SHAPES.index(self.shape)
        raise ValueError(f"Unknown label kind {by!r}: use shape, colour, position or colour_shape.")


def class_names(by: str = "shape") -> list[str]:
    """Names of the classes that :meth:`Sample.label` numbers, in index order."""
    names = {
        "shape": list(SHAPES),
        "colour": list(COLOURS),
        "position": list(POSITIONS),
        "colour_shape": [f"{c} {s}" for c in COLOURS for s in SHAPES],
    }
    if by not in names:
        raise ValueError(f"Unknown label kind {by!r}: use one of {sorted(names)}.")
    return names[by]


def draw_shape(shape: str, colour: str, position: str, size: int = 32, seed: int = 0) -> Image.Image:
    """Draw one shape on a ``size`` x ``size`` RGB image; size and jitter come from ``seed``."""
    if shape not in SHAPES or colour not in COLOURS or position not in POSITIONS:
        raise ParameterError(
            f"Unknown shape/colour/position {shape!r}/{colour!r}/{position!r}: "
            f"shapes {SHAPES}, colours {tuple(COLOURS)}, positions {POSITIONS}."
        )
    whole_number(
        size,
        "size",
        16,
        "an image's side in pixels",
        "set the image size in the parameters cell to 16 or more",
    )
    rng = random.Random(seed)
    noise = np.random.default_rng(seed).integers(0, 24, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray((np.full((size, size, 3), 230, np.uint8) + noise // 2).astype(np.uint8))
    radius = size * rng.uniform(0.14, 0.22)
    # The position fixes one coordinate near a border; the other wanders around the middle.
    near, far = size * rng.uniform(0.22, 0.30), size * rng.uniform(0.35, 0.65)
    cx, cy = {
        "left": (near, far),
        "right": (size - near, far),
        "top": (far, near),
        "bottom": (far, size - near),
    }[position]
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    fill = COLOURS[colour]
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    elif shape == "triangle":
        pen.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill)
    else:  # cross
        arm = radius / 2.5
        pen.rectangle((cx - radius, cy - arm, cx + radius, cy + arm), fill=fill)
        pen.rectangle((cx - arm, cy - radius, cx + arm, cy + radius), fill=fill)
    return image


def make_shapes(
    n: int,
    size: int = 32,
    seed: int = 0,
    colours: tuple[str, ...] | None = None,
    shapes: tuple[str, ...] = SHAPES,
    positions: tuple[str, ...] = POSITIONS,
) -> list[Sample]:
    """Return ``n`` samples cycling through every shape x colour x position, in a seeded order.

    Cycling (rather than drawing at random) keeps the classes balanced even for small ``n``.
    """
    whole_number(
        n,
        "n",
        1,
        "the number of images",
        "set the number of images or scenes in the parameters cell to 1 or more",
    )
    check_seed(seed, "seed")
    colours = tuple(COLOURS) if colours is None else colours
    combos = [(s, c, p) for s in shapes for c in colours for p in positions]
    if not combos:
        raise ParameterError(
            "make_shapes needs at least one shape, colour and position; pass non-empty tuples."
        )
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        if i % len(combos) == 0:
            rng.shuffle(combos)
        shape, colour, position = combos[i % len(combos)]
        samples.append(
            Sample(draw_shape(shape, colour, position, size, seed * 100_003 + i), shape, colour, position)
        )
    return samples


def train_test_split(
    n_train: int, n_test: int, size: int = 32, seed: int = 0, **kwargs: tuple[str, ...]
) -> tuple[list[Sample], list[Sample]]:
    """Two disjoint sets drawn with different seeds (the test images are never seen in training)."""
    return make_shapes(n_train, size, seed, **kwargs), make_shapes(n_test, size, seed + 7919, **kwargs)


def show_samples(samples: list[Sample], n: int = 8, chinese: bool = False):  # noqa: ANN201
    """A row of images with their captions (returns the matplotlib figure)."""
    from peftlab.plots import image_grid

    chosen = samples[:n]
    return image_grid([s.image for s in chosen], [s.caption_zh if chinese else s.caption for s in chosen])
