"""``peftlab matrix``: every failure on every stack a learner really had, in one table.

For each stack (a pin file in ``peftlab/stacks/``; by default all of them: the CI stacks and the
Colab runtimes), build or refresh a virtual environment ``.venvs/<stack>`` from its pins, run every
notebook there in observe mode (the drift watch, :mod:`peftlab.tools.drift`), and keep its verdicts. The
table has one row per failure (plus one per notebook, "runs to the end") and one column per stack;
each cell is the outcome (the exception raised, or "no error") and the verdict against the registry.
It is written as Markdown, JSON and a heat-map PNG (``build/matrix/``); ``peftlab docs`` turns the
JSON into a page of the executed documentation. The command exits 1 unless every cell is
"as documented", 2 when a stack could not be built or run.

``--newest`` adds a stack of today's newest releases (torch held at the CPU wheel), as the drift
watch builds it. ``--collect`` only renders the table from per-stack results already in the build
folder (the weekly workflow runs one job per stack, then collects).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from peftlab.registry import LESSONS, REGISTRY
from peftlab.tools.drift import NOTEBOOK_ROW, ROOT, build_venv, load_observations, torch_pin
from peftlab.tools.runner import add_notebook_arguments
from peftlab.versions import stack_file, stack_names

NEWEST = "newest"
#: Verdict kinds (from the drift watch) and their colours in the heat map.
COLOURS = {
    "as documented": "#3a923a",
    "changed": "#e6a100",
    "no longer fails": "#d9534f",
    "new failure": "#8b1a1a",
    "not run": "#bbbbbb",
}


@dataclass(frozen=True)
class Cell:
    """One failure on one stack."""

    outcome: str  # "TypeError", "no error", "stopped: ..."
    kind: str  # a drift verdict kind, or "not run"
    verdict: str  # the drift watch's full text

    def text(self) -> str:
        """``TypeError (as documented)``, or the outcome and the verdict when they differ."""
        return f"{self.outcome} ({self.kind})"


def venv_python(stack: str, venvs: Path) -> Path:
    """Build (or refresh) ``venvs/<stack>`` from the stack's pin file; return its python."""
    if stack == NEWEST:
        return build_venv(venvs / NEWEST, torch_pin())
    venv = venvs / stack
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"building {venv} from {stack_file(stack).relative_to(ROOT)}", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(stack_file(stack)), "-e", f"{ROOT}[test]"],
        check=True,
    )
    return python


def run_stack(stack: str, venvs: Path, notebooks: Path, build: Path, timeout: int) -> int:
    """Run the drift watch (observe mode) on ``stack``; its results go to ``build/<stack>/``."""
    try:
        python = venv_python(stack, venvs)
    except subprocess.CalledProcessError as error:
        print(f"error: could not build the {stack} stack: {error}", file=sys.stderr)
        return 2
    command = [
        str(python),
        "-m",
        "peftlab",
        "drift",
        "--notebooks",
        str(notebooks),
        "--build",
        str(build / stack),
        "--timeout",
        str(timeout),
    ]
    return subprocess.run(command).returncode


def outcomes(folder: Path) -> dict[str, Cell]:
    """The cells of one stack's column, from the drift watch's ``drift.json`` and observations."""
    summary = json.loads((folder / "drift.json").read_text(encoding="utf-8"))
    observed = load_observations(folder / "observations.jsonl")
    cells = {}
    for row in summary["rows"]:
        key = row["failure"] if row["failure"] != NOTEBOOK_ROW else f"{row['notebook']} (runs to the end)"
        seen = observed.get(row["failure"])
        if row["failure"] == NOTEBOOK_ROW:
            outcome = "stopped"
        elif seen is None:
            outcome = "not reached"
        else:
            outcome = seen["raised"] or "no error"
        cells[key] = Cell(outcome, row["kind"], row["verdict"])
    return cells


def collect(build: Path, stacks: list[str]) -> dict:
    """The whole table as a dictionary: stacks with their versions, and rows of cells."""
    columns, versions = {}, {}
    for stack in stacks:
        folder = build / stack
        if (folder / "drift.json").exists():
            columns[stack] = outcomes(folder)
            versions[stack] = json.loads((folder / "drift.json").read_text())["versions"]
    # every lesson, the primer included (it shows no failure, but it can stop like any notebook)
    notebooks = [*LESSONS, *sorted({f.notebook for f in REGISTRY.values()} - set(LESSONS))]
    keys = [f.id for f in REGISTRY.values()]
    keys += [f"{nb} (runs to the end)" for nb in notebooks]
    rows = {}
    for key in keys:
        rows[key] = {}
        for stack in stacks:
            if stack not in columns:
                rows[key][stack] = Cell("-", "not run", "no results for this stack").__dict__
            elif key in columns[stack]:
                rows[key][stack] = columns[stack][key].__dict__
            elif key.endswith("(runs to the end)"):
                rows[key][stack] = Cell("ran to the end", "as documented", "as documented").__dict__
            else:
                rows[key][stack] = Cell("not run", "not run", "its notebook did not run").__dict__
    return {"date": date.today().isoformat(), "stacks": stacks, "versions": versions, "rows": rows}


def markdown(table: dict) -> str:
    """The table as Markdown, with each stack's transformers / peft under its name."""
    stacks = table["stacks"]
    head = [f"{s}<br>{versions_label(table['versions'].get(s))}" for s in stacks]
    lines = ["| failure | " + " | ".join(head) + " |", "|---|" + "---|" * len(stacks)]
    for key, cells in table["rows"].items():
        lines.append(f"| `{key}` | " + " | ".join(_cell(cells[s]) for s in stacks) + " |")
    total = [c for cells in table["rows"].values() for c in cells.values()]
    good = sum(c["kind"] == "as documented" for c in total)
    lines += ["", f"{good} of {len(total)} cells as documented."]
    return "\n".join(lines)


def versions_label(versions: dict | None) -> str:
    """``transformers <release> / peft <release>`` for a stack's column, or ``not run``."""
    if not versions:
        return "not run"
    return f"transformers {versions.get('transformers')} / peft {versions.get('peft')}"


def _cell(cell: dict) -> str:
    mark = "" if cell["kind"] == "as documented" else " **" + cell["kind"] + "**"
    return (cell["outcome"] + mark).replace("|", "\\|")


def heatmap(table: dict, path: Path) -> None:
    """A PNG: failures down, stacks across, each cell coloured by its verdict and labelled with the outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    stacks, keys = table["stacks"], list(table["rows"])
    fig, ax = plt.subplots(figsize=(2.0 + 1.35 * len(stacks), 0.9 + 0.32 * len(keys)), facecolor="white")
    grid = [[to_rgb(COLOURS.get(table["rows"][k][s]["kind"], "#bbbbbb")) for s in stacks] for k in keys]
    ax.imshow(grid, aspect="auto")
    for i, key in enumerate(keys):
        for j, stack in enumerate(stacks):
            ax.text(
                j,
                i,
                table["rows"][key][stack]["outcome"][:22],
                ha="center",
                va="center",
                fontsize=6.5,
                color="white",
            )
    ax.set_xticks(
        range(len(stacks)),
        [f"{s}\n{versions_label(table['versions'].get(s))}" for s in stacks],
        fontsize=6.5,
        rotation=30,
        ha="right",
    )
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.legend(
        handles=[Patch(color=c, label=k) for k, c in COLOURS.items()],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    ax.set_title("Each failure on each stack: the outcome, coloured by the verdict against the registry")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(table: dict, build: Path, seconds: float | None = None) -> bool:
    """Write matrix.md, matrix.json and matrix.png; True when every cell is as documented."""
    build.mkdir(parents=True, exist_ok=True)
    text = markdown(table) + (f"\nMeasured in {seconds:.0f} s." if seconds is not None else "")
    (build / "matrix.md").write_text(text + "\n", encoding="utf-8")
    (build / "matrix.json").write_text(json.dumps({**table, "seconds": seconds}, indent=2), encoding="utf-8")
    heatmap(table, build / "matrix.png")
    print(text)
    print(f"written: {build / 'matrix.md'}, {build / 'matrix.json'}, {build / 'matrix.png'}")
    return all(c["kind"] == "as documented" for cells in table["rows"].values() for c in cells.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab matrix``."""
    add_notebook_arguments(parser, "--build", Path("build/matrix"), "output folder")
    parser.add_argument("--stacks", nargs="+", metavar="STACK", help="stack names (default: every pin file)")
    parser.add_argument("--newest", action="store_true", help="add a stack of today's newest releases")
    parser.add_argument("--venvs", type=Path, default=Path(".venvs"), help="where the venvs live")
    parser.add_argument(
        "--collect", action="store_true", help="only render the table from results in --build"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``peftlab matrix`` with parsed ``args``."""
    stacks = list(args.stacks or stack_names()) + ([NEWEST] if args.newest else [])
    unknown = [s for s in stacks if s != NEWEST and s not in stack_names()]
    if unknown:
        print(f"error: unknown stacks {unknown}; known: {', '.join(stack_names())}", file=sys.stderr)
        return 2
    start, broken = time.perf_counter(), False
    if not args.collect:
        for stack in stacks:
            print(f"::: the {stack} stack", flush=True)
            broken |= run_stack(stack, args.venvs, args.notebooks, args.build, args.timeout) != 0
    seconds = None if args.collect else time.perf_counter() - start
    ok = write(collect(args.build, stacks), args.build, seconds)
    return 2 if broken else (0 if ok else 1)
