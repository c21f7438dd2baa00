"""``peftlab sweep``: run notebooks over seeds and pre-training seeds; each claim's spread and failure rate.

A proof must hold where learners run it, not only on the machine where it was written. ``SEED`` (the
notebooks' parameter) changes the data, the initialisation of the adapters and the training order;
``PEFTLAB_PRETRAIN_SEED`` changes how the tiny checkpoints were pre-trained, a stand-in for another
machine's float rounding. Each run is one execution (:func:`peftlab.tools.execute.execute`) with
``SEED`` set; the checks the notebook showed and the proofs its proofs file judges on what it recorded
(:mod:`peftlab.tools.proofs`) are tabulated per claim: runs, passes, min / 1st percentile / median /
max of the value each threshold judges, and a bound on how often a learner would see it fail.

Seeds a threshold was set from are the ``fit`` role; seeds kept back to test it, ``held-back``
(``--role``). The plan (notebook x pre-training seed x seed) splits into shards (``--shard i/n``,
one CI job each); ``--combine`` tabulates any set of earlier sweeps' ``sweep.json`` as one, exactly
as if one machine had run them, and ``--record`` keeps that summary (``docs/sweep/summary.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from peftlab.tools import proofs
from peftlab.tools.execute import execute
from peftlab.tools.runner import add_notebook_arguments, find_notebooks, table

ROLES = ("fit", "held-back")


def run_once(path: Path, seed: int, pretrain_seed: int, build: Path, timeout: int, role: str = "fit") -> dict:
    """Execute one notebook with ``SEED=seed`` under ``PEFTLAB_PRETRAIN_SEED``; return its scorecard with
    its proofs judged (``proofs``: one verdict per claim of ``tests/proofs/nbNN_<name>.py``)."""
    import nbformat

    results = build / "results" / f"seed{seed}-pretrain{pretrain_seed}"
    run = execute(path, results, {"SEED": seed}, {"PEFTLAB_PRETRAIN_SEED": str(pretrain_seed)}, timeout)
    nbformat.write(run.notebook, results / path.name)
    card = run.card or {"checks": [], "facts": {}}
    verdicts = proofs.judge(card, path.stem)
    error = run.error or next((f"proof failed: {v['claim']}" for v in verdicts if v["passed"] is False), "")
    head = {"notebook": path.stem, "seed": seed, "pretrain_seed": pretrain_seed, "role": role, "error": error}
    return head | card | {"proofs": verdicts, "seconds": run.seconds}


def plan(paths: list[Path], seeds: list[int], pretrain_seeds: list[int]) -> list[tuple[Path, int, int]]:
    """Every run, in a fixed order: (notebook, pre-training seed, seed)."""
    return [(path, pretrain, seed) for path in paths for pretrain in pretrain_seeds for seed in seeds]


def shard(runs: list, spec: str | None) -> list:
    """The runs of shard ``i/n`` (every n-th run from the i-th, 1-based); all of them without a spec."""
    if not spec:
        return runs
    i, n = (int(x) for x in spec.split("/"))
    if not 1 <= i <= n:
        raise ValueError(f"--shard {spec}: expected i/n with 1 <= i <= n")
    return runs[i - 1 :: n]


def failure_bound(failures: int, runs: int, confidence: float = 0.95) -> float:
    """The one-sided upper confidence bound on a failure rate seen as ``failures`` in ``runs``
    (Clopper-Pearson; with no failure this is 1 - (1 - confidence) ** (1 / runs), about 3 / runs)."""
    if runs == 0:
        return 1.0
    if failures >= runs:
        return 1.0
    low, high = failures / runs, 1.0
    for _ in range(60):  # bisect P(X <= failures | p) = 1 - confidence
        p = (low + high) / 2
        tail = sum(math.comb(runs, k) * p**k * (1 - p) ** (runs - k) for k in range(failures + 1))
        low, high = (p, high) if tail > 1 - confidence else (low, p)
    return high


def normal_failure_rate(values: list[float], threshold: tuple[str, float] | None) -> float | None:
    """The failure rate a normal fit of ``values`` predicts for ``threshold`` (None without one, or too few
    values): a model-based figure beside the distribution-free bound, stated as such."""
    if not threshold or len(values) < 5:
        return None
    symbol, limit = threshold
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    if sd == 0:
        return 0.0 if proofs.Threshold(symbol, limit)(mean) else 1.0
    z = (limit - mean) / sd
    below = statistics.NormalDist().cdf(z)
    return below if symbol in (">=", ">") else (1 - below if symbol in ("<=", "<") else None)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(runs: list[dict]) -> list[dict]:
    """One entry per notebook, claim, stack and role: runs, passes, the value's spread, the threshold and
    the failure-rate bounds."""
    groups: dict[tuple[str, str, str, str], list[dict]] = {}
    for run in runs:
        for claim in run.get("checks", []) + run.get("proofs", []):
            key = (run["notebook"], claim["claim"], run.get("stack", "?"), run.get("role", "fit"))
            groups.setdefault(key, []).append(claim)
    out = []
    for (notebook, claim, stack, role), claims in sorted(groups.items()):
        values = [c["value"] for c in claims if c.get("value") is not None]
        failed = [c for c in claims if not c["passed"]]
        threshold = next((tuple(c["threshold"]) for c in claims if c.get("threshold")), None)
        entry = {
            "notebook": notebook,
            "claim": claim,
            "stack": stack,
            "role": role,
            "runs": len(claims),
            "passed": len(claims) - len(failed),
            "learned": any(c.get("learned") for c in claims),
            "threshold": threshold,
            "failure_bound": failure_bound(len(failed), len(claims)),
            "normal_failure_rate": normal_failure_rate(values, threshold),
            "a_failing_figure": failed[0].get("figure", "") if failed else "",
        }
        if values:
            entry |= {
                "min": min(values),
                "p1": percentile(values, 1),
                "median": statistics.median(values),
                "max": max(values),
            }
        out.append(entry)
    return out


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def render(entries: list[dict]) -> str:
    """The summary as a table: the learned figures first, then the exact facts."""
    header = [
        "notebook",
        "claim",
        "stack",
        "role",
        "runs",
        "passed",
        "min / p1 / median / max",
        "threshold",
        "failure rate < (95%)",
        "normal model",
    ]
    rows = []
    for e in sorted(
        entries, key=lambda e: (not e["learned"], e["notebook"], e["claim"], e["stack"], e["role"])
    ):
        spread = " / ".join(_g(e.get(k)) for k in ("min", "p1", "median", "max")) if "min" in e else "-"
        limit = f"{e['threshold'][0]} {e['threshold'][1]:g}" if e["threshold"] else "-"
        model = _g(e["normal_failure_rate"])
        rows.append(
            [
                e["notebook"],
                e["claim"][:60] + (" *" if e["learned"] else ""),
                e["stack"],
                e["role"],
                str(e["runs"]),
                str(e["passed"]),
                spread,
                limit,
                f"{e['failure_bound']:.1%}",
                model,
            ]
        )
    return table(rows, header) + "\n\n* a learned figure (its value moves with the seeds)"


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
        "--role",
        choices=ROLES,
        default="fit",
        help="fit: seeds thresholds are set from; held-back: seeds kept back to test them",
    )
    parser.add_argument("--shard", metavar="I/N", help="run only shard I of N of the plan (1-based)")
    parser.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="FOLDER",
        help="run nothing: one table from earlier sweeps' sweep.json (shards, stacks, roles)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="JSON",
        help="with --combine: write the summary there (docs/sweep/summary.json)",
    )


def combine(folders: list[Path], record: Path | None = None) -> int:
    """Print one table over the runs recorded in ``folders``; exit 1 if any run stopped or failed, 2 if a
    folder holds no sweep."""
    missing = [str(f) for f in folders if not (f / "sweep.json").exists()]
    if missing:
        print(
            f"error: no sweep.json in {', '.join(missing)} (give the --build folders of earlier sweeps)",
            file=sys.stderr,
        )
        return 2
    runs = [run for folder in folders for run in json.loads((folder / "sweep.json").read_text())]
    entries = summary(runs)
    print(render(entries))
    stopped = [r for r in runs if r["error"]]
    print(f"\n{len(runs)} runs, {len(stopped)} stopped or failed a claim")
    if record:
        record.parent.mkdir(parents=True, exist_ok=True)
        seeds = sorted(
            {
                (r["notebook"], r.get("stack", "?"), r.get("role", "fit"), r["pretrain_seed"], r["seed"])
                for r in runs
            }
        )
        record.write_text(json.dumps({"runs": [list(s) for s in seeds], "summary": entries}, indent=1) + "\n")
        print(f"summary recorded in {record}")
    return 1 if stopped else 0


def main(args: argparse.Namespace) -> int:
    """Run the sweep (or its shard); exit 1 if any run failed a claim or stopped, 2 on bad input."""
    if args.combine:
        return combine(args.combine, args.record)
    try:
        runs = shard(
            plan(find_notebooks(args.notebooks, args.only), args.seeds, args.pretrain_seeds), args.shard
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start, done = time.perf_counter(), []
    for path, pretrain_seed, seed in runs:
        run = run_once(path, seed, pretrain_seed, args.build, args.timeout, args.role)
        print(
            f"{path.stem} SEED={seed} pretrain={pretrain_seed}: {run['error'] or 'every claim held'}",
            flush=True,
        )
        done.append(run)
    text = render(summary(done))
    print(f"\n{text}\n\n{len(done)} runs in {time.perf_counter() - start:.0f} s")
    args.build.mkdir(parents=True, exist_ok=True)
    (args.build / "sweep.md").write_text(text + "\n", encoding="utf-8")
    (args.build / "sweep.json").write_text(json.dumps(done, indent=1), encoding="utf-8")
    return 1 if any(r["error"] for r in done) else 0
