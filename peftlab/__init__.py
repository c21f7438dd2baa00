"""peftlab: reproduce, explain and fix real PEFT/LoRA failures on vision and vision-language models.

Importing peftlab only defines things: no model is built and nothing is downloaded or written.
"""

from peftlab import capture, data, exercises, plots, registry, retrieval, scorecard, train
from peftlab.device import pick_device, seed_everything
from peftlab.doctor import doctor
from peftlab.noise import quiet_known_noise
from peftlab.session import start
from peftlab.versions import installed, stack_name, versions_table

__version__ = "0.1.0"

__all__ = [
    "capture",
    "data",
    "exercises",
    "plots",
    "registry",
    "retrieval",
    "scorecard",
    "train",
    "doctor",
    "installed",
    "pick_device",
    "quiet_known_noise",
    "seed_everything",
    "stack_name",
    "start",
    "versions_table",
    "DoctorCallback",
]


def __getattr__(name: str):  # noqa: ANN202
    """``peftlab.DoctorCallback``, imported on first use (it imports transformers' Trainer machinery)."""
    if name == "DoctorCallback":
        from peftlab.callback import DoctorCallback

        return DoctorCallback
    raise AttributeError(f"module 'peftlab' has no attribute {name!r}")
