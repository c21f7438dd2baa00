"""The doctor (peftlab/doctor/) stands on generic modules only: no lesson module, no private name
of another module, no model class named in its code. Static: the sources are parsed, not imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "peftlab"
DOCTOR = sorted((PACKAGE / "doctor").glob("*.py"))
assert DOCTOR, "no doctor modules found: the checks below would pass on nothing"
#: The peftlab modules the doctor may use: none holds one notebook's model family or task (an
#: allow-list, so that a new import is a decision: position_embeddings, chinese_clip_architecture,
#: retrieval, vqa, data and the model loaders are lesson modules).
GENERIC = {
    "peftlab.checkpoints",
    "peftlab.module_names",
    "peftlab.hub",
    "peftlab.detectors",
    "peftlab.registry",
    "peftlab.tables",
    "peftlab.targets",
    "peftlab.versions",
}


def imported(tree: ast.Module) -> dict[str, str]:
    """``{local name: full name}`` of every peftlab module or name the source imports."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name): a.name for a in node.names if a.name.startswith("peftlab")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("peftlab"):
            names |= {(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names}
    return names


def owner(full: str) -> str:
    """The module a full name lives in: ``peftlab.checkpoints.read_shapes`` -> ``peftlab.checkpoints``."""
    parts = full.split(".")
    for n in range(len(parts), 0, -1):
        path = PACKAGE.parent.joinpath(*parts[:n])
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return ".".join(parts[:n])
    return full


def outside_imports(tree: ast.Module) -> set[str]:
    """The peftlab modules outside :data:`GENERIC` (and outside the doctor) that the source imports."""
    modules = {owner(full) for full in imported(tree).values()}
    return {m for m in modules if not m.startswith("peftlab.doctor") and m not in GENERIC}


def private_uses(tree: ast.Module) -> list[str]:
    """Names starting with ``_`` taken from another module: imported, or read as ``module._name``."""
    names = imported(tree)
    found = [full for full in names.values() if full.rsplit(".", 1)[1].startswith("_")]
    found += [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in names
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    return found


def _model_classes() -> set[str]:
    """Every model class transformers exports (read from its lazy import table: nothing is loaded)."""
    import transformers

    return {
        n
        for n in dir(transformers)
        if n[:1].isupper()
        and not n.startswith("Auto")
        and (n.endswith("Model") or "For" in n)
        and "Config" not in n
    }


def _code_words(tree: ast.Module) -> set[str]:
    """Identifiers and string constants of the code, docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words |= set(node.value.replace(".", " ").replace("(", " ").split())
    return words


def model_classes_named(tree: ast.Module) -> set[str]:
    """The transformers model classes the code names."""
    return _code_words(tree) & _model_classes()


@pytest.mark.parametrize("path", DOCTOR, ids=lambda p: p.name)
def test_doctor_imports_no_lesson_module(path: Path) -> None:
    assert outside_imports(ast.parse(path.read_text())) == set()


@pytest.mark.parametrize("path", DOCTOR, ids=lambda p: p.name)
def test_doctor_uses_no_private_name_of_another_module(path: Path) -> None:
    assert private_uses(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", DOCTOR, ids=lambda p: p.name)
def test_doctor_names_no_model_class(path: Path) -> None:
    assert model_classes_named(ast.parse(path.read_text())) == set()


def test_each_check_catches_what_the_doctor_once_did() -> None:
    bad = ast.parse(
        "from peftlab.lessons import chinese_clip_architecture as cs\n"
        "from peftlab.lessons.position_embeddings import save_extra_parameters\n"
        "from peftlab.checkpoints import _blocks, read_shapes\n"
        "strip = cs._strip_prefix\n"
        "if type(base).__name__ == 'ChineseCLIPModel':\n    pass\n"
    )
    assert outside_imports(bad) == {
        "peftlab.lessons.chinese_clip_architecture",
        "peftlab.lessons.position_embeddings",
    }
    assert private_uses(bad) == ["peftlab.checkpoints._blocks", "cs._strip_prefix"]
    assert model_classes_named(bad) == {"ChineseCLIPModel"}
