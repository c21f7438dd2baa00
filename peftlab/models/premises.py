"""The premises of the tiny checkpoints: what each notebook's story needs its base model to be.

Every notebook prints them before it fine-tunes (its "base model" lines): the tiny CLIP finds the
captions of red, green and blue shapes but not of yellow ones (notebooks 00, 01); BLIP-2 and LLaVA
answer the colour question for the base colours and never say "yellow" about an image, though
their language models met the word in pre-training (02, 06, 07); the OPT answers three questions and not the fourth
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

#: family -> premise -> (lowest, highest) allowed, for a pre-training with seed 0 on any pinned stack.
#: Measured 2026-12-06 over pre-training seeds 0-2 on both pinned stacks (6 pre-trainings a family;
#: "min-max" below): each bound keeps a margin beyond every seed-0 value and every healthy other seed.
#: Two pre-trainings fall outside, as they should: seed 2 on the documented stack gave a BLIP-2 whose
#: colour answers collapsed (green 10%, blue 23%) and a "base" Chinese-CLIP at chance (zero-shot 24%).
BANDS: dict[str, dict[str, tuple[float, float]]] = {
    # image to text, base colours 0.36-0.92 (seed 0: 0.36-0.86), yellow 0.02-0.16, zero-shot 0.83-0.92
    "clip": {
        **{f"image to text, {c}": (0.3, 1.0) for c in data.BASE_COLOURS},
        "image to text, yellow": (0.0, 0.3),
        "zero-shot, base colours (chance 1/12)": (0.6, 1.0),
    },
    # base colours 0.72-0.92, yellow 0.0-0.27, zero-shot 0.81-0.92 (documented seed 2: 0.22-0.25, 0.24)
    "chinese_clip-base": {
        **{f"image to text, {c}": (0.5, 1.0) for c in data.BASE_COLOURS},
        "image to text, yellow": (0.0, 0.35),
        "zero-shot, base colours (chance 1/12)": (0.6, 1.0),
    },
    # base colours 0.59-0.94, yellow 0.0-0.25, zero-shot 0.79-0.92
    "chinese_clip-large": {
        **{f"image to text, {c}": (0.5, 1.0) for c in data.BASE_COLOURS},
        "image to text, yellow": (0.0, 0.35),
        "zero-shot, base colours (chance 1/12)": (0.6, 1.0),
    },
    # base colours 0.92-1.0 (documented seed 2: 0.10-0.83), yellow 0.0, shape 0.60-0.84, position 0.91-0.99
    "blip2": {
        **{f"colour question, {c}": (0.8, 1.0) for c in data.BASE_COLOURS},
        "colour question, yellow": (0.0, 0.05),
        "shape question": (0.5, 1.0),
        "position question": (0.85, 1.0),
    },
    # base colours 0.90-1.0, yellow 0.0, shape 0.68-0.80, position 0.94-0.98
    "llava": {
        **{f"colour question, {c}": (0.8, 1.0) for c in data.BASE_COLOURS},
        "colour question, yellow": (0.0, 0.05),
        "shape question": (0.55, 1.0),
        "position question": (0.85, 1.0),
    },
    # colour, shape and position 1.0, opposite 0.0 in all six
    "opt": {
        **{f"{kind} question": (0.9, 1.0) for kind in ("colour", "shape", "position")},
        "opposite question": (0.0, 0.1),
    },
    # all colours 0.67-0.75, base colours 0.72-0.97, yellow 0.09-0.38
    "vit": {
        "shape and position at 32 px": (0.5, 1.0),
        **{f"at 32 px, {c}": (0.6, 1.0) for c in data.BASE_COLOURS},
        "at 32 px, yellow": (0.0, 0.5),
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
    # Recorded, not required (no band): the notebooks say the language model met the word "yellow"
    # in pre-training, which holds by construction; whether it still answers "yellow" from a caption
    # as text varied: BLIP-2 in 2 of the 6 pre-trainings above, LLaVA in 3 (both shipped ones do).
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
