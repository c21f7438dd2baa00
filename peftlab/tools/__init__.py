"""Maintainer tools: the ``peftlab`` command and everything behind it (running, documenting, sweeping
and matrix-testing the notebooks, the README's generated tables, the instructor's guide).

Nothing in the learner's kit (``peftlab``), the lesson helpers (``peftlab.lessons``) or the doctor
(``peftlab.doctor``) imports from here; the tools work on a checkout (``ROOT``), not on an installed wheel.
"""

from pathlib import Path

#: The repository root: the tools read the notebooks, ``docs/`` and ``solutions/`` of a checkout.
ROOT = Path(__file__).resolve().parents[2]
