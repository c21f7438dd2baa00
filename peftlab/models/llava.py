"""LLaVA: the model of notebook 07 (LoRA that lands in the vision tower).

The tiny LLaVA has the real architecture of ``llava-hf/llava-1.5-7b-hf`` in miniature: a CLIP
vision tower (2 layers of width 64, 32 px images in 8 px patches: 16 image tokens), a two-layer
MLP projector, and a Llama language model (2 layers of width 64). Its tokenizer knows ``<image>``
and the processor expands it into one token per patch. Pre-training follows LLaVA's own making, in
three short phases (see :func:`_build_tiny`): the vision tower learns colour, shape and position of
images in all four colours (LLaVA starts from a pre-trained CLIP, which has seen yellow), the Llama
learns captions of all four colours as text (it knows the word "yellow"), then, with the vision
tower frozen, the projector and the Llama learn to answer questions about base-colour images. So
the base model has seen yellow shapes but never named their colour: a LoRA fine-tune has a real
gap to close, and the image features it needs are there.

Questions use :mod:`peftlab.vqa`'s format behind LLaVA's image placeholder:
``<image> Question: what colour is the shape? Answer:``; :class:`VQAProcessor` puts it there.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerBase,
)

from peftlab import data, vqa
from peftlab.device import pick_device, placement
from peftlab.models.blip2 import caption_batches, vision_batches
from peftlab.models.cache import TINY, TinyRecipe, pretrain_seed, quiet_loading, resolve, tiny_checkpoint
from peftlab.models.vocab import word_tokenizer
from peftlab.train import interleave, train

#: The tiny LLaVA: width 64 and 2 layers in the CLIP vision tower and the Llama; 32 px images.
TINY_LLAVA = {"width": 64, "layers": 2, "heads": 4, "image_size": 32, "patch_size": 8}
#: Its pre-training (measured 42 s of CPU time, once per cache): steps of each phase, images, learning rate.
PRETRAIN = {
    "vision_steps": 300,
    "text_steps": 150,
    "images": 1536,
    "steps": 400,
    "lr": 2e-3,
    "batch_size": 32,
}
#: The real checkpoint notebook 07 names (its size is worked out from :func:`real_config`).
REAL_CHECKPOINT = "llava-hf/llava-1.5-7b-hf"


def tiny_llava_config(tokenizer: PreTrainedTokenizerBase) -> LlavaConfig:
    """The config of the tiny LLaVA (see :data:`TINY_LLAVA`) for a tokenizer that knows ``<image>``."""
    t, w = TINY_LLAVA, TINY_LLAVA["width"]
    vision = CLIPVisionConfig(
        hidden_size=w,
        intermediate_size=2 * w,
        num_hidden_layers=t["layers"],
        num_attention_heads=t["heads"],
        image_size=t["image_size"],
        patch_size=t["patch_size"],
        projection_dim=w,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=w,
        intermediate_size=2 * w,
        num_hidden_layers=t["layers"],
        num_attention_heads=t["heads"],
        num_key_value_heads=t["heads"],
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        pad_token_id=tokenizer.pad_token_id,
    )


class VQAProcessor:
    """LLaVA's processor for :mod:`peftlab.vqa`: puts ``<image>`` in front of each text.

    ``num_query_tokens`` is the number of image tokens the processor expands ``<image>`` into, so
    that :func:`peftlab.vqa.batches` can mask them out of the labels.
    """

    def __init__(self, processor: LlavaProcessor, image_tokens: int) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.num_query_tokens = image_tokens

    def __call__(self, images: list, text: list[str], **kwargs: object) -> dict:
        return self.processor(images=images, text=[f"<image> {t}" for t in text], **kwargs)


def image_tokens(config: LlavaConfig) -> int:
    """How many tokens one image becomes: one per patch (the class token is dropped)."""
    v = config.vision_config
    return (v.image_size // v.patch_size) ** 2


def _processor(tokenizer: PreTrainedTokenizerBase) -> LlavaProcessor:
    size = TINY_LLAVA["image_size"]
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_LLAVA["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )


def _build_tiny(folder: Path, seed: int) -> None:
    """Make the tiny LLaVA and pre-train it the way LLaVA was made, in three short phases:

    1. the CLIP vision tower learns colour, shape and position of images in all four colours
       (LLaVA starts from a pre-trained CLIP, which has seen yellow);
    2. the Llama learns the captions of all four colours as plain text (LLaVA starts from a
       pre-trained language model, which knows the word "yellow");
    3. with the vision tower frozen, the projector and the Llama learn to answer questions about
       base-colour images (LLaVA's two training stages, in one), while the Llama keeps reading the
       captions of phase 2, so that it does not unlearn "yellow" (a real LLaVA's language model
       saw far more text than these questions).
    """
    tokenizer = word_tokenizer(
        vqa.words() + " ".join(s.caption for s in data.make_shapes(128)).split(),
        folder,
        extra_special=("<image>",),
    )
    processor = _processor(tokenizer)
    p, size = PRETRAIN, TINY_LLAVA["image_size"]
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(tiny_llava_config(tokenizer))
    vqa_processor = VQAProcessor(processor, image_tokens(model.config))
    samples = data.make_shapes(p["images"], size, seed=1000 + seed, colours=data.BASE_COLOURS)
    vision = vision_tower(model)
    seen = data.make_shapes(p["images"], size, seed=1000 + seed)  # all four colours
    train(
        _PatchProbe(vision, TINY_LLAVA["width"]),
        vision_batches(vqa_processor, seen, p["batch_size"]),
        p["vision_steps"],
        lr=p["lr"],
        loss_fn=lambda m, b: m(**b),
        desc="pre-training the tiny CLIP vision tower (once, then cached)",
    )
    language = next(m for n, m in model.named_modules() if n.rsplit(".", 1)[-1] == "language_model")
    language = getattr(language, "model", language)  # transformers 4.x: a LlamaForCausalLM around it
    text = data.make_shapes(64, size, seed=999)
    text_model, captions = _TextModel(model, language), caption_batches(tokenizer, text, p["batch_size"])
    train(
        text_model,
        captions,
        p["text_steps"],
        lr=p["lr"],
        desc="pre-training the tiny Llama on text (once, then cached)",
    )
    vision.requires_grad_(False)
    qa = interleave(vqa.batches(vqa_processor, samples, batch_size=p["batch_size"]), captions)
    train(
        model,
        qa,
        p["steps"],
        lr=p["lr"],
        loss_fn=lambda m, b: (m if "pixel_values" in b else text_model)(**b).loss,
        desc="pre-training the tiny LLaVA on VQA (once, then cached)",
    )
    model.requires_grad_(True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


class _PatchProbe(torch.nn.Module):
    """The vision tower with one linear head per question kind on its mean patch feature: what LLaVA
    reads is the patch tokens of the last layer, so those (not the class token) learn the labels."""

    def __init__(self, vision: torch.nn.Module, width: int) -> None:
        super().__init__()
        self.vision = vision
        self.heads = torch.nn.ModuleList(torch.nn.Linear(width, len(c)) for c in vqa.CANDIDATES.values())

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        patches = self.vision(pixel_values=pixel_values, output_hidden_states=True).hidden_states[-1][:, 1:]
        pooled = patches.mean(dim=1)
        return sum(F.cross_entropy(head(pooled), labels[:, i]) for i, head in enumerate(self.heads))


class _TextModel(torch.nn.Module):
    """LLaVA's language model and output layer as a text-only causal LM, for the text phase."""

    def __init__(self, model: LlavaForConditionalGeneration, language: torch.nn.Module) -> None:
        super().__init__()
        self.language, self.head = language, model.get_output_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> object:
        hidden = self.language(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.head(hidden)[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return type("Out", (), {"loss": loss})()


def tiny_recipe() -> TinyRecipe:
    """How the tiny LLaVA is made (pre-training seed: ``$PEFTLAB_PRETRAIN_SEED``)."""
    seed = pretrain_seed()
    return TinyRecipe(
        "llava",
        {**TINY_LLAVA, **PRETRAIN, "seed": seed},
        lambda f: _build_tiny(f, seed),
        sources=(
            data,
            vqa,
            _build_tiny,
            _processor,
            _TextModel,
            VQAProcessor,
            tiny_llava_config,
            image_tokens,
            vision_tower,
            word_tokenizer,
            caption_batches,
            vision_batches,
            _PatchProbe,
            interleave,
            train,
        ),
    )


def load_llava(
    checkpoint: str = TINY, device: str | None = None, quantization_config: object = None
) -> tuple[LlavaForConditionalGeneration, VQAProcessor]:
    """Load LLaVA and a VQA processor for it: the tiny pre-trained one by default, else a folder or
    Hub id (for example ``llava-hf/llava-1.5-7b-hf``, in 4-bit with ``quantization_config``). The
    model comes back on ``device`` in eval mode.
    """
    target = pick_device(device)
    path = resolve(checkpoint, "LLaVA", lambda: tiny_checkpoint(*tiny_recipe()))
    with quiet_loading(checkpoint == TINY):
        model = LlavaForConditionalGeneration.from_pretrained(path, **placement(target, quantization_config))
    if quantization_config is None:
        model = model.to(target)
    processor = LlavaProcessor.from_pretrained(path)
    return model.eval(), VQAProcessor(processor, image_tokens(model.config))


def vision_tower(model: torch.nn.Module) -> torch.nn.Module:
    """The CLIP vision tower of a LLaVA (or a PeftModel around one), wherever transformers puts it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return next(m for n, m in base.named_modules() if n.rsplit(".", 1)[-1] == "vision_tower")


def real_config() -> LlavaConfig:
    """The architecture of ``llava-hf/llava-1.5-7b-hf`` (its config.json, typed out: no download):
    CLIP ViT-L/14 at 336 px, a two-layer projector, Vicuna-7B (Llama)."""
    vision = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
    )
    text = LlamaConfig(
        vocab_size=32064,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=32000,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
