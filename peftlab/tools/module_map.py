"""The package's map: one line per module, read from each module's own docstring.

CONTRIBUTING.md shows it between ``<!-- module-map -->`` markers (``peftlab readme`` writes it and
``peftlab readme --check`` fails when it is stale), so a module's purpose is written once, in the
module, and a new module appears on the map without anyone typing it there.
"""

from __future__ import annotations

import ast
from pathlib import Path

from peftlab.tools import ROOT
from peftlab.tools.markdown import markdown_table

PACKAGE = ROOT / "peftlab"

#: The package's rooms, in the order a reader meets them, and who may import whom.
ROOMS: tuple[tuple[str, str], ...] = (
    ("", "the learner's kit: what a notebook imports (never imports the tools or the lessons)"),
    ("models", "the kit's model loaders and the tiny checkpoints"),
    ("registry", "the facts: every failure per version range, every release boundary"),
    ("recordings", "what the documented stack raises, stored as data"),
    ("lessons", "helpers of one lesson each (imported by notebooks, never by the kit or the doctor)"),
    (
        "doctor",
        "the doctor: predicts the failures on any model (imports the kit, never the tools or lessons)",
    ),
    ("tools", "maintainer commands behind `peftlab` (may import everything; nothing imports them)"),
)


def summary(path: Path) -> str:
    """The first paragraph of the module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split()) or "(no docstring)"


def modules(room: str) -> list[Path]:
    """The modules of one room: the top level's ``*.py`` for ``""``, else the sub-package's files."""
    folder = PACKAGE / room if room else PACKAGE
    return sorted(folder.glob("*.py"))


def module_name(path: Path, top: Path = ROOT) -> str:
    """``peftlab/doctor/shapes.py`` -> ``peftlab.doctor.shapes``; a package's ``__init__`` is the package.
    ``top`` is the folder that holds the package (the repository; a planted package's folder in tests)."""
    parts = path.relative_to(top).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_map() -> str:
    """One table per room, one row per module: its name and what its docstring says it holds."""
    sections = []
    for room, what in ROOMS:
        heading = f"**`peftlab/{room + '/' if room else ''}`**: {what}"
        rows = [[f"`{module_name(p)}`", summary(p)] for p in modules(room)]
        sections.append(heading + "\n\n" + markdown_table(["module", "what it holds"], rows))
    return "\n\n".join(sections)


def unmapped() -> list[Path]:
    """Python files of the package in no room (a new sub-package must be given one)."""
    mapped = {p for room, _ in ROOMS for p in modules(room)}
    return sorted(p for p in PACKAGE.rglob("*.py") if p not in mapped)
