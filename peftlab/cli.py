"""The ``peftlab`` command: ``run``, ``failures``, ``versions``, ``doctor``, ``drift``, ``matrix``, ``sweep``, ``docs`` and ``readme``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``peftlab`` console script."""
    parser = argparse.ArgumentParser(prog="peftlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from peftlab.runner import add_notebook_arguments

    run = sub.add_parser("run", help="execute every notebook headless and print what each one proved")
    add_notebook_arguments(run, "--build", Path("build"), "output folder")
    run.add_argument("--real-size", action="store_true",
                     help="run on the published architectures with random weights (few steps): failure, fix, "
                          "reload, peak memory and s/step at real size; accuracy not judged")  # fmt: skip
    run.add_argument("--record", type=Path, default=None,
                     help="with --real-size: merge the measured peak RSS into this facts file "
                          "(docs/real_size.json feeds the README's memory table)")  # fmt: skip
    failures = sub.add_parser("failures", help="list the failure registry: what each version range raises")
    failures.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    from peftlab import readme

    readme.add_arguments(sub.add_parser("readme", help="regenerate the README's tables from the registry"))
    sub.add_parser("versions", help="print the installed versions and the stack they form")
    from peftlab import docs

    docs.add_arguments(sub.add_parser("docs", help="executed notebooks as a static HTML site"))
    from peftlab import drift

    drift.add_arguments(sub.add_parser("drift", help="run the notebooks on the newest releases: drift table"))
    from peftlab import matrix, sweep

    sweep.add_arguments(
        sub.add_parser("sweep", help="notebooks over seeds and pre-training seeds: each check's spread")
    )

    matrix.add_arguments(
        sub.add_parser("matrix", help="every notebook on every stack: failure x stack table")
    )
    from peftlab.preflight.loading import add_command, run_command

    add_command(sub)
    args = parser.parse_args(argv)

    if args.command == "versions":
        from peftlab.versions import versions_table

        print(versions_table())
        return 0
    if args.command == "docs":
        return docs.main(args)
    if args.command == "drift":
        return drift.main(args)
    if args.command == "matrix":
        return matrix.main(args)
    if args.command == "sweep":
        return sweep.main(args)
    if args.command == "doctor":
        return run_command(args)
    if args.command == "readme":
        return readme.main(args)
    if args.command == "failures":
        from peftlab.registry import REGISTRY
        from peftlab.runner import table

        if args.markdown:
            print(readme.failures_table())
            return 0
        rows = [[f.notebook, f.id, e.versions_phrase(), e.describe()]
                for f in REGISTRY.values() for e in f.expectations]  # fmt: skip
        print(table(rows, ["notebook", "failure", "versions", "what happens"]))
        return 0

    from peftlab.runner import run_all, run_and_summarise
    from peftlab.versions import describe

    print(f"peftlab run{' --real-size' if args.real_size else ''} on the {describe()}")
    if args.real_size:
        return _run_real_size(args)
    execute = lambda: run_all(args.notebooks, args.build, args.only, args.timeout)  # noqa: E731
    where = f"executed notebooks: {args.build / 'notebooks'}   HTML: {args.build / 'html'}"
    return run_and_summarise(execute, where)


def _run_real_size(args: argparse.Namespace) -> int:
    """``peftlab run --real-size``: the notebooks on published architectures; table, wall time, facts."""
    import time

    from peftlab import real_size
    from peftlab.runner import run_all, run_and_summarise

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


if __name__ == "__main__":
    sys.exit(main())
