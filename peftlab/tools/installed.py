"""``peftlab versions``: the installed library versions and the stack (pin file) they form."""

from __future__ import annotations

import argparse

from peftlab.versions import versions_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``peftlab versions`` takes no options."""


def main(args: argparse.Namespace) -> int:
    """Print the versions table every notebook prints first."""
    print(versions_table())
    return 0
