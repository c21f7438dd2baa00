import pytest
import torch

from peftlab import data, retrieval
from peftlab.models import OfflineError, load_model
from peftlab.models.cache import resolve
from peftlab.models.vocab import bert_char_tokenizer, clip_tokenizer, word_tokenizer


def test_clip_tokenizer_spells_whole_words(tmp_path):
    tok = clip_tokenizer(["a", "red", "circle"], tmp_path)
    ids = tok("a red circle")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == [
        "<|startoftext|>",
        "a</w>",
        "red</w>",
        "circle</w>",
        "<|endoftext|>",
    ]
    assert tok.decode(ids, skip_special_tokens=True).strip() == "a red circle"
    inner = tok("a blue square")["input_ids"][1:-1]  # unk is <|endoftext|>, which also ends every text
    assert tok.unk_token_id not in inner and len(inner) > 3  # unknown words fall back to letters


def test_bert_char_tokenizer_keeps_chinese_characters(tmp_path):
    tok = bert_char_tokenizer("红色圆形的左边", tmp_path)
    tokens = tok.convert_ids_to_tokens(tok("左边的红色圆形")["input_ids"])
    assert tokens == ["[CLS]", "左", "边", "的", "红", "色", "圆", "形", "[SEP]"]


def test_word_tokenizer_with_image_token(tmp_path):
    tok = word_tokenizer(["what", "colour", "red"], tmp_path, extra_special=("<image>",))
    ids = tok("<image> what colour? red")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<image>", "what", "colour", "?", "red"]
    assert tok.decode(ids, skip_special_tokens=True) == "what colour? red"


def test_tiny_clip_loads_through_from_pretrained_and_is_pretrained():
    model, processor = load_model("clip")
    assert model.config.vision_config.image_size == 32
    base = [s for s in data.make_shapes(96, seed=11) if s.colour in data.BASE_COLOURS]
    acc = retrieval.accuracy(
        model, retrieval.batches(processor, base, retrieval.prompts(colours=data.BASE_COLOURS))
    )
    assert acc["image_to_text"] > 0.6  # far above chance (1/12): it behaves like a pretrained model
    again, _ = load_model("clip")  # second load comes from the cache folder, identical weights
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_bad_family_and_offline_hub_id(monkeypatch):
    with pytest.raises(ValueError, match="Unknown model family 'resnet'"):
        load_model("resnet")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="set CHECKPOINT to 'tiny'"):
        load_model("clip", "openai/clip-vit-base-patch32")
    with pytest.raises(ValueError, match="names no checkpoint"):
        resolve("", "CLIP", lambda: None)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="without config.json"):
        resolve(str(tmp_path), "CLIP", lambda: None)
