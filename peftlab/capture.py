"""``expect_failure``: show an expected error without stopping "Run all", and check it against the registry.

A notebook runs the failing code inside ``with expect_failure("id"):``. The block

* shows the real error as a learner would see it (a message that embeds a whole module repr is
  trimmed, and the box says what was trimmed), then lets the notebook go on, like debuggingbook's
  ``ExpectError``;
* raises :class:`~peftlab.registry.UnexpectedOutcome` (an ``AssertionError`` naming the installed
  versions) when what happened differs from what :mod:`peftlab.registry` records, including the case
  where nothing failed.

Observe mode (used by ``peftlab drift`` and ``peftlab matrix``): with ``$PEFTLAB_OBSERVE`` set to a
file, every block appends what happened to it (one JSON line) and a difference from the registry is
shown but not raised, so the notebook goes on.
"""

from __future__ import annotations

import html
import json
import os
import re
import traceback
from dataclasses import dataclass
from types import TracebackType

from packaging.version import Version

from peftlab.parameters import ParameterError
from peftlab.registry import Expectation, Failure, UnexpectedOutcome, get
from peftlab.versions import STACK_LIBRARIES, Versions, describe, installed, newest_measured

_MODULE_REPR = re.compile(r"\b([A-Z]\w*)\(\n")

#: Set to a file path, this environment variable switches ``expect_failure`` to observe mode.
OBSERVE_ENV = "PEFTLAB_OBSERVE"
#: Set (to anything but "" or "0"), this one keeps every difference an error, even on unmeasured versions.
STRICT_ENV = "PEFTLAB_STRICT"


def unmeasured(versions: Versions) -> list[str]:
    """The stack libraries whose installed release is newer than every pinned stack's (never measured)."""
    newer = []
    for lib in STACK_LIBRARIES:
        if versions.get(lib) and Version(versions[lib]).release > newest_measured(lib).release:
            newer.append(f"{lib} {versions[lib]} (newest measured: {newest_measured(lib)})")
    return newer


def lenient(versions: Versions) -> bool:
    """True for a learner past every measured release (Colab tomorrow): a difference is shown, not raised.

    In CI (``$CI``) or with ``$PEFTLAB_STRICT`` set, and on every measured release, it stays an error.
    """
    strict = any(os.environ.get(name, "") not in ("", "0", "false") for name in ("CI", STRICT_ENV))
    return not strict and bool(unmeasured(versions))


def record_observation(
    path: str | os.PathLike,
    failure: Failure,
    versions: Versions,
    expectation: Expectation | None,
    error: BaseException | None,
) -> dict:
    """Append what one ``expect_failure`` block saw to the JSON-lines file ``path``; return the record."""
    record = {
        "id": failure.id,
        "notebook": failure.notebook,
        "versions": versions,
        "raised": type(error).__name__ if error is not None else None,
        "types": [cls.__name__ for cls in type(error).__mro__] if error is not None else [],
        "message": str(error)[:20_000] if error is not None else "",
        "expected": expectation.describe() if expectation is not None else None,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    return record


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
    """The error as a learner would see it: the last few frames and the (trimmed) message, then a
    line saying exactly what was trimmed (``seen.full()`` prints the whole traceback)."""
    stack = traceback.extract_tb(error.__traceback__)
    shown = stack[-frames:]
    message = str(error)
    trimmed = trim_message(message)
    lines = [f"Traceback (most recent call last; {len(stack) - len(shown)} earlier frames hidden):"]
    lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in shown]
    lines.append(f"{type(error).__name__}: {trimmed}")
    folded = sum(1 for _ in _MODULE_REPR.finditer(message)) if trimmed != message else 0
    cut = [f"{len(stack) - len(shown)} earlier frames"] if len(stack) > len(shown) else []
    cut += [f"module reprs in the message folded to Name(...) ({folded} found)"] if folded else []
    cut += ["message lines past 12"] if "more lines)" in trimmed.splitlines()[-1] else []
    if cut:
        lines.append(f"[trimmed for reading: {'; '.join(cut)}. The whole traceback: seen.full()]")
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
        colour, kind = ("#b22222", "expected") if self.expected else ("#e67e00", "unexpected")
        return (
            f'<div class="peftlab-error-box {kind}" style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0;'
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

    def __init__(self, failure_id: str, versions: Versions | None = None) -> None:
        self.failure = get(failure_id)
        self.versions = versions or installed()
        self.observe = os.environ.get(OBSERVE_ENV, "")  # observe mode: record, show, never raise
        self.missing: UnexpectedOutcome | None = None  # set when nothing is recorded for these versions
        try:
            self.expectation = self.failure.expected(self.versions)
        except UnexpectedOutcome as missing:
            if not (self.observe or lenient(self.versions)):
                raise
            self.missing, self.expectation = (
                missing,
                Expectation({}, None, reason=f"(observe mode) {missing}"),
            )
        self.error: BaseException | None = None

    def __enter__(self) -> expect_failure:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> bool:
        from peftlab import scorecard

        if isinstance(error, ParameterError):  # a bad parameter is the learner's to fix, not this failure
            return False
        if error is not None and not isinstance(error, Exception):
            return self._judge(error)
        if not self.observe:
            if not lenient(self.versions):
                return self._judge(error)
            try:
                return self._judge(error)
            except UnexpectedOutcome as changed:
                _show(ErrorBox(self._changed_title(), self._changed_body(changed, error), expected=False))
                outcome = f"changed after verification: {type(error).__name__ if error else 'no error'}"
                scorecard.record_failure(self.failure.id, reproduced=error is not None, outcome=outcome)
                self.error = error
                return True  # the learner goes on to the fix

        expected = self.expectation if self.missing is None else None
        record_observation(self.observe, self.failure, self.versions, expected, error)
        try:
            return self._judge(error)
        except UnexpectedOutcome as drift:
            title = f"Observe mode (${OBSERVE_ENV}): recorded for `peftlab drift`; the notebook goes on"
            _show(ErrorBox(title, str(drift), expected=False))
            outcome = f"drift: {type(error).__name__ if error else 'no error'}"
            scorecard.record_failure(self.failure.id, reproduced=error is not None, outcome=outcome)
            self.error = error
            return True  # swallow the error, if any

    def full(self) -> str:
        """The whole traceback of the error this block caught, exactly as Python formats it ('' if none)."""
        if self.error is None:
            return ""
        return "".join(traceback.format_exception(type(self.error), self.error, self.error.__traceback__))

    def _changed_title(self) -> str:
        return "This changed after the notebook was last verified: the notebook goes on to the fix"

    def _changed_body(self, changed: UnexpectedOutcome, error: BaseException | None) -> str:
        recorded = "nothing recorded" if self.missing else self.expectation.describe()
        lines = [
            f"Your versions are newer than any this notebook was run on: {', '.join(unmeasured(self.versions))}.",
            f"Recorded for {self.failure.id}: {recorded}.",
            f"What happened here: {changed}",
        ]
        if error is not None:
            lines += ["", format_error(error)]
        lines += [
            "",
            "Please report it (with `peftlab versions`); CI and measured versions treat this as an error.",
        ]
        return "\n".join(lines)

    def _judge(self, error: BaseException | None) -> bool:
        """Show the outcome, record it in the scorecard; raise UnexpectedOutcome if the registry differs."""
        from peftlab import scorecard

        if self.missing is not None:
            raise self.missing  # "No expectation is recorded ..."
        exp, where = self.expectation, describe(self.versions)
        if error is None:
            if exp.raises is not None:
                raise UnexpectedOutcome(
                    f"{self.failure.id}: expected {exp.describe()} on the {where}, "
                    "but the code ran without any error. The failure did not reproduce."
                )
            _show(ErrorBox(f"No error on these versions, as recorded for {self.failure.id}", exp.reason))
            scorecard.record_failure(self.failure.id, reproduced=False, outcome="no error (as recorded)")
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
        scorecard.record_failure(self.failure.id, reproduced=True, outcome=type(error).__name__)
        return True
