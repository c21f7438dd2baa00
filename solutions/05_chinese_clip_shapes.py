"""Solutions to the exercises of notebook 05 (Chinese-CLIP shapes); ``ns`` is the notebook's namespace."""

import re


def exercise_1(ns: dict) -> str:
    """Predict first: **all** of the text tower's tensors survive ``ignore_mismatched_sizes=True``.

    The option re-initialises only the tensors whose shapes disagree (the vision tower and both
    projections here) and drops those the model has no place for (the third vision layer); the
    text tower has the same shapes in both configs and loads as saved. Retrieval is at chance all
    the same: a random vision tower (and projection) is enough to break every image-caption match.
    """
    return "all"


def exercise_2(ns: dict) -> str:
    """``vision_model.embeddings.patch_embedding.weight``: shape ``(width, 3, patch, patch)``.

    The patch embedding is a convolution from the 3 colour channels to ``width`` channels, one
    output per embedding dimension. Any vision layer norm (``pre_layrnorm.weight``, ...) also has
    ``width`` values; the checkpoint's size-mismatch lines compare exactly these dimensions.
    """
    return "vision_model.embeddings.patch_embedding.weight"


def exercise_3(ns: dict):  # noqa: ANN201  (returns a function)
    """Count the distinct layer indices N in the names ``vision_model.encoder.layers.N.…``.

    Each layer contributes its own tensors (attention, MLP, two layer norms) under its number, so
    no single shape says how many there are; the set of numbers does (``count_blocks`` in the
    notebook). The tiny "large" checkpoint has 3 vision layers, the "base" config 2 (ViT-L/14 24,
    ViT-B/16 12).
    """

    def count(shapes: dict) -> int:
        return len(
            {
                m.group(1)
                for name in shapes
                if (m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.", name))
            }
        )

    return count
