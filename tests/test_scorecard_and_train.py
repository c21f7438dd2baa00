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
    card = scorecard.card("x")
    assert [c["passed"] for c in card["checks"]] == [True, False, True, False, True, False]
    assert next(c for c in card["checks"] if c["headline"])["claim"] == "gain"


def test_save_needs_a_failure_and_a_check(tmp_path, monkeypatch):
    with pytest.raises(AssertionError, match="must show its failure"):
        scorecard.save("nb")
    scorecard.record_failure("f", True, "TypeError")
    scorecard.check("ok", True, "x")
    monkeypatch.setenv("PEFTLAB_RESULTS_DIR", str(tmp_path))
    scorecard.save("nb", seconds=1.0)
    assert json.loads((tmp_path / "nb.json").read_text())["failures"][0]["id"] == "f"


def test_a_failed_check_still_leaves_its_figures_for_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFTLAB_RESULTS_DIR", str(tmp_path))
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
