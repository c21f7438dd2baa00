"""The instructor's guide: a 3-hour agenda, what each notebook needs, where the answers are, and FAQ.

Everything the guide states is read at build time from the one place it lives:

* the lessons and their order: :data:`peftlab.registry.LESSONS`;
* each notebook's goals and prerequisites, and its real checkpoint (and the memory its
  parameters cell states): the notebook's own first cell and ``parameters`` cell (``notebooks/*.py``);
* the exercises, their intended answers and why: ``solutions/<notebook>.py`` (function docstrings,
  read with :mod:`ast`, never imported) and the ``### Exercise N: title`` headings of the notebook;
* the stacks (the Colab runtimes' versions): the pin files, through :mod:`peftlab.versions`;
* what each Colab runtime shows (live, or the documented stack's recording): the registry's version
  ranges against the pin files, :data:`peftlab.recordings.RECORDED`, and ``docs/matrix/matrix.json``
  (``peftlab matrix``'s runs);
* CPU seconds: ``docs/instructors/timings.json``, written by :func:`record_timings` from the
  scorecards of a ``peftlab run`` (and, on the docs page, the seconds of the build itself);
* every minute: :mod:`peftlab.tools.lesson_time`'s estimate from the notebook's text and that record.

Only the agenda (:data:`AGENDA`: the order, the exercises done in the room, what to stress;
:data:`HOMEWORK`: what is outside the three hours and why) and the answers to common questions
(:data:`FAQ`) are written here: they are the guide's own content. ``peftlab docs`` publishes the
page as ``instructors.html``; ``peftlab readme`` writes the README's "For instructors" tables.
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from peftlab.recordings import RECORDED
from peftlab.registry import LESSONS, REGISTRY, Failure, Lesson
from peftlab.tools import ROOT
from peftlab.tools.lesson_time import TIMINGS, estimate, load_timings, model_sentence
from peftlab.tools.markdown import markdown_table
from peftlab.tools.notebooks import NOTEBOOKS, title
from peftlab.versions import pinned_versions, stack_names, switch_requirements

SOLUTIONS = ROOT / "solutions"
MATRIX_JSON = ROOT / "docs" / "matrix" / "matrix.json"
REPO_URL = "https://github.com/peftlab/peftlab/blob/main"
WORKSHOP_MINUTES = 180


@dataclass(frozen=True)
class Slot:
    """One block of the workshop: a notebook (its number) or, with ``number=""``, a break or setup.

    A notebook's minutes are its estimate (:mod:`peftlab.tools.lesson_time`) with ``exercises`` of its
    exercises done in the room (all when None), never typed here; a slot without a notebook has fixed
    ``minutes``, except the wrap-up (``minutes=None``), which takes what is left of the three hours.
    """

    number: str  # "00".."07", or "" for a slot without a notebook
    activity: str  # what happens; for a notebook, what to stress (Markdown)
    minutes: int | None = 0  # a slot without a notebook: its length; None: the rest of the workshop
    exercises: int | None = None  # a notebook's exercises done in the room; the others are homework


#: The 3-hour workshop, in order. Notebooks that do not fit are in :data:`HOMEWORK`, with the reason.
AGENDA: tuple[Slot, ...] = (
    Slot(
        "",
        "Welcome; everyone opens notebook 01 on Colab (or a local venv) and runs the versions cell: "
        "compare the stacks in the room. Notebook 00 was the pre-work.",
        minutes=10,
    ),
    Slot(
        "01",
        "Let the error happen first; ask who predicted it from notebook 00. Then the ten-line signature check.",
        exercises=2,
    ),
    Slot(
        "02",
        "The error depends on the transformers release: the room sees it live or as the documented stack's "
        "recording; compare with a neighbour's runtime.",
        exercises=2,
    ),
    Slot("", "Break.", minutes=10),
    Slot(
        "03",
        "A LoRA layer is a module too: what `find_all_linear_names` collects, and the "
        "three ways to train a second stage.",
        exercises=2,
    ),
    Slot(
        "04",
        "What `modules_to_save` really saves; the silent losses are the point, not the `ValueError`.",
        exercises=2,
    ),
    Slot(
        "05",
        "Read the architecture from the checkpoint's tensor shapes before trusting a config.",
        exercises=2,
    ),
    Slot("", "Break.", minutes=10),
    Slot(
        "06",
        "Gradient checkpointing with a frozen base: let it fail first, then ask what a "
        "checkpointed block needs to run its backward pass.",
        exercises=2,
    ),
    Slot(
        "",
        "Wrap-up and questions: `peftlab doctor` on the learners' own models; where the solutions are.",
        None,
    ),
)

#: Notebooks outside the three hours: (number, why, when).
HOMEWORK: tuple[tuple[str, str], ...] = (
    (
        "00",
        "pre-work, before the workshop: the primer's settings (`r`, `lora_alpha`, `target_modules`, "
        "`task_type`) are what every later notebook assumes, and a room reads at different speeds",
    ),
    (
        "07",
        "after the workshop: beyond the five reported failures, and silent (peftlab's own check shows it); "
        "the wrap-up's doctor run points at it",
    ),
)


def lesson(number: str) -> Lesson | None:
    """The registry's lesson whose notebook starts with ``number`` ("01"), or None if not in this checkout."""
    return next((lesson for name, lesson in LESSONS.items() if name.split("_", 1)[0] == number), None)


# --- reading the notebooks and the solutions --------------------------------------------------

_CELL = re.compile(r"^# %%(.*)$", re.MULTILINE)


def cells(name: str) -> list[tuple[str, str]]:
    """The notebook's cells as (header, source without the ``# `` of Markdown) from its ``.py`` file."""
    text = (NOTEBOOKS / f"{name}.py").read_text(encoding="utf-8")
    parts = _CELL.split(text)[1:]
    out = []
    for header, body in zip(parts[::2], parts[1::2]):
        if "[markdown]" in header:
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()
            )
        out.append((header, body.strip("\n")))
    return out


@dataclass
class Overview:
    """What a notebook's first cell and parameters cell say about it."""

    goals: list[str]
    prerequisites: str
    time: str
    checkpoint: str  # the real checkpoint id named in the parameters cell's CHECKPOINT comment
    gpu: str  # that comment, which states where it runs (and its memory, where the notebook gives it)
    memory: str  # the memory that comment states ("about 1 GB ..."), or ""


def _field(text: str, label: str) -> str:
    found = re.search(rf"\*\*{label}\*\*:?\s*(.+?)(?:\n\s*\n|\n\*\*|\Z)", text, re.DOTALL)
    return " ".join(found.group(1).split()) if found else ""


def overview(name: str) -> Overview:
    """Learning goals, prerequisites, time and the real checkpoint of notebook ``name``."""
    all_cells = cells(name)
    first = next((body for header, body in all_cells if "[markdown]" in header), "")
    goals_block = re.search(r"\*\*Learning goals\*\*\s*\n((?:\s*[*-] .+\n?(?:\s{2,}.+\n?)*)+)", first)
    goals = (
        [
            " ".join(g.split())
            for g in re.split(r"^\s*[*-] ", goals_block.group(1), flags=re.MULTILINE)
            if g.strip()
        ]
        if goals_block
        else []
    )
    params = next((body for header, body in all_cells if '"parameters"' in header), "")
    line = next((x for x in params.splitlines() if x.startswith("CHECKPOINT")), "")
    comment = line.split("#", 1)[1].strip() if "#" in line else ""
    ids = [i for i in re.findall(r'"([^"]+)"', comment) if "/" in i]
    memory = re.search(r"(?:about|under|~)?\s*\d+(?:\.\d+)?\s*[GM]i?B[^);,]*", comment)
    return Overview(
        goals,
        _field(first, "Prerequisites"),
        _field(first, "Time"),
        ids[0] if ids else "",
        comment,
        memory.group(0).strip() if memory else "",
    )


@dataclass
class Exercise:
    """One exercise: its key, the title in the notebook, and the stored solution's docstring."""

    key: str
    title: str
    answer: str  # the docstring's first paragraph: the intended answer
    why: str  # the rest: why, and what to discuss


def exercises(name: str) -> list[Exercise]:
    """The exercises of notebook ``name``: solutions from ``solutions/<name>.py``, titles from the notebook."""
    path = SOLUTIONS / f"{name}.py"
    if not path.exists():
        return []
    number = name.split("_", 1)[0]
    titles = dict(
        re.findall(r"^### Exercise (\d+):\s*(.+)$", "\n".join(b for _, b in cells(name)), re.MULTILINE)
    )
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        match = re.fullmatch(r"exercise_(\d+)", getattr(node, "name", ""))
        if isinstance(node, ast.FunctionDef) and match:
            doc = (ast.get_docstring(node) or "").strip()
            answer, _, why = doc.partition("\n\n")
            n = match.group(1)
            found.append(Exercise(f"{number}.{n}", titles.get(n, ""), " ".join(answer.split()), why.strip()))
    return sorted(found, key=lambda e: int(e.key.split(".")[1]))


# --- measured seconds -------------------------------------------------------------------------


def record_timings(results: Path, machine: str, target: Path = TIMINGS) -> dict:
    """Write ``target`` from the scorecards in ``results`` (``peftlab run``'s ``build/results``).

    A scorecard's ``seconds`` is the notebook's own measure, from its first cell to ``scorecard.save``
    (the kernel's start, a few seconds, is not in it).
    """
    cards = [json.loads(p.read_text()) for p in sorted(Path(results).glob("*.json"))]
    old = load_timings(target)
    seconds = {
        **old.get("seconds", {}),
        **{c["notebook"]: round(c["seconds"]) for c in cards if c.get("seconds")},
    }
    stacks = {c["stack"] for c in cards}
    record = {
        "date": date.today().isoformat(),
        "stack": ", ".join(sorted(stacks)),
        "machine": machine,
        "seconds": dict(sorted(seconds.items())),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


# --- the agenda as rows -----------------------------------------------------------------------


def slot_minutes(slot: Slot, timings: dict | None = None) -> int:
    """A slot's minutes: fixed, the notebook's estimate, or (the wrap-up) what is left of the workshop."""
    if slot.minutes is None:
        return WORKSHOP_MINUTES - sum(slot_minutes(s, timings) for s in AGENDA if s.minutes is not None)
    found = lesson(slot.number) if slot.number else None
    return estimate(found.notebook, timings).slot(slot.exercises) if found else slot.minutes


def agenda_rows(seconds: dict[str, float] | None = None) -> list[dict]:
    """One row per slot: start (h:mm), minutes, notebook name and title (or None), activity, run seconds,
    exercises done in the room and the estimate's sum."""
    timings = load_timings() if seconds is None else {"seconds": seconds}
    rows, start = [], 0
    for slot in AGENDA:
        found = lesson(slot.number) if slot.number else None
        name = found.notebook if found else None
        minutes = slot_minutes(slot, timings)
        guess = estimate(name, timings) if name else None
        rows.append(
            {
                "start": f"{start // 60}:{start % 60:02d}",
                "minutes": minutes,
                "number": slot.number,
                "notebook": name,
                "title": title(name) if name else "",
                "activity": slot.activity,
                "seconds": timings.get("seconds", {}).get(name) if name else None,
                "exercises": (guess.exercises if slot.exercises is None else slot.exercises)
                if guess
                else None,
                "estimate": guess.explain(slot.exercises) if guess else "",
            }
        )
        start += minutes
    return rows


def homework_rows() -> list[dict]:
    """The notebooks outside the three hours: name, title, why, and their whole estimate."""
    rows = []
    for number, why in HOMEWORK:
        found = lesson(number)
        if found:
            name = found.notebook
            rows.append(
                {"notebook": name, "title": title(name), "why": why, "estimate": estimate(name).explain()}
            )
    return rows


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _notebook_cells(name: str, seconds: float | None) -> list[str]:
    """The README's cells about a notebook: link, CPU run, the real checkpoint on a GPU."""
    info = overview(name)
    cpu = f"{seconds:.0f} s" if seconds is not None else "not measured yet"
    gpu = (
        f"`{info.checkpoint}`, {info.memory or 'memory not stated in its parameters cell'}"
        if info.checkpoint
        else "-"
    )
    return [f"[{name}](notebooks/{name}.ipynb)", cpu, gpu]


def readme_agenda() -> str:
    """The README's agenda (Markdown): the slots with their estimates, then the notebooks outside them."""
    timings = load_timings()
    rows = []
    for row in agenda_rows(timings.get("seconds", {})):
        start, minutes, activity = row["start"], str(row["minutes"]), _md_escape(row["activity"])
        if not row["notebook"]:
            missing = f"{row['number']} (not in this checkout yet)" if row["number"] else "-"
            rows.append([start, minutes, missing, "-", "-", "-", "-", activity])
            continue
        name, total = row["notebook"], len(exercises(row["notebook"]))
        answers = f"[{row['exercises']} of {total}](solutions/{name}.py)"
        rows.append(
            [start, minutes, *_notebook_cells(name, row["seconds"]), answers, row["estimate"], activity]
        )
    header = [
        "start",
        "min",
        "notebook",
        "CPU, tiny default",
        "GPU: real checkpoint",
        "exercises in the room",
    ]
    table = markdown_table([*header, "estimate (core path)", "what to stress"], rows)
    later = [
        f"* [{h['notebook']}](notebooks/{h['notebook']}.ipynb), {h['why']} ({h['estimate']})."
        for h in homework_rows()
    ]
    notes = [
        "Outside the three hours:",
        *later,
        "",
        model_sentence()
        + " The exercises not done in the room are homework; their answers are in `solutions/`.",
    ]
    if timings:
        notes.append(
            f"Run seconds measured on {timings['machine']} ({timings['stack']} stack, {timings['date']}); "
            "each notebook's own measure, from its first cell to its scorecard."
        )
    return table + "\n\n" + "\n".join(notes)


def readme_faq() -> str:
    """The README's common questions (Markdown): each question with its answer."""
    return "\n\n".join(f"**{q}** {answer()}" for q, answer in FAQ)


# --- what your room will see -------------------------------------------------------------------

DOCUMENTED = "documented"


def rooms() -> list[str]:
    """The runtimes a room may have: the Colab stacks, then the current stack."""
    return [n for n in stack_names() if n.startswith("colab-")] + ["current"]


def _matrix() -> dict:
    """``peftlab matrix``'s table (``{failure: {stack: {"outcome": ...}}}``), or {} when none is recorded."""
    return json.loads(MATRIX_JSON.read_text(encoding="utf-8")).get("rows", {}) if MATRIX_JSON.exists() else {}


def room_cell(failure: Failure, stack: str, matrix: dict | None = None) -> str:
    """What a learner on ``stack`` sees of ``failure``: "live" (as on the documented stack), "recording
    shown" (and what happens there), or what happens instead; "*" where no run on that stack backs it."""
    documented, here = failure.expected(pinned_versions(DOCUMENTED)), failure.expected(pinned_versions(stack))
    outcome = here.raises or "no error"
    if here == documented:
        text = "live" if here.raises else "no error, as on the documented stack"
    elif failure.id in RECORDED:
        text = f"recording shown; live: {outcome}"
    elif documented.raises is None:
        text = f"{outcome} (none on the documented stack)"
    elif here.raises == documented.raises:
        text = f"live, other words ({outcome})"
    else:
        text = outcome if here.raises is None else f"{outcome} instead"
    seen = (matrix if matrix is not None else _matrix()).get(failure.id, {}).get(stack)
    if seen and seen["outcome"] != outcome:
        text += f" (the matrix saw {seen['outcome']})"
    elif not seen and stack not in here.measured:
        text += " *"
    return text


def room_rows() -> tuple[list[list[str]], list[str]]:
    """The table's rows (failures that some room sees otherwise than the documented stack) and the ids
    of the failures every room sees live."""
    matrix, rows, live = _matrix(), [], []
    for failure in REGISTRY.values():
        cells = [room_cell(failure, stack, matrix) for stack in rooms()]
        if all(c.rstrip(" *") == "live" for c in cells):  # raised live everywhere, as documented
            live.append(failure.id)
            continue
        rows.append([failure.notebook[:2], f"`{failure.id}`", *cells])
    return rows, live


def room_notes(live: list[str]) -> list[str]:
    """The lines under the table: what "live everywhere", "*" and "recording shown" mean."""
    unrun = [f"`{i}`" for i in live if any(room_cell(REGISTRY[i], s).endswith("*") for s in rooms())]
    return [
        f"Live, as on the documented stack, in every room above: {', '.join(f'`{i}`' for i in live)}.",
        "*: from the registry's version ranges; no run on that stack backs it yet"
        + (f" (of those live everywhere: {', '.join(unrun)})." if unrun else "."),
        '"recording shown": the notebook shows what happens on these versions and, beside it, the documented '
        "stack's traceback, recorded there by running the same block and re-checked on every CI run "
        "(`peftlab/recordings/`).",
    ]


def room_plan() -> list[tuple[str, str]]:
    """If Colab breaks: (what, how) from the switch to the offline site (Markdown with `code`)."""
    pins = " ".join(switch_requirements(DOCUMENTED))
    return [
        (
            "The switch",
            "on Colab or any Jupyter, after the notebook's first cell, run "
            f'`peftlab.versions.switch_to("{DOCUMENTED}")` in a cell. It installs '
            + ", ".join(f"`{r}`" for r in switch_requirements(DOCUMENTED))
            + f" (`peftlab/stacks/{DOCUMENTED}.txt`) and holds the runtime's torch with a constraint; pip adds "
            "only what those pins need and the runtime lacks. Restart the runtime as it says, then run the "
            "notebook from the top: its versions cell names the stack.",
        ),
        (
            "A local virtual environment",
            "from the stack files: `python3 -m venv .venvs/documented && .venvs/documented/bin/pip install -r "
            'peftlab/stacks/documented.txt -e ".[dev]"`, then `.venvs/documented/bin/jupyter lab notebooks/`.',
        ),
        (
            "The executed site, offline",
            "build it before the day (`peftlab docs --out build/docs`), put the folder on a stick or a shared "
            "drive, and open `index.html` in any browser: every notebook with its outputs, figures and error "
            "boxes, no kernel needed.",
        ),
        (
            "When pip fails",
            "no network, a blocked index or a conflict: the switch stops with pip's last lines and the runtime "
            "keeps its own versions: carry on there, the recordings show the documented failures. A runtime "
            "left half-installed: Runtime > Disconnect and delete runtime gives a fresh one. A room without "
            f"the index: `pip download --no-deps -d wheels {pins}` beforehand, then "
            f"`pip install --no-index --find-links wheels {pins}`.",
        ),
    ]


def readme_room() -> str:
    """The README's "what your room will see" table and the "if Colab breaks" plan (Markdown)."""
    rows, live = room_rows()
    plan = "\n".join(f"{i}. *{what}*: {how}" for i, (what, how) in enumerate(room_plan(), 1))
    return (
        markdown_table(["#", "failure", *rooms()], rows)
        + "\n\n"
        + "\n\n".join(room_notes(live))
        + "\n\n**If Colab breaks**, or the room must see every failure live:\n\n"
        + plan
    )


def _room_html() -> str:
    """The "what your room will see" table and the "if Colab breaks" plan, for the docs page."""
    rows, live = room_rows()
    head = "".join(f"<th>{html.escape(s)}</th>" for s in ["#", "failure", *rooms()])
    body = "\n".join("<tr>" + "".join(f"<td>{_html(c)}</td>" for c in row) + "</tr>" for row in rows)
    notes = "".join(f"<p>{_html(n)}</p>" for n in room_notes(live))
    plan = "".join(f"<li><b>{_html(what)}</b>: {_html(how)}</li>" for what, how in room_plan())
    return (
        f'<table id="room"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>{notes}'
        f'<h3>If Colab breaks</h3><ol id="colab-breaks">{plan}</ol>'
    )


# --- common questions -------------------------------------------------------------------------


def _colab_stacks() -> str:
    names = [n for n in stack_names() if n.startswith("colab-")]
    return "; ".join(
        f"{n}: transformers {pinned_versions(n)['transformers']}, peft {pinned_versions(n)['peft']}"
        for n in names
    )


def _cpu_range() -> str:
    seconds = load_timings().get("seconds", {})
    if not seconds:
        return "not measured yet"
    return f"{min(seconds.values()):.0f} to {max(seconds.values()):.0f} s per notebook, measured on {load_timings()['machine']}"


def _measured_on_colab() -> str:
    """How many registered failures the matrix page shows on every Colab stack, which others the registry
    records as run there by hand, and which were not run there at all."""
    colab = {n for n in stack_names() if n.startswith("colab-")}
    rows = _matrix()
    in_matrix = {
        i for i in REGISTRY if colab <= {s for s, c in rows.get(i, {}).items() if c.get("kind") != "not run"}
    }
    by_hand = {
        f.id
        for f in REGISTRY.values()
        if f.id not in in_matrix and colab <= {m for e in f.expectations for m in e.measured}
    }
    missing = sorted(set(REGISTRY) - in_matrix - by_hand)
    text = f"{len(in_matrix)} of the {len(REGISTRY)} registered failures are on the matrix page for every Colab stack"
    if by_hand:
        text += (
            f", {len(by_hand)} more were run on each by hand ({', '.join(f'`{i}`' for i in sorted(by_hand))})"
        )
    return text + (f"; not run there yet: {', '.join(f'`{m}`' for m in missing)}" if missing else "")


#: The questions a workshop hits, with answers built from the sources (Markdown; `code` allowed).
FAQ: tuple[tuple[str, Callable[[], str]], ...] = (
    (
        "Colab's library versions are not the notebook's: is that a problem?",
        lambda: (
            "No. Every notebook prints the versions it runs on first, and asks the failure registry what those "
            f"versions do. Colab's default runtimes are pinned as stacks: {_colab_stacks()}; "
            f"{_measured_on_colab()}. On releases newer than every stack, a difference is shown in an "
            "orange box and the notebook goes on to the fix. Where a runtime does not raise a failure as the "
            "documented stack does, the notebook shows the documented stack's recording beside what happens "
            '("What your room will see"); to see it live, the switch installs the documented libraries '
            '("If Colab breaks") and the runtime restarts.'
        ),
    ),
    (
        '"The failure did not happen" (or another error came) on a new release.',
        lambda: (
            "That is a result, not a broken notebook: the orange box names the installed versions, the recorded "
            "expectation and what happened. Ask the room what changed (release notes), then run `peftlab drift` "
            'after the workshop; README, "When the registry is out of date", says how to record it. In CI or '
            "with `PEFTLAB_STRICT=1` it stays an error."
        ),
    ),
    (
        "How long does each notebook take on a CPU, and on a T4?",
        lambda: (
            f"On a CPU with the tiny default: {_cpu_range()}; the tiny models ship pre-trained with peftlab, so "
            "the first run on a fresh runtime (Colab's too) pre-trains nothing. With a real checkpoint on a T4, loading "
            "the weights dominates; the GPU column names each checkpoint and the memory its parameters cell "
            "states. No T4 timing has been measured: try your agenda's notebooks on one before the day."
        ),
    ),
    (
        "Do learners need a GPU?",
        lambda: (
            'No. Every notebook runs its whole story on the CPU with the tiny default (`CHECKPOINT = "tiny"`). '
            "A GPU only matters for the real checkpoints (the parameters cell)."
        ),
    ),
    (
        "The Hub is blocked (offline room, firewall).",
        lambda: (
            "The tiny default needs no network: the tiny models ship with peftlab (package data). A Hub id "
            "fails at once with `OfflineError`, whose one sentence says what to set `CHECKPOINT` to; a local "
            "folder with `config.json` and weights works everywhere."
        ),
    ),
    (
        "bitsandbytes / 4-bit on a CPU (notebook 02).",
        lambda: (
            "Notebook 02 says which path ran and why: bitsandbytes runs 4-bit on the CPU on the current stack, "
            "but the documented stack's transformers refuses any device but a GPU, so there the notebook trains "
            "the same LoRA unquantised. Both are expected; the memory table is worked out for the real model."
        ),
    ),
    (
        "Where are the intended answers?",
        lambda: (
            "In `solutions/<notebook>.py`: one `exercise_N(ns)` per exercise, its docstring the answer and why "
            "(the exercises table here is read from them). `PEFTLAB_SOLUTIONS=1` runs a notebook with the stored "
            "solutions and fails it if one is judged wrong; the test suite does that on both stacks. The docs "
            'pages show the learner\'s view: "not answered yet".'
        ),
    ),
    (
        "A learner sees FAIL or an AssertionError in a check.",
        lambda: (
            "Each check is a real assertion whose threshold comes from a seed sweep with a margin. Ask for the "
            "figure it printed and the versions table; a changed `SEED` should still pass. Reproduce with "
            "`peftlab run --only NN`, and `peftlab sweep` shows the spread."
        ),
    ),
    (
        "Can the notebooks run in another order?",
        lambda: (
            "Yes, each one stands alone. Notebook 00 first helps: 01 and 04 build on what it shows about "
            "`task_type` and `modules_to_save`."
        ),
    ),
)


def _html(text: str) -> str:
    """Markdown-ish ``text`` (backticks, quotes) as HTML."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


# --- the docs page ----------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>peftlab: instructor's guide</title>
<style>
body {{ font: 15px/1.5 sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; margin: 8px 0 16px; }}
th, td {{ border: 1px solid #ccc; padding: 5px 8px; vertical-align: top; text-align: left; }}
th {{ background: #f3f3f3; }} td.num {{ text-align: right; }} tr.pause td {{ background: #f7f7f7; color: #555; }}
code {{ font-size: 90%; background: #f4f4f4; padding: 0 3px; }} details {{ margin: 4px 0; }}
</style></head>
<body><nav><a href="index.html">&larr; peftlab: all notebooks</a></nav>
<h1>Instructor's guide</h1>
<p>A 3-hour workshop on the notebooks, 00 first. Everything below is read from the sources when the site is built:
the lessons (<code>peftlab/registry/</code>), each notebook's first cell and parameters cell, the stack files and
<code>solutions/</code>.</p>
<h2>Agenda ({total} minutes)</h2>
<table id="agenda"><thead><tr><th>start</th><th>min</th><th>notebook</th><th>what to stress</th></tr></thead>
<tbody>
{agenda}
</tbody></table>
<p>Outside the three hours:</p>
<ul id="homework">{homework}</ul>
<p>{model}</p>
<h2>What each notebook needs</h2>
<table id="needs"><thead><tr><th>notebook</th><th>estimate (core path, every exercise)</th>
<th>CPU, tiny default: this build</th><th>CPU: recorded</th><th>GPU: real checkpoint (the parameters cell)</th>
<th>prerequisites</th></tr></thead>
<tbody>
{needs}
</tbody></table>
<p>{recorded}</p>
<h2>What your room will see</h2>
<p>Per Colab runtime (and the current stack), what each failure shows that some room sees otherwise than the
documented stack: read from the failure registry's version ranges, <code>peftlab/recordings/</code> and the
matrix page.</p>
{room}
<h2>Exercises and the intended answers</h2>
<p>The answers are in <code>solutions/&lt;notebook&gt;.py</code> (one <code>exercise_N(ns)</code> each); the
pages of this site show the learner's view. Open an answer below.</p>
{exercises}
<h2>Common questions</h2>
{faq}
</body></html>
"""


def _agenda_html(rows: list[dict]) -> str:
    out = []
    for row in rows:
        if row["notebook"]:
            what = f'<a href="{row["notebook"]}.html">{row["notebook"]}</a><br><small>{_html(row["title"])}</small>'
        elif row["number"]:
            what = f"{row['number']} <small>(not in this checkout yet)</small>"
        else:
            what = "-"
        kind = "" if row["number"] else ' class="pause"'
        out.append(
            f'<tr{kind}><td>{row["start"]}</td><td class="num">{row["minutes"]}</td><td>{what}</td>'
            f"<td>{_html(row['activity'])}<br><small>{_html(row['estimate'])}</small></td></tr>"
        )
    return "\n".join(out)


def _needs_html(built: dict[str, float]) -> str:
    recorded = load_timings().get("seconds", {})
    out = []
    for name in LESSONS:
        info = overview(name)
        this = f"{built[name]:.0f} s" if name in built else "not built"
        rec = f"{recorded[name]:.0f} s" if name in recorded else "not recorded"
        out.append(
            f'<tr><td><a href="{name}.html">{name}</a></td><td>{_html(estimate(name).explain())}</td>'
            f'<td class="num">{this}</td><td class="num">{rec}</td><td>{_html(info.gpu or "-")}</td>'
            f"<td>{_html(info.prerequisites or 'not stated')}</td></tr>"
        )
    return "\n".join(out)


def _exercises_html() -> str:
    out = []
    for name in LESSONS:
        found = exercises(name)
        link = f'<a href="{REPO_URL}/solutions/{name}.py"><code>solutions/{name}.py</code></a>'
        if not found:
            out.append(f"<h3>{name}</h3><p>No exercises yet ({link} is missing).</p>")
            continue
        goals = "".join(f"<li>{_html(g)}</li>" for g in overview(name).goals)
        items = "".join(
            f"<li><b>{e.key}</b> {_html(e.title or '(untitled)')}<details><summary>intended answer</summary>"
            f"<p>{_html(e.answer)}</p><p>{_html(e.why).replace(chr(10) + chr(10), '</p><p>')}</p></details></li>"
            for e in found
        )
        goals_html = f"<p>Learning goals:</p><ul>{goals}</ul>" if goals else ""
        out.append(
            f'<h3 id="ex-{name}">{name}</h3>{goals_html}<p>{len(found)} exercises, answers in {link}:</p>'
            f'<ol class="exercises">{items}</ol>'
        )
    return "\n".join(out)


def page_html(built: dict[str, float] | None = None) -> str:
    """The guide as one static page; ``built``: the seconds each notebook took in this docs build."""
    built = built or {}
    timings = load_timings()
    recorded = (
        f"Recorded on {_html(timings['machine'])} ({timings['stack']} stack, {timings['date']}; "
        "<code>docs/instructors/timings.json</code>): each notebook's own measure, from its first cell to its "
        "scorecard. This build's seconds include the kernel's start."
        if timings
        else "No CPU seconds recorded yet."
    )
    matrix = '<a href="matrix.html">the matrix page</a>'
    faq = "\n".join(
        f"<h3>{_html(q)}</h3><p>{_html(answer()).replace('the matrix page', matrix)}</p>" for q, answer in FAQ
    )
    return PAGE.format(
        total=WORKSHOP_MINUTES,
        agenda=_agenda_html(agenda_rows()),
        homework="".join(
            f'<li><a href="{h["notebook"]}.html">{h["notebook"]}</a>: {_html(h["why"])} ({_html(h["estimate"])})</li>'
            for h in homework_rows()
        ),
        model=_html(model_sentence()),
        needs=_needs_html(built),
        recorded=recorded,
        room=_room_html(),
        exercises=_exercises_html(),
        faq=faq,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``peftlab instructors record build/results --machine "..."``: record the notebooks' CPU seconds."""
    sub = parser.add_subparsers(dest="action", required=True)
    record = sub.add_parser("record", help="record the CPU seconds of a peftlab run's scorecards")
    record.add_argument("results", type=Path, help="the results folder of peftlab run (build/results)")
    record.add_argument("--machine", required=True, help="where it ran, e.g. '2-core CPU, load average 4'")


def main(args: argparse.Namespace) -> int:
    """Record the seconds of ``args.results`` in the timings file; print what was recorded."""
    print(json.dumps(record_timings(args.results, args.machine), indent=2))
    return 0
