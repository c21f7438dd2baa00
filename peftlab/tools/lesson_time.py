"""How long a notebook takes a learner in the room: a stated model over its text and one measured run.

Every time figure of the collection (the agenda's minutes, the README's and the instructor's guide's)
comes from here; no notebook states a time of its own. The model, per notebook, of its core path
(everything outside ``Deep dive:`` sections, counted by :mod:`peftlab.tools.lesson_stats`):

* its Markdown words at :data:`READING_WPM` words a minute (careful reading of technical prose);
* its code lines, read and run cell by cell, at :data:`CODE_LINES_PER_MINUTE` lines a minute;
* its run, the seconds measured on the tiny default (``docs/instructors/timings.json``, written by
  ``peftlab instructors record``): the one measured record;
* :data:`EXERCISE_MINUTES` minutes for each exercise done in the room.

It is an estimate for planning, not a measurement of participants: the instructor's guide says so
beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from peftlab.tools import ROOT
from peftlab.tools.lesson_stats import stats

NOTEBOOKS = ROOT / "notebooks"
TIMINGS = ROOT / "docs" / "instructors" / "timings.json"

READING_WPM = 150
CODE_LINES_PER_MINUTE = 30
EXERCISE_MINUTES = 3
#: An agenda slot is the estimate rounded up to this many minutes.
SLOT_STEP = 5


def load_timings(path: Path = TIMINGS) -> dict:
    """The recorded run seconds of each notebook (empty when none were recorded)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@dataclass(frozen=True)
class Estimate:
    """A notebook's core path, counted, and what the model makes of it."""

    name: str
    words: int
    code_lines: int
    exercises: int
    run_seconds: float | None

    def minutes(self, exercises: int | None = None) -> float:
        """Minutes for the core path with ``exercises`` of its exercises done (all when None)."""
        done = self.exercises if exercises is None else min(exercises, self.exercises)
        run = (self.run_seconds or 0) / 60
        return (
            self.words / READING_WPM + self.code_lines / CODE_LINES_PER_MINUTE + run + done * EXERCISE_MINUTES
        )

    def slot(self, exercises: int | None = None) -> int:
        """The agenda's minutes: :meth:`minutes` rounded up to :data:`SLOT_STEP`."""
        return SLOT_STEP * math.ceil(self.minutes(exercises) / SLOT_STEP)

    def explain(self, exercises: int | None = None) -> str:
        """The sum, term by term: "784 words (5.2) + 145 code lines (4.8) + run 13 s (0.2) + 3 exercises (9) = 19.2"."""
        done = self.exercises if exercises is None else min(exercises, self.exercises)
        run = (
            f"run {self.run_seconds:.0f} s ({self.run_seconds / 60:.1f})"
            if self.run_seconds
            else "run not measured"
        )
        return (
            f"{self.words} words ({self.words / READING_WPM:.1f}) + {self.code_lines} code lines "
            f"({self.code_lines / CODE_LINES_PER_MINUTE:.1f}) + {run} + {done} exercise{'s' * (done != 1)} "
            f"({done * EXERCISE_MINUTES}) = {self.minutes(exercises):.1f} min"
        )


def estimate(name: str, timings: dict | None = None) -> Estimate:
    """The estimate of notebook ``name`` ("01_clip_task_type") from its source and the measured run."""
    counted = stats(NOTEBOOKS / f"{name}.py")
    seconds = (load_timings() if timings is None else timings).get("seconds", {}).get(name)
    return Estimate(name, counted.core_words, counted.core_code_lines, counted.exercises, seconds)


def model_sentence() -> str:
    """The model in one sentence, for the guide and the README."""
    return (
        f"Minutes per notebook are estimated, not measured on participants: its core path's words at "
        f"{READING_WPM} a minute, its code lines at {CODE_LINES_PER_MINUTE} a minute, its measured run, and "
        f"{EXERCISE_MINUTES} minutes per exercise done in the room (the Deep dives are not counted: they are "
        f"for after); a slot is that rounded up to {SLOT_STEP} minutes."
    )
