"""Bad parameters stop at the first function that uses them, with one sentence: what is wrong, what to set.

Each case is what a learner may type into a notebook's parameters cell. The error must be a
ParameterError (a ValueError), raised before any model is loaded or trained, whose message is one
sentence naming the parameter; in Jupyter it is shown without a traceback. tests/test_bad_parameters.py
runs the same cases through the notebooks themselves.
"""

import re

import pytest
import torch

from peftlab import data, retrieval, vqa
from peftlab.device import pick_device, seed_everything
from peftlab.hub import OfflineError
from peftlab.models import cache, chinese_clip, clip, opt, vit
from peftlab.parameters import ParameterError
from peftlab.train import train


def one_sentence(error: pytest.ExceptionInfo) -> str:
    """The message of a ParameterError, checked to be one sentence on one line."""
    assert isinstance(error.value, ParameterError)
    message = str(error.value)
    assert "\n" not in message and message.endswith(".")
    assert not re.search(r"[.;:] [A-Z][a-z]", message.replace("PeftModel", "peftModel")), message
    return message


@pytest.mark.parametrize("value", ["gpu", "tpu", "cuda:x", 3, "xla"])
def test_an_unknown_device(value):
    with pytest.raises(ParameterError) as error:
        pick_device(value)
    assert f"DEVICE={value!r} is not a device name: set DEVICE to None" in one_sentence(error)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it():
    with pytest.raises(ParameterError) as error:
        pick_device("cuda")
    assert "no CUDA GPU" in one_sentence(error) and "set DEVICE to None or 'cpu'" in str(error.value)
    assert pick_device("CPU") == torch.device("cpu")


def test_a_bad_device_stops_a_loader_before_it_loads_anything(monkeypatch):
    monkeypatch.setattr(clip, "tiny_checkpoint", lambda *a: pytest.fail("loaded before checking DEVICE"))
    with pytest.raises(ParameterError, match="DEVICE='gpu'"):
        clip.load_clip(device="gpu")


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_a_bad_seed(seed):
    with pytest.raises(ParameterError) as error:
        seed_everything(seed)
    assert one_sentence(error).startswith(f"SEED={seed!r}: ")


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"steps": 0}, "steps=0"),
        ({"steps": -3}, "steps=-3"),
        ({"steps": 2.5}, "steps=2.5"),
        ({"steps": 5, "grad_accum": 0}, "GRAD_ACCUM"),
        ({"steps": 5, "lr": 0.0}, "LR"),
        ({"steps": 5, "lr": -1e-3}, "LR"),
    ],
)
def test_bad_training_settings(kwargs, named):
    model = torch.nn.Linear(2, 1)
    before = model.weight.detach().clone()
    with pytest.raises(ParameterError) as error:
        train(model, [{"x": torch.ones(1, 2)}], loss_fn=lambda m, b: m(b["x"]).sum(), **kwargs)
    assert named in one_sentence(error)
    assert torch.equal(model.weight, before)


def test_no_batches_to_train_on():
    with pytest.raises(ParameterError) as error:
        train(torch.nn.Linear(2, 1), [], 3)
    assert "training set is empty" in one_sentence(error)


@pytest.mark.parametrize("size", [0, -8])
def test_a_bad_batch_size_in_every_batching_helper(size):
    clip_processor = clip.CLIPProcessor.from_pretrained(cache.SHIPPED / "clip")
    samples = data.make_shapes(4)
    makers = [
        lambda: retrieval.batches(clip_processor, samples, retrieval.prompts(), size),
        lambda: vqa.batches(clip_processor, samples, batch_size=size),
        lambda: opt.qa_batches(clip_processor.tokenizer, [("a", "b")], size),
        lambda: vit.batches(clip_processor.image_processor, samples, batch_size=size),
    ]
    for make in makers:
        with pytest.raises(ParameterError) as error:
            make()
        assert one_sentence(error).startswith(f"batch_size={size}: ") and "BATCH_SIZE" in str(error.value)


def test_bad_data_sizes():
    for call, named in [
        (lambda: data.make_shapes(0), "n=0"),
        (lambda: data.train_test_split(8, 0), "n=0"),
        (lambda: data.make_shapes(4, size=8), "size=8"),
        (lambda: data.make_shapes(4, seed=-2), "seed=-2"),
    ]:
        with pytest.raises(ParameterError) as error:
            call()
        assert one_sentence(error).startswith(named)


def test_a_misspelt_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as error:
        clip.load_clip("openai/clip-vit-base-patch33")
    message = one_sentence(error)
    assert message.startswith("CHECKPOINT='openai/clip-vit-base-patch33' is not a folder here")
    assert "set CHECKPOINT to 'tiny' (runs offline)" in message
    assert isinstance(error.value, RuntimeError)  # as OfflineError was before ParameterError existed


def test_local_folders_that_hold_no_checkpoint(tmp_path):
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "config.json").write_text("{}")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    cases = {
        str(tmp_path / "config_only"): "holds a config.json but no weights",
        str(tmp_path): "is a folder without config.json",
        str(tmp_path / "adapter"): "holds a PEFT adapter, not a model",
        str(tmp_path / "missing"): "looks like a folder, but there is no such folder here",
        "./my-model": "looks like a folder",
        "": "names no checkpoint",
    }
    for checkpoint, says in cases.items():
        with pytest.raises(ParameterError) as error:
            clip.load_clip(checkpoint)
        assert says in one_sentence(error), checkpoint
    # a config alone is all load_config needs
    assert cache.resolve(str(tmp_path / "config_only"), "CLIP", lambda: None, weights=False)


def test_an_unknown_tiny_config():
    with pytest.raises(ParameterError) as error:
        chinese_clip.load_config("tiny-medium")
    assert "WRONG_CONFIG='tiny-medium' names no tiny config" in one_sentence(error)


def test_jupyter_shows_the_sentence_without_a_traceback():
    """IPython prints what ``_render_traceback_`` returns instead of the frames: one line."""
    lines = ParameterError("SEED=-1: a seed must be ...; set SEED to 0.")._render_traceback_()
    assert len(lines) == 1 and lines[0].endswith(
        "ParameterError\x1b[0m: SEED=-1: a seed must be ...; set SEED to 0."
    )


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_a_bad_pretraining_seed(value, monkeypatch):
    monkeypatch.setenv("PEFTLAB_PRETRAIN_SEED", value)
    with pytest.raises(ParameterError) as error:
        cache.pretrain_seed()
    assert one_sentence(error).startswith(f"PEFTLAB_PRETRAIN_SEED={value!r}: ")


def test_a_bad_parameter_passes_through_expect_failure_untouched():
    """A cell that shows a registered failure may be the first to use a parameter (notebook 03 trains a
    frozen model with STAGE_TWO_STEPS): the bad parameter stops it with its own sentence."""
    from peftlab.capture import expect_failure

    with pytest.raises(ParameterError) as error:
        with expect_failure("second_stage_nothing_to_train"):
            train(torch.nn.Linear(2, 1).requires_grad_(False), [{}], 0)
    assert one_sentence(error).startswith("steps=0: ")
