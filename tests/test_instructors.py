"""The instructor's guide (peftlab.tools.instructors): its agenda, and every fact read from its one source."""

import importlib.util
import json
import re

from peftlab.registry import LESSONS
from peftlab.tools import instructors
from peftlab.versions import pinned_versions, stack_names

PRIMER = next(name for name, lesson in LESSONS.items() if lesson.primer)


def test_agenda_fits_three_hours_and_holds_every_lesson_once():
    rows = instructors.agenda_rows()
    assert sum(r["minutes"] for r in rows) == instructors.WORKSHOP_MINUTES == 180
    assert rows[-1]["minutes"] >= 5, (
        f"the lessons' estimates leave {rows[-1]['minutes']} minutes for the wrap-up"
    )
    in_room = [slot.number for slot in instructors.AGENDA if slot.number]
    later = [number for number, _ in instructors.HOMEWORK]
    assert len(in_room + later) == len(set(in_room + later)) and in_room == sorted(in_room)
    assert {name.split("_", 1)[0] for name in LESSONS} == set(in_room + later), (
        "a lesson is neither in nor out"
    )
    assert rows[0]["start"] == "0:00" and [r["notebook"] for r in rows if r["notebook"]] == [
        name for name in LESSONS if name[:2] in in_room
    ]  # in the registry's order
    assert all(reason for _, reason in instructors.HOMEWORK)


def test_a_notebook_slot_is_its_estimate_rounded_up():
    from peftlab.tools.lesson_time import READING_WPM, SLOT_STEP, estimate

    for row in instructors.agenda_rows():
        if row["notebook"]:
            guess = estimate(row["notebook"])
            assert row["minutes"] - SLOT_STEP < guess.minutes(row["exercises"]) <= row["minutes"]
            assert f"{guess.words} words ({guess.words / READING_WPM:.1f})" in row["estimate"]
    longer = instructors.Slot("01", "", exercises=3)  # one more exercise in the room: never a shorter slot
    assert instructors.slot_minutes(longer) >= instructors.slot_minutes(
        instructors.Slot("01", "", exercises=0)
    )


def test_overview_is_read_from_the_notebook():
    info = instructors.overview(PRIMER)
    text = (instructors.NOTEBOOKS / f"{PRIMER}.py").read_text()
    assert len(info.goals) == 3 and all(g.split()[0] in text for g in info.goals)
    assert info.prerequisites and info.prerequisites.split()[0] in text and "Time" not in info.prerequisites
    assert not info.time, "a notebook states no time of its own: times come from one measured record"
    comment = next(line for line in text.splitlines() if line.startswith("CHECKPOINT =")).split("#", 1)[1]
    assert info.checkpoint and f'"{info.checkpoint}"' in comment and info.memory and info.memory in comment


def test_exercises_are_the_solution_files_docstrings_and_the_notebook_headings():
    for name in LESSONS:
        path = instructors.SOLUTIONS / f"{name}.py"
        found = instructors.exercises(name)
        if not path.exists():
            assert found == []
            continue
        spec = importlib.util.spec_from_file_location("solution_under_test", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        functions = sorted(n for n in vars(module) if re.fullmatch(r"exercise_\d+", n))
        assert [e.key for e in found] == [
            f"{name[:2]}.{f.split('_')[1]}" for f in sorted(functions, key=lambda f: int(f.split("_")[1]))
        ]
        headings = (instructors.NOTEBOOKS / f"{name}.py").read_text()
        for exercise in found:
            doc = getattr(module, f"exercise_{exercise.key.split('.')[1]}").__doc__
            assert exercise.answer and exercise.answer.split()[0] in doc
            assert exercise.title and f"Exercise {exercise.key.split('.')[1]}: {exercise.title}" in headings
    assert len(instructors.exercises(PRIMER)) >= 2


def test_record_timings_reads_the_scorecards(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for name, seconds in ((PRIMER, 12.4), ("01_x", 61.6)):
        (results / f"{name}.json").write_text(
            json.dumps({"notebook": name, "stack": "current", "seconds": seconds})
        )
    target = tmp_path / "timings.json"
    record = instructors.record_timings(results, "a test machine", target)
    assert record["seconds"] == {PRIMER: 12, "01_x": 62} and record["machine"] == "a test machine"
    assert instructors.load_timings(target) == record


def test_page_shows_agenda_needs_answers_and_questions():
    built = {name: 3.0 for name in LESSONS}
    page = instructors.page_html(built)
    for name in LESSONS:
        assert f'<a href="{name}.html">{name}</a>' in page
    for exercise in instructors.exercises(PRIMER):
        assert f"<b>{exercise.key}</b>" in page
    assert page.count("<details>") == sum(len(instructors.exercises(n)) for n in LESSONS)
    for question, _ in instructors.FAQ:
        assert instructors._html(question) in page
    assert 6 <= len(instructors.FAQ) <= 10
    colab = [n for n in stack_names() if n.startswith("colab-")]
    assert all(f"transformers {pinned_versions(n)['transformers']}" in page for n in colab)  # from the pins
    assert instructors.overview(PRIMER).checkpoint in page and "3 s" in page
    assert 'src="http' not in page and "<script" not in page  # opens offline
    recorded = instructors.load_timings().get("seconds", {})
    for seconds in recorded.values():
        assert f"{seconds:.0f} s" in page


def test_readme_agenda_and_faq_come_from_the_same_sources():
    agenda = instructors.readme_agenda()
    later = [number for number, _ in instructors.HOMEWORK]
    for name in LESSONS:
        assert f"[{name}](notebooks/{name}.ipynb)" in agenda
        checkpoint = instructors.overview(name).checkpoint
        assert not checkpoint or name[:2] in later or f"`{checkpoint}`" in agenda
    for row in instructors.agenda_rows():
        if row["notebook"]:
            total = len(instructors.exercises(row["notebook"]))
            assert f"[{row['exercises']} of {total}](solutions/{row['notebook']}.py)" in agenda
    assert "Outside the three hours" in agenda and all(why in agenda for _, why in instructors.HOMEWORK)
    faq = instructors.readme_faq()
    assert all(f"**{q}**" in faq for q, _ in instructors.FAQ)


def test_room_table_reads_each_cell_from_the_registry_and_the_recordings():
    from peftlab.recordings import RECORDED
    from peftlab.registry import REGISTRY

    assert instructors.rooms() == [n for n in stack_names() if n.startswith("colab-")] + ["current"]
    cell = lambda failure_id, stack: instructors.room_cell(REGISTRY[failure_id], stack, matrix={})  # noqa: E731
    assert cell("blip2_causal_lm_inputs_embeds", "current") == "recording shown; live: no error"
    assert cell("blip2_causal_lm_inputs_embeds", "colab-2025.07") == "recording shown; live: TypeError"
    assert cell("second_stage_dropout", "current") == "recording shown; live: NoMatchingPeftModuleError"
    assert cell("gc_enabled_after_peft_model", "colab-2026.01") == "live"  # its transformers (4.x) raises it
    assert cell("clip_task_type", "colab-2026.04") == "live, other words (TypeError)"
    assert cell("blip2_vision2seq_import", "current") == "ImportError (none on the documented stack)"
    assert cell("blip2_vision2seq_import", "colab-2025.07") == "no error, as on the documented stack"
    assert cell("llava_qv_vision_tower", "colab-2025.07") == "live"  # the matrix ran 07 on every Colab stack
    import dataclasses

    qv = REGISTRY["llava_qv_vision_tower"]
    unrun = dataclasses.replace(
        qv, expectations=tuple(dataclasses.replace(e, measured=()) for e in qv.expectations)
    )
    assert instructors.room_cell(unrun, "colab-2025.07", {}) == "live *"  # no run backs it: starred
    seen = {"second_stage_dropout": {"current": {"outcome": "TypeError"}}}
    assert instructors.room_cell(REGISTRY["second_stage_dropout"], "current", seen).endswith(
        "(the matrix saw TypeError)"
    )
    rows, live = instructors.room_rows()
    shown = {row[1].strip("`") for row in rows}
    assert set(RECORDED) <= shown and not shown & set(live) and shown | set(live) == set(REGISTRY)


def test_room_plan_names_the_switch_and_its_pins_from_the_stack_file():
    from peftlab.versions import switch_requirements

    text = instructors.readme_room()
    assert 'peftlab.versions.switch_to("documented")' in text and "If Colab breaks" in text
    assert all(f"`{pin}`" in text for pin in switch_requirements("documented"))
    assert "torch" not in " ".join(switch_requirements("documented"))
    page = instructors.page_html()
    assert '<table id="room">' in page and '<ol id="colab-breaks">' in page
