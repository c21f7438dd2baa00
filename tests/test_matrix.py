"""``peftlab matrix``: the failure x stack table from per-stack drift results (no venv is built here)."""

import json

from peftlab.registry import REGISTRY
from peftlab.tools import matrix
from peftlab.tools.cli import main
from peftlab.versions import pinned_versions


def fake_stack(folder, versions, kinds, raised="TypeError", stopped=None):
    """A drift watch's drift.json and observations.jsonl, as one stack's job leaves them."""
    folder.mkdir(parents=True)
    rows = [
        {
            "failure": f.id,
            "notebook": f.notebook,
            "expected": "x",
            "verdict": kinds.get(f.id, "as documented"),
            "kind": kinds.get(f.id, "as documented"),
        }
        for f in REGISTRY.values()
    ]
    if stopped:
        rows.append(
            {
                "failure": "(notebook)",
                "notebook": stopped,
                "expected": "runs to the end",
                "verdict": "new failure: AssertionError",
                "kind": "new failure",
            }
        )
    (folder / "drift.json").write_text(json.dumps({"versions": versions, "rows": rows}))
    lines = [
        json.dumps({"id": f.id, "raised": raised, "types": [raised], "message": "m"})
        for f in REGISTRY.values()
    ]
    (folder / "observations.jsonl").write_text("\n".join(lines) + "\n")


def test_all_documented_passes(tmp_path, capsys):
    for stack in ("documented", "current"):
        fake_stack(tmp_path / stack, pinned_versions(stack), {})
    code = main(["matrix", "--collect", "--build", str(tmp_path), "--stacks", "documented", "current"])
    assert code == 0
    table = json.loads((tmp_path / "matrix.json").read_text())
    assert table["rows"]["clip_task_type"]["current"]["outcome"] == "TypeError"
    assert table["rows"]["01_clip_task_type (runs to the end)"]["documented"]["outcome"] == "ran to the end"
    assert (tmp_path / "matrix.png").stat().st_size > 10_000
    assert "of" in (tmp_path / "matrix.md").read_text() and "as documented" in capsys.readouterr().out


def test_a_changed_cell_or_a_stopped_notebook_fails_the_matrix(tmp_path):
    fake_stack(
        tmp_path / "documented", {}, {"second_stage_dropout": "changed"}, stopped="03_second_stage_dropout"
    )
    code = main(["matrix", "--collect", "--build", str(tmp_path), "--stacks", "documented", "current"])
    assert code == 1
    table = json.loads((tmp_path / "matrix.json").read_text())
    assert table["rows"]["second_stage_dropout"]["documented"]["kind"] == "changed"
    assert table["rows"]["03_second_stage_dropout (runs to the end)"]["documented"]["outcome"] == "stopped"
    assert table["rows"]["clip_task_type"]["current"]["kind"] == "not run"  # no results for that stack
    assert "**changed**" in matrix.markdown(table)


def test_the_primer_has_a_runs_to_the_end_row_though_it_shows_no_failure(tmp_path):
    from peftlab.registry import LESSONS

    (primer,) = [name for name, lesson in LESSONS.items() if lesson.primer]
    fake_stack(tmp_path / "current", {}, {}, stopped=primer)
    table = matrix.collect(tmp_path, ["current"])
    assert table["rows"][f"{primer} (runs to the end)"]["current"]["outcome"] == "stopped"
    assert list(table["rows"]).index(f"{primer} (runs to the end)") == len(REGISTRY)  # first notebook row


def test_unknown_stack_is_refused(tmp_path, capsys):
    assert main(["matrix", "--collect", "--build", str(tmp_path), "--stacks", "nope"]) == 2
    assert "unknown stacks ['nope']" in capsys.readouterr().err
