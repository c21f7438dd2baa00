"""The premises of the tiny checkpoints: what each notebook's story needs its base model to be.

Every notebook prints them before it fine-tunes (its "base model" lines): the tiny CLIP finds the
captions of red, green and blue shapes but not of yellow ones (notebooks 00, 01); BLIP-2 and LLaVA
answer the colour question for the base colours, never say "yellow" about an image, yet their
language models know the word (02, 06, 07); the OPT answers three questions and not the fourth
(03); the ViT knows which shape is where at 32 px (04); the Chinese-CLIP pair finds Chinese
captions several times better than chance (05). :func:`measure` measures them on the notebooks'
own held-out data (``SEED = 0``), :data:`BANDS` says what each must be, and :func:`broken` lists
the ones a checkpoint misses. ``peftlab ship-tiny`` records the measured values of the shipped
checkpoints; tests/test_tiny_checkpoints.py pre-trains afresh and holds the result to the bands.
"""

from __future__ import annotations

import torch

from peftlab import data, retrieval, vqa
from peftlab.train import model_device, to_device

#: family -> premise -> (lowest, highest) allowed. Derived from the pre-training of seeds 0-2 on
#: both pinned stacks (18 measurements a family; the range seen is in each comment): a margin
#: below the lowest value a good property showed, above the highest a missing one showed.
_RETRIEVAL = {
    **{f"image to text, {c}": (0.3, 1.0) for c in data.BASE_COLOURS},
    "image to text, yellow": (0.0, 0.45),
    "zero-shot, base colours (chance 1/12)": (0.25, 1.0),
}
_VQA = {
    **{f"colour question, {c}": (0.8, 1.0) for c in data.BASE_COLOURS},
    "colour question, yellow": (0.0, 0.1),
    "shape question": (0.5, 1.0),
    "position question": (0.8, 1.0),
    "yellow caption as text": (0.0, 1.0),
}
BANDS: dict[str, dict[str, tuple[float, float]]] = {
    "clip": _RETRIEVAL,
    "chinese_clip-base": _RETRIEVAL,
    "chinese_clip-large": _RETRIEVAL,
    "blip2": _VQA,
    "llava": _VQA,
    "opt": {
        "colour question": (0.9, 1.0),
        "shape question": (0.9, 1.0),
        "position question": (0.9, 1.0),
        "opposite question": (0.0, 0.2),
    },
    "vit": {
        "shape and position at 32 px": (0.5, 1.0),
        **{f"at 32 px, {c}": (0.6, 1.0) for c in data.BASE_COLOURS},
    },
}

#: The colour the base models never name (fine-tuning teaches it); the others are the base colours.
NEW = "yellow"


def _per_colour(right: torch.Tensor, samples: list[data.Sample], prefix: str = "") -> dict[str, float]:
    colours = [s.colour for s in samples]
    return {f"{prefix}{c}": right[[x == c for x in colours]].float().mean().item() for c in data.COLOURS}


def _retrieval(model: torch.nn.Module, processor: object, chinese: bool) -> dict[str, float]:
    """Image-to-text accuracy per colour among all 16 captions, and zero-shot over the 12 base ones."""
    test = data.train_test_split(256, 256, size=32, seed=0)[1]
    scores, labels = retrieval.logits(model, retrieval.batches(processor, test, retrieval.prompts(chinese)))
    out = _per_colour(scores.argmax(dim=1) == labels, test, "image to text, ")
    base = [s for s in test if s.colour in data.BASE_COLOURS]
    texts = retrieval.prompts(chinese, colours=data.BASE_COLOURS)
    zero_shot = retrieval.accuracy(model, retrieval.batches(processor, base, texts))["image_to_text"]
    return out | {"zero-shot, base colours (chance 1/12)": zero_shot}


@torch.no_grad()
def _knows_the_word(language_model: torch.nn.Module, tokenizer: object, samples: list[data.Sample]) -> float:
    """Share of ``samples`` whose colour the language model alone answers from the caption in words."""
    texts = [f"{s.caption} {vqa.prompt(vqa.QUESTIONS['colour'])}" for s in samples]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    logits = language_model(**to_device(dict(enc), model_device(language_model))).logits
    last = logits[torch.arange(len(texts)), enc["attention_mask"].sum(dim=1) - 1]
    predicted = last[:, vqa.candidate_ids(tokenizer, "colour")].argmax(dim=1).tolist()
    return sum(vqa.CANDIDATES["colour"][p] == s.colour for p, s in zip(predicted, samples)) / len(samples)


def _vqa(model: torch.nn.Module, processor: object, language_model: torch.nn.Module) -> dict[str, float]:
    """The three questions, the colour question per colour, and the colour of yellow captions as text."""
    test = data.train_test_split(256, 192, size=32, seed=0)[1]
    out = {f"{kind} question": vqa.accuracy(model, processor, test, kind) for kind in vqa.KINDS}
    predicted = vqa.answer_scores(model, processor, test, "colour").argmax(dim=1)
    truth = torch.tensor([vqa.CANDIDATES["colour"].index(s.colour) for s in test])
    out |= _per_colour(predicted == truth, test, "colour question, ")
    yellow = [s for s in test if s.colour == NEW]
    return out | {"yellow caption as text": _knows_the_word(language_model, processor.tokenizer, yellow)}


def _opt(model: torch.nn.Module, tokenizer: object) -> dict[str, float]:
    from peftlab.models import opt

    scenes = data.make_shapes(128, seed=7919)
    return {
        f"{kind} question": opt.evaluate(model, opt.qa_batches(tokenizer, opt.scene_texts(scenes, [kind])))[
            "accuracy"
        ]
        for kind in opt.KINDS
    }


def _vit(model: torch.nn.Module, processor: object) -> dict[str, float]:
    from peftlab.models import vit

    scenes = data.make_shapes(256, 32, seed=7919)
    predicted = vit.logits(model, vit.batches(processor, scenes)).argmax(dim=1)
    right = predicted == torch.tensor([vit.label(s) for s in scenes])
    return {"shape and position at 32 px": right.float().mean().item()} | _per_colour(
        right, scenes, "at 32 px, "
    )


def load(family: str, checkpoint: str = "tiny") -> tuple[torch.nn.Module, object]:
    """``family``'s model and processor (tokenizer for OPT) on the CPU: a name of
    :data:`peftlab.models.TINY_RECIPES`, from its tiny checkpoint or the folder ``checkpoint``."""
    from peftlab.models import chinese_clip, llava, load_model

    if family == "llava":
        return llava.load_llava(checkpoint, device="cpu")
    if family.startswith("chinese_clip-"):
        return chinese_clip.load_chinese_clip(checkpoint, "cpu", size=family.removeprefix("chinese_clip-"))
    return load_model(family, checkpoint, device="cpu")


def measure(family: str, model: torch.nn.Module, processor: object) -> dict[str, float]:
    """The premises of ``family``'s tiny checkpoint (``model`` in eval mode, any device), by name."""
    model.eval()
    if family == "clip":
        return _retrieval(model, processor, chinese=False)
    if family.startswith("chinese_clip"):
        return _retrieval(model, processor, chinese=True)
    if family in ("blip2", "llava"):
        # BLIP-2's OPT alone; a LLaVA given no image is its language model
        return _vqa(model, processor, model.language_model if family == "blip2" else model)
    if family == "opt":
        return _opt(model, processor)
    if family == "vit":
        return _vit(model, processor)
    raise ValueError(f"No premises for family {family!r}.")


def broken(family: str, measured: dict[str, float]) -> list[str]:
    """The premises of ``family`` that ``measured`` misses, one line each (empty: all hold)."""
    out = []
    for name, (low, high) in BANDS[family].items():
        value = measured.get(name)
        if value is None or not low <= value <= high:
            out.append(f"{family}: {name} = {value} is outside [{low}, {high}]")
    return out
