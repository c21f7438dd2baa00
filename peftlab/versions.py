"""Which library versions are installed, and which of the collection's stacks they form.

Every notebook prints :func:`versions_table` in its first cells, and the failure registry
(:mod:`peftlab.failures`) decides what to expect from :func:`installed`.
"""

from __future__ import annotations

import platform
from importlib import metadata

from packaging.version import Version

#: The libraries whose versions decide how the five failures look.
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes")

#: The two pinned stacks (the full pins are in ``stacks/<name>.txt``; a test keeps them in step).
STACKS: dict[str, dict[str, str]] = {
    "documented": {"transformers": "4.51.3", "peft": "0.15.2", "accelerate": "1.6.0"},
    "current": {"transformers": "5.23.0", "peft": "0.21.2", "accelerate": "1.15.0"},
}


def installed(libraries: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    """Return ``{library: version}``; ``None`` for a library that is not installed."""
    found: dict[str, str | None] = {}
    for name in libraries:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def version_of(library: str) -> Version:
    """The installed version of ``library`` as a comparable :class:`Version` (0 if absent)."""
    return Version(installed((library,))[library] or "0")


def stack_name(versions: dict[str, str | None] | None = None) -> str:
    """Name the stack the installed versions form: ``documented``, ``current`` or ``other``."""
    versions = versions or installed()
    for name, pins in STACKS.items():
        if all(versions.get(lib) == ver for lib, ver in pins.items()):
            return name
    return "other"


def describe(versions: dict[str, str | None] | None = None) -> str:
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
