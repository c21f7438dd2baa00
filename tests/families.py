"""Tiny models of families the notebooks never use, built from configs, with inputs that run them.

Used by tests/test_doctor.py: the doctor must predict what happens on models it was not written for.
Each builder is seeded and returns ``(model, inputs)``; the model is saved and loaded back with
``save_pretrained``/``from_pretrained`` where a test needs the real loading path.
"""

from __future__ import annotations

import torch

SEED = 0
VOCAB = 99


def _ids(n: int = 7, batch: int = 2) -> torch.Tensor:
    return torch.randint(3, VOCAB - 2, (batch, n), generator=torch.Generator().manual_seed(SEED))


def _pixels(size: int = 32, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(SEED))


def vision_config(**extra: object) -> dict:
    """A tiny ViT-style vision config (32 px images in 8 px patches), with ``extra`` settings over it."""
    return (
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
        | extra
    )


def siglip(hidden: int = 32, layers: int = 2, image_size: int = 32) -> tuple[torch.nn.Module, dict]:
    """SigLIP: a two-tower contrastive model (sigmoid loss); both towers name their layers q_proj..."""
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(SEED)
    text = dict(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=16,
    )
    config = SiglipConfig(
        text_config=text,
        vision_config=vision_config(
            hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, image_size=image_size
        ),
    )
    return SiglipModel(config).eval(), {"input_ids": _ids(), "pixel_values": _pixels(image_size)}


def altclip() -> tuple[torch.nn.Module, dict]:
    """AltCLIP: CLIP's vision tower (q_proj, v_proj) with an XLM-R text tower (query, value)."""
    from transformers import AltCLIPConfig, AltCLIPModel

    torch.manual_seed(SEED)
    text = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        project_dim=32,
        max_position_embeddings=40,
        pad_token_id=1,
    )
    config = AltCLIPConfig(text_config=text, vision_config=vision_config(), projection_dim=32)
    return AltCLIPModel(config).eval(), {"input_ids": _ids(), "pixel_values": _pixels()}


def blip() -> tuple[torch.nn.Module, dict]:
    """BLIP captioning: a ViT and a BERT-style text decoder; ``forward(pixel_values, input_ids)``."""
    from transformers import BlipConfig, BlipForConditionalGeneration

    torch.manual_seed(SEED)
    text = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        encoder_hidden_size=32,
        intermediate_size=64,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=40,
    )
    config = BlipConfig(text_config=text, vision_config=vision_config(), projection_dim=32)
    return BlipForConditionalGeneration(config).eval(), {"pixel_values": _pixels(), "input_ids": _ids()}


def llava() -> tuple[torch.nn.Module, dict]:
    """LLaVA: a CLIP vision tower, a projector and a Llama; 16 image tokens in front of the text."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(SEED)
    image_token = VOCAB - 1
    text = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**vision_config(projection_dim=32)),
        text_config=text,
        image_token_index=image_token,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    ids = torch.cat([torch.full((2, 16), image_token), _ids()], dim=1)
    return LlavaForConditionalGeneration(config).eval(), {"input_ids": ids, "pixel_values": _pixels()}


def deit(layers: int = 2) -> tuple[torch.nn.Module, dict]:
    """DeiT: a ViT with a distillation token (renamed attention layers in transformers 5)."""
    from transformers import DeiTConfig, DeiTForImageClassification

    torch.manual_seed(SEED)
    config = DeiTConfig(**vision_config(num_hidden_layers=layers), num_labels=3)
    return DeiTForImageClassification(config).eval(), {"pixel_values": _pixels()}


def swin() -> tuple[torch.nn.Module, dict]:
    """Swin: windowed attention with a relative position bias table (an nn.Parameter)."""
    from transformers import SwinConfig, SwinForImageClassification

    torch.manual_seed(SEED)
    config = SwinConfig(
        image_size=32,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1],
        num_heads=[2, 2],
        window_size=4,
        num_labels=3,
    )
    return SwinForImageClassification(config).eval(), {"pixel_values": _pixels()}


def _llama_like(**extra: object) -> dict:
    return (
        dict(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=64,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        )
        | extra
    )


def paligemma() -> torch.nn.Module:
    """PaliGemma: a SigLIP vision tower (q_proj, v_proj...), a linear projector and a Gemma."""
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        SiglipVisionConfig,
    )

    torch.manual_seed(SEED)
    text = GemmaConfig(**_llama_like(num_key_value_heads=1, head_dim=8))
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(**vision_config()).to_dict(),
        text_config=text.to_dict(),
        image_token_index=VOCAB - 1,
        projection_dim=32,
    )
    return PaliGemmaForConditionalGeneration(config).eval()


def idefics3() -> torch.nn.Module:
    """Idefics3 (SmolVLM's architecture): a SigLIP-style vision model, a pixel-shuffle connector, a Llama."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, LlamaConfig

    torch.manual_seed(SEED)
    config = Idefics3Config(
        vision_config=vision_config(),
        text_config=LlamaConfig(**_llama_like()).to_dict(),
        image_token_id=VOCAB - 1,
        scale_factor=2,
    )
    return Idefics3ForConditionalGeneration(config).eval()


def qwen2_vl() -> torch.nn.Module:
    """Qwen2-VL: a vision transformer with fused ``qkv`` attention and a patch merger, and a Qwen2."""
    import inspect

    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(SEED)
    text = _llama_like(num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]})
    vision = dict(
        depth=2,
        embed_dim=32,
        hidden_size=32,
        num_heads=4,
        mlp_ratio=2,
        patch_size=4,
        spatial_merge_size=2,
        temporal_patch_size=2,
        in_channels=3,
    )
    if "text_config" in inspect.signature(Qwen2VLConfig.__init__).parameters:  # transformers 5: nested
        config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=VOCAB - 1)
    else:  # transformers 4.x: the text model's settings at the top level
        config = Qwen2VLConfig(**text, vision_config=vision, image_token_id=VOCAB - 1)
    return Qwen2VLForConditionalGeneration(config).eval()


FAMILIES = {
    "siglip": siglip,
    "altclip": altclip,
    "blip": blip,
    "llava": llava,
    "deit": deit,
    "swin": swin,
    "paligemma": paligemma,
    "idefics3": idefics3,
    "qwen2_vl": qwen2_vl,
}
