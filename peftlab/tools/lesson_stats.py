"""How long a lesson is: its core path (everything outside ``Deep dive:`` sections), its shown checks,
its exercises, and the output a learner must scroll past.

A notebook's sections run from a Markdown heading to the next heading of the same level or higher;
a section whose heading starts with ``Deep dive:`` is optional depth, skippable without losing the
thread. The core path is everything else. ``python -m peftlab.tools.lesson_stats [executed folder]``
prints one row per notebook (with an executed folder, e.g. ``build/notebooks``, the output too).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from peftlab.tools import ROOT

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_SHOWN = re.compile(
    r"\bscorecard\.(check|prove|check_same|check_headroom|check_gain|check_flagged|check_clear)\("
)
_EXERCISE = re.compile(r"\bexercises\.check\(")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_PROGRESS = "application/vnd.jupyter.widget-view+json"


@dataclass
class Cell:
    """A notebook cell and whether it lies in a ``Deep dive:`` section."""

    kind: str  # "markdown" or "code"
    source: str
    deep: bool


def cells_of(notebook: dict) -> list[Cell]:
    """The cells of a notebook (nbformat dict), each marked deep (inside a Deep dive section) or core."""
    out, deep_level = [], None  # the heading level of the open Deep dive section, if any
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            out.append(Cell(cell["cell_type"], source, deep_level is not None))
            continue
        core_lines, deep_lines = [], []
        for line in source.splitlines():
            found = _HEADING.match(line)
            if found:
                level = len(found.group(1))
                if deep_level is not None and level <= deep_level:
                    deep_level = None
                if found.group(2).strip().lower().startswith("deep dive:"):
                    deep_level = level
            (deep_lines if deep_level is not None else core_lines).append(line)
        if core_lines:
            out.append(Cell("markdown", "\n".join(core_lines), False))
        if deep_lines:
            out.append(Cell("markdown", "\n".join(deep_lines), True))
    return out


def words(markdown: str) -> int:
    """Words a reader reads: link targets, markup and image badges left out."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", markdown)
    text = _LINK.sub(r"\1", text)
    return len(re.findall(r"[A-Za-z0-9_'`.\-/]+", re.sub(r"[#*>|]", " ", text)))


@dataclass
class Stats:
    """One notebook's measures."""

    name: str
    core_words: int
    deep_words: int
    core_code_lines: int
    shown_checks: int
    exercises: int
    code_cells: int
    noise_lines: int | None = None  # lines of non-lesson output in the executed notebook (None: not run)
    progress_bars: int | None = None


def code_lines(source: str) -> int:
    """Lines of code a reader reads: no blank lines, no comment-only lines."""
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


def noise(executed: dict) -> tuple[int, int]:
    """(lines of non-lesson output, progress bars) of an executed notebook.

    Non-lesson output: every stderr line (warnings, logs), every progress bar (a line each), a bare
    True/False/None shown as a cell's value, and all the last cell (the scorecard) prints or returns.
    """
    lines = bars = 0
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            text = text if isinstance(text, str) else "".join(text)
            data = output.get("data", {})
            plain = str(data.get("text/plain", ""))
            last = i == len(code) - 1
            if output["output_type"] == "stream" and (output.get("name") == "stderr" or last):
                lines += len(text.splitlines())
            elif _PROGRESS in data:
                bars += 1
                lines += 1
            elif output["output_type"] == "execute_result" and (last or plain in ("True", "False", "None")):
                lines += len(plain.splitlines())
    return lines, bars


def stats(py: Path, executed: Path | None = None) -> Stats:
    """The measures of notebook ``py`` (its .ipynb pair), and of its executed copy if given."""
    import nbformat

    notebook = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    cells = cells_of(notebook)
    code = [c for c in cells if c.kind == "code"]
    result = Stats(
        py.stem,
        core_words=sum(words(c.source) for c in cells if c.kind == "markdown" and not c.deep),
        deep_words=sum(words(c.source) for c in cells if c.kind == "markdown" and c.deep),
        core_code_lines=sum(
            code_lines(c.source) for c in code[3:] if not c.deep
        ),  # after install/start/params
        shown_checks=sum(len(_SHOWN.findall(c.source)) for c in code),
        exercises=sum(len(_EXERCISE.findall(c.source)) for c in code),
        code_cells=len(code),
    )
    if executed and executed.exists():
        result.noise_lines, result.progress_bars = noise(nbformat.read(executed, as_version=4))
    return result


HEADER = [
    "notebook",
    "core words",
    "deep-dive words",
    "core code lines",
    "shown checks",
    "exercises",
    "code cells",
    "non-lesson output lines",
    "progress bars",
]


def main(argv: list[str] | None = None) -> int:
    """Print one row per notebook of the checkout (with an executed folder, its output measures too)."""
    args = sys.argv[1:] if argv is None else argv
    executed = Path(args[0]) if args else None
    print(" | ".join(HEADER))
    for py in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        s = stats(py, executed / f"{py.stem}.ipynb" if executed else None)
        row = [
            s.name,
            s.core_words,
            s.deep_words,
            s.core_code_lines,
            s.shown_checks,
            s.exercises,
            s.code_cells,
        ]
        row += [
            "-" if s.noise_lines is None else s.noise_lines,
            "-" if s.progress_bars is None else s.progress_bars,
        ]
        print(" | ".join(str(v) for v in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
