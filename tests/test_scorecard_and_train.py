import json

import pytest
import torch

from peftlab import scorecard
from peftlab.train import NothingToTrainError, count_parameters, train, warmup_cosine


@pytest.fixture(autouse=True)
def _clean():
    scorecard.reset()
    yield
    scorecard.reset()


def test_checks_assert_and_record():
    scorecard.check("ok", True, "1 -> 2")
    with pytest.raises(AssertionError, match="worse: 2 -> 1"):
        scorecard.check("worse", False, "2 -> 1")
    scorecard.check_gain("gain", 0.5, 0.8, 0.2)
    with pytest.raises(AssertionError, match="needs"):
        scorecard.check_gain("small gain", 0.5, 0.6, 0.2)
    scorecard.check_same("same", torch.ones(3), torch.ones(3))
    with pytest.raises(AssertionError, match="max"):
        scorecard.check_same("differs", torch.ones(3), torch.zeros(3))
    card = scorecard.card()
    assert [c["passed"] for c in card["checks"]] == [True, False, True, False, True, False]
    assert next(c for c in card["checks"] if c["claim"] == "gain")["threshold"] == (">=", 0.2)


def test_prove_takes_one_threshold_and_records_it():
    scorecard.prove("falls", 0.1, below=0.25)
    with pytest.raises(AssertionError, match="needs >= 0.5"):
        scorecard.prove("rises", 0.4, at_least=0.5)
    with pytest.raises(TypeError, match="one threshold keyword"):
        scorecard.prove("two", 0.4, at_least=0.1, below=0.5)
    [falls, rises] = scorecard.card()["checks"]
    assert falls["threshold"] == ("<", 0.25) and falls["value"] == 0.1 and rises["passed"] is False


def test_a_rerun_cell_replaces_its_entry():
    scorecard.check("claim", True, "first")
    scorecard.check("claim", True, "second")
    scorecard.record_failure("f", True, "TypeError")
    scorecard.record_failure("f", True, "TypeError")
    card = scorecard.card()
    assert [c["figure"] for c in card["checks"]] == ["second"] and len(card["failures"]) == 1


def test_facts_are_recorded_silently_as_plain_data(capsys):
    scorecard.record("loss", torch.tensor(0.5))
    scorecard.record("shape", torch.Size([2, 3]))
    scorecard.record("per colour", {"red": torch.tensor(1.0)})
    assert capsys.readouterr().out == ""
    assert scorecard.card()["facts"] == {"loss": 0.5, "shape": [2, 3], "per colour": {"red": 1.0}}


def test_save_needs_a_check_writes_only_for_a_named_run_and_stays_short(tmp_path, monkeypatch, capsys):
    with pytest.raises(AssertionError, match="showed no check"):
        scorecard.save()
    monkeypatch.setenv(scorecard.RESULTS_ENV, str(tmp_path))
    scorecard.record_failure("f", True, "TypeError")
    for i in range(8):
        scorecard.check(f"claim {i}", True, "x")
    scorecard.record("a fact", 1)
    capsys.readouterr()
    assert scorecard.save() is None and list(tmp_path.iterdir()) == []  # no name: nothing written
    assert len(capsys.readouterr().out.splitlines()) <= 12
    monkeypatch.setenv(scorecard.NOTEBOOK_ENV, "nb")
    scorecard.save()
    written = json.loads((tmp_path / "nb.json").read_text())
    assert written["failures"][0]["id"] == "f" and written["facts"] == {"a fact": 1}


def test_the_notebook_and_the_runner_must_agree_on_its_name(monkeypatch):
    monkeypatch.setenv(scorecard.NOTEBOOK_ENV, "01_a")
    with pytest.raises(ValueError, match="calls itself '02_b'"):
        scorecard.reset("02_b")
    scorecard.reset("01_a")
    assert scorecard.notebook_name() == "01_a"


def test_a_failed_check_still_leaves_its_figures_for_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv(scorecard.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(scorecard.NOTEBOOK_ENV, "01_clip_task_type")
    scorecard.record_failure("clip_task_type", True, "TypeError")
    scorecard.check("ok", True, "x", value=0.9)
    with pytest.raises(AssertionError):
        scorecard.check_headroom("gain", 0.6, 0.5, 0.3)
    written = json.loads((tmp_path / "01_clip_task_type.json").read_text())
    assert written["stopped"] == "gain" and [c["passed"] for c in written["checks"]] == [True, False]
    assert written["checks"][1]["value"] == pytest.approx(-0.25)


def test_train_refuses_a_frozen_model():
    model = torch.nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(NothingToTrainError, match="0 trainable parameters"):
        train(model, [{}], steps=1)


def test_train_lowers_loss():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x = torch.randn(32, 4)
    batch = {"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5, 3.0])}

    def loss_fn(m, b):
        return torch.nn.functional.mse_loss(m(b["x"]).squeeze(-1), b["y"])

    losses = train(model, [batch], steps=100, lr=0.05, loss_fn=loss_fn, grad_accum=2, progress=False)
    assert len(losses) == 100 and losses[-1] < 0.1 * losses[0]
    assert count_parameters(model) == (5, 5)


def test_warmup_cosine_schedule_reaches_the_optimiser():
    factor = warmup_cosine(steps=10, warmup=2)
    assert [round(factor(s), 3) for s in (0, 1, 2, 6, 9)] == [0.5, 1.0, 1.0, 0.5, 0.038]
    model = torch.nn.Linear(1, 1)
    seen = []

    def loss_fn(m, b):  # records the rate the optimiser used at each step
        seen.append(m.weight.detach().clone())
        return m(torch.ones(1, 1)).sum()

    train(model, [{}], steps=10, lr=0.1, loss_fn=loss_fn, schedule=factor, progress=False)
    steps = [(a - b).abs().item() for a, b in zip(seen, seen[1:])]  # Adam's first steps are about lr
    assert steps[0] == pytest.approx(0.05, rel=0.05) and steps[1] == pytest.approx(0.1, rel=0.05)
    assert steps[-1] < 0.05


def test_headroom_is_the_share_of_the_gap_closed():
    assert scorecard.headroom_closed(0.5, 0.75) == pytest.approx(0.5)
    assert scorecard.headroom_closed(0.8, 0.7) == pytest.approx(-0.5)
    assert scorecard.headroom_closed(1.0, 1.0) == 1.0
    scorecard.check_headroom("closes half", 0.6, 0.8, 0.5)
    with pytest.raises(AssertionError, match="closes 25% of the gap"):
        scorecard.check_headroom("closes a quarter", 0.6, 0.7, 0.5)
