"""``peftlab sweep``: run notebooks over seeds and pre-training seeds; each check's spread in one table.

A proof must hold where learners run it, not only on the machine where it was written. ``SEED`` (the
notebooks' parameter) changes the data, the initialisation of the adapters and the training order;
``PEFTLAB_PRETRAIN_SEED`` changes how the tiny checkpoints were pre-trained, a stand-in for another
machine's float rounding. Each run is one papermill execution (the ecosystem's tool for
parameterised notebooks: ``pip install papermill``); the scorecards it saves are tabulated per check:
runs, passes, and the min / median / max of the value each threshold judges, from which thresholds
are set with a stated margin. ``sweep.md`` and ``sweep.json`` go to the build folder (``build/sweep``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from peftlab.tools.runner import add_notebook_arguments, find_notebooks, ipc_kernel, table


def run_once(path: Path, seed: int, pretrain_seed: int, build: Path, timeout: int) -> dict:
    """Execute one notebook with ``SEED=seed`` under ``PEFTLAB_PRETRAIN_SEED``; return its scorecard."""
    import papermill

    results = build / "results" / f"seed{seed}-pretrain{pretrain_seed}"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{path.stem}.json").unlink(missing_ok=True)
    saved = {k: os.environ.get(k) for k in ("PEFTLAB_RESULTS_DIR", "PEFTLAB_PRETRAIN_SEED")}
    os.environ.update(PEFTLAB_RESULTS_DIR=str(results.resolve()), PEFTLAB_PRETRAIN_SEED=str(pretrain_seed))
    error = ""
    try:
        with ipc_kernel() as km:
            papermill.execute_notebook(
                str(path),
                str(results / path.name),
                parameters={"SEED": seed},
                km=km,
                cwd=str(path.parent),
                execution_timeout=timeout,
                progress_bar=False,
            )
    except Exception as exc:  # noqa: BLE001  (a failed check is a result of the sweep)
        error = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    card_path = results / f"{path.stem}.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {"checks": []}
    return {"notebook": path.stem, "seed": seed, "pretrain_seed": pretrain_seed, "error": error, **card}


def summarise(runs: list[dict], by_stack: bool = False) -> list[list[str]]:
    """One row per notebook and check (and stack): runs, passes, min / median / max of its value,
    the worst figure."""
    rows: dict[tuple[str, ...], list[dict]] = {}
    for run in runs:
        for check in run.get("checks", []):
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
        import papermill  # noqa: F401
    except ImportError:
        print("error: peftlab sweep runs notebooks with papermill: pip install papermill", file=sys.stderr)
        return 2
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
