"""Static checks of the one-source rule: the notebooks, the registry and the package agree.

Every ``expect_failure("id")`` in a notebook is registered under that notebook, every registered
failure is shown by its notebook, every notebook is a lesson of the registry, a scorecard's name is
derived (never typed), every stack an entry claims as measured is recorded in the matrix (or listed
here, with why not), and no file outside the registry and the stack files types a release of torch,
transformers, peft or accelerate.
"""

import ast
import json
import re
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from peftlab import registry
from peftlab.registry import CHANGES, DOCTOR_FAILURES, LESSONS, REGISTRY, Expectation, Failure
from peftlab.tools.readme import TABLES
from peftlab.versions import LIBRARIES, STACK_LIBRARIES, pinned_versions, stack_pins

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


def boundaries(expectation: Expectation) -> set[tuple[str, str]]:
    """Each ``(library, specifier)`` of an expectation's range: ``("peft", ">=0.16.0")``."""
    return {(lib, str(spec)) for lib, specs in expectation.when.items() for spec in SpecifierSet(specs)}


def read_by_name(key: str) -> bool:
    """True when code outside the registry reads change ``key`` by name (``change("key")``)."""
    sources = [p for p in (ROOT / "peftlab").rglob("*.py") if "registry" not in p.parts] + NOTEBOOKS
    return any(f'change("{key}")' in p.read_text(encoding="utf-8") for p in sources)


def test_expectations_name_known_libraries_and_changes_are_used():
    used = set()
    for failure in [*REGISTRY.values(), *DOCTOR_FAILURES.values()]:
        for e in failure.expectations:
            assert set(e.when) <= set(LIBRARIES), (failure.id, e.when)
            assert e.measured, f"{failure.id}: an expectation records no run ({e.when})"
            used |= boundaries(e)
    edges = {(c.library, c.since) for c in CHANGES.values()} | {
        (c.library, c.before) for c in CHANGES.values()
    }
    assert used <= edges, f"a range that no Change of changes.py ends: {used - edges}"
    for key, change in CHANGES.items():
        assert change.library in LIBRARIES, key
        assert change.measured, f"{key}: no release was run"
        in_a_range = {(change.library, change.since), (change.library, change.before)} & used
        assert in_a_range or read_by_name(key), (
            f"{key}: no expectation's range ends at it and no code reads it"
        )


# --- the registry package: one plain module per notebook ---------------------------------------


def test_each_notebook_has_its_registry_module_and_nothing_else_registers():
    modules = registry.notebook_modules()
    assert [m.__name__.rsplit(".", 1)[1] for m in modules] == [f"nb{p.stem}" for p in NOTEBOOKS]
    assert list(REGISTRY) == [f.id for m in modules for f in m.FAILURES]
    assert not hasattr(registry, "register")  # entries are data: no function adds one after the fact


@pytest.mark.parametrize(
    "module", [*registry.notebook_modules(), registry.doctor], ids=lambda m: m.__name__.rsplit(".", 1)[1]
)
def test_a_notebook_module_is_data_on_the_schema_the_changes_and_the_stacks(module):
    """It imports only these (so the package's own collection can never close an import circle)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {
        "__future__",
        "peftlab.registry.schema",
        "peftlab.registry.changes",
        "peftlab.versions",
    }
    assert isinstance(module.FAILURES, tuple)
    assert module is registry.doctor or isinstance(module.LESSON, registry.Lesson)


def test_collect_refuses_a_misnamed_lesson_a_stray_failure_and_a_repeated_id():
    from types import SimpleNamespace

    def module(name: str, notebook: str, failure_notebook: str) -> SimpleNamespace:
        failure = Failure("x", failure_notebook, "t", (Expectation({}, None),))
        return SimpleNamespace(
            __name__=f"peftlab.registry.{name}", LESSON=registry.Lesson(notebook, "fix"), FAILURES=(failure,)
        )

    good = module("nb01_a", "01_a", "01_a")
    assert list(registry.collect((good,))[1]) == ["x"]
    with pytest.raises(ValueError, match="its LESSON is for '01_b', not '01_a'"):
        registry.collect((module("nb01_a", "01_b", "01_b"),))
    with pytest.raises(ValueError, match="failure 'x' names notebook '01_b'"):
        registry.collect((module("nb01_a", "01_a", "01_b"),))
    with pytest.raises(ValueError, match="registered twice"):
        registry.collect((good, module("nb02_b", "02_b", "02_b")))


# --- every stack claimed as measured is recorded ------------------------------------------------

MATRIX = ROOT / "docs" / "matrix" / "matrix.json"
#: Claims "measured on <stack>" that the recorded matrix does not hold: (failure id, stack) -> why. Empty
#: since the matrix of 2026-12-06 ran notebooks 06 and 07 on every stack too; a claim it lacks needs a reason.
NOT_IN_THE_MATRIX: dict[tuple[str, str], str] = {}


def stack_claims() -> list[tuple[Failure, Expectation, str]]:
    """Every (failure, expectation, stack) where an expectation names a stack in ``measured``."""
    return [(f, e, m) for f in REGISTRY.values() for e in f.expectations for m in e.measured if " " not in m]


def unrecorded(matrix: dict) -> list[str]:
    """The stack claims that ``matrix`` (a ``peftlab matrix`` record) does not back, and the stale exemptions."""
    problems = []
    for failure, e, stack in stack_claims():
        cell = matrix["rows"].get(failure.id, {}).get(stack)
        if (failure.id, stack) in NOT_IN_THE_MATRIX:
            if cell is not None:
                problems.append(f"{failure.id} on {stack}: recorded now, drop it from NOT_IN_THE_MATRIX")
            continue
        ran = matrix.get("versions", {}).get(stack, {})
        if cell is None:
            problems.append(f"{failure.id} on {stack}: claimed as measured, not in the matrix")
        elif (cell["kind"], cell["outcome"]) != ("as documented", e.raises or "no error"):
            problems.append(f"{failure.id} on {stack}: the matrix has {cell['outcome']} ({cell['kind']})")
        elif any(ran.get(lib) != stack_pins(stack).get(lib) for lib in STACK_LIBRARIES):
            problems.append(f"{failure.id} on {stack}: the matrix ran other pins ({ran})")
    claimed = {(f.id, stack) for f, _, stack in stack_claims()}
    problems += [f"{key}: exempted but not claimed" for key in NOT_IN_THE_MATRIX if key not in claimed]
    return problems


def test_every_measured_stack_lies_in_its_expectations_range():
    for failure, e, stack in stack_claims():
        assert e.applies(pinned_versions(stack)), f"{failure.id}: {stack} is outside {e.when}"


def test_every_doctor_failure_claim_lies_in_its_range_and_the_collection_refuses_a_stray():
    """The doctor's failures are not in the matrix (tests/test_doctor_registry.py runs them): each stack
    and each single release they claim lies in the range it is claimed for."""
    for failure in DOCTOR_FAILURES.values():
        assert not failure.notebook and failure.source() == "peftlab/registry/doctor.py"
        for e in failure.expectations:
            for claim in e.measured:
                lib, _, release = claim.partition(" ")
                versions = {lib: release} if release else pinned_versions(claim)
                assert release or claim in registry.doctor.RUN_ON, (failure.id, claim)
                assert e.applies(versions), f"{failure.id}: {claim} is outside {e.when}"
    assert not set(DOCTOR_FAILURES) & set(REGISTRY)
    taught = next(iter(REGISTRY.values()))
    with pytest.raises(ValueError, match="needs notebook=''"):
        registry.collect_doctor((taught,))
    with pytest.raises(ValueError, match="registered twice"):
        registry.collect_doctor((Failure(taught.id, "", "t", taught.expectations, finding="x.y"),))


def test_every_measured_stack_is_recorded_in_the_matrix_or_listed_with_why():
    assert unrecorded(json.loads(MATRIX.read_text(encoding="utf-8"))) == []


def test_the_matrix_check_fails_on_a_missing_or_changed_cell_and_a_stale_exemption(monkeypatch):
    monkeypatch.setitem(NOT_IN_THE_MATRIX, ("gc_enabled_after_peft_model", "colab-2025.07"), "planted")
    matrix = json.loads(MATRIX.read_text(encoding="utf-8"))
    del matrix["rows"]["clip_task_type"]["colab-2025.07"]
    matrix["rows"]["vit_image_size"]["current"]["outcome"] = "no error"
    matrix["versions"]["documented"] = {**matrix["versions"]["documented"], "peft": "another"}
    matrix["rows"]["gc_enabled_after_peft_model"] = {"colab-2025.07": {"outcome": "RuntimeError"}}
    problems = unrecorded(matrix)
    assert "clip_task_type on colab-2025.07: claimed as measured, not in the matrix" in problems
    assert "vit_image_size on current: the matrix has no error (as documented)" in problems
    assert any(p.startswith("clip_task_type on documented: the matrix ran other pins") for p in problems)
    assert (
        "gc_enabled_after_peft_model on colab-2025.07: recorded now, drop it from NOT_IN_THE_MATRIX"
        in problems
    )


# --- no typed release outside the registry and the stack files ----------------------------------

_LIBS = r"(?:torch|transformers|peft|accelerate)"
#: A typed release: a library name, then (after at most four quotes, spaces or punctuation) a
#: version ``4.57``/``5.0.0`` or a specifier ``>=5``, ``==0.16``; or ``Version("4...``; or ``>= (4, 51)``.
#: A series (``transformers 4.x``) is not a release.
RELEASE = re.compile(
    rf"\b{_LIBS}\b[\s\"'`:,()\[\]]{{0,4}}(?:(?:[<>=!~]=?|===)\s*v?\d|v?\d+\.\d+)"
    r"|Version\(\s*[\"']\d"
    r"|>=\s*\(\s*\d+\s*,\s*\d+\s*\)"
)


def guarded_files() -> list[Path]:
    """Where no release may be typed: the package (less the registry), the notebooks, the solutions,
    the tests (less this file: its planted example and exceptions), the README, CI's scripts and workflows."""
    files = [
        p for p in sorted((ROOT / "peftlab").rglob("*.py")) if "registry" not in p.relative_to(ROOT).parts
    ]
    files += NOTEBOOKS + sorted((ROOT / "solutions").glob("*.py"))
    files += [p for p in sorted((ROOT / "tests").rglob("*.py")) if p != Path(__file__).resolve()]
    files += [ROOT / "README.md", ROOT / ".ci" / "run", ROOT / ".ci" / "checks"]
    return files + sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def without_generated_tables(text: str) -> str:
    """The README with the inside of every generated section (``peftlab readme``) blanked, lines kept."""
    for marker in TABLES:
        text = re.sub(
            rf"(?<=<!-- {marker} -->\n)[\s\S]*?(?=<!-- /{marker} -->)",
            lambda m: "\n" * m[0].count("\n"),
            text,
        )
    return text


def typed_releases(path: Path, text: str) -> list[tuple[str, str]]:
    """``(path: line number, line)`` of every line of ``text`` with a typed release."""
    text = without_generated_tables(text) if path.name == "README.md" else text
    name = path.relative_to(ROOT).as_posix()
    return [
        (f"{name}:{n}", line.strip()) for n, line in enumerate(text.splitlines(), 1) if RELEASE.search(line)
    ]


#: The typed releases kept on purpose: (file, a piece of the line) -> why it is not read from a source.
ALLOWED: dict[tuple[str, str], str] = {
    ("peftlab/lessons/memory.py", "transformers 5.0 keeps them in float32"): (
        "history of one release (5.0.0, the colab-2026.04 pin) that the bf16 memory arithmetic follows; "
        "no expectation or code branches on it (kept_in_fp32 asks the installed transformers)"
    ),
    ("peftlab/lessons/memory.py", "transformers 5.0 ties weights only when loading"): (
        "the same release's history: why the meta-device BLIP-2 ties its lm_head by hand"
    ),
    ("peftlab/lessons/memory.py", "transformers 5.0 builds one ``dtype_plan``"): "the same release's history",
    ("peftlab/lessons/memory.py", "saved with transformers 4.47"): (
        "what the published checkpoint's config.json on the Hub records, not a version of any stack"
    ),
}


def test_no_release_is_typed_outside_the_registry_and_the_stack_files():
    found = [
        hit for path in guarded_files() for hit in typed_releases(path, path.read_text(encoding="utf-8"))
    ]
    allowed = {hit for hit in found if any(hit[0].startswith(f"{p}:") and s in hit[1] for p, s in ALLOWED)}
    offenders = [f"{where}: {line}" for where, line in found if (where, line) not in allowed]
    assert not offenders, "releases belong in peftlab/registry/ and peftlab/stacks/:\n" + "\n".join(offenders)
    stale = [
        key for key in ALLOWED if not any(w.startswith(f"{key[0]}:") and key[1] in line for w, line in found)
    ]
    assert not stale, f"allowed exceptions that no longer occur: {stale}"


@pytest.mark.parametrize(
    "line",
    [
        "transformers 4.57.6 raises",
        "pip install peft>=0.16",
        'Change("transformers", "5.0.0", ...)',
        '{"transformers": "<5"}',
        "torch==2.13.0",
        'if version >= Version("4.51"):',
        "if installed >= (4, 51):",
        "on `accelerate 1.6.0`",
    ],
)
def test_the_guard_catches_a_planted_release(line):
    path = ROOT / "peftlab" / "planted.py"
    assert typed_releases(path, f"x = 1\n{line}\n") == [("peftlab/planted.py:2", line)]


@pytest.mark.parametrize(
    "line",
    [
        "transformers 4.x copies tensor by tensor",
        "torch.float16",
        "torch_dtype=",
        "peft 0 of them",
        "the CLIP 5.0",
    ],
)
def test_the_guard_lets_a_series_or_a_word_pass(line):
    assert typed_releases(ROOT / "README.md", line) == []


def test_the_readme_is_guarded_outside_its_generated_tables_only():
    text = "a\n<!-- stacks-table -->\n| transformers 4.51.3 |\n<!-- /stacks-table -->\ntorch 2.13.0 here\n"
    assert typed_releases(ROOT / "README.md", text) == [("README.md:5", "torch 2.13.0 here")]


def test_a_notebook_title_is_written_once_in_its_first_heading():
    """The Lesson has no title; the README's notebooks table shows each notebook's own heading."""
    from dataclasses import fields

    from peftlab.tools.notebooks import heading, title
    from peftlab.tools.readme import notebooks_table

    assert "title" not in {f.name for f in fields(registry.Lesson)}
    table = notebooks_table()
    for path in NOTEBOOKS:
        assert heading(path.stem) == f"{path.stem[:2]} · {title(path.stem)}"
        assert f"| {path.stem[:2]} | [{title(path.stem)}](notebooks/{path.stem}.ipynb)" in table
