import numpy as np
import pytest

from peftlab import data


def test_deterministic_by_seed():
    a, b = data.make_shapes(12, seed=3), data.make_shapes(12, seed=3)
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b))
    c = data.make_shapes(12, seed=4)
    assert [s.caption for s in a] != [s.caption for s in c]


def test_any_resolution_and_balanced_classes():
    samples = data.make_shapes(64, size=48)
    assert samples[0].image.size == (48, 48)
    counts = np.bincount([s.label("colour_shape") for s in samples], minlength=16)
    assert counts.min() == counts.max() == 4


def test_captions_questions_and_labels():
    s = data.make_shapes(1, colours=("red",), shapes=("circle",), positions=("left",))[0]
    assert s.caption == "a red circle on the left"
    assert s.caption_zh == "左边的红色圆形"
    assert ("what colour is the shape?", "red") in s.questions
    assert data.class_names("colour_shape")[s.label("colour_shape")] == "red circle"
    assert data.class_names("shape")[s.label("shape")] == "circle"


def test_shape_is_drawn_where_it_says():
    image = np.asarray(data.draw_shape("square", "blue", "right", size=64, seed=1)).astype(int)
    blue = (image[..., 2] > 180) & (image[..., 0] < 80)
    xs = np.nonzero(blue)[1]
    assert xs.size > 50 and xs.mean() > 40


def test_split_is_disjoint_in_pixels():
    train, test = data.train_test_split(16, 16)
    train_pixels = {np.asarray(s.image).tobytes() for s in train}
    assert not any(np.asarray(s.image).tobytes() in train_pixels for s in test)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": "hexagon", "colour": "red", "position": "left"}, "Unknown shape"),
        ({"shape": "circle", "colour": "red", "position": "left", "size": 8}, "at least 16"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.draw_shape(**kwargs)


def test_bad_label_kind():
    with pytest.raises(ValueError, match="Unknown label kind"):
        data.make_shapes(1)[0].label("size")
    with pytest.raises(ValueError, match="number of images"):
        data.make_shapes(0)
