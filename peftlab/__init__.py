"""peftlab: reproduce, explain and fix real PEFT/LoRA failures on vision and vision-language models.

Importing peftlab only defines things: no model is built and nothing is downloaded or written.
"""

from peftlab import data, failures, plots, report, retrieval, train
from peftlab.device import pick_device, seed_everything
from peftlab.preflight import doctor
from peftlab.versions import installed, stack_name, versions_table

__version__ = "0.1.0"

__all__ = [
    "data", "failures", "plots", "report", "retrieval", "train",
    "doctor", "installed", "pick_device", "seed_everything", "stack_name", "versions_table",
]  # fmt: skip
