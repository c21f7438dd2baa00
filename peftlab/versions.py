"""Which library versions are installed, and which of the collection's stacks they form.

The stacks are the pin files in ``peftlab/stacks/<name>.txt`` (shipped with the package): the one
place where a stack's versions are written. Everything else (the stack name a notebook prints, the
drift watch's reference, the README's stack table) reads them through :func:`stack_pins`.
Every notebook prints :func:`versions_table` in its first cells, and the failure registry
(:mod:`peftlab.registry`) decides what to expect from :func:`installed`.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

#: The libraries whose versions decide how the failures look.
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes")
#: The libraries that name a stack (torch and bitsandbytes are the same on every pinned stack).
STACK_LIBRARIES = ("transformers", "peft", "accelerate")
#: The folder of the pin files.
STACKS_DIR = Path(__file__).resolve().parent / "stacks"
#: The stacks CI tests on every push (the others are run by ``peftlab matrix``).
CI_STACKS = ("documented", "current")

Versions = dict[str, str | None]


def stack_file(name: str) -> Path:
    """The pin file of stack ``name``, with a clear error for an unknown name."""
    path = STACKS_DIR / f"{name}.txt"
    if not path.is_file():
        raise KeyError(f"Unknown stack {name!r}; known: {', '.join(stack_names())}")
    return path


@cache
def stack_names() -> tuple[str, ...]:
    """Every stack with a pin file: the CI stacks first, then the others by name."""
    found = sorted(p.stem for p in STACKS_DIR.glob("*.txt"))
    return tuple(n for n in CI_STACKS if n in found) + tuple(n for n in found if n not in CI_STACKS)


@cache
def stack_pins(name: str) -> dict[str, str]:
    """Every ``library: version`` that stack ``name`` pins (``torch==<version>`` -> ``{"torch": "<version>"}``)."""
    pins = {}
    for line in stack_file(name).read_text(encoding="utf-8").splitlines():
        lib, pinned, version = line.split("#")[0].strip().partition("==")
        if pinned:
            pins[lib.strip().lower().replace("_", "-")] = version.strip()
    return pins


def stack_description(name: str) -> str:
    """The first comment line of the stack's pin file, without its ``#``."""
    first = stack_file(name).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def real_runtime(name: str) -> str:
    """What the runtime a stack stands for really ran (its ``# real runtime:`` line), or ''."""
    for line in stack_file(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("# real runtime:"):
            return line.removeprefix("# real runtime:").strip()
    return ""


def stacks_where(**specifiers: str) -> tuple[str, ...]:
    """The stacks whose pins satisfy every ``library=specifier``, in :func:`stack_names` order.

    ``stacks_where(transformers="<5.0.0")`` names the 4.x stacks; with no specifier, every stack. A
    stack that leaves a named library unpinned is not one of them. The registry's ``measured`` claims
    are built with it, so a new pin file joins the claims of its range (and the test that every claim
    is recorded in the matrix then asks for a run on it).
    """
    return tuple(
        name
        for name in stack_names()
        if all(
            lib in stack_pins(name) and SpecifierSet(spec).contains(stack_pins(name)[lib], prereleases=True)
            for lib, spec in specifiers.items()
        )
    )


def pinned_versions(name: str) -> Versions:
    """The versions of :data:`LIBRARIES` that stack ``name`` pins (None for one it leaves open)."""
    pins = stack_pins(name)
    return {lib: pins.get(lib) for lib in LIBRARIES}


def installed(libraries: tuple[str, ...] = LIBRARIES) -> Versions:
    """Return ``{library: version}``; ``None`` for a library that is not installed."""
    found: Versions = {}
    for name in libraries:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def version_of(library: str) -> Version:
    """The installed version of ``library`` as a comparable :class:`Version` (0 if absent)."""
    return Version(installed((library,))[library] or "0")


def stack_name(versions: Versions | None = None) -> str:
    """Name the stack the versions form (``documented``, ``current``, ``colab-2026.01``...) or ``other``."""
    versions = versions or installed()
    for name in stack_names():
        pins = stack_pins(name)
        if all(versions.get(lib) == pins.get(lib) for lib in STACK_LIBRARIES):
            return name
    return "other"


def newest_measured(library: str) -> Version:
    """The highest release of ``library`` that any stack pins: past it, nothing has been measured."""
    return max(Version(stack_pins(n)[library]) for n in stack_names() if library in stack_pins(n))


def describe(versions: Versions | None = None) -> str:
    """One line naming the stack and its versions, for messages and reports."""
    versions = versions or installed()
    libs = ", ".join(f"{k} {v or 'absent'}" for k, v in versions.items())
    return f"{stack_name(versions)} stack ({libs})"


def versions_table() -> str:
    """A small text table of Python, the key libraries and the stack name."""
    rows = [("python", platform.python_version())]
    rows += [(name, ver or "not installed") for name, ver in installed().items()]
    rows.append(("stack", stack_name()))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {ver}" for name, ver in rows)


# --- the workshop switch ----------------------------------------------------------------------

#: What the workshop switch installs from a stack's pins: the libraries the failures depend on and the
#: ones they pin in turn. Never torch (the runtime's own build stays), nothing else of the runtime's.
SWITCH_LIBRARIES = ("transformers", "peft", "accelerate", "tokenizers", "huggingface-hub", "safetensors")
RESTART = (
    "Now restart the runtime (Colab: Runtime > Restart session; Jupyter: Kernel > Restart kernel), then "
    "run this notebook from the top: its versions cell names the stack."
)


def switch_requirements(stack: str = "documented") -> list[str]:
    """``["<library>==<release>", ...]``: the pins of :data:`SWITCH_LIBRARIES` in ``stack``'s pin file."""
    pins = stack_pins(stack)
    missing = [lib for lib in SWITCH_LIBRARIES if lib not in pins]
    if missing:
        raise KeyError(f"peftlab/stacks/{stack}.txt pins no {', '.join(missing)}")
    return [f"{lib}=={pins[lib]}" for lib in SWITCH_LIBRARIES]


def switch_command(
    stack: str = "documented", python: str = sys.executable, keep: Path | None = None
) -> list[str]:
    """pip's command line for the switch; ``keep``: a constraints file that holds torch where it is."""
    return [python, "-m", "pip", "install", *switch_requirements(stack)] + (["-c", str(keep)] if keep else [])


def switch_to(
    stack: str = "documented",
    python: str = sys.executable,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> dict[str, tuple[str | None, str | None]]:
    """The workshop switch: install ``stack``'s library pins into this Python, keeping its torch.

    One cell on Colab or any Jupyter (after the cell that installs peftlab)::

        import peftlab
        peftlab.versions.switch_to("documented")  # then restart the runtime, as it says

    Prints pip's summary, each library's version before and after, and that the runtime must restart
    (the libraries already imported stay in memory until then). Returns ``{library: (before, after)}``
    for the ones that changed; raises RuntimeError when pip fails or torch would change.
    """
    watched = ("torch", *SWITCH_LIBRARIES)
    before = installed(watched)
    with tempfile.TemporaryDirectory(prefix="peftlab-switch-") as folder:
        keep = Path(folder, "keep-torch.txt")  # pip may not touch torch: a pin needing another one fails
        keep.write_text(f"torch=={before['torch']}\n" if before["torch"] else "", encoding="utf-8")
        command = switch_command(stack, python, keep)
        print(f"Installing the {stack} stack's libraries, keeping torch {before['torch']}:", *command[4:-2])
        done = run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-12:])
        raise RuntimeError(f"pip failed ({done.returncode}); nothing to restart for:\n{tail}")
    print(
        *[line for line in done.stdout.splitlines() if line.startswith("Successfully")]
        or ["pip: nothing to change"]
    )
    after = installed(watched)
    if after["torch"] != before["torch"]:
        raise RuntimeError(
            f"torch changed from {before['torch']} to {after['torch']}: the switch must keep it"
        )
    changed = {lib: (before[lib], after[lib]) for lib in watched if before[lib] != after[lib]}
    for lib in watched:
        print(f"  {lib:<16} {before[lib] or 'absent':>12} -> {after[lib] or 'absent'}")
    print(RESTART if changed else f"Already on the {stack} stack's libraries: nothing to restart.")
    return changed
