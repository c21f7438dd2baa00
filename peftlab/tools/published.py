"""The published architectures the notebooks name, as facts, and local random-weight copies of them.

Each notebook's parameters cell names a real checkpoint for Colab or a GPU machine. No hub can be
reached here, so ``peftlab run --real-size`` builds each one's *architecture* from the values below
(copied from the ``config.json`` each Hub id publishes; for CLIP they are also ``CLIPConfig()``'s
defaults), with random weights, and saves it with ``save_pretrained`` into a local folder with a
processor or tokenizer built offline. The notebooks then run on that folder: shapes, memory and
time per step are those of the real model; accuracy is not (random weights learn nothing in a few
steps), so checks that need pre-trained weights are reported "not judged: random weights".

The tokenizers are peftlab's small offline ones (:mod:`peftlab.models.vocab`): the model's
embedding table keeps its published size (49,408 / 50,272 / 21,128 rows), larger than the
tokenizer's vocabulary, so the ids the tokenizer produces all exist and the unused rows cost
the memory they cost in the real model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from peftlab.lessons.memory import BLIP2_OPT_2_7B  # BLIP-2's config: one copy, notebook 02's memory lesson

#: CLIP ViT-B/32 (``CLIPConfig()``'s defaults are this model's config).
CLIP_VIT_B_32 = {
    "text_config": {
        "vocab_size": 49408,
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": 77,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 32,
    },
    "projection_dim": 512,
}
#: OPT-125m.
OPT_125M = {
    "vocab_size": 50272,
    "hidden_size": 768,
    "word_embed_proj_dim": 768,
    "ffn_dim": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 2048,
}
#: ViT-B/16 pre-trained on ImageNet-21k (no classification head is published with it).
VIT_B_16_IN21K = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 224,
    "patch_size": 16,
}
#: LLaVA-1.5-7b (llava-hf): CLIP ViT-L/14 at 336 px (its second-to-last layer's patches), a 2-layer
#: gelu MLP projector, and a Llama-2-7B language model with 64 extra vocabulary rows (the ``<image>``
#: token is id 32000).
LLAVA_1_5_7B = {
    "vision_config": {
        "model_type": "clip_vision_model",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 336,
        "patch_size": 14,
        "projection_dim": 768,
    },
    "text_config": {
        "model_type": "llama",
        "vocab_size": 32064,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 4096,
    },
    "image_token_index": 32000,
    "projector_hidden_act": "gelu",
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
}


@dataclass(frozen=True)
class Published:
    """One published checkpoint: its Hub id, class, parameter count and the notebooks that name it."""

    hub_id: str
    model_class: str  # the transformers class the notebooks load it with
    parameters: int  # the class built from the config below, counted on the meta device
    published_millions: float  # the total the model card / release table states (tests compare)
    notebooks: tuple[str, ...]
    image_size: int | None = None
    fits_here: str = ""  # empty: runs in the default --real-size set; else why it is left out
    extra: dict = field(default_factory=dict)
    stated_to: float = 0  # the precision of ``published_millions`` in millions; 0: its last digit

    @property
    def float32_gigabytes(self) -> float:
        """The weights alone in float32 (4 bytes a parameter): what building the random model allocates."""
        return self.parameters * 4 / 1e9


#: name -> the published checkpoint. Published totals: the Hub pages (CLIP 151M, OPT 125M, ViT 86.4M,
#: BLIP-2 3.74B, LLaVA-1.5 7.06B) and the Chinese-CLIP release table (github.com/OFA-Sys/Chinese-CLIP: 188M, 406M).
PUBLISHED: dict[str, Published] = {
    "clip-vit-base-patch32": Published(
        "openai/clip-vit-base-patch32", "CLIPModel", 151_277_313, 151.3, ("01",), 224
    ),
    "opt-125m": Published("facebook/opt-125m", "OPTForCausalLM", 125_239_296, 125.2, ("03",)),
    "vit-base-patch16-224-in21k": Published(
        "google/vit-base-patch16-224-in21k", "ViTModel", 86_389_248, 86.4, ("04",), 224
    ),
    "chinese-clip-vit-base-patch16": Published(
        "OFA-Sys/chinese-clip-vit-base-patch16", "ChineseCLIPModel", 188_262_913, 188, ("05",), 224
    ),
    "chinese-clip-vit-large-patch14": Published(
        "OFA-Sys/chinese-clip-vit-large-patch14", "ChineseCLIPModel", 406_233_089, 406, ("05",), 224
    ),
    "blip2-opt-2.7b": Published(
        "Salesforce/blip2-opt-2.7b",
        "Blip2ForConditionalGeneration",
        3_744_761_856,  # as keras-hub's blip2_opt_2.7b preset counts it (the 50,304-row OPT of the Hub config)
        3740,
        ("02",),
        224,
        fits_here=(
            "estimated, not run: 3.74 B parameters. Building the random model takes about 15 GB in fp32 "
            "(this machine: 24 GB shared with other jobs, 2 cores) and writes 7.5 GB in bf16; notebook 02 "
            "then loads it in NF4 three times, each load reading and quantising 3.7 B weights on the CPU. "
            "A training step (the frozen 1 B vision tower over 257 tokens, LoRA through the 2.7 B language "
            "model, batch 4, accumulated twice) is about 8 TFLOP: 2-3 minutes at the 55 GFLOP/s that "
            "notebooks 01, 04 and 05 reached here, before bitsandbytes' CPU dequantisation. Build, three "
            "loads and a few steps come to more than the 20 minutes allowed, and the 15 GB build would "
            "starve the other jobs; run notebook 02 at real size on a GPU (Colab T4, "
            "GRADIENT_CHECKPOINTING = True)."
        ),
        stated_to=10,  # the Hub page states 3.74B
    ),
    "llava-1.5-7b": Published(
        "llava-hf/llava-1.5-7b-hf",
        "LlavaForConditionalGeneration",
        7_063_427_072,
        7060,
        ("07",),
        336,
        fits_here=(
            "not run: 7.06 B parameters, 28 GB of float32 weights just to build the random model, more than "
            "this machine's memory (23 GB, shared with other jobs); notebook 07 then loads it in NF4 once per "
            "LoRA set-up it compares (about 4 GB each on a GPU). Run it on a GPU (Colab T4: QUANTIZE left at None, "
            "GRADIENT_CHECKPOINTING = True)."
        ),
        stated_to=10,  # the Hub page states 7.06B
    ),
}


def config(name: str):  # noqa: ANN201  (a transformers PretrainedConfig)
    """The transformers config of the published checkpoint ``name`` (a key of :data:`PUBLISHED`)."""
    from transformers import Blip2Config, CLIPConfig, LlavaConfig, OPTConfig, ViTConfig

    if name == "clip-vit-base-patch32":
        return CLIPConfig(**CLIP_VIT_B_32)
    if name == "opt-125m":
        return OPTConfig(**OPT_125M)
    if name == "vit-base-patch16-224-in21k":
        return ViTConfig(**VIT_B_16_IN21K)
    if name == "blip2-opt-2.7b":
        return Blip2Config(**BLIP2_OPT_2_7B)
    if name == "llava-1.5-7b":
        return LlavaConfig(**LLAVA_1_5_7B)
    if name.startswith("chinese-clip-"):
        from peftlab.lessons.chinese_clip_architecture import RELEASES, release_config

        return release_config(next(r for r in RELEASES if r["hub_id"] == PUBLISHED[name].hub_id))
    raise ValueError(f"Unknown published checkpoint {name!r}; choose one of {sorted(PUBLISHED)}.")


def build_on_meta(name: str) -> torch.nn.Module:
    """The model of ``name`` built on the meta device: its shapes and parameter count, no memory."""
    import transformers

    with torch.device("meta"):
        return getattr(transformers, PUBLISHED[name].model_class)(config(name))


def _save_clip(folder: Path) -> None:
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor

    from peftlab.models.clip import words
    from peftlab.models.vocab import clip_tokenizer

    tokenizer = clip_tokenizer(words(), folder)
    cfg = config("clip-vit-base-patch32")
    ids = {
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.eos_token_id,
    }
    for key, value in ids.items():
        setattr(cfg.text_config, key, value)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(folder)
    CLIPModel(cfg).save_pretrained(folder)


def _save_opt(folder: Path) -> None:
    from transformers import OPTConfig, OPTForCausalLM

    from peftlab.models.opt import words
    from peftlab.models.vocab import word_tokenizer

    tokenizer = word_tokenizer(words(), folder)
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    OPTForCausalLM(OPTConfig(**OPT_125M, **ids)).save_pretrained(folder)


def _save_chinese_clip(name: str, folder: Path) -> None:
    from transformers import ChineseCLIPImageProcessor, ChineseCLIPModel, ChineseCLIPProcessor

    from peftlab.models.chinese_clip import chinese_tokenizer

    tokenizer = chinese_tokenizer(folder)
    side = PUBLISHED[name].image_size
    image_processor = ChineseCLIPImageProcessor(
        size={"height": side, "width": side}, crop_size={"height": side, "width": side}
    )
    ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    ChineseCLIPModel(config(name)).save_pretrained(folder)


def _save_vit(folder: Path) -> None:
    from transformers import ViTImageProcessor, ViTModel

    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    ViTModel(config("vit-base-patch16-224-in21k")).save_pretrained(folder)


BUILDERS = {
    "clip-vit-base-patch32": _save_clip,
    "opt-125m": _save_opt,
    "vit-base-patch16-224-in21k": _save_vit,
    "chinese-clip-vit-base-patch16": lambda f: _save_chinese_clip("chinese-clip-vit-base-patch16", f),
    "chinese-clip-vit-large-patch14": lambda f: _save_chinese_clip("chinese-clip-vit-large-patch14", f),
}


def random_weights_folder(name: str, seed: int = 0) -> Path:
    """A local folder holding ``name``'s published architecture with random weights (built once, cached).

    Saved with ``save_pretrained`` with its processor/tokenizer, so ``from_pretrained(folder)`` loads
    it as it would the Hub id.
    """
    if name not in BUILDERS:
        reason = PUBLISHED[name].fits_here if name in PUBLISHED else "unknown"
        raise ValueError(f"No random-weight build for {name!r}: {reason}")
    from peftlab.models.cache import tiny_checkpoint

    def build(folder: Path) -> None:
        torch.manual_seed(seed)
        BUILDERS[name](folder)

    recipe = {"published": name, "seed": seed, "values": repr(config(name).to_dict())}
    return tiny_checkpoint(f"published-{name}", recipe, build, sources=tuple(BUILDERS.values()))
