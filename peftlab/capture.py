"""``expect_failure``: show an expected error without stopping "Run all", and check it against the registry.

A notebook runs the failing code inside ``with expect_failure("id"):``. The block

* shows the real error as a learner would see it (a message that embeds a whole module repr is
  trimmed, and the box says what was trimmed), then lets the notebook go on, like debuggingbook's
  ``ExpectError``;
* raises :class:`~peftlab.registry.UnexpectedOutcome` (an ``AssertionError`` naming the installed
  versions) when what happened differs from what :mod:`peftlab.registry` records, including the case
  where nothing failed.

Each outcome has its own kind of box (:data:`BOX_KINDS`): a library's error; an error peftlab's own
detector raised (:mod:`peftlab.detectors`), whose box says first that the libraries stay silent and
what loss it makes visible; a documented non-error; an unexpected outcome. For a failure with a
recording (:mod:`peftlab.recordings`) the block also shows, where the installed versions do not raise
it as the documented stack does, that stack's real traceback beside what happened here (and the
releases that changed it); on the documented stack itself it compares this run with the recording
and raises ``UnexpectedOutcome`` on any difference. ``seen.keep(name, data)`` attaches a figure's
numbers to the recording, ``seen.recorded(name)`` reads them back.

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
from typing import Any

from packaging.version import Version

from peftlab import recordings
from peftlab.detectors import DETECTORS, DetectorError
from peftlab.parameters import ParameterError
from peftlab.registry import CHANGES, Expectation, Failure, UnexpectedOutcome, get
from peftlab.versions import STACK_LIBRARIES, Versions, describe, installed, newest_measured, pinned_versions

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


def format_frames(
    frames: list[tuple[str, int | None, str]], type_name: str, message: str, full: str = "seen.full()"
) -> str:
    """A traceback as a learner reads it: the last three ``(file, line, function)`` frames and the
    (trimmed) message, then a line saying exactly what was trimmed and what prints it all (``full``)."""
    shown = frames[-3:]
    trimmed = trim_message(message)
    lines = [f"Traceback (most recent call last; {len(frames) - len(shown)} earlier frames hidden):"]
    lines += [
        f'  File "{file}"' + (f", line {line}" if line is not None else "") + f", in {name}"
        for file, line, name in shown
    ]
    lines.append(f"{type_name}: {trimmed}")
    folded = sum(1 for _ in _MODULE_REPR.finditer(message)) if trimmed != message else 0
    cut = [f"{len(frames) - len(shown)} earlier frames"] if len(frames) > len(shown) else []
    cut += [f"module reprs in the message folded to Name(...) ({folded} found)"] if folded else []
    cut += ["message lines past 12"] if "more lines)" in trimmed.splitlines()[-1] else []
    if cut:
        lines.append(f"[trimmed for reading: {'; '.join(cut)}. The whole traceback: {full}]")
    return "\n".join(lines)


def format_error(error: BaseException) -> str:
    """The error as a learner would see it: the last few frames and the (trimmed) message, then a
    line saying exactly what was trimmed (``seen.full()`` prints the whole traceback)."""
    frames = [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(error.__traceback__)]
    return format_frames(frames, type(error).__name__, str(error))


def format_recording(recording: recordings.Recording) -> str:
    """A recording as the learner on the documented stack saw it (``seen.recording.full()``: all of it)."""
    frames = [(f.file, f.line, f.name) for f in recording.frames]
    return format_frames(frames, recording.raised, recording.message, "seen.recording.full()")


#: Each kind of box: (border colour, background, CSS classes). Every box has the class ``peftlab-box``;
#: ``expected`` marks an outcome the registry records, ``unexpected`` one it does not.
BOX_KINDS: dict[str, tuple[str, str, str]] = {
    "library": ("#b22222", "rgba(178,34,34,0.07)", "peftlab-error-box expected library"),
    "detector": ("#5b3fa0", "rgba(91,63,160,0.08)", "peftlab-detector-box expected detector"),
    "recording": ("#3c6e8f", "rgba(60,110,143,0.08)", "peftlab-recording-box expected recording"),
    "no-error": ("#6b7b6b", "rgba(107,123,107,0.08)", "peftlab-error-box expected no-error"),
    "unexpected": ("#e67e00", "rgba(230,126,0,0.08)", "peftlab-error-box unexpected"),
}


@dataclass
class ErrorBox:
    """An error (or a documented non-error, or a recording) rendered as a box in Jupyter and as text elsewhere.

    ``kind`` is a key of :data:`BOX_KINDS`: a library's error, peftlab's detector, the documented stack's
    recording, a documented non-error, or an outcome the registry does not record.
    """

    title: str
    body: str
    kind: str = "library"

    @property
    def expected(self) -> bool:
        """True for every outcome the registry records."""
        return self.kind != "unexpected"

    def __str__(self) -> str:
        return f"{self.title}\n{self.body}"

    __repr__ = __str__  # what a terminal or a text-only notebook viewer shows

    def _repr_html_(self) -> str:
        colour, background, classes = BOX_KINDS[self.kind]
        return (
            f'<div class="peftlab-box {classes}" style="border-left:6px solid {colour};padding:6px 10px;'
            f'margin:4px 0;background:{background};flex:1 1 380px;min-width:0"><b>{html.escape(self.title)}</b>'
            f'<pre style="white-space:pre-wrap;word-break:normal;overflow-wrap:anywhere;margin:4px 0 0 0">'
            f"{html.escape(self.body)}</pre></div>"
        )


@dataclass
class Boxes:
    """Boxes side by side in Jupyter (what happened here, beside the documented stack's recording)."""

    boxes: list[ErrorBox]

    def __str__(self) -> str:
        return "\n\n".join(map(str, self.boxes))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        inner = "".join(box._repr_html_() for box in self.boxes)
        return f'<div class="peftlab-boxes" style="display:flex;flex-wrap:wrap;gap:8px">{inner}</div>'


def detector_box(failure: Failure, error: BaseException, shown: str) -> ErrorBox:
    """The box of an error peftlab's detector raised: it says first that the libraries stay silent."""
    reveals = getattr(type(error), "reveals", "") or "a silent failure"
    lead = (
        f"peftlab raised this {type(error).__name__}, not PEFT or transformers, because the libraries stay "
        "silent here.\n"
        f"It makes visible: {reveals}."
    )
    return ErrorBox(
        f"peftlab's detector caught a silent failure: {failure.title}", f"{lead}\n\n{shown}", "detector"
    )


def _show(box: ErrorBox | Boxes) -> None:
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
        #: The documented stack's recording of this block (None for a failure that is not recorded).
        self.recording = recordings.load(failure_id) if failure_id in recordings.RECORDED else None
        self._live: recordings.Recording | None = None  # this run's recording, on the documented stack

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
                _show(ErrorBox(self._changed_title(), self._changed_body(changed, error), "unexpected"))
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
            _show(ErrorBox(title, str(drift), "unexpected"))
            outcome = f"drift: {type(error).__name__ if error else 'no error'}"
            scorecard.record_failure(self.failure.id, reproduced=error is not None, outcome=outcome)
            self.error = error
            return True  # swallow the error, if any

    def full(self) -> str:
        """The whole traceback of the error this block caught, exactly as Python formats it ('' if none)."""
        if self.error is None:
            return ""
        return "".join(traceback.format_exception(type(self.error), self.error, self.error.__traceback__))

    @property
    def recording_shown(self) -> bool:
        """True when the installed versions do not do what the documented stack does, so its recording is shown."""
        documented = self.failure.expected(pinned_versions(recordings.STACK))
        return (
            self.recording is not None
            and not recordings.on_recording_stack(self.versions)
            and (self.missing is not None or self.expectation != documented)
        )

    def keep(self, name: str, data: Any, seed: int | None = None) -> None:
        """Attach ``data`` (JSON-able: a figure's numbers) to this failure's recording.

        ``peftlab record`` stores it; on the documented stack every run compares it with the stored
        value (numbers to a relative ``recordings.REL_TOL``, a zero exactly) and raises UnexpectedOutcome
        on a difference; elsewhere it does nothing. Figures that training draws from ``seed`` (the
        notebook's ``SEED``) are stored with it and the pre-training seed; a run with other seeds
        compares only which of the numbers are zero (or missing), not their values. Read the stored
        value with :meth:`recorded`. Returns nothing, so that a notebook cell ending with it prints nothing.
        """
        if self.failure.id not in recordings.RECORDED:
            raise KeyError(f"{self.failure.id} has no recording (peftlab.recordings.RECORDED)")
        if not recordings.on_recording_stack(self.versions):
            return
        if self._live is None:
            raise UnexpectedOutcome(f"{self.failure.id}: call keep() after its expect_failure block has run")
        value = recordings.jsonable(data)
        self._live.data[name] = value
        made_with = f"{name}, made with"
        if seed is not None:
            from peftlab.models.cache import pretrain_seed

            self._live.data[made_with] = {"SEED": seed, "PEFTLAB_PRETRAIN_SEED": pretrain_seed()}
        folder = recordings.record_folder()
        if folder is not None:
            recordings.save(self._live, folder)
            return
        stored = self.recording.data if self.recording is not None else {}
        if name not in stored:
            problems = [f"{name!r} is not in the stored recording"]
        elif stored.get(made_with) == self._live.data.get(made_with):
            problems = recordings.data_differences(stored[name], value)
        else:  # other seeds: which figures are zero, not their values
            problems = recordings.data_differences(recordings.zeros(stored[name]), recordings.zeros(value))
        if problems:
            self._differs(problems, f"{name!r}, kept on the documented stack,")

    def recorded(self, name: str) -> Any:
        """What the documented stack's run handed to :meth:`keep` as ``name`` (stored in the recording)."""
        if self.recording is None or name not in self.recording.data:
            raise KeyError(
                f"No {name!r} is recorded for {self.failure.id}: run `peftlab record` on the documented stack"
            )
        return self.recording.data[name]

    def _show_with_recording(self, box: ErrorBox, error: BaseException | None) -> None:
        """Show ``box``; beside it the documented stack's recording where these versions differ from it.

        On the documented stack, check this run against the recording instead (or, in record mode, write it).
        """
        if self.failure.id not in recordings.RECORDED:
            _show(box)
            return
        if recordings.on_recording_stack(self.versions):
            _show(box)
            self._check_recording(error)
            return
        if recordings.record_folder() is not None:
            raise UnexpectedOutcome(
                f"${recordings.RECORD_ENV} is set, but recordings are made on the {recordings.STACK} stack only; "
                f"this is the {describe(self.versions)}"
            )
        _show(Boxes([box, self._recording_box()]) if self.recording_shown else box)

    def _check_recording(self, error: BaseException | None) -> None:
        """On the documented stack: write this run's recording (record mode) or compare it with the stored one."""
        if error is None:
            raise UnexpectedOutcome(
                f"{self.failure.id}: recorded, but nothing was raised on the documented stack"
            )
        self._live = recordings.Recording.of(self.failure.id, self.failure.notebook, error, self.versions)
        folder = recordings.record_folder()
        if folder is not None:
            recordings.save(self._live, folder)
            return
        if self.recording is None:
            self._differs([f"no recording is stored ({recordings.path(self.failure.id)})"], "the recording")
            return
        problems = recordings.differences(self.recording, self._live)
        if problems:
            self._differs(problems, "the traceback")

    def _differs(self, problems: list[str], what: str) -> None:
        """Show and raise (in observe mode: show) a difference between this run and the stored recording."""
        file = recordings.path(self.failure.id)
        file = file.relative_to(file.parents[2]) if len(file.parents) > 2 else file
        text = (
            f"{self.failure.id}: {what} on the {describe(self.versions)} differs from the stored recording "
            f"{file}:\n"
            + "\n".join(problems[:60])
            + f"\nIf this run is right, re-record it: `peftlab record --only "
            f"{self.failure.notebook[:2]}` on the {recordings.STACK} stack, then commit {file}."
        )
        _show(ErrorBox("This run differs from the documented stack's recording", text, "unexpected"))
        if not self.observe:
            raise UnexpectedOutcome(text)

    def _recording_box(self) -> ErrorBox:
        """The documented stack's recording, with what these versions do instead and the releases that changed it."""
        rec = self.recording
        changed = [
            CHANGES[key]
            for key in recordings.RECORDED[self.failure.id].changes
            if CHANGES[key].holds(self.versions.get(CHANGES[key].library) or "0")
        ]
        since = "; ".join(f"{c.what}, from {c.phrase()}" for c in changed)
        here = self.expectation.raises or "no error"
        lead = [f"Your versions: {here}" + (f" ({since})." if since else ".")]
        if rec.raised in DETECTORS:
            lead.append(
                f"On the documented stack peftlab's detector raises {rec.raised} (the libraries stay silent; "
                f"it makes visible: {DETECTORS[rec.raised].reveals}):"
            )
        else:
            lead.append(
                f"On the documented stack this block raises {rec.raised}, as a learner there sees it:"
            )
        title = f"Recorded on the documented stack ({rec.label()}), re-checked on every CI run"
        return ErrorBox(title, "\n".join(lead) + "\n\n" + format_recording(rec), "recording")

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
            box = ErrorBox(
                f"No error on these versions, as recorded for {self.failure.id}", exp.reason, "no-error"
            )
            self._show_with_recording(box, None)
            scorecard.record_failure(self.failure.id, reproduced=False, outcome="no error (as recorded)")
            return False
        if not isinstance(error, Exception):
            return False  # KeyboardInterrupt and friends are never expected
        self.error = error
        shown = format_error(error)
        if exp.raises is None or not _type_matches(error, exp.raises):
            _show(ErrorBox("Unexpected error", shown, "unexpected"))
            raise UnexpectedOutcome(
                f"{self.failure.id}: expected {exp.describe()} on the {where}, "
                f"but got {type(error).__name__}: {trim_message(str(error), 3)}"
            ) from error
        if not re.search(exp.match, str(error)):
            _show(ErrorBox("Error with an unexpected message", shown, "unexpected"))
            raise UnexpectedOutcome(
                f"{self.failure.id}: a {exp.raises} was raised on the {where}, but its message does "
                f"not match /{exp.match}/: {trim_message(str(error), 3)}"
            ) from error
        if isinstance(error, DetectorError):
            box = detector_box(self.failure, error, shown)
        else:
            box = ErrorBox(f"Expected failure reproduced: {self.failure.title}", shown)
        self._show_with_recording(box, error)
        scorecard.record_failure(self.failure.id, reproduced=True, outcome=type(error).__name__)
        return True
