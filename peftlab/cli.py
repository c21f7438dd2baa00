"""The ``peftlab`` command: ``run``, ``failures``, ``versions``, ``doctor``, ``drift`` and ``docs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``peftlab`` console script."""
    parser = argparse.ArgumentParser(prog="peftlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every notebook headless and print what each one proved")
    run.add_argument(
        "--notebooks", type=Path, default=Path("notebooks"), help="folder of .ipynb (default: notebooks)"
    )
    run.add_argument("--build", type=Path, default=Path("build"), help="output folder (default: build)")
    run.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")
    run.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    sub.add_parser("failures", help="list the failure registry: what each stack raises")
    sub.add_parser("versions", help="print the installed versions and the stack they form")
    from peftlab import docs

    docs.add_arguments(sub.add_parser("docs", help="executed notebooks as a static HTML site"))
    from peftlab import drift

    drift.add_arguments(sub.add_parser("drift", help="run the notebooks on the newest releases: drift table"))
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
    if args.command == "doctor":
        return run_command(args)
    if args.command == "failures":
        from peftlab.failures import REGISTRY
        from peftlab.runner import table

        rows = [[f.notebook, f.id, ", ".join(f"{k}{v}" for k, v in e.when.items()), e.describe()]
                for f in REGISTRY.values() for e in f.expectations]  # fmt: skip
        print(table(rows, ["notebook", "failure", "versions", "what happens"]))
        return 0

    from peftlab.runner import HEADER, run_all, table
    from peftlab.versions import describe

    print(f"peftlab run on the {describe()}")
    try:
        outcomes = run_all(args.notebooks, args.build, args.only, args.timeout)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print()
    print(table([o.row() for o in outcomes], HEADER))
    print(f"\nexecuted notebooks: {args.build / 'notebooks'}   HTML: {args.build / 'html'}")
    short = [o.notebook for o in outcomes if not o.ok]
    if short:
        print(f"FELL SHORT: {', '.join(short)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
