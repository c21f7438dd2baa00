"""``peftlab run``: execute every notebook headless and summarise what each one showed.

Each notebook runs through :func:`peftlab.tools.execute.execute` (papermill, a kernel of its own, the
notebook's folder as working directory). The executed copy goes to ``build/notebooks/``, an HTML copy
to ``build/html/``, and the scorecard the notebook saves (:mod:`peftlab.scorecard`) to
``build/results/``. A notebook "falls short" when it raises, saves no scorecard, shows none of the
failures the registry says it teaches, or fails a check. The facts it recorded for the tests are
judged by the tests (``tests/proofs/``) and by ``peftlab sweep``, not here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peftlab.registry import for_notebook
from peftlab.scorecard import MODE_ENV, REAL_SIZE
from peftlab.tools.execute import execute, failures_missing


@dataclass
class Outcome:
    """What one notebook run showed."""

    notebook: str
    seconds: float
    card: dict | None
    error: str = ""
    real_size: bool = False  # run by ``--real-size``: see :mod:`peftlab.tools.real_size`

    @property
    def ok(self) -> bool:
        """True when the notebook ran, showed every failure it teaches and passed every check it showed
        (at real size: every judged check; "not judged: random weights" never counts as passed)."""
        card = self.card
        if self.real_size:
            from peftlab.tools import real_size

            return real_size.ok(self.notebook, card, self.error)
        if self.error or card is None or failures_missing(self.notebook, card):
            return False
        return bool(card["checks"]) and all(c["passed"] for c in card["checks"])

    def row(self) -> list[str]:
        """The summary-table row: notebook, stack, failure, fix, seconds (at real size, its own columns)."""
        if self.real_size:
            from peftlab.tools import real_size

            return real_size.row(self.notebook, self.seconds, self.card, self.error)
        if self.card is None:
            return [self.notebook, "-", "no", f"no ({self.error or 'no scorecard'})", f"{self.seconds:.0f}"]
        failures = "; ".join(
            f"yes ({f['outcome']})" if f["reproduced"] else "explained: no error on these versions"
            for f in self.card["failures"]
        ) or ("none to show" if not for_notebook(self.notebook) else "no")
        checks = self.card["checks"]
        passed = sum(bool(c["passed"]) for c in checks)
        fix = "no"
        if checks:
            verdict = "yes" if passed == len(checks) else "no"
            fix = f"{verdict} ({passed}/{len(checks)} checks; {checks[0]['figure']})"
        if self.error:
            fix = f"no ({self.error[:200]})"
        return [self.notebook, self.card["stack"], failures, fix, f"{self.seconds:.0f}"]


def find_notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The ``.ipynb`` files of ``folder`` (sorted), optionally those whose name starts with ``only``."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No notebooks folder at {folder}: run from the repository root or pass --notebooks."
        )
    found = sorted(folder.glob("[0-9]*.ipynb"))
    if only:
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
    if not found:
        raise FileNotFoundError(f"No notebook in {folder} matches {only or 'NN_*.ipynb'}.")
    return found


def run_one(path: Path, build: Path, timeout: int = 600, real_size: bool = False) -> Outcome:
    """Execute one notebook; write its executed copy, HTML copy and scorecard under ``build``.

    ``real_size``: on its published architecture with random weights (:mod:`peftlab.tools.real_size`).
    """
    import nbformat

    parameters: dict[str, object] = {}
    if real_size:
        from peftlab.tools import real_size as plans

        parameters = plans.parameters_for(path.stem)
    env = {MODE_ENV: REAL_SIZE if real_size else None}
    run = execute(path, build / "results", parameters, env, timeout)
    (build / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(run.notebook, build / "notebooks" / path.name)
    write_html(run.notebook, build / "html" / f"{path.stem}.html")
    return Outcome(path.stem, run.seconds, run.card, run.error, real_size)


def write_html(notebook: object, target: Path, exporter: object | None = None) -> None:
    """Write ``notebook`` as HTML (nbconvert's lab template unless another ``exporter`` is given)."""
    from nbconvert import HTMLExporter

    target.parent.mkdir(parents=True, exist_ok=True)
    body, _ = (exporter or HTMLExporter()).from_notebook_node(notebook)
    target.write_text(body, encoding="utf-8")


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table (Markdown-compatible)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


HEADER = ["notebook", "stack", "failure reproduced", "fix verified", "seconds"]


def run_all(
    folder: Path, build: Path, only: list[str] | None = None, timeout: int = 600, real_size: bool = False
) -> list[Outcome]:
    """Run every notebook of ``folder`` in turn, printing one line as each one ends.

    ``real_size`` without ``only`` runs :func:`peftlab.tools.real_size.default_set`; a notebook that
    is left out of it (``--only 02``) is reported "not run here" with its reason instead of being run.
    """
    outcomes = []
    if real_size:
        from peftlab.tools.real_size import default_set, plan_for

        only = only or default_set()
    for path in find_notebooks(folder, only):
        if real_size and plan_for(path.stem).left_out:
            reason = plan_for(path.stem).left_out
            print(f"not run here: {path.name}: {reason}", flush=True)
            outcomes.append(Outcome(path.stem, 0.0, None, "not run here: " + reason[:60], True))
            continue
        print(f"running {path.name}{' at real size' if real_size else ''} ...", flush=True)
        outcome = run_one(path, build, timeout, real_size)
        print(f"  {'ok' if outcome.ok else 'FELL SHORT'} in {outcome.seconds:.0f} s", flush=True)
        outcomes.append(outcome)
    return outcomes


def add_notebook_arguments(parser: argparse.ArgumentParser, out: str, default: Path, what: str) -> None:
    """The options that ``peftlab run``, ``docs`` and ``drift`` share; ``out`` names the output flag."""
    parser.add_argument(
        "--notebooks", type=Path, default=Path("notebooks"), help="folder of .ipynb (default: notebooks)"
    )
    parser.add_argument(out, type=Path, default=default, help=f"{what} (default: {default})")
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")


def run_and_summarise(
    execute: Callable[[], list[Outcome]], where: str, header: list[str] | None = None
) -> int:
    """Run ``execute`` and print its summary table and where the output went (``peftlab run``, ``docs``).

    Returns the exit status: 0 when every notebook held, 1 when one fell short, 2 when there was none.
    """
    try:
        outcomes = execute()
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print()
    print(table([o.row() for o in outcomes], header or HEADER))
    print(f"\n{where}")
    short = [o.notebook for o in outcomes if not o.ok]
    if short:
        print(f"FELL SHORT: {', '.join(short)}", file=sys.stderr)
    return 1 if short else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab run``."""
    add_notebook_arguments(parser, "--build", Path("build"), "output folder")
    parser.add_argument(
        "--real-size",
        action="store_true",
        help="run on the published architectures with random weights (few steps): failure, fix, "
        "reload, peak memory and s/step at real size; accuracy not judged",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        help="with --real-size: merge the measured peak RSS into this facts file "
        "(docs/real_size.json feeds the README's memory table)",
    )


def main(args: argparse.Namespace) -> int:
    """``peftlab run``: every notebook (or ``--only``), headless; the summary table; 1 if one fell short."""
    from peftlab.versions import describe

    print(f"peftlab run{' --real-size' if args.real_size else ''} on the {describe()}")
    if args.real_size:
        return _run_real_size(args)
    execute = lambda: run_all(args.notebooks, args.build, args.only, args.timeout)  # noqa: E731
    where = f"executed notebooks: {args.build / 'notebooks'}   HTML: {args.build / 'html'}"
    return run_and_summarise(execute, where)


def _run_real_size(args: argparse.Namespace) -> int:
    """``peftlab run --real-size``: the notebooks on published architectures; table, wall time, facts."""
    from peftlab.tools import real_size

    for key, plan in real_size.PLANS.items():
        if plan.left_out and not args.only:  # with --only, run_all says it for each one named
            print(f"{key}: not run here: {plan.left_out}")
    outcomes: list = []
    start = time.perf_counter()

    def execute() -> list:
        outcomes.extend(run_all(args.notebooks, args.build, args.only, args.timeout, real_size=True))
        return outcomes

    where = f"executed notebooks: {args.build / 'notebooks'}   HTML: {args.build / 'html'}"
    status = run_and_summarise(execute, where, real_size.HEADER)
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    if args.record:
        real_size.record({o.notebook: o.card for o in outcomes if o.ok}, args.record)
        print(f"recorded peak RSS of {sum(o.ok for o in outcomes)} notebooks in {args.record}")
    return status
