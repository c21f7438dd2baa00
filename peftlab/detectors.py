"""The exceptions peftlab raises itself, to make a silent failure visible.

The libraries say nothing in these cases: training "works", yet a tensor is not trained, not saved,
not loaded, or trained where it should not be. A notebook (or the doctor) raises one of these to
show the loss; ``expect_failure`` shows them in a box of their own ("peftlab's detector"), never
as if PEFT or transformers had raised them. Each class's ``reveals`` says what loss it makes
visible; the registry and the README read it from here.
"""

from __future__ import annotations


class DetectorError(Exception):
    """Raised by peftlab, not by the libraries: a silent failure made visible."""

    #: What the libraries let happen without a word, which this detector makes visible.
    reveals: str = ""


class SilentLossError(DetectorError, RuntimeError):
    """PEFT accepted a request without error, yet a parameter is not trained or not restored."""

    reveals = "a tensor that should train is frozen, or a trained one is missing after reload"


class NothingToTrainError(DetectorError, ValueError):
    """Raised instead of "training" a model whose parameters are all frozen."""

    reveals = "peftlab's training loop refuses a model with no trainable parameter"


class WeightsNotLoadedError(DetectorError, AssertionError):
    """A model does not hold the checkpoint's tensors (missing, re-shaped or with other values)."""

    reveals = "the loaded model's tensors differ from the checkpoint's"


class VisionTowerAdaptedError(DetectorError, RuntimeError):
    """LoRA reached the vision tower of a model whose language model alone was meant to be adapted."""

    reveals = "LoRA layers in the vision tower of a model whose language model alone was meant to be adapted"


#: Every detector, by class name (what a registry expectation's ``raises`` names).
DETECTORS: dict[str, type[DetectorError]] = {
    cls.__name__: cls
    for cls in (SilentLossError, NothingToTrainError, WeightsNotLoadedError, VisionTowerAdaptedError)
}
