"""``peftlab sweep``: the spread table from scorecards (the runs themselves need papermill and minutes)."""

import importlib.util

import pytest

from peftlab import scorecard
from peftlab.tools.cli import main
from peftlab.tools.sweep import summarise


def card(seed, value, passed=True):
    return {
        "notebook": "01_x",
        "seed": seed,
        "pretrain_seed": 0,
        "error": "" if passed else "AssertionError",
        "checks": [
            {"claim": "gain", "passed": passed, "figure": f"closes {value:.0%}", "value": value},
            {"claim": "no value", "passed": True, "figure": "ok", "value": None},
        ],
    }


def test_summary_gives_the_spread_and_a_failing_figure():
    rows = summarise([card(0, 0.5), card(1, 0.3), card(2, 0.1, passed=False)])
    gain = next(r for r in rows if r[1] == "gain")
    assert gain[2:5] == ["3", "2", "0.1 / 0.3 / 0.5"] and gain[5] == "closes 10%"
    assert next(r for r in rows if r[1] == "no value")[4] == "-"


def test_checks_record_the_value_their_threshold_judges():
    scorecard.reset()
    scorecard.check_headroom("share", 0.5, 0.75, 0.25)
    scorecard.check_gain("gain", 0.5, 0.8, 0.2)
    assert [c["value"] for c in scorecard.card()["checks"]] == [pytest.approx(0.5), pytest.approx(0.3)]
    scorecard.reset()


@pytest.mark.skipif(importlib.util.find_spec("papermill") is not None, reason="papermill is installed")
def test_without_papermill_the_sweep_says_how_to_get_it(capsys):
    assert main(["sweep", "--only", "01"]) == 2
    assert "pip install papermill" in capsys.readouterr().err


def test_combine_tabulates_earlier_sweeps_per_stack(tmp_path, capsys):
    import json

    for stack, values in {"current": (0.5, 0.3), "documented": (0.7, 0.6)}.items():
        runs = [card(s, v) | {"stack": stack} for s, v in enumerate(values)]
        (tmp_path / stack).mkdir()
        (tmp_path / stack / "sweep.json").write_text(json.dumps(runs))
    assert main(["sweep", "--combine", str(tmp_path / "current"), str(tmp_path / "documented")]) == 0
    out = capsys.readouterr().out
    assert (
        "| current    | 2    | 2      | 0.3 / 0.4 / 0.5" in out
        and "| documented | 2    | 2      | 0.6 / 0.65 / 0.7" in out
    )
    assert "4 runs, 0 stopped" in out
