"""``peftlab sweep``: the plan and its shards, the spread and failure-rate summary, combining sweeps."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from peftlab import models, scorecard
from peftlab.models.cache import shipped_manifest
from peftlab.tools import sweep
from peftlab.tools.cli import main


def card(seed, value, passed=True, stack="current", role="fit"):
    return {
        "notebook": "01_x",
        "seed": seed,
        "pretrain_seed": 0,
        "stack": stack,
        "role": role,
        "error": "" if passed else "AssertionError",
        "checks": [
            {
                "claim": "gain",
                "passed": passed,
                "figure": f"closes {value:.0%}",
                "value": value,
                "threshold": [">=", 0.2],
                "learned": True,
            },
            {"claim": "no value", "passed": True, "figure": "ok", "value": None},
        ],
    }


def test_summary_gives_the_spread_the_threshold_and_a_failing_figure():
    entries = sweep.summary([card(0, 0.5), card(1, 0.3), card(2, 0.1, passed=False)])
    gain = next(e for e in entries if e["claim"] == "gain")
    assert (gain["runs"], gain["passed"], gain["min"], gain["median"], gain["max"]) == (3, 2, 0.1, 0.3, 0.5)
    assert gain["threshold"] == (">=", 0.2) and gain["learned"] and gain["a_failing_figure"] == "closes 10%"
    assert "min" not in next(e for e in entries if e["claim"] == "no value")


def test_failure_bound_is_the_rule_of_three_without_failures_and_grows_with_them():
    assert sweep.failure_bound(0, 100) == pytest.approx(0.0295, abs=0.001)  # about 3 / 100
    assert sweep.failure_bound(0, 10) == pytest.approx(0.259, abs=0.002)
    assert sweep.failure_bound(1, 100) > sweep.failure_bound(0, 100) and sweep.failure_bound(10, 10) == 1.0


def test_normal_model_estimates_the_tail_beyond_the_threshold():
    values = [0.5, 0.6, 0.7, 0.55, 0.65]
    assert sweep.normal_failure_rate(values, (">=", 0.2)) < 1e-4
    assert sweep.normal_failure_rate(values, ("<", 0.6)) == pytest.approx(0.5, abs=0.01)
    assert sweep.normal_failure_rate(values[:3], (">=", 0.2)) is None  # too few runs for a model


def test_shards_partition_the_plan():
    runs = list(range(10))
    parts = [sweep.shard(runs, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == runs and sweep.shard(runs, None) == runs
    with pytest.raises(ValueError, match="1 <= i <= n"):
        sweep.shard(runs, "4/3")


def test_roles_and_stacks_are_kept_apart(tmp_path, capsys):
    for stack, role, values in [("current", "fit", (0.5, 0.3)), ("documented", "held-back", (0.7, 0.6))]:
        runs = [card(s, v, stack=stack, role=role) for s, v in enumerate(values)]
        (tmp_path / stack).mkdir()
        (tmp_path / stack / "sweep.json").write_text(json.dumps(runs))
    record = tmp_path / "summary.json"
    folders = [str(tmp_path / "current"), str(tmp_path / "documented")]
    assert main(["sweep", "--combine", *folders, "--record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "| current    | fit       | 2" in out and "| documented | held-back | 2" in out
    assert "0.3 / 0.302 / 0.4 / 0.5" in out and "4 runs, 0 stopped" in out
    recorded = json.loads(record.read_text())
    assert ["01_x", "documented", "held-back", 0, 1] in recorded["runs"] and len(recorded["summary"]) == 4
    page = record.with_suffix(".md").read_text()
    assert (
        "* documented, held-back: 2 combinations (pre-training seeds [0], SEED [0, 1])" in page
        and "| current    | fit       | 2" in page
    )


TOY = """
from peftlab import scorecard
scorecard.reset()
scorecard.prove("a learned figure", (SEED * 7 % 5) / 10, needs_pretrained=True, at_least=0.0)
scorecard.record("seed", SEED)
scorecard.save()
"""


def test_two_shards_combined_equal_one_run(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = new_notebook(cells=[new_code_cell("SEED = 0"), new_code_cell(TOY)])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebooks / "01_toy.ipynb")
    common = ["sweep", "--notebooks", str(notebooks), "--seeds", "0", "1", "2", "--pretrain-seeds", "0"]
    assert main([*common, "--build", str(tmp_path / "one")]) == 0
    assert main([*common, "--shard", "1/2", "--build", str(tmp_path / "a")]) == 0
    assert main([*common, "--shard", "2/2", "--build", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    main(["sweep", "--combine", str(tmp_path / "one")])
    single = capsys.readouterr().out
    main(["sweep", "--combine", str(tmp_path / "a"), str(tmp_path / "b")])
    assert capsys.readouterr().out == single and "0 / 0.004 / 0.2 / 0.4" in single


def test_checks_record_the_value_their_threshold_judges():
    scorecard.reset()
    scorecard.check_headroom("share", 0.5, 0.75, 0.25)
    scorecard.check_gain("gain", 0.5, 0.8, 0.2)
    assert [c["value"] for c in scorecard.card()["checks"]] == [pytest.approx(0.5), pytest.approx(0.3)]
    scorecard.reset()


def test_combine_refuses_a_folder_without_a_sweep(tmp_path, capsys):
    from peftlab.tools.sweep import combine

    assert combine([tmp_path]) == 2
    assert "no sweep.json" in capsys.readouterr().err


def test_rejudge_uses_the_checkouts_thresholds_on_the_recorded_facts():
    """A run judged with a threshold since re-derived (03's stage-one premise): judged again on its
    recorded facts, it passes or fails by today's proofs file; a run that saved no scorecard stays as it was."""
    fact = "stage one: share of the new question's gap closed"
    stopped = {
        "notebook": "03_second_stage_dropout",
        "error": "proof failed: stage one starts teaching the new question",
    }
    ran = stopped | {"facts": {fact: 0.25}, "proofs": []}
    again = sweep.rejudge(ran)
    premise = next(v for v in again["proofs"] if v["fact"] == fact)
    assert premise["passed"] is True and again["error"] == ""
    assert (
        sweep.rejudge(ran | {"facts": {fact: 0.05}})["error"]
        == "proof failed: stage one starts teaching the new question"
    )
    assert sweep.rejudge(stopped) == stopped


def test_a_sweep_refuses_to_start_while_a_shipped_checkpoint_is_stale(tmp_path, monkeypatch, capsys):
    manifest = shipped_manifest()
    manifest["checkpoints"]["blip2"] = manifest["checkpoints"]["blip2"] | {"recipe": "not-todays"}
    monkeypatch.setattr(models, "shipped_manifest", lambda: manifest)
    assert models.stale_shipped() == ["blip2"]
    (tmp_path / "01_x.ipynb").write_text(nbformat.writes(new_notebook(cells=[new_code_cell("1/0")])))
    argv = ["sweep", "--notebooks", str(tmp_path), "--build", str(tmp_path / "b"), "--seeds", "0"]
    assert main([*argv, "--pretrain-seeds", "0"]) == 2
    assert "shipped tiny blip2 changed" in capsys.readouterr().err and not (tmp_path / "b").exists()
