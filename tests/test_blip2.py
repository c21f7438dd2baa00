"""Tests of notebook 02's code: the tiny BLIP-2 loader, VQA batches, memory arithmetic, registry."""

import pytest
import torch
from transformers import Blip2Processor, BlipImageProcessor

import peftlab.train
from peftlab import data, vqa
from peftlab.lessons import memory
from peftlab.models import blip2
from peftlab.models.vocab import word_tokenizer
from peftlab.registry import change, get
from peftlab.versions import version_of


@pytest.fixture(scope="module")
def tiny():
    """The tiny BLIP-2 (shipped with peftlab: nothing is pre-trained)."""
    return blip2.load_blip2()


def _processor(tmp_path):
    tok = word_tokenizer(vqa.words(), tmp_path, extra_special=("<image>",))
    return Blip2Processor(BlipImageProcessor(size={"height": 32, "width": 32}), tok, num_query_tokens=8)


def test_batches_put_image_tokens_first_and_train_on_the_answer_only(tmp_path):
    processor = _processor(tmp_path)
    tok = processor.tokenizer
    samples = data.make_shapes(6)
    (batch,) = vqa.batches(processor, samples, batch_size=6)
    tokens = tok.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens[:9] == ["<image>"] * 8 + ["Question"]
    for row, sample in enumerate(samples):
        kind = vqa.KINDS[row % 3]
        kept = batch["labels"][row][batch["labels"][row] != -100]
        assert tok.convert_ids_to_tokens(kept) == [vqa.answer(sample, kind), "</s>"]
    (prompts,) = vqa.batches(processor, samples, ("colour",), 6, with_answers=False)
    assert "labels" not in prompts and bool(prompts["attention_mask"].all())  # same prompt: no padding
    assert len(set(vqa.candidate_ids(tok, "colour"))) == 4


def test_training_batches_ask_every_image_every_question_once(tmp_path):
    processor = _processor(tmp_path)
    tok = processor.tokenizer
    samples = data.make_shapes(7)  # a last, shorter slice too
    out = vqa.training_batches(processor, samples, batch_size=3)
    assert len(out) == 3 * 3  # three slices of images, three batches each, in a row
    asked = {}
    for i, batch in enumerate(out):
        first = (i // 3) * 3
        for row, labels in enumerate(batch["labels"]):
            answer = tok.convert_ids_to_tokens(labels[labels != -100])[0]
            asked.setdefault(first + row, []).append(answer)
    for index, sample in enumerate(samples):
        assert sorted(asked[index]) == sorted(vqa.answer(sample, k) for k in vqa.KINDS)


def test_questions_match_the_samples():
    sample = data.make_shapes(1)[0]
    assert [q for q, _ in sample.questions] == list(vqa.QUESTIONS.values())
    assert all(vqa.answer(sample, k) in vqa.CANDIDATES[k] for k in vqa.KINDS)


def test_tiny_config_has_the_image_token_and_a_trainable_init(tmp_path):
    tok = _processor(tmp_path).tokenizer
    config = blip2.tiny_blip2_config(tok)
    assert config.image_token_index == tok.convert_tokens_to_ids("<image>")
    assert config.vision_config.initializer_range == 0.02  # BLIP-2's default 1e-10 cannot be trained
    assert config.num_query_tokens == blip2.TINY_BLIP2["query_tokens"]


def test_tiny_blip2_loads_trains_and_answers(tiny):
    model, processor = tiny
    assert type(model).__name__ == "Blip2ForConditionalGeneration" and not model.training
    assert processor.num_query_tokens == 8
    samples = data.make_shapes(4, seed=3)
    (batch,) = vqa.batches(processor, samples, batch_size=4)
    assert torch.isfinite(model(**batch).loss)
    # Generation and scoring read the same next-token logits: greedy generation's first token is
    # their argmax over the vocabulary, the candidate scores are those logits at the candidates.
    (prompts,) = vqa.batches(processor, samples, ("colour",), 4, with_answers=False)
    with torch.no_grad():
        logits = model(**prompts).logits[:, -1]
    with torch.no_grad():
        generated = model.generate(**prompts, max_new_tokens=1, do_sample=False)[:, -1]
    assert torch.equal(generated, logits.argmax(-1)), (generated, logits.argmax(-1))
    tokens = [processor.tokenizer.decode([i], skip_special_tokens=True).strip() for i in generated.tolist()]
    assert vqa.generate_answers(model, processor, samples, "colour", max_new_tokens=1) == tokens
    scores = vqa.answer_scores(model, processor, samples, "colour")
    assert torch.equal(scores, logits[:, vqa.candidate_ids(processor.tokenizer, "colour")])
    picked = [vqa.CANDIDATES["colour"][i] for i in scores.argmax(dim=1).tolist()]
    truth = [vqa.answer(s, "colour") for s in samples]
    assert vqa.accuracy(model, processor, samples, "colour") == sum(p == t for p, t in zip(picked, truth)) / 4
    one_by_one = torch.cat([vqa.answer_scores(model, processor, [s], "colour") for s in samples])
    assert torch.allclose(one_by_one, scores, atol=1e-4)  # batching changes no sample's scores
    again, _ = blip2.load_blip2()  # from the cache folder: identical weights
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_4bit_where_the_stack_allows_it(tiny):
    model, _, note = blip2.load_blip2_4bit()
    layers = blip2.layers_by_component(model, ("Linear", "Linear4bit"))
    if version_of("transformers").major >= 5:  # bitsandbytes 0.50 quantises on the CPU here
        assert note.startswith("4-bit NF4")
        assert layers["qformer"]["Linear4bit"] == 0 and layers["language_model"]["Linear4bit"] == 12
    else:  # the documented stack's transformers (4.x) refuses bitsandbytes on a CPU
        assert note.startswith("full precision") and "refuses" in note
        assert all(counts["Linear4bit"] == 0 for counts in layers.values())
    assert blip2.load_blip2_4bit(quantize=False)[2] == "full precision (QUANTIZE is off)"


def test_memory_arithmetic_equals_the_measured_footprint(tiny):
    model, _ = tiny
    meta = memory.meta_model(model.config)
    assert memory.estimate(meta, "fp32") == model.get_memory_footprint()
    for scheme in ("fp16", "bf16"):
        loaded, _ = blip2.load_blip2(dtype=memory.SCHEMES[scheme][0])
        assert memory.estimate(meta, scheme) == loaded.get_memory_footprint()
    real = memory.meta_model(memory.real_config())
    assert sum(p.numel() for p in real.parameters()) == 3_744_761_856
    sizes = {s: memory.estimate(real, s) for s in memory.SCHEMES}
    assert sizes["fp32"] == 4 * 3_744_761_856 and sizes["nf4"] < sizes["fp16"] / 3


def test_hub_id_offline_raises_a_clear_error(monkeypatch):
    from peftlab.models import OfflineError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="set CHECKPOINT to 'tiny'"):
        blip2.load_blip2("Salesforce/blip2-opt-2.7b")


def test_compute_and_autocast_dtypes_on_the_cpu():
    assert blip2.compute_dtype("cpu") == torch.float32
    assert blip2.autocast_dtype("cpu") is None and blip2.autocast_dtype("cpu", enabled=False) is None


def test_registry_boundaries_for_blip2():
    """Each expectation switches at its change's release: the releases measured either side of it."""
    kwargs, embeds, removed = (
        change(k) for k in ("blip2_forward_kwargs", "blip2_inputs_embeds", "vision2seq_removed")
    )
    failure = get("blip2_causal_lm_inputs_embeds")
    assert "unexpected keyword" in failure.expected({"transformers": kwargs.bracket()[0]}).match
    assert "multiple values" in failure.expected({"transformers": kwargs.release}).match
    assert "multiple values" in failure.expected({"transformers": embeds.bracket()[0]}).match
    assert failure.expected({"transformers": embeds.release}).raises is None
    assert get("blip2_vision2seq_import").expected({"transformers": removed.bracket()[0]}).raises is None
    assert get("blip2_vision2seq_import").expected({"transformers": removed.release}).raises == "ImportError"


def test_vision2seq_import_matches_the_registry():
    expected = get("blip2_vision2seq_import").expected()
    if expected.raises is None:
        from transformers import AutoModelForVision2Seq  # noqa: F401
    else:
        with pytest.raises(ImportError, match="AutoModelForVision2Seq"):
            from transformers import AutoModelForVision2Seq  # noqa: F401


def test_interleave_spreads_the_shorter_list_evenly():
    assert peftlab.train.interleave(list("abcdefgh"), [1, 2]) == [
        "a",
        "b",
        "c",
        1,
        "d",
        "e",
        "f",
        "g",
        2,
        "h",
    ]
