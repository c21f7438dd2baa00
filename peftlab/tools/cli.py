"""The ``peftlab`` command. Every subcommand is a module of :mod:`peftlab.tools` with two functions,
``add_arguments(parser)`` and ``main(args) -> int`` (the exit status); :data:`COMMANDS` lists them.

Adding a command is adding a row here and writing that module: there is no other way.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: name -> (module of peftlab.tools, one-line help). The modules are imported on use only.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("runner", "execute every notebook headless and print what each one proved"),
    "failures": ("failures", "list the failure registry: what each version range raises"),
    "versions": ("installed", "print the installed versions and the stack they form"),
    "doctor": ("doctor_command", "the doctor on a model folder and an adapter config, before training"),
    "docs": ("docs", "executed notebooks as a static HTML site"),
    "readme": ("readme", "regenerate the README's tables from the registry"),
    "instructors": ("instructors", "the instructor's guide: record the notebooks' measured times"),
    "drift": ("drift", "run the notebooks on the newest releases: drift table"),
    "matrix": ("matrix", "every notebook on every stack: failure x stack table"),
    "sweep": ("sweep", "notebooks over seeds and pre-training seeds: each check's spread"),
    "record": ("record", "on the documented stack: record the tracebacks the notebooks show elsewhere"),
}


def command_module(name: str) -> object:
    """The module that implements ``peftlab <name>``."""
    return importlib.import_module(f"peftlab.tools.{COMMANDS[name][0]}")


def parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per row of :data:`COMMANDS`."""
    top = argparse.ArgumentParser(
        prog="peftlab", description="Reproduce, explain and fix PEFT/LoRA failures: the maintainer commands."
    )
    sub = top.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command_module(name).add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``peftlab`` console script."""
    args = parser().parse_args(argv)
    return command_module(args.command).main(args)


if __name__ == "__main__":
    sys.exit(main())
