"""Issue 15: published architectures as facts, the "not judged: random weights" outcome, the fp16
gradient scaler, and ``peftlab run --real-size``'s arguments (the real-size runs themselves are too
slow for CI: ``peftlab run --real-size --only 01 03 05``)."""

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook
from transformers import CLIPConfig

from peftlab import scorecard
from peftlab.tools import real_size
from peftlab.tools.published import CLIP_VIT_B_32, PUBLISHED, build_on_meta, config
from peftlab.tools.runner import Outcome, run_all
from peftlab.train import STEP_SECONDS, grad_scaler, needs_grad_scaler, train


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv(scorecard.MODE_ENV, raising=False)
    scorecard.reset()
    yield
    scorecard.reset()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    """Built on the meta device (no memory): the count is exact, and rounds to the published total
    (to the digits it is stated with: 188 means 187.5-188.5 M; 7.06B, ``stated_to=10``, 7055-7065 M)."""
    model = build_on_meta(name)
    count = sum(p.numel() for p in model.parameters())
    assert count == PUBLISHED[name].parameters
    stated = PUBLISHED[name].published_millions
    decimals = len(repr(stated).split(".")[1]) if isinstance(stated, float) else 0
    assert abs(count / 1e6 - stated) <= 0.5 * (PUBLISHED[name].stated_to or 10**-decimals)
    assert type(model).__name__ == PUBLISHED[name].model_class


def test_clip_values_are_clip_config_defaults():
    """transformers' CLIPConfig() defaults are openai/clip-vit-base-patch32: the facts agree with them."""
    default, ours = CLIPConfig(), config("clip-vit-base-patch32")
    for tower in ("text_config", "vision_config"):
        for key in CLIP_VIT_B_32[tower]:
            assert getattr(getattr(ours, tower), key) == getattr(getattr(default, tower), key), (tower, key)
    assert ours.projection_dim == default.projection_dim == 512


def test_unknown_published_name():
    with pytest.raises(ValueError, match="Unknown published checkpoint"):
        config("gpt-5")


def test_not_judged_only_under_random_weights(monkeypatch):
    with pytest.raises(AssertionError):  # outside --real-size, a claim that needs weights is judged
        scorecard.check("gain", False, "0% -> 0%", needs_pretrained=True)
    scorecard.reset()
    monkeypatch.setenv(scorecard.MODE_ENV, scorecard.REAL_SIZE)
    scorecard.check("gain", False, "0% -> 0%", needs_pretrained=True)  # recorded, not raised
    scorecard.check_headroom("headroom", 0.1, 0.1, 0.5)  # accuracy gains need weights by default
    scorecard.check("reload exact", True, "max 0")
    with pytest.raises(AssertionError):  # a check that needs no weights is still judged
        scorecard.check("shape", False, "2 != 3")
    checks = scorecard.card()["checks"]
    assert [c["passed"] for c in checks] == [None, None, True, False]
    assert all(scorecard.NOT_JUDGED in c["figure"] for c in checks[:2])


def _card(passed):
    checks = [{"claim": f"c{i}", "passed": p, "figure": ""} for i, p in enumerate(passed)]
    return {
        "failures": [{"id": "clip_task_type", "reproduced": True, "outcome": "TypeError"}],
        "checks": checks,
        "stack": "current",
        "versions": {},
        "peak_rss_mb": 2048.0,
        "seconds_per_step": 1.5,
    }


def test_not_judged_never_counts_as_passed():
    nb = "01_clip_task_type"
    assert real_size.ok(nb, _card([True, None]), "")
    assert not real_size.ok(nb, _card([None, None]), "")  # nothing judged: not a pass
    assert not real_size.ok(nb, _card([True, False]), "")
    assert not real_size.ok(nb, _card([True]), "AssertionError")
    assert not real_size.ok(nb, _card([True]) | {"failures": []}, "")  # its failure not shown
    row = Outcome("01_clip_task_type", 12.0, _card([True, None]), real_size=True).row()
    assert row[3] == "1/1 passed" and row[4] == "1" and row[6] == "2.0 GB" and row[7] == "1.5"
    assert not Outcome("01_clip_task_type", 1.0, _card([None]), real_size=True).ok


def test_grad_scaler_choice():
    assert needs_grad_scaler("cuda", torch.float16)
    assert not needs_grad_scaler("cuda", torch.bfloat16)  # bf16 has float32's range
    assert not needs_grad_scaler("cuda", None)
    assert not needs_grad_scaler("cpu", torch.float16)
    assert grad_scaler("cpu", torch.float16) is None


def test_train_times_each_step():
    STEP_SECONDS.clear()
    model = torch.nn.Linear(2, 1)
    batch = {"x": torch.ones(4, 2)}
    train(model, [batch], 3, loss_fn=lambda m, b: m(b["x"]).pow(2).mean(), progress=False)
    assert len(STEP_SECONDS) == 3 and scorecard.card()["seconds_per_step"] > 0


def test_default_set_leaves_blip2_out_with_its_reason():
    assert {"01", "03", "05"} <= set(real_size.default_set()) and "02" not in real_size.default_set()
    assert "20 minutes" in real_size.PLANS["02"].left_out and "NF4" in real_size.PLANS["02"].left_out


def test_left_out_notebook_is_reported_not_run(tmp_path, capsys):
    nb = new_notebook(cells=[new_code_cell("raise SystemExit('must not run')")])
    nbformat.write(nb, tmp_path / "02_blip2_inputs_embeds.ipynb")
    [outcome] = run_all(tmp_path, tmp_path / "build", ["02"], real_size=True)
    assert not outcome.ok and outcome.error.startswith("not run here")
    assert "not run here: 02_blip2_inputs_embeds.ipynb: " in capsys.readouterr().out


def test_cli_parses_real_size(monkeypatch):
    from peftlab.tools import cli, runner

    seen = {}
    monkeypatch.setattr(runner, "_run_real_size", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["run", "--real-size", "--only", "01", "03", "05"]) == 0
    assert seen["real_size"] and seen["only"] == ["01", "03", "05"] and seen["record"] is None


def test_a_checkpoint_without_head_gets_the_same_head_at_every_load(tmp_path):
    """google/vit-base-patch16-224-in21k has no classifier: two loads must still be the same model."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    from peftlab.models.vit import load_vit

    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    first, second = load_vit(str(tmp_path), device="cpu")[0], load_vit(str(tmp_path), device="cpu")[0]
    assert torch.equal(first.classifier.weight, second.classifier.weight)
    assert first.classifier.weight.abs().sum() > 0


def test_readme_memory_table_comes_from_the_facts_file(tmp_path):
    import json

    from peftlab.tools.readme import real_size_table

    facts = {
        "notebooks": {
            "01_clip_task_type": {
                "checkpoints": ["openai/clip-vit-base-patch32"],
                "parameters": {"BATCH_SIZE": 8, "LORA_STEPS": 3},
                "peak_rss_mb": 2048.0,
                "seconds_per_step": 4.25,
                "stack": "current",
                "measured": "2026-12-02",
            }
        }
    }
    path = tmp_path / "real_size.json"
    path.write_text(json.dumps(facts))
    text = real_size_table(path)
    assert "| 01 | `openai/clip-vit-base-patch32` | batch_size 8, lora_steps 3 | 2.0 GB | 4.2 s |" in text
    assert "20 minutes" in next(line for line in text.splitlines() if line.startswith("| 02 |"))


def test_parameters_cells_state_the_measured_memory():
    """Each measured notebook's CHECKPOINT comment states the peak RSS recorded in docs/real_size.json."""
    import json

    from peftlab.tools import instructors
    from peftlab.tools.readme import REAL_SIZE_FACTS

    for name, fact in json.loads(REAL_SIZE_FACTS.read_text())["notebooks"].items():
        stated = instructors.overview(name).memory
        assert stated.startswith(f"{fact['peak_rss_mb'] / 1024:.1f} GB peak RSS"), (name, stated)


@pytest.mark.parametrize("key, notebook", [("blip2-opt-2.7b", "02"), ("llava-1.5-7b", "07")])
def test_too_big_reasons_are_computed_from_the_facts(key, notebook):
    """The stated reasons agree with the parameter count: 3.74 B -> 15 GB, 7.06 B -> 28 GB in float32."""
    published = PUBLISHED[key]
    size = f"{published.float32_gigabytes:.0f} GB"
    assert size in published.fits_here and f"{published.parameters / 1e9:.2f} B" in published.fits_here
    assert size == {"blip2-opt-2.7b": "15 GB", "llava-1.5-7b": "28 GB"}[key]
    assert notebook in published.notebooks


def test_llava_values_are_the_published_architecture():
    """llava-hf/llava-1.5-7b-hf: Llama-2-7B (32 x 4096, MLP 11008, 32,064 rows), CLIP ViT-L/14 at 336 px
    (576 patches), a 2-layer gelu projector 1024 -> 4096 -> 4096, the image token 32000."""
    model = build_on_meta("llava-1.5-7b")
    cfg = model.config
    assert (cfg.image_token_index, cfg.projector_hidden_act, cfg.vision_feature_layer) == (32000, "gelu", -2)
    assert (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2 == 576
    assert model.get_input_embeddings().weight.shape == (32064, 4096)
    projector = next(m for n, m in model.named_modules() if n.endswith("multi_modal_projector"))
    linears = [m for m in projector.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(4096, 1024), (4096, 4096)]


@pytest.mark.parametrize("notebook", ["02", "06", "07"])
def test_billion_parameter_notebooks_say_why_they_are_not_run(notebook, tmp_path, capsys):
    """``--real-size`` lists them with "not run here: <reason>"; ``--only 07`` says so, runs nothing."""
    plan = real_size.PLANS[notebook]
    assert notebook not in real_size.default_set() and plan.left_out and plan.checkpoints
    key = plan.checkpoints["CHECKPOINT"]
    assert PUBLISHED[key].hub_id in plan.left_out or notebook == "02"
    assert f"{PUBLISHED[key].float32_gigabytes:.0f} GB" in plan.left_out
    with pytest.raises(ValueError, match="does not run at real size here"):
        real_size.parameters_for(f"{notebook}_x")
    nb = new_notebook(cells=[new_code_cell("raise SystemExit('must not run')")])
    nbformat.write(nb, tmp_path / f"{notebook}_x.ipynb")
    [outcome] = run_all(tmp_path, tmp_path / "build", [notebook], real_size=True)
    assert not outcome.ok and f"not run here: {notebook}_x.ipynb: {plan.left_out}" in capsys.readouterr().out
    assert PUBLISHED[key].hub_id in outcome.row()[1]
