"""The package's rooms and the arrows between them, read from the sources (parsed, never imported).

``peftlab/`` has four rooms: the kit (``peftlab/*.py``, ``peftlab/models/``, ``peftlab/registry/``:
what a notebook imports), the lessons (``peftlab/lessons/``: one notebook's helpers), the doctor
(``peftlab/doctor/``) and the tools (``peftlab/tools/``: the maintainer's commands). The rules:

* the kit, the lessons and the doctor import nothing from the tools;
* the doctor and the kit import no lesson;
* no import circle among peftlab modules, lazy imports inside functions included.

An import is an arrow to the module it names (``from peftlab.models import clip`` names
``peftlab.models.clip``; ``from peftlab.plots import STYLE`` names ``peftlab.plots``); the parent
packages that Python initialises on the way are not arrows. ``peftlab/__main__.py`` is the command
line's entry point and belongs to the tools. Each rule is shown failing on a planted package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from peftlab.tools.module_map import module_name

PACKAGE = Path(__file__).resolve().parents[1] / "peftlab"

#: (from room, to room): the arrows no module may draw.
FORBIDDEN = {
    ("kit", "tools"): "the learner's kit must work without the maintainer's tools",
    ("lessons", "tools"): "a lesson helper runs in a learner's notebook",
    ("doctor", "tools"): "the doctor is part of the kit a learner imports",
    ("doctor", "lessons"): "the doctor must not depend on one notebook's model family or task",
    ("kit", "lessons"): "the kit is shared by every notebook; a lesson helper stands on it, not under it",
}

Graph = dict[str, set[str]]


def targets(node: ast.AST, package_of_here: str, modules: set[str], package: str) -> set[str]:
    """The package's modules that one import statement names (``package_of_here``: for relative ones)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name.split(".")[0] == package}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:  # relative: ``from . import x`` in a.b.c names a.b.x
        anchor = package_of_here.split(".")[: len(package_of_here.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    if base.split(".")[0] != package:
        return set()
    named = {f"{base}.{a.name}" for a in node.names}
    return {m for m in named if m in modules} | ({base} if named - modules else set())


def import_graph(root: Path = PACKAGE) -> Graph:
    """``{module: the package modules it imports}`` for every ``.py`` under ``root``."""
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root.parent) for p in paths}
    graph: Graph = {}
    for path in paths:
        here = module_name(path, root.parent)
        package_of_here = here if path.name == "__init__.py" else here.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[here] = set().union(*(targets(n, package_of_here, modules, root.name) for n in ast.walk(tree)))
    return graph


def room(module: str) -> str:
    """The room a module lives in: kit, lessons, doctor or tools."""
    parts = module.split(".")
    if module.endswith(".__main__") or (len(parts) > 1 and parts[1] == "tools"):
        return "tools"
    return parts[1] if len(parts) > 1 and parts[1] in ("lessons", "doctor") else "kit"


def forbidden_arrows(graph: Graph) -> list[str]:
    """Every arrow from one room into another that :data:`FORBIDDEN` rules out, with the reason."""
    return [
        f"{a} -> {b}: {FORBIDDEN[room(a), room(b)]}"
        for a, targets_ in sorted(graph.items())
        for b in sorted(targets_)
        if (room(a), room(b)) in FORBIDDEN
    ]


def circles(graph: Graph) -> list[list[str]]:
    """The import circles: strongly connected groups of two or more modules, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


GRAPH = import_graph()


def test_the_graph_covers_every_room():
    rooms = {room(m) for m in GRAPH}
    assert rooms == {"kit", "lessons", "doctor", "tools"}, rooms
    assert {"peftlab.capture", "peftlab.registry", "peftlab.tools.cli"} <= set(GRAPH)
    assert "peftlab.registry" in GRAPH["peftlab.capture"]  # an arrow the parser must see


def test_no_arrow_into_a_room_that_must_not_be_entered():
    assert forbidden_arrows(GRAPH) == []


def test_no_import_circle():
    assert circles(GRAPH) == []


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A package with one arrow of each forbidden kind, a lazy circle and a circle of three."""
    files = {
        "__init__.py": "",
        "kit.py": "def f():\n    from planted.tools import cli  # lazy: still an arrow\n",
        "other.py": "from planted.lessons.helper import x\n",
        "a.py": "import planted.b\n",
        "b.py": "from . import c  # relative\n",
        "c.py": "def g():\n    from planted.a import thing\n",
        "lessons/__init__.py": "",
        "lessons/helper.py": "from planted.tools.cli import main\nx = 1\n",
        "doctor/__init__.py": "from planted.lessons import helper\nfrom planted.tools import cli\n",
        "tools/__init__.py": "",
        "tools/cli.py": "from planted.kit import f\nmain = f\n",
    }
    root = tmp_path / "planted"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_each_rule_fails_on_a_planted_package(planted: Path):
    graph = import_graph(planted)
    assert {a.split(":")[0] for a in forbidden_arrows(graph)} == {
        "planted.kit -> planted.tools.cli",
        "planted.other -> planted.lessons.helper",
        "planted.lessons.helper -> planted.tools.cli",
        "planted.doctor -> planted.lessons.helper",
        "planted.doctor -> planted.tools.cli",
    }
    assert circles(graph) == [
        ["planted.a", "planted.b", "planted.c"],
        ["planted.kit", "planted.tools.cli"],
    ]


def private_names_taken(root: Path = PACKAGE) -> list[str]:
    """Every ``_name`` one module of the package takes from another: imported, or read as ``module._name``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        here = module_name(path, root.parent)
        local = {}  # local name -> the package module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == root.name:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{here}: from {node.module} import {alias.name}")
                    local[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                local |= {
                    (a.asname or a.name): a.name for a in node.names if a.name.split(".")[0] == root.name
                }
        found += [
            f"{here}: {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in local
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ]
    return found


def test_no_module_takes_a_private_name_of_another():
    assert private_names_taken() == []


def test_the_private_name_check_fails_on_a_planted_package(planted: Path):
    (planted / "lessons" / "plot.py").write_text(
        "from planted.kit import _figure\nfrom planted import other as o\nx = o._hidden\n"
    )
    assert private_names_taken(planted) == [
        "planted.lessons.plot: from planted.kit import _figure",
        "planted.lessons.plot: o._hidden",
    ]


def test_every_module_is_on_contributings_map():
    """CONTRIBUTING.md's map (``peftlab readme``) lists each room's modules: none may sit outside a room."""
    from peftlab.tools.module_map import ROOMS, module_map, unmapped

    assert unmapped() == [], "a module in no room of peftlab.tools.module_map.ROOMS"
    assert module_map().count("**`peftlab/") == len(ROOMS)
