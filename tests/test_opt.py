import pytest
import torch

from peftlab import data
from peftlab.models import OfflineError, load_model, opt


@pytest.fixture(scope="module")
def tiny():
    return opt.load_opt()


def test_scene_texts_cover_four_questions():
    sample = data.make_shapes(1, seed=3)[0]
    pairs = opt.scene_texts([sample])
    assert [a for _, a in pairs] == [
        sample.colour,
        sample.shape,
        sample.position,
        opt.OPPOSITE[sample.position],
    ]
    assert pairs[3][0] == f"{sample.caption} . which side is opposite?"
    assert opt.scene_texts([sample], ["opposite"]) == pairs[3:]


def test_tokenizer_spells_every_word_as_one_token(tiny):
    _, tokenizer = tiny
    text = "a yellow cross at the top . which side is opposite? bottom"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == text.replace("?", " ?").split()
    assert tokenizer.unk_token_id not in tokenizer(" ".join(opt.words()))["input_ids"]


def test_qa_batches_label_only_the_answer(tiny):
    _, tokenizer = tiny
    pairs = opt.scene_texts(data.make_shapes(2, seed=1), ["colour", "opposite"])
    batch = opt.qa_batches(tokenizer, pairs)[0]
    for row, (_, answer) in enumerate(pairs):
        labelled = batch["labels"][row][batch["labels"][row] != -100]
        assert tokenizer.convert_ids_to_tokens(labelled) == [answer, tokenizer.eos_token]
    full = opt.qa_batches(tokenizer, pairs, answers_only=False)[0]
    assert torch.equal(full["labels"] != -100, full["attention_mask"].bool())


def test_tiny_opt_knows_three_questions_not_the_fourth(tiny):
    model, tokenizer = tiny
    scenes = data.make_shapes(64, seed=5)
    known = opt.evaluate(model, opt.qa_batches(tokenizer, opt.scene_texts(scenes, opt.KINDS[:3])))
    new = opt.evaluate(model, opt.qa_batches(tokenizer, opt.scene_texts(scenes, ["opposite"])))
    assert known["accuracy"] > 0.95 and new["accuracy"] < 0.3 and new["loss"] > 1.0
    logits = opt.answer_logits(model, opt.qa_batches(tokenizer, opt.scene_texts(scenes[:4])))
    assert logits.shape == (4 * 4 * 2, len(tokenizer))  # 4 scenes x 4 questions x (answer, eos)


def test_second_load_comes_from_the_cache_and_a_folder_loads_too(tiny, tmp_path):
    model, tokenizer = tiny
    again, _ = load_model("opt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    from_folder, tokenizer_again = opt.load_opt(str(tmp_path))
    assert torch.equal(from_folder.lm_head.weight, model.lm_head.weight)
    assert tokenizer_again("a red circle")["input_ids"] == tokenizer("a red circle")["input_ids"]


def test_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="set CHECKPOINT to 'tiny'"):
        opt.load_opt("facebook/opt-125m")
