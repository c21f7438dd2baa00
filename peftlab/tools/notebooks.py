"""The notebooks' own text, read from their ``.py`` sources: the one place a notebook's title is written.

A notebook's title is its first heading, ``# 01 · CLIP + LoRA with ...`` (in the ``.py`` file, a
Markdown cell's ``# # 01 · ...`` line). The README's notebooks table, the instructor's guide and the
docs index read it from there; the registry's :class:`~peftlab.registry.Lesson` has no title.
"""

from __future__ import annotations

import re

from peftlab.tools import ROOT

NOTEBOOKS = ROOT / "notebooks"

#: A Markdown cell's first-level heading in a jupytext percent file: ``# # 01 · title``.
_H1 = re.compile(r"^# # (.+)$", re.MULTILINE)
#: The number a heading starts with: ``01 · ``.
_NUMBER = re.compile(r"^\d\d\s*·\s*")


def heading(name: str) -> str:
    """The first heading of notebook ``name`` as written: ``01 · CLIP + LoRA with ...``."""
    path = NOTEBOOKS / f"{name}.py"
    found = _H1.search(path.read_text(encoding="utf-8"))
    if not found:
        raise ValueError(f"{path} has no first-level heading (# # NN · title): it is the notebook's title.")
    return found.group(1).strip()


def title(name: str) -> str:
    """The title of notebook ``name``: its first heading without the number (``CLIP + LoRA with ...``)."""
    return _NUMBER.sub("", heading(name))
