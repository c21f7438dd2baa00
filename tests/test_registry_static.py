"""Static checks of the one-source rule: the notebooks, the registry and the package agree.

Every ``expect_failure("id")`` in a notebook is registered under that notebook, every registered
failure is shown by its notebook, every notebook is a lesson of the registry, a scorecard's name is
derived (never typed), and no module outside the registry and the stack files writes a version.
"""

import re
from pathlib import Path

import pytest

from peftlab.registry import CHANGES, LESSONS, REGISTRY
from peftlab.versions import LIBRARIES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
CALL = re.compile(r"""expect_failure\(\s*["'](\w+)["']""")


def test_every_notebook_is_a_lesson_and_every_lesson_a_notebook():
    assert [p.stem for p in NOTEBOOKS] == list(LESSONS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_expect_failure_ids_are_registered_under_their_notebook(path):
    used = CALL.findall(path.read_text(encoding="utf-8"))
    if LESSONS[path.stem].primer:  # a primer shows no failure, and none is registered under it
        assert not used, f"{path.name} is a primer (registry.Lesson.primer) but shows failures: {used}"
        assert not any(f.notebook == path.stem for f in REGISTRY.values()), (
            f"failures registered under {path.stem}"
        )
        return
    assert used, f"{path.name} shows no failure (only a lesson marked primer=True may show none)"
    for failure_id in used:
        assert failure_id in REGISTRY, f"{path.name}: {failure_id!r} is not registered"
        assert REGISTRY[failure_id].notebook == path.stem, f"{failure_id!r} is registered elsewhere"
    registered = {f.id for f in REGISTRY.values() if f.notebook == path.stem}
    assert registered <= set(used), f"registered but never shown in {path.name}: {registered - set(used)}"


def test_expectations_name_known_libraries_and_changes_are_used():
    used = set()
    for failure in REGISTRY.values():
        for e in failure.expectations:
            assert set(e.when) <= set(LIBRARIES), (failure.id, e.when)
            assert e.measured, f"{failure.id}: an expectation records no run ({e.when})"
            used.update(f"{lib}{spec}" for lib, spec in e.when.items())
    for key, change in CHANGES.items():
        assert change.library in LIBRARIES, key
        assert change.measured, f"{key}: no release was run"


def test_no_module_outside_the_registry_types_a_version_boundary():
    allowed = {"registry.py", "versions.py"}
    pattern = re.compile(r"""Version\(\s*["']\d|>=\s*\(\s*\d+\s*,\s*\d+\s*\)""")
    offenders = []
    for path in (ROOT / "peftlab").rglob("*.py"):
        if path.name in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "version boundaries belong in peftlab/registry.py:\n" + "\n".join(offenders)
