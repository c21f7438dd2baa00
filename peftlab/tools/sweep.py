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

from peftlab.models import stale_shipped
from peftlab.tools import proofs
from peftlab.tools.execute import execute
from peftlab.tools.runner import add_notebook_arguments, find_notebooks, table

ROLES = ("fit", "held-back")
PROOF_FAILED = "proof failed: "


def run_once(path: Path, seed: int, pretrain_seed: int, build: Path, timeout: int, role: str = "fit") -> dict:
    """Execute one notebook with ``SEED=seed`` under ``PEFTLAB_PRETRAIN_SEED``; return its scorecard with
    its proofs judged (``proofs``: one verdict per claim of ``tests/proofs/nbNN_<name>.py``)."""
    import nbformat

    results = build / "results" / f"seed{seed}-pretrain{pretrain_seed}"
    run = execute(path, results, {"SEED": seed}, {"PEFTLAB_PRETRAIN_SEED": str(pretrain_seed)}, timeout)
    nbformat.write(run.notebook, results / path.name)
    card = run.card or {"checks": [], "facts": {}}
    verdicts = proofs.judge(card, path.stem)
    error = run.error or proof_failure(verdicts)
    head = {"notebook": path.stem, "seed": seed, "pretrain_seed": pretrain_seed, "role": role, "error": error}
    return head | card | {"proofs": verdicts, "seconds": run.seconds}


def proof_failure(verdicts: list[dict]) -> str:
    """A run's error from its proofs' verdicts: the first failed claim, or '' when none failed."""
    return next((f"{PROOF_FAILED}{v['claim']}" for v in verdicts if v["passed"] is False), "")


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
        "--rejudge",
        action="store_true",
        help="with --combine: judge the proofs again on the runs' recorded facts with this checkout's "
        "proofs files (thresholds re-derived since the runs)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="JSON",
        help="with --combine: write the summary there (docs/sweep/summary.json)",
    )


def rejudge(run: dict) -> dict:
    """``run`` with its proofs judged again on the facts it recorded, by this checkout's proofs files
    (a threshold re-derived since the run), and its error recomputed where a proof had failed."""
    if "facts" not in run:
        return run  # it stopped before saving a scorecard: nothing to judge
    verdicts = proofs.judge(run, run["notebook"])
    error = run["error"]
    if not error or error.startswith(PROOF_FAILED):
        error = proof_failure(verdicts)
    return run | {"proofs": verdicts, "error": error}


def combine(folders: list[Path], record: Path | None = None, again: bool = False) -> int:
    """Print one table over the runs recorded in ``folders`` (their proofs judged ``again`` with this
    checkout's proofs files); exit 1 if any run stopped or failed, 2 if a folder holds no sweep."""
    missing = [str(f) for f in folders if not (f / "sweep.json").exists()]
    if missing:
        print(
            f"error: no sweep.json in {', '.join(missing)} (give the --build folders of earlier sweeps)",
            file=sys.stderr,
        )
        return 2
    runs = [run for folder in folders for run in json.loads((folder / "sweep.json").read_text())]
    runs = [rejudge(run) for run in runs] if again else runs
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
        record.with_suffix(".md").write_text(record_page(entries, runs), encoding="utf-8")
        print(f"summary recorded in {record} and {record.with_suffix('.md')}")
    return 1 if stopped else 0


#: Where ``--record`` keeps the summary that ``tests/test_sweep_record.py`` judges.
RECORD = Path("docs/sweep/summary.json")
#: Held-back seed combinations each learned claim needs per stack, all passed.
MIN_HELD_BACK = 10
STACKS = ("documented", "current")


def _thresholds(notebook: str) -> dict[str, tuple[str, float] | None]:
    """Every claim of ``notebook``'s proofs file with a numeric threshold, and that threshold."""
    module = proofs.load(notebook)
    out = {s.claim: s.threshold.as_pair() for s in getattr(module, "SHOWN", []) if s.threshold}
    for proof in getattr(module, "PROOFS", []):
        if isinstance(proof.threshold, proofs.Threshold):
            out[proof.claim] = proof.threshold.as_pair()
    return out


def _learned(notebook: str, entries: list[dict]) -> set[str]:
    """The claims of ``notebook`` whose figures training makes: marked so in its proofs file, or
    reported so by the runs (a shown check that needs pre-trained weights)."""
    module = proofs.load(notebook)
    marked = {p.claim for p in getattr(module, "PROOFS", []) if p.learned}
    return marked | {e["claim"] for e in entries if e["notebook"] == notebook and e["learned"]}


def record_problems(record: dict, notebooks: list[str], stacks: tuple[str, ...] = STACKS) -> list[str]:
    """What a recorded summary lacks for ``notebooks``' current claims (empty when nothing): each
    thresholded claim swept on each stack with its current threshold, every run passed; each learned
    claim also judged on at least ``MIN_HELD_BACK`` held-back seed combinations per stack, none of them
    a combination the thresholds were fitted on."""
    entries, problems = record["summary"], []
    runs = {tuple(r) for r in record["runs"]}
    index = {(e["notebook"], e["claim"], e["stack"], e["role"]): e for e in entries}
    for notebook in notebooks:
        learned = _learned(notebook, entries)
        for claim, threshold in _thresholds(notebook).items():
            roles = ("fit", "held-back") if claim in learned else ("fit",)
            for stack in stacks:
                for role in roles:
                    entry = index.get((notebook, claim, stack, role))
                    where = f"{notebook} {stack} {role}: {claim!r}"
                    if entry is None:
                        problems.append(f"{where}: not in the sweep's record")
                        continue
                    if tuple(entry["threshold"] or ()) != tuple(threshold or ()):
                        problems.append(f"{where}: swept against {entry['threshold']}, now {threshold}")
                    if entry["passed"] != entry["runs"]:
                        problems.append(
                            f"{where}: {entry['runs'] - entry['passed']} of {entry['runs']} runs failed"
                        )
                    if role == "held-back" and entry["runs"] < MIN_HELD_BACK:
                        problems.append(f"{where}: {entry['runs']} held-back runs, needs {MIN_HELD_BACK}")
        for stack in stacks:
            seeds = {role: {r[3:] for r in runs if r[:3] == (notebook, stack, role)} for role in ROLES}
            if seeds["fit"] & seeds["held-back"]:
                problems.append(
                    f"{notebook} {stack}: held-back seeds the thresholds were fitted on: "
                    f"{sorted(seeds['fit'] & seeds['held-back'])}"
                )
    return problems


def record_page(entries: list[dict], runs: list[dict]) -> str:
    """The recorded summary as a page: which seeds, per role and stack, then the table."""
    plans = {}
    for run in runs:
        key = (run.get("stack", "?"), run.get("role", "fit"))
        plans.setdefault(key, set()).add((run["pretrain_seed"], run["seed"]))
    lines = [
        "# The seed sweep: each check's spread and failure-rate bound",
        "",
        "Written by `peftlab sweep --combine <folders> --record docs/sweep/summary.json`; judged by",
        "`tests/test_sweep_record.py`. Runs per stack and role (pre-training seed x SEED combinations):",
        "",
    ]
    for (stack, role), pairs in sorted(plans.items()):
        pretrain = sorted({p for p, _ in pairs})
        seeds = sorted({s for _, s in pairs})
        lines.append(
            f"* {stack}, {role}: {len(pairs)} combinations (pre-training seeds {pretrain}, SEED {seeds})"
        )
    lines += [
        "",
        "`failure rate < (95%)`: the one-sided Clopper-Pearson bound on how often a learner would see the",
        "check fail, from its runs and failures; `normal model`: the rate a normal fit of the values gives",
        "(a model, stated as such).",
        "",
        render(entries),
        "",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run the sweep (or its shard); exit 1 if any run failed a claim or stopped, 2 on bad input."""
    if args.combine:
        return combine(args.combine, args.record, args.rejudge)
    try:
        runs = shard(
            plan(find_notebooks(args.notebooks, args.only), args.seeds, args.pretrain_seeds), args.shard
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if 0 in args.pretrain_seeds and (stale := stale_shipped()):
        print(
            f"error: the recipe of the shipped tiny {', '.join(stale)} changed since `peftlab ship-tiny`: "
            "runs with pre-training seed 0 would pre-train their own, not load what a learner loads. "
            "Run `peftlab ship-tiny` on the documented stack first.",
            file=sys.stderr,
        )
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
