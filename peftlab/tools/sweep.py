"""``peftlab sweep``: run notebooks over seeds and pre-training seeds; each check's spread in one table.

A proof must hold where learners run it, not only on the machine where it was written. ``SEED`` (the
notebooks' parameter) changes the data, the initialisation of the adapters and the training order;
``PEFTLAB_PRETRAIN_SEED`` changes how the tiny checkpoints were pre-trained, a stand-in for another
machine's float rounding. Each run is one execution (:func:`peftlab.tools.execute.execute`) with
``SEED`` set; the checks the notebook showed and the proofs its proofs file judges on what it recorded
(:mod:`peftlab.tools.proofs`) are tabulated per claim: runs, passes, and the min / median / max of the
value each threshold judges, from which thresholds are set with a stated margin. ``sweep.md`` and ``sweep.json`` go to the build folder (``build/sweep``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import nbformat

from peftlab.tools import proofs
from peftlab.tools.execute import execute
from peftlab.tools.runner import add_notebook_arguments, find_notebooks, table


def run_once(path: Path, seed: int, pretrain_seed: int, build: Path, timeout: int) -> dict:
    """Execute one notebook with ``SEED=seed`` under ``PEFTLAB_PRETRAIN_SEED``; return its scorecard with
    its proofs judged (``proofs``: one verdict per claim of ``tests/proofs/nbNN_<name>.py``)."""
    results = build / "results" / f"seed{seed}-pretrain{pretrain_seed}"
    run = execute(path, results, {"SEED": seed}, {"PEFTLAB_PRETRAIN_SEED": str(pretrain_seed)}, timeout)
    nbformat.write(run.notebook, results / path.name)
    card = run.card or {"checks": [], "facts": {}}
    verdicts = proofs.judge(card, path.stem)
    error = run.error or next((f"proof failed: {v['claim']}" for v in verdicts if v["passed"] is False), "")
    return {
        "notebook": path.stem,
        "seed": seed,
        "pretrain_seed": pretrain_seed,
        "error": error,
        **card,
        "proofs": verdicts,
    }


def summarise(runs: list[dict], by_stack: bool = False) -> list[list[str]]:
    """One row per notebook and check (and stack): runs, passes, min / median / max of its value,
    the worst figure."""
    rows: dict[tuple[str, ...], list[dict]] = {}
    for run in runs:
        for check in run.get("checks", []) + run.get("proofs", []):
            key = (run["notebook"], check["claim"]) + ((run.get("stack", "?"),) if by_stack else ())
            rows.setdefault(key, []).append(check)
    out = []
    for (notebook, claim, *stack), checks in rows.items():
        values = [c["value"] for c in checks if c.get("value") is not None]
        spread = f"{min(values):.3g} / {statistics.median(values):.3g} / {max(values):.3g}" if values else "-"
        failed = [c["figure"] for c in checks if not c["passed"]]
        out.append(
            [
                notebook,
                claim[:70],
                *stack,
                str(len(checks)),
                str(len(checks) - len(failed)),
                spread,
                failed[0][:60] if failed else "",
            ]
        )
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab sweep``."""
    add_notebook_arguments(parser, "--build", Path("build/sweep"), "output folder")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="values of SEED")
    parser.add_argument(
        "--pretrain-seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        help="values of PEFTLAB_PRETRAIN_SEED (each pre-trains the tiny models anew)",
    )
    parser.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="FOLDER",
        help="run nothing: one table, per stack, from earlier sweeps' sweep.json",
    )


def combine(folders: list[Path]) -> int:
    """Print one table of every check over the runs recorded in ``folders`` (one row per stack)."""
    runs = [run for folder in folders for run in json.loads((folder / "sweep.json").read_text())]
    header = ["notebook", "check", "stack", "runs", "passed", "value min / median / max", "a failing figure"]
    print(table(summarise(sorted(runs, key=lambda r: r["notebook"]), by_stack=True), header))
    stopped = [r for r in runs if r["error"]]
    print(f"\n{len(runs)} runs, {len(stopped)} stopped")
    return 1 if stopped else 0


def main(args: argparse.Namespace) -> int:
    """Run the sweep; exit 1 if any run failed a check or stopped, 2 without papermill or notebooks."""
    if args.combine:
        return combine(args.combine)
    try:
        paths = find_notebooks(args.notebooks, args.only)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start, runs = time.perf_counter(), []
    for path in paths:
        for pretrain_seed in args.pretrain_seeds:
            for seed in args.seeds:
                run = run_once(path, seed, pretrain_seed, args.build, args.timeout)
                print(
                    f"{path.stem} SEED={seed} pretrain={pretrain_seed}: {run['error'] or 'every check passed'}",
                    flush=True,
                )
                runs.append(run)
    header = ["notebook", "check", "runs", "passed", "value min / median / max", "a failing figure"]
    text = table(summarise(runs), header)
    print(f"\n{text}\n\n{len(runs)} runs in {time.perf_counter() - start:.0f} s")
    args.build.mkdir(parents=True, exist_ok=True)
    (args.build / "sweep.md").write_text(text + "\n", encoding="utf-8")
    (args.build / "sweep.json").write_text(json.dumps(runs, indent=2), encoding="utf-8")
    return 1 if any(r["error"] for r in runs) else 0
