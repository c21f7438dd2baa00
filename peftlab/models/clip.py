"""CLIP: the model of notebook 01 (task_type=FEATURE_EXTRACTION)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

from peftlab import data, retrieval
from peftlab.device import pick_device
from peftlab.models.cache import TINY, TinyRecipe, pretrain_seed, quiet_loading, resolve, tiny_checkpoint
from peftlab.models.vocab import clip_tokenizer
from peftlab.train import train

#: The tiny CLIP: 2 layers of width 64 in each tower, 32 px images in 8 px patches.
TINY_CLIP = {"width": 64, "layers": 2, "heads": 4, "image_size": 32, "patch_size": 8, "projection": 64}
#: Its pre-training: colour x shape prompts for the base colours only (yellow is left for LoRA).
PRETRAIN = {"images": 1024, "steps": 1000, "lr": 2e-3, "batch_size": 64, "seed": 0}


def tiny_clip_config(
    vocab_size: int, eos_token_id: int, bos_token_id: int, image_size: int = 32
) -> CLIPConfig:
    """The config of the tiny CLIP (see :data:`TINY_CLIP`) for a given vocabulary."""
    t = TINY_CLIP
    common = {
        "hidden_size": t["width"],
        "intermediate_size": 2 * t["width"],
        "num_hidden_layers": t["layers"],
        "num_attention_heads": t["heads"],
    }
    return CLIPConfig(
        text_config={
            **common,
            "vocab_size": vocab_size,
            "max_position_embeddings": 16,
            "eos_token_id": eos_token_id,
            "bos_token_id": bos_token_id,
            "pad_token_id": eos_token_id,
        },
        vision_config={**common, "image_size": image_size, "patch_size": t["patch_size"]},
        projection_dim=t["projection"],
    )


def words() -> list[str]:
    """Every word the tiny CLIP's tokenizer spells: the retrieval prompts and the scene captions."""
    return " ".join(retrieval.prompts() + [s.caption for s in data.make_shapes(64)]).split()


def _build_tiny(folder: Path, recipe: dict) -> None:
    """Make the tiny CLIP, pre-train it on the base colours with ``recipe``, and save model + processor."""
    tokenizer = clip_tokenizer(words(), folder)
    size = TINY_CLIP["image_size"]
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = tiny_clip_config(len(tokenizer), tokenizer.eos_token_id, tokenizer.bos_token_id, size)
    torch.manual_seed(recipe["seed"])
    model = CLIPModel(config)
    retrieval.pretrain(
        model, processor, recipe, size, chinese=False, desc="pre-training the tiny CLIP (once, then cached)"
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def tiny_recipe() -> TinyRecipe:
    """How the tiny CLIP is made (pre-training seed: ``$PEFTLAB_PRETRAIN_SEED``)."""
    recipe = {**PRETRAIN, "seed": pretrain_seed()}
    return TinyRecipe(
        "clip",
        {**TINY_CLIP, **recipe},
        lambda folder: _build_tiny(folder, recipe),
        sources=(_build_tiny, tiny_clip_config, words, clip_tokenizer, data, retrieval, train),
    )


def load_clip(checkpoint: str = TINY, device: str | None = None) -> tuple[CLIPModel, CLIPProcessor]:
    """Load CLIP and its processor: the tiny pre-trained one by default, else a folder or Hub id
    (for example ``openai/clip-vit-base-patch32``). The model comes back on ``device`` in eval mode.
    """
    target = pick_device(device)
    path = resolve(checkpoint, "CLIP", lambda: tiny_checkpoint(*tiny_recipe()))
    with quiet_loading(checkpoint == TINY):
        model = CLIPModel.from_pretrained(path)
    processor = CLIPProcessor.from_pretrained(path)
    return model.to(target).eval(), processor
