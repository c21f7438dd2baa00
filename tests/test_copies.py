"""Deliberate copies between notebooks stay copies: the ``# Copied from`` marker, checked.

A notebook stands alone (a learner opens one, on Colab, without the others), so a helper that two
notebooks need is sometimes copied rather than imported. Mark the copy on the line just above its
``def`` (or ``class``, or its first decorator)::

    # Copied from notebooks/01_clip_task_type.py: forward_mismatch
    def forward_mismatch(peft_model):
        ...

and, where the copy renames something, list the renames (plain text, applied in order to the
original's source, as transformers' ``# Copied from ... with A->B`` does)::

    # Copied from notebooks/01_clip_task_type.py: forward_mismatch with CLIP->BLIP-2, clip->blip2

The test finds the original (a top-level function or class of that name in that notebook's ``.py``
file), applies the renames and requires the copy's source to be exactly that text. To change a
copied helper, change the original and every copy alike. A top-level function or class that is
defined with the same source in two notebooks must carry the marker in the later one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
MARKER = re.compile(r"^# Copied from (notebooks/\w+\.py): (\w+)(?: with (.+))?$")


def definitions(source: str) -> dict[str, str]:
    """``{name: source}`` of every top-level function and class of a notebook (decorators included)."""
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            found[node.name] = "\n".join(lines[first - 1 : node.end_lineno])
    return found


def marked_copies(source: str) -> list[tuple[int, str, str, list[tuple[str, str]], str]]:
    """Every marked copy: (marker line, original file, original name, renames, the copy's source)."""
    lines = source.splitlines()
    starts = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            starts[first] = "\n".join(lines[first - 1 : node.end_lineno])
    copies = []
    for number, line in enumerate(lines, 1):
        found = MARKER.match(line)
        if found:
            renames = [tuple(r.strip().split("->", 1)) for r in (found[3] or "").split(",") if r.strip()]
            copies.append((number, found[1], found[2], renames, starts.get(number + 1, "")))
    return copies


def copy_problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the marked copies of one notebook: each a sentence, or none."""
    problems = []
    for number, original_file, name, renames, copy in marked_copies(path.read_text(encoding="utf-8")):
        where = f"{path.name}:{number}"
        if not copy:
            problems.append(f"{where}: the marker is not on the line just above a def or class")
            continue
        if not (root / original_file).is_file():
            problems.append(f"{where}: no file {original_file}")
            continue
        original = definitions((root / original_file).read_text(encoding="utf-8")).get(name)
        if original is None:
            problems.append(f"{where}: {original_file} defines no top-level {name}")
            continue
        for old, new in renames:
            original = original.replace(old, new)
        if copy != original:
            problems.append(
                f"{where}: differs from {original_file}: {name}" + _first_difference(original, copy)
            )
    return problems


def _first_difference(original: str, copy: str) -> str:
    for n, (a, b) in enumerate(zip(original.splitlines(), copy.splitlines()), 1):
        if a != b:
            return f" (line {n} of it: {a.strip()!r} there, {b.strip()!r} here)"
    return " (one is longer)"


def unmarked_copies(paths: list[Path]) -> list[str]:
    """Top-level definitions with the same source in two notebooks, the later one without a marker."""
    seen: dict[str, str] = {}  # source -> the first notebook defining it
    problems = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        marked = {start for start, *_ in marked_copies(source)}
        lines = source.splitlines()
        for name, text in definitions(source).items():
            if text in seen:
                first_line = lines.index(text.splitlines()[0]) + 1
                if first_line - 1 not in marked:
                    problems.append(f"{path.name}: {name} is a copy of {seen[text]}'s, without the marker")
            else:
                seen[text] = path.name
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_marked_copies_equal_their_originals(path: Path) -> None:
    assert copy_problems(path) == []


def test_every_copy_between_notebooks_is_marked() -> None:
    assert unmarked_copies(NOTEBOOKS) == []


def test_the_known_copies_are_marked() -> None:
    """notebook 02 copies 01's signature check: both functions are marked (and so checked)."""
    copies = marked_copies((ROOT / "notebooks" / "02_blip2_inputs_embeds.py").read_text(encoding="utf-8"))
    assert {(f, name) for _, f, name, _, _ in copies} >= {
        ("notebooks/01_clip_task_type.py", "forward_mismatch"),
        ("notebooks/01_clip_task_type.py", "predicted_error"),
    }


ORIGINAL = '''
def forward_mismatch(peft_model):
    """Compare CLIP's forward."""
    return sorted(named(wrapper) - named(base))
'''


@pytest.mark.parametrize(
    ("copy", "problem"),
    [
        ("# Copied from notebooks/01_a.py: forward_mismatch\n" + ORIGINAL.lstrip(), None),
        (
            "# Copied from notebooks/01_a.py: forward_mismatch with CLIP->BLIP-2\n"
            + ORIGINAL.lstrip().replace("CLIP", "BLIP-2"),
            None,
        ),
        (
            "# Copied from notebooks/01_a.py: forward_mismatch\n"
            + ORIGINAL.lstrip().replace("sorted", "list"),
            "02_b.py:1: differs from notebooks/01_a.py: forward_mismatch (line 3 of it: "
            "'return sorted(named(wrapper) - named(base))' there, 'return list(named(wrapper) - named(base))' here)",
        ),
        (
            "# Copied from notebooks/01_a.py: nothing_there\n" + ORIGINAL.lstrip(),
            "02_b.py:1: notebooks/01_a.py defines no top-level nothing_there",
        ),
        (
            "# Copied from notebooks/01_a.py: forward_mismatch\n\n" + ORIGINAL.lstrip(),
            "02_b.py:1: the marker is not on the line just above a def or class",
        ),
    ],
    ids=["equal", "equal-with-renames", "changed", "no-original", "marker-astray"],
)
def test_the_check_fails_on_a_planted_copy(tmp_path: Path, copy: str, problem: str | None) -> None:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_a.py").write_text(ORIGINAL)
    (tmp_path / "notebooks" / "02_b.py").write_text(copy)
    assert copy_problems(tmp_path / "notebooks" / "02_b.py", root=tmp_path) == ([problem] if problem else [])


def test_an_unmarked_copy_is_found(tmp_path: Path) -> None:
    (tmp_path / "01_a.py").write_text(ORIGINAL)
    (tmp_path / "02_b.py").write_text("x = 1\n" + ORIGINAL)
    assert unmarked_copies([tmp_path / "01_a.py", tmp_path / "02_b.py"]) == [
        "02_b.py: forward_mismatch is a copy of 01_a.py's, without the marker"
    ]
