"""Image-text retrieval for CLIP-style models (notebook 01: CLIP, notebook 05: Chinese-CLIP).

The classes are colour x shape ("a red circle"); each has one text prompt. Training pulls each
image towards its class prompt among all prompts (a cross-entropy over ``logits_per_image``);
accuracy is measured in both directions on held-out images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from peftlab.data import BASE_COLOURS, CHINESE, COLOURS, SHAPES, Sample, make_shapes
from peftlab.train import model_device, to_device, train


def prompts(chinese: bool = False, colours: Sequence[str] = tuple(COLOURS)) -> list[str]:
    """One prompt per colour x shape class, in the order of ``Sample.label("colour_shape")``."""
    if chinese:
        return [f"{CHINESE[c]}的{CHINESE[s]}" for c in colours for s in SHAPES]
    return [f"a {c} {s}" for c in colours for s in SHAPES]


def batches(processor, samples: Sequence[Sample], texts: Sequence[str], batch_size: int = 64) -> list[dict]:  # noqa: ANN001
    """Pre-processed batches: ``pixel_values``, the ``labels`` and every prompt's token ids."""
    text = processor.tokenizer(list(texts), padding=True, return_tensors="pt")
    out = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        pixels = processor.image_processor([s.image for s in chunk], return_tensors="pt")["pixel_values"]
        labels = torch.tensor([s.label("colour_shape") for s in chunk])
        out.append({"pixel_values": pixels, "labels": labels, **text})
    return out


def loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Cross-entropy of each image against all class prompts (a contrastive classifier loss)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return F.cross_entropy(model(**inputs).logits_per_image, batch["labels"])


@torch.no_grad()
def logits(model: torch.nn.Module, batch_list: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits_per_image`` for every image of ``batch_list``, and their labels."""
    model.eval()
    device = model_device(model)
    scores, labels = [], []
    for batch in batch_list:
        inputs = to_device({k: v for k, v in batch.items() if k != "labels"}, device)
        scores.append(model(**inputs).logits_per_image.float().cpu())
        labels.append(batch["labels"])
    return torch.cat(scores), torch.cat(labels)


def accuracy(model: torch.nn.Module, batch_list: Sequence[dict]) -> dict[str, float]:
    """Top-1 retrieval accuracy: ``image_to_text`` (each image finds its prompt) and
    ``text_to_image`` (each prompt's best-scoring image is of its class, over prompts with images).
    """
    scores, labels = logits(model, batch_list)
    image_to_text = (scores.argmax(dim=1) == labels).float().mean().item()
    present = labels.unique()
    best_image = scores[:, present].argmax(dim=0)
    text_to_image = (labels[best_image] == present).float().mean().item()
    return {"image_to_text": image_to_text, "text_to_image": text_to_image}


def accuracy_per_colour(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Image-to-text top-1 accuracy for the images of each colour (a label is colour x shape)."""
    right = scores.argmax(dim=1) == labels
    colour = labels // len(SHAPES)
    return {name: right[colour == i].float().mean().item() for i, name in enumerate(COLOURS)}


def pretrain(
    model: torch.nn.Module,
    processor,  # noqa: ANN001  (a CLIPProcessor or ChineseCLIPProcessor)
    recipe: dict,
    size: int,
    chinese: bool,
    desc: str,
) -> list[float]:
    """Pre-train a CLIP-style model on the base colours only; returns the losses.

    The recipe (``images``, ``steps``, ``lr``, ``batch_size``, ``seed``: the images are drawn with
    ``1000 + seed``) of the tiny checkpoints of notebooks
    01 (CLIP) and 05 (Chinese-CLIP); yellow is left unseen, for fine-tuning to teach.
    """
    samples = make_shapes(recipe["images"], size, seed=1000 + recipe.get("seed", 0), colours=BASE_COLOURS)
    texts = prompts(chinese=chinese, colours=BASE_COLOURS)
    train_batches = batches(processor, samples, texts, recipe["batch_size"])
    return train(model, train_batches, recipe["steps"], lr=recipe["lr"], loss_fn=loss, desc=desc)
