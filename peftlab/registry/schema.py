"""The registry's record types: a release that changes a failure, what happens on a range of
versions, a failure, and a notebook's lesson.

The records themselves live beside this module: :mod:`peftlab.registry.changes` (the release
boundaries) and one module per notebook, ``nbNN_<notebook>.py``; :mod:`peftlab.registry` collects them.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from peftlab.detectors import DETECTORS
from peftlab.versions import Versions, describe, installed


class UnexpectedOutcome(AssertionError):
    """What happened differs from what the registry records for the installed versions."""


@dataclass(frozen=True)
class Change:
    """A library release that changes how a failure looks: one behaviour before it, another from it."""

    library: str
    release: str  # the first release with the new behaviour
    what: str  # what changed, in a sentence
    measured: tuple[str, ...] = ()  # releases of ``library`` the failing code was run on
    bisected: bool = False  # True when the last measured release without it is the one just before

    @property
    def since(self) -> str:
        """The specifier of the releases that have the change: ``>=0.16.0``."""
        return f">={self.release}"

    @property
    def before(self) -> str:
        """The specifier of the releases that lack it: ``<0.16.0``."""
        return f"<{self.release}"

    def holds(self, version: str | Version | None = None) -> bool:
        """True when ``version`` (the installed one by default) has the change."""
        version = version if version is not None else installed((self.library,))[self.library] or "0"
        return Version(str(version)) >= Version(self.release)

    def bracket(self) -> tuple[str | None, str | None]:
        """The measured releases either side of the boundary: (last before, first from), None if unmeasured."""
        runs = sorted(Version(v) for v in self.measured)
        before = [v for v in runs if v < Version(self.release)]
        after = [v for v in runs if v >= Version(self.release)]
        return (str(before[-1]) if before else None, str(after[0]) if after else None)

    def phrase(self) -> str:
        """Where the change lies, as far as runs show it, for prose and tables ("... from <phrase>").

        ``peft 0.16.0 (bisected: 0.15.2 has not)`` where the release just before was run too;
        otherwise only what runs show, ``transformers 5.13.1 or earlier (5.0.0 has not)``: a release
        that no run brackets is not a claim to make.
        """
        last, first = self.bracket()
        if self.bisected and last:
            return f"{self.library} {self.release} (bisected: {last} has not)"
        return f"{self.library} {first or self.release} or earlier ({last or 'no earlier release measured'} has not)"


@dataclass(frozen=True)
class Expectation:
    """What happens on the versions that satisfy every specifier in ``when``."""

    when: dict[str, str]
    raises: str | None  # exception class name, or None for "no error on these versions"
    match: str = ""  # regular expression searched in the message
    reason: str = ""  # why it happens (or, for ``raises=None``, why it no longer does)
    #: Where this was run: stack names (``stacks_where(...)`` picks them by their pins; each must be
    #: recorded in docs/matrix/, see tests/test_registry_static.py) and single releases (``peft 0.16.0``).
    measured: tuple[str, ...] = ()

    def applies(self, versions: Versions) -> bool:
        """True when the installed ``versions`` satisfy every specifier of ``when``."""
        return all(
            versions.get(lib) is not None and SpecifierSet(spec).contains(versions[lib], prereleases=True)
            for lib, spec in self.when.items()
        )

    @property
    def detector(self) -> str:
        """The peftlab check that raises ``raises`` for a silent failure, or '' for a library error."""
        detector = DETECTORS.get(self.raises or "")
        return detector.reveals if detector else ""

    def describe(self) -> str:
        """A short phrase: the error expected, or "no error"."""
        if not self.raises:
            return "no error"
        return f"{self.raises}: /{self.match}/" + (" (peftlab's detector)" if self.detector else "")

    def versions_phrase(self) -> str:
        """``peft >=0.16.0`` or ``every version``: the range, for tables."""
        return ", ".join(f"{lib} {spec}" for lib, spec in self.when.items()) or "every version"


@dataclass(frozen=True)
class Failure:
    """A documented failure: where it is taught and what happens on each range of versions.

    A failure taught in no notebook (``notebook == ""``) is one the doctor predicts: ``finding`` names
    the doctor's finding code for it, and :mod:`peftlab.registry.doctor` holds it.
    """

    id: str
    notebook: str  # file name without suffix; "" for a failure that only the doctor predicts
    title: str
    expectations: tuple[Expectation, ...]
    finding: str = ""  # the doctor's finding code that predicts it ("inputs.required_in_training")

    def expected(self, versions: Versions | None = None) -> Expectation:
        """The expectation for ``versions`` (the installed ones by default)."""
        versions = versions or installed()
        for expectation in self.expectations:
            if expectation.applies(versions):
                return expectation
        raise UnexpectedOutcome(
            f"No expectation is recorded for failure {self.id!r} on the {describe(versions)}. "
            f"Record what happens there in {self.source()} (see README, 'Recording a new observation')."
        )

    def source(self) -> str:
        """The registry file that records this failure: ``peftlab/registry/nb01_clip_task_type.py``
        (``peftlab/registry/doctor.py`` for one that no notebook teaches)."""
        return f"peftlab/registry/nb{self.notebook}.py" if self.notebook else "peftlab/registry/doctor.py"

    def reproduces_on(self) -> str:
        """Where it raises: each version range with its exception, or a note when it never does."""
        ranges = [f"{e.versions_phrase()}: {e.raises}" for e in self.expectations if e.raises]
        return "; ".join(ranges) or "no version recorded (documented as no error)"


@dataclass(frozen=True)
class Lesson:
    """A notebook and the fix it proves (for the README and the docs index).

    Its title is the notebook's own first heading (``# 01 · ...``), which the tools read from the
    notebook: it is written there only.
    """

    notebook: str  # file name without suffix
    fix: str  # Markdown (for a primer: what it shows)
    #: A primer shows no failure: it teaches what the failures build on. Its scorecard holds checks
    #: only, and it is named from this registry (the one lesson that is a primer), never typed.
    primer: bool = False
