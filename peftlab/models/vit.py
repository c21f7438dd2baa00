"""ViT for image classification: the model of notebook 04 (position embeddings at a new resolution).

The tiny ViT has the real architecture (a patch convolution, a class token, a table of learned
position embeddings, a transformer encoder, a linear head) with two layers of width 64 and 32 px
images in 8 px patches: a 4 x 4 grid of patches plus the class token, so 17 position embeddings.
It is pre-trained at 32 px to say which shape is where ("circle left", ... 16 classes), on images
in the base colours. Where the shape is can only be read from the position embeddings, so they
matter for this task, as they do for any real ViT.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from peftlab import data
from peftlab.device import pick_device
from peftlab.models.cache import TINY, TinyRecipe, pretrain_seed, quiet_loading, resolve, tiny_checkpoint
from peftlab.parameters import check_batch_size
from peftlab.train import model_device, train

#: The tiny ViT: 2 layers of width 64, 32 px images in 8 px patches (17 position embeddings).
TINY_VIT = {"width": 64, "layers": 2, "heads": 4, "image_size": 32, "patch_size": 8}
#: Its pre-training: which shape is where, at 32 px, base colours only (yellow is new later).
PRETRAIN = {"images": 1024, "steps": 400, "lr": 2e-3, "batch_size": 64, "seed": 0}


def class_names() -> list[str]:
    """The 16 classes, shape then position: ``"circle left"``, ..., ``"cross bottom"``."""
    return [f"{shape} {position}" for shape in data.SHAPES for position in data.POSITIONS]


def label(sample: data.Sample) -> int:
    """The class index of ``sample`` in :func:`class_names`."""
    return data.SHAPES.index(sample.shape) * len(data.POSITIONS) + data.POSITIONS.index(sample.position)


def tiny_vit_config(image_size: int = TINY_VIT["image_size"]) -> ViTConfig:
    """The config of the tiny ViT (see :data:`TINY_VIT`) with a 16-class head."""
    t, names = TINY_VIT, class_names()
    return ViTConfig(
        hidden_size=t["width"],
        num_hidden_layers=t["layers"],
        num_attention_heads=t["heads"],
        intermediate_size=2 * t["width"],
        image_size=image_size,
        patch_size=t["patch_size"],
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )


def batches(
    processor: ViTImageProcessor,
    samples: Sequence[data.Sample],
    size: int | None = None,
    batch_size: int = 64,
) -> list[dict[str, torch.Tensor]]:
    """Batches of ``pixel_values`` (resized to ``size`` px when given) and ``labels``."""
    check_batch_size(batch_size)
    resize = {"size": {"height": size, "width": size}} if size else {}
    out = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        pixels = processor([s.image for s in chunk], return_tensors="pt", **resize)["pixel_values"]
        out.append({"pixel_values": pixels, "labels": torch.tensor([label(s) for s in chunk])})
    return out


@torch.no_grad()
def logits(model: torch.nn.Module, batch_list: Sequence[dict], **forward_kwargs: object) -> torch.Tensor:
    """The class logits for every image of ``batch_list``, concatenated (model in eval mode)."""
    model.eval()
    device = model_device(model)
    return torch.cat(
        [
            model(pixel_values=b["pixel_values"].to(device), **forward_kwargs).logits.float().cpu()
            for b in batch_list
        ]
    )


def accuracy(model: torch.nn.Module, batch_list: Sequence[dict], **forward_kwargs: object) -> float:
    """Top-1 accuracy over ``batch_list``; ``forward_kwargs`` go to the model (e.g. interpolate_pos_encoding)."""
    predicted = logits(model, batch_list, **forward_kwargs).argmax(-1)
    return (predicted == torch.cat([b["labels"] for b in batch_list])).float().mean().item()


def _build_tiny(folder: Path, p: dict) -> None:
    """Make the tiny ViT, pre-train it at 32 px on the base colours (recipe ``p``), save model + processor."""
    size = TINY_VIT["image_size"]
    processor = ViTImageProcessor(size={"height": size, "width": size})
    torch.manual_seed(p["seed"])
    model = ViTForImageClassification(tiny_vit_config(size))
    samples = data.make_shapes(p["images"], size, seed=1000 + p["seed"], colours=data.BASE_COLOURS)
    train(
        model,
        batches(processor, samples, batch_size=p["batch_size"]),
        p["steps"],
        lr=p["lr"],
        desc="pre-training the tiny ViT (once, then cached)",
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def tiny_recipe() -> TinyRecipe:
    """How the tiny ViT is made (pre-training seed: ``$PEFTLAB_PRETRAIN_SEED``)."""
    recipe = {**PRETRAIN, "seed": pretrain_seed()}
    return TinyRecipe(
        "vit",
        {**TINY_VIT, **recipe},
        lambda folder: _build_tiny(folder, recipe),
        sources=(_build_tiny, tiny_vit_config, class_names, data, label, batches, train),
    )


@torch.no_grad()
def seeded_head(model: ViTForImageClassification, seed: int = 0) -> None:
    """Give a new classification head the same values at every load (seeded, as transformers inits it).

    A checkpoint without this head (``google/vit-base-patch16-224-in21k`` has none) otherwise gets a
    different random head each time it is loaded, so two loads of "the same" model disagree: found
    by ``peftlab run --real-size`` (notebook 04 compares separate loads bit for bit).
    """
    generator = torch.Generator().manual_seed(seed)
    weight = model.classifier.weight
    values = torch.randn(weight.shape, generator=generator) * model.config.initializer_range
    weight.copy_(values.to(weight.device, weight.dtype))
    model.classifier.bias.zero_()


def load_vit(
    checkpoint: str = TINY, device: str | None = None
) -> tuple[ViTForImageClassification, ViTImageProcessor]:
    """Load a ViT classifier and its image processor: the tiny pre-trained one by default, else a
    folder or Hub id (for example ``google/vit-base-patch16-224-in21k``), which gets a fresh head
    for the 16 classes of :func:`class_names`. The model comes back on ``device`` in eval mode.
    """
    target = pick_device(device)
    path = resolve(checkpoint, "ViT", lambda: tiny_checkpoint(*tiny_recipe()))
    if checkpoint == TINY:
        with quiet_loading(True):
            model = ViTForImageClassification.from_pretrained(path)
    else:
        names = class_names()
        model, info = ViTForImageClassification.from_pretrained(
            path,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
        new = [
            k for k in (*info["missing_keys"], *(m[0] for m in info["mismatched_keys"])) if "classifier" in k
        ]
        if new:
            seeded_head(model)
    processor = ViTImageProcessor.from_pretrained(path)
    return model.to(target).eval(), processor
