"""``peftlab failures``: the failure registry in a terminal (or as the README's Markdown table)."""

from __future__ import annotations

import argparse

from peftlab.registry import REGISTRY
from peftlab.tools.runner import table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab failures``."""
    parser.add_argument("--markdown", action="store_true", help="as the README's Markdown table")


def main(args: argparse.Namespace) -> int:
    """Print every failure, per range of versions: what happens there."""
    if args.markdown:
        from peftlab.tools.readme import failures_table

        print(failures_table())
        return 0
    rows = [
        [f.notebook, f.id, e.versions_phrase(), e.describe()]
        for f in REGISTRY.values()
        for e in f.expectations
    ]
    print(table(rows, ["notebook", "failure", "versions", "what happens"]))
    return 0
