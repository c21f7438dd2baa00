"""The first call of every notebook: ``peftlab.start()``."""

from __future__ import annotations

from peftlab import scorecard
from peftlab.noise import quiet_known_noise
from peftlab.versions import versions_table


def start(notebook: str | None = None) -> None:
    """Begin lesson ``notebook`` (its file name, e.g. ``"01_clip_task_type"``): a fresh scorecard and
    clock, the known third-party noise silenced (:mod:`peftlab.noise`), and the versions this notebook
    runs on, printed."""
    scorecard.reset(notebook)
    quiet_known_noise()
    print(versions_table())
