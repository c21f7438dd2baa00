"""The failure registry, and ``expect_failure``: show an expected error without stopping "Run all".

One place knows, for each documented failure and each range of library versions, what must happen:
an exception of a given type whose message matches a pattern, or no error at all (with the reason).
A notebook runs the failing code inside ``with expect_failure("id"):``. The block

* shows the real error as a learner would see it (a message that embeds a whole module repr is
  trimmed), then lets the notebook go on, like debuggingbook's ``ExpectError``;
* raises :class:`UnexpectedOutcome` (an ``AssertionError`` naming the installed versions) when what
  happened differs from what the registry records, including the case where nothing failed.
"""

from __future__ import annotations

import html
import re
import traceback
from dataclasses import dataclass, field
from types import TracebackType

from packaging.specifiers import SpecifierSet

from peftlab.versions import describe, installed


@dataclass(frozen=True)
class Expectation:
    """What happens on the versions that satisfy every specifier in ``when``."""

    when: dict[str, str]
    raises: str | None  # exception class name, or None for "no error on these versions"
    match: str = ""  # regular expression searched in the message
    reason: str = ""  # why it happens (or, for ``raises=None``, why it no longer does)

    def applies(self, versions: dict[str, str | None]) -> bool:
        """True when the installed ``versions`` satisfy every specifier of ``when``."""
        return all(
            versions.get(lib) is not None and SpecifierSet(spec).contains(versions[lib], prereleases=True)
            for lib, spec in self.when.items()
        )

    def describe(self) -> str:
        """A short phrase: the error expected, or "no error"."""
        return f"{self.raises}: /{self.match}/" if self.raises else "no error"


@dataclass(frozen=True)
class Failure:
    """A documented failure: where it is taught and what happens on each range of versions."""

    id: str
    notebook: str
    title: str
    expectations: tuple[Expectation, ...]
    seen: tuple[str, ...] = field(default=())  # stacks on which this was measured

    def expected(self, versions: dict[str, str | None] | None = None) -> Expectation:
        """The expectation for ``versions`` (the installed ones by default)."""
        versions = versions or installed()
        for expectation in self.expectations:
            if expectation.applies(versions):
                return expectation
        raise UnexpectedOutcome(
            f"No expectation is recorded for failure {self.id!r} on the {describe(versions)}. "
            "Record what happens there in peftlab/failures.py (see README, 'Recording a new observation')."
        )


class UnexpectedOutcome(AssertionError):
    """What happened differs from what the registry records for the installed versions."""


REGISTRY: dict[str, Failure] = {}


def register(failure: Failure) -> Failure:
    """Add ``failure`` to :data:`REGISTRY` (ids are unique)."""
    if failure.id in REGISTRY:
        raise ValueError(f"Failure id {failure.id!r} is registered twice.")
    REGISTRY[failure.id] = failure
    return failure


def get(failure_id: str) -> Failure:
    """Look up a failure by id, with a helpful error for an unknown one."""
    try:
        return REGISTRY[failure_id]
    except KeyError:
        raise KeyError(f"Unknown failure {failure_id!r}; known: {sorted(REGISTRY)}") from None


# ---------------------------------------------------------------------------------------------
# The registry. Each entry cites what was measured (../shared/FINDINGS.md and the notebooks).
# ---------------------------------------------------------------------------------------------

register(Failure(
    id="clip_task_type",
    notebook="01_clip_task_type",
    title="CLIP + LoRA with task_type=FEATURE_EXTRACTION",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<5"},
            raises="TypeError",
            match=r"CLIPModel\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
            reason="PeftModelForFeatureExtraction.forward passes inputs_embeds=None to the base "
            "model, and CLIPModel.forward has no such parameter.",
        ),
        Expectation(
            when={"transformers": ">=5"},
            raises="TypeError",
            match=r"got multiple values for keyword argument 'inputs_embeds'",
            reason="CLIPModel.forward accepts **kwargs since transformers 5.0, so the stray "
            "inputs_embeds=None travels down to the text encoder, which already passes its own.",
        ),
    ),
))  # fmt: skip

# --- notebook 02 (BLIP-2) entries go here ---

# --- notebook 03 (second LoRA stage) entries go here ---

# --- notebook 04 (ViT position embeddings) entries go here ---

# --- notebook 05 (Chinese-CLIP) entries go here ---


# ---------------------------------------------------------------------------------------------
# Showing an error, trimmed, and checking it against the registry.
# ---------------------------------------------------------------------------------------------

_MODULE_REPR = re.compile(r"\b([A-Z]\w*)\(\n")


def trim_message(message: str, max_lines: int = 12) -> str:
    """Collapse embedded multi-line module reprs to ``Name(...)`` and cap the number of lines."""
    out, pos = [], 0
    for found in _MODULE_REPR.finditer(message):
        if found.start() < pos:
            continue  # inside a repr already collapsed
        depth, end = 0, len(message)
        for i in range(found.end() - 2, len(message)):
            depth += {"(": 1, ")": -1}.get(message[i], 0)
            if depth == 0:
                end = i + 1
                break
        out.append(message[pos : found.start()] + f"{found.group(1)}(...)")
        pos = end
    text = "".join(out) + message[pos:]
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def format_error(error: BaseException, frames: int = 3) -> str:
    """The error as a learner would see it: the last few frames and the (trimmed) message."""
    stack = traceback.extract_tb(error.__traceback__)
    shown = stack[-frames:]
    lines = [f"Traceback (most recent call last; {len(stack) - len(shown)} earlier frames hidden):"]
    lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in shown]
    lines.append(f"{type(error).__name__}: {trim_message(str(error))}")
    return "\n".join(lines)


@dataclass
class ErrorBox:
    """An error (or a documented non-error) rendered as a box in Jupyter and as text elsewhere."""

    title: str
    body: str
    expected: bool = True

    def __str__(self) -> str:
        return f"{self.title}\n{self.body}"

    __repr__ = __str__  # what a terminal or a text-only notebook viewer shows

    def _repr_html_(self) -> str:
        colour = "#b22222" if self.expected else "#e67e00"
        return (
            f'<div style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0;'
            f'background:rgba(178,34,34,0.07)"><b>{html.escape(self.title)}</b>'
            f'<pre style="white-space:pre-wrap;margin:4px 0 0 0">{html.escape(self.body)}</pre></div>'
        )


def _show(box: ErrorBox) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(box)
            return
    except ImportError:
        pass
    print(box)


def _type_matches(error: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(error).__mro__)


class expect_failure:  # noqa: N801  (used as a lower-case context manager, like contextlib's)
    """Run a block that should fail as the registry records for the installed versions.

    >>> with expect_failure("clip_task_type") as seen:   # doctest: +SKIP
    ...     peft_model(**batch)
    >>> seen.error   # the exception, for the cells that explain it   # doctest: +SKIP
    """

    def __init__(self, failure_id: str, versions: dict[str, str | None] | None = None) -> None:
        self.failure = get(failure_id)
        self.versions = versions or installed()
        self.expectation = self.failure.expected(self.versions)
        self.error: BaseException | None = None

    def __enter__(self) -> expect_failure:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> bool:
        from peftlab import report

        exp, where = self.expectation, describe(self.versions)
        if error is None:
            if exp.raises is not None:
                raise UnexpectedOutcome(
                    f"{self.failure.id}: expected {exp.describe()} on the {where}, "
                    "but the code ran without any error. The failure did not reproduce."
                )
            _show(ErrorBox(f"No error on these versions, as recorded for {self.failure.id}", exp.reason))
            report.record_failure(self.failure.id, reproduced=False, outcome="no error (as recorded)")
            return False
        if not isinstance(error, Exception):
            return False  # KeyboardInterrupt and friends are never expected
        self.error = error
        shown = format_error(error)
        if exp.raises is None or not _type_matches(error, exp.raises):
            _show(ErrorBox("Unexpected error", shown, expected=False))
            raise UnexpectedOutcome(
                f"{self.failure.id}: expected {exp.describe()} on the {where}, "
                f"but got {type(error).__name__}: {trim_message(str(error), 3)}"
            ) from error
        if not re.search(exp.match, str(error)):
            _show(ErrorBox("Error with an unexpected message", shown, expected=False))
            raise UnexpectedOutcome(
                f"{self.failure.id}: a {exp.raises} was raised on the {where}, but its message does "
                f"not match /{exp.match}/: {trim_message(str(error), 3)}"
            ) from error
        _show(ErrorBox(f"Expected failure reproduced: {self.failure.title}", shown))
        report.record_failure(self.failure.id, reproduced=True, outcome=type(error).__name__)
        return True
