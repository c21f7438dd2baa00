"""Recordings: what the documented stack really raises, stored as data and re-checked on every CI run.

Where the installed versions no longer raise a failure the way the documented stack does (the
report's versions), ``expect_failure`` shows, beside what happened here, a *recording*: the
traceback the same block raised on the documented stack, as a learner there sees it. A recording
is never typed. It is made, and checked, by running the notebook's own block:

* ``peftlab record`` (on the documented stack) runs the notebooks of :data:`RECORDED` with
  ``$PEFTLAB_RECORD`` naming a folder; each recorded block writes ``<failure id>.json`` there (plus
  what the notebook hands to ``seen.keep``), and the command copies the files here, as package data.
* On the documented stack (its pins, torch included: :func:`on_recording_stack`) every run compares
  the live error, and every ``seen.keep``, with the stored recording, and a difference raises
  :class:`~peftlab.registry.UnexpectedOutcome`. CI runs every notebook there, so a stale or edited
  recording fails CI.

What legitimately differs between machines is normalised, and nothing else: where the libraries are
installed (``.../site-packages/transformers/x.py`` -> ``transformers/x.py``, peftlab's own folder ->
``peftlab/...``, the standard library -> ``<python>/...``), the file and line of a notebook cell
(Jupyter names it after its process id), and memory addresses (``0x7f...`` -> ``0x...``).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import platform
import re
import sysconfig
import traceback
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from packaging.version import Version

from peftlab.versions import LIBRARIES, Versions, installed, stack_pins

#: Set to a folder, this environment variable makes every recorded block write its recording there.
RECORD_ENV = "PEFTLAB_RECORD"
#: The stack the recordings come from.
STACK = "documented"
#: Where the recordings live (package data: ``peftlab/recordings/<failure id>.json``).
FOLDER = Path(__file__).resolve().parent
#: Numbers a notebook keeps (gradient norms) may differ in their last bits between CPUs; a zero stays exact.
REL_TOL = 1e-3
#: What stands for a notebook cell's file (Jupyter names it after the kernel's process id).
CELL = "<notebook cell>"


@dataclass(frozen=True)
class Recorded:
    """A failure whose documented traceback is recorded, and the releases after which it looks otherwise."""

    changes: tuple[str, ...]  # keys of peftlab.registry.CHANGES
    point: str  # why the documented failure is the point of its section


#: The failures shown as a recording where the installed versions do not raise them as documented.
RECORDED: dict[str, Recorded] = {
    "blip2_causal_lm_inputs_embeds": Recorded(
        ("blip2_forward_kwargs", "blip2_inputs_embeds"),
        "notebook 02's title failure: the report's TypeError",
    ),
    "second_stage_dropout": Recorded(
        ("peft_skips_adapter_layers", "peft_no_matching_module_error"),
        "notebook 03's title failure: 'Target module Dropout ... is not supported'",
    ),
    "gc_enabled_after_peft_model": Recorded(
        ("gc_default_non_reentrant",),
        "notebook 06's title failure: 'element 0 of tensors does not require grad'",
    ),
    "gc_tower_without_gradient": Recorded(
        ("input_grads_every_tower", "gc_default_non_reentrant"),
        "notebook 06's silent variant: the vision tower that gets no gradient (with its figure)",
    ),
}

#: Failures that some Colab runtime of 2025-2026 (or the current stack) does not raise as the documented
#: stack does, and why they get no recording (tests/test_recordings.py keeps this list complete).
NOT_RECORDED: dict[str, str] = {
    "clip_task_type": "raised live on every runtime (a TypeError about inputs_embeds); from transformers 5 "
    "in other words, which notebook 01 explains",
    "blip2_vision2seq_import": "the documented stack raises nothing here: the ImportError is transformers 5's",
    "blip2_causal_lm_positional": "the section's point is what the wrapper still breaks where the call by "
    "keyword works; on the documented stack it is the title failure again (recorded above)",
    "second_stage_double_wrap": "the section's point is the silent double wrap of newer PEFT; on the "
    "documented stack it is the Dropout error again (recorded as second_stage_dropout)",
    "vit_query_value_targets": "the documented stack raises nothing here: the error comes with the release "
    "that renamed ViT's attention layers (registry change vit_attention_renamed)",
    "vit_target_parameters": "the section's point is target_parameters, which exists from the peft release "
    "of registry change peft_target_parameters: the documented stack's TypeError (an unknown keyword) "
    "teaches nothing more",
    "chinese_clip_wrong_config": "raised live on every runtime (a RuntimeError on the mismatched shapes); "
    "transformers 5 adds its LOAD REPORT, which notebook 05 shows",
}


@dataclass(frozen=True)
class Frame:
    """One frame of a traceback, normalised: ``file`` is ``transformers/x.py`` or :data:`CELL`."""

    file: str
    line: int | None  # None for a notebook cell
    name: str
    code: str = ""  # the source line, as Python prints it under the frame


@cache
def _roots() -> tuple[tuple[str, str], ...]:
    """(absolute folder, what it becomes) for peftlab's own folder and the standard library."""
    package = str(Path(__file__).resolve().parents[2]) + os.sep
    stdlib = str(Path(sysconfig.get_paths()["stdlib"]).resolve()) + os.sep
    return ((package, ""), (stdlib, "<python>/"))


_CELL_FILE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-|^<cell line)")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")


def normal_file(filename: str) -> str:
    """Where the file lies on any machine: ``transformers/x.py``, ``peftlab/y.py``, ``<python>/z.py``, CELL."""
    if _CELL_FILE.search(filename):
        return CELL
    for marker in ("site-packages", "dist-packages"):
        if f"{os.sep}{marker}{os.sep}" in filename:
            return filename.rsplit(f"{os.sep}{marker}{os.sep}", 1)[1]
    resolved = str(Path(filename).resolve()) if os.path.isabs(filename) else filename
    for root, becomes in _roots():
        if resolved.startswith(root):
            return becomes + resolved[len(root) :]
    return filename


def normal_text(text: str) -> str:
    """``text`` with memory addresses folded to ``0x...`` (they differ from run to run)."""
    return _ADDRESS.sub("0x...", text)


def frames_of(error: BaseException) -> list[Frame]:
    """The frames of ``error``'s traceback, normalised."""
    out = []
    for f in traceback.extract_tb(error.__traceback__):
        file = normal_file(f.filename)
        line = None if file == CELL else f.lineno
        out.append(Frame(file, line, f.name, normal_text((f.line or "").strip())))
    return out


def versions_now(versions: Versions | None = None) -> dict[str, str | None]:
    """The versions a recording states: :data:`~peftlab.versions.LIBRARIES` and Python."""
    return {**(versions or installed()), "python": platform.python_version()}


@dataclass
class Recording:
    """What one ``expect_failure`` block raised on the documented stack, normalised."""

    failure: str
    notebook: str
    versions: dict[str, str | None]
    raised: str  # the exception's class name
    message: str
    frames: list[Frame]
    data: dict[str, Any] = field(default_factory=dict)  # what the notebook handed to seen.keep

    @classmethod
    def of(cls, failure_id: str, notebook: str, error: BaseException, versions: Versions) -> Recording:
        """The recording of ``error``, raised by failure ``failure_id``'s block on ``versions``."""
        return cls(
            failure_id,
            notebook,
            versions_now(versions),
            type(error).__name__,
            normal_text(str(error)),
            frames_of(error),
        )

    def label(self) -> str:
        """The versions it was recorded on, in one line: each library and its release, then Python's."""
        order = ("transformers", "peft", "accelerate", "torch", "bitsandbytes")
        libs = ", ".join(f"{lib} {self.versions[lib]}" for lib in order if self.versions.get(lib))
        return f"{libs}, Python {self.versions.get('python')}"

    def lines(self) -> list[str]:
        """The whole traceback as Python prints it (normalised), one line per item."""
        out = ["Traceback (most recent call last):"]
        for f in self.frames:
            where = f'  File "{f.file}"' + (f", line {f.line}" if f.line is not None else "")
            out.append(f"{where}, in {f.name}")
            out += [f"    {f.code}"] if f.code else []
        return out + f"{self.raised}: {self.message}".splitlines()

    def full(self) -> str:
        """The whole recorded traceback, as text."""
        return "\n".join(self.lines())

    def to_json(self) -> dict:
        """A JSON-ready dict (the file's content)."""
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> Recording:
        """The recording a file holds."""
        frames = [Frame(**f) for f in record["frames"]]
        return cls(**{**record, "frames": frames})


def path(failure_id: str, folder: Path | None = None) -> Path:
    """The file of ``failure_id``'s recording (in :data:`FOLDER` unless another ``folder`` is given)."""
    return Path(folder if folder is not None else FOLDER) / f"{failure_id}.json"


def load(failure_id: str, folder: Path | None = None) -> Recording | None:
    """The stored recording of ``failure_id``, or None when there is none."""
    file = path(failure_id, folder)
    return Recording.from_json(json.loads(file.read_text(encoding="utf-8"))) if file.exists() else None


def save(recording: Recording, folder: Path) -> Path:
    """Write ``recording`` into ``folder``; return the file."""
    file = path(recording.failure, folder)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(recording.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return file


def record_folder() -> Path | None:
    """The folder ``$PEFTLAB_RECORD`` names (record mode), or None."""
    value = os.environ.get(RECORD_ENV, "")
    return Path(value) if value else None


def on_recording_stack(versions: Versions | None = None) -> bool:
    """True when ``versions`` are the documented stack's pins for every library that names a failure,
    torch included (its local tag, ``+cpu``, aside): there, a live run must equal the recording."""
    versions = versions or installed()
    pins = stack_pins(STACK)
    return all(_public(versions.get(lib)) == _public(pins[lib]) for lib in LIBRARIES if lib in pins)


def jsonable(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists), so a live value compares with a stored one."""
    return json.loads(json.dumps(data))


def same(a: Any, b: Any, rel_tol: float = REL_TOL) -> bool:
    """Equal, with numbers compared to ``rel_tol`` (so zero only equals zero) and None only to None."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel_tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel_tol) for x, y in zip(a, b))
    return a == b


def zeros(data: Any) -> Any:
    """``data`` with every number replaced by whether it is zero (``None`` counts as zero): what a figure
    shows whatever seed made it (which layers got no gradient), not its values."""
    if isinstance(data, dict):
        return {k: zeros(v) for k, v in data.items()}
    if isinstance(data, list):
        return [zeros(v) for v in data]
    if data is None or (isinstance(data, (int, float)) and not isinstance(data, bool)):
        return not data
    return data


def data_differences(stored: Any, live: Any, rel_tol: float = REL_TOL, limit: int = 8) -> list[str]:
    """How ``live`` differs from ``stored``: one line per differing key (or the values), at most ``limit``."""
    if same(stored, live, rel_tol):
        return []
    if isinstance(stored, dict) and isinstance(live, dict):
        keys = sorted(stored.keys() | live.keys())
        lines = [
            f"{k}: recorded {stored.get(k, '(absent)')!r}, now {live.get(k, '(absent)')!r}"
            for k in keys
            if k not in stored or k not in live or not same(stored[k], live[k], rel_tol)
        ]
        return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])
    return [f"recorded {stored!r}, now {live!r}"]


def _public(version: str | None) -> str | None:
    """``2.13.0+cpu`` -> ``2.13.0``: a build's local tag names where the wheel came from, not its code."""
    return Version(version).public if version else None


def differences(stored: Recording, live: Recording) -> list[str]:
    """Every way ``live`` differs from ``stored``: the versions, then the traceback as a unified diff."""
    problems = [
        f"{lib}: recorded on {stored.versions.get(lib)}, running {live.versions.get(lib)}"
        for lib in LIBRARIES
        if _public(stored.versions.get(lib)) != _public(live.versions.get(lib))
    ]
    diff = list(difflib.unified_diff(stored.lines(), live.lines(), "recorded", "this run", lineterm="", n=1))
    return problems + diff
