"""Tiny models of vision-language families that neither the notebooks nor tests/families.py use.

The held-out set of issue 26: each builder is seeded and returns ``(model, inputs)`` that run a
forward pass in training mode (labels included), or raises :class:`Missing` when the installed
transformers has no such family (e.g. Janus on 4.51.3). Sizes follow tests/families.py.
"""

from __future__ import annotations

import torch

SEED = 0
VOCAB = 99


class Missing(Exception):
    """The installed transformers does not have this family."""


def _need(*names: str) -> list:
    import transformers

    missing = [n for n in names if not hasattr(transformers, n)]
    if missing:
        raise Missing(f"transformers {transformers.__version__} has no {', '.join(missing)}")
    return [getattr(transformers, n) for n in names]


def _ids(n: int, batch: int = 2, low: int = 5) -> torch.Tensor:
    return torch.randint(low, VOCAB - 10, (batch, n), generator=torch.Generator().manual_seed(SEED))


def _pixels(size: int, batch: int = 2, frames: int | None = None) -> torch.Tensor:
    shape = (batch, 3, size, size) if frames is None else (batch, frames, 3, size, size)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(SEED))


def _with_labels(inputs: dict) -> dict:
    return inputs | {"labels": inputs["input_ids"].clone()}


def _llama(**extra: object) -> dict:
    return (
        dict(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        | extra
    )


def _vision(**extra: object) -> dict:
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


def kosmos2() -> tuple[torch.nn.Module, dict]:
    """Kosmos-2: a CLIP-style vision model, a latent-query projection, a text decoder registered first."""
    (config_cls, model_cls) = _need("Kosmos2Config", "Kosmos2ForConditionalGeneration")
    torch.manual_seed(SEED)
    latent = 4
    text = dict(
        vocab_size=VOCAB,
        embed_dim=32,
        ffn_dim=64,
        layers=2,
        attention_heads=4,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    config = config_cls(text_config=text, vision_config=_vision(), latent_query_num=latent)
    ids = _ids(12)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, 1 : 1 + latent] = True
    inputs = {"input_ids": ids, "pixel_values": _pixels(32), "image_embeds_position_mask": mask}
    return model_cls(config).eval(), _with_labels(inputs)


def mllama() -> tuple[torch.nn.Module, dict]:
    """Mllama (Llama 3.2 Vision): a tiled vision encoder feeding cross-attention layers of the text model."""
    (config_cls, model_cls) = _need("MllamaConfig", "MllamaForConditionalGeneration")
    torch.manual_seed(SEED)
    image_token = VOCAB - 1
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_global_layers=1,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        max_num_tiles=2,
        intermediate_layers_indices=[0],
        vision_output_dim=64,
        supported_aspect_ratios=[[1, 1], [1, 2]],
    )
    text = _llama(num_hidden_layers=3, cross_attention_layers=[1], rope_scaling={"rope_type": "default"})
    config = model_cls.config_class(vision_config=vision, text_config=text, image_token_index=image_token)
    ids = _ids(10)
    ids[:, 0] = image_token
    inputs = {
        "input_ids": ids,
        "pixel_values": torch.randn(2, 1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(SEED)),
        "aspect_ratio_ids": torch.ones(2, 1, dtype=torch.long),
        "aspect_ratio_mask": torch.ones(2, 1, 2, dtype=torch.long),
        "cross_attention_mask": torch.ones(2, 10, 1, 2, dtype=torch.long),
    }
    del config_cls
    model = model_cls(config).eval()
    with torch.no_grad():  # tanh gates start at 0 (no cross-attention at all); a trained model's are not
        for name, param in model.named_parameters():
            if name.endswith("gate") or "gate_" in name.rsplit(".", 1)[-1]:
                param.fill_(1.0)
    return model, _with_labels(inputs)


def fuyu() -> tuple[torch.nn.Module, dict]:
    """Fuyu: no vision encoder, a linear patch projection into a Persimmon decoder (fused query_key_value)."""
    (config_cls, model_cls) = _need("FuyuConfig", "FuyuForCausalLM")
    torch.manual_seed(SEED)
    image_token = VOCAB - 1
    config = config_cls(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        patch_size=8,
        num_channels=3,
        image_token_id=image_token,
        pad_token_id=0,
        text_config={
            "vocab_size": VOCAB,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
        },
    )
    patches = 4  # a 16 px image in 8 px patches
    ids = _ids(10)
    ids[:, :patches] = image_token
    inputs = {
        "input_ids": ids,
        "image_patches": torch.randn(2, patches, 3 * 8 * 8, generator=torch.Generator().manual_seed(SEED)),
        "image_patches_indices": torch.cat([torch.arange(patches), torch.full((6,), -1)]).repeat(2, 1),
    }
    return model_cls(config).eval(), _with_labels(inputs)


def emu3() -> tuple[torch.nn.Module, dict]:
    """Emu3: a VQ-VAE tokenizer turns images into discrete codes for a Llama-like decoder."""
    (config_cls, text_cls, model_cls) = _need("Emu3Config", "Emu3TextConfig", "Emu3ForConditionalGeneration")
    torch.manual_seed(SEED)
    codebook, start, image_token = 20, 3, 3
    vocab = {i: chr(i + 256) for i in range(VOCAB)}
    for i in range(start, start + codebook):
        vocab[i] = f"<|visual token{i:06d}|>"
    vocab[image_token] = "<image>"
    vocab[image_token + 1] = "<|extra_200|>"
    text = text_cls(**_llama())
    vq = dict(
        codebook_size=codebook,
        temporal_downsample_factor=1,
        base_channels=32,
        channel_multiplier=[1, 2, 1],
        hidden_size=32,
        attn_resolutions=[],
    )
    config = config_cls(text_config=text, vq_config=vq, vocabulary_map={v: k for k, v in vocab.items()})
    image_tokens, size = 12, 15
    ids = _ids(7 + image_tokens, low=30)
    ids[:, :image_tokens] = image_token
    inputs = {
        "input_ids": ids,
        "pixel_values": _pixels(size),
        "image_sizes": torch.tensor([[size, size]] * 2),
    }
    return model_cls(config).eval(), _with_labels(inputs)


def janus() -> tuple[torch.nn.Module, dict]:
    """Janus: a SigLIP vision tower for understanding, a VQ model and a generation head for images."""
    (config_cls, model_cls) = _need("JanusConfig", "JanusForConditionalGeneration")
    torch.manual_seed(SEED)
    image_token = VOCAB - 1
    vision = _vision(
        image_size=32, patch_size=8, num_image_tokens=16, projection_dim=32, depth=2, mlp_ratio=2.0
    )
    vq = dict(
        embed_dim=8,
        num_embeddings=16,
        base_channels=32,
        channel_multiplier=[1, 1],
        num_res_blocks=1,
        latent_channels=8,
        projection_dim=32,
        image_token_embed_dim=32,
        num_hidden_layers=1,
        num_patches=4,
    )
    config = config_cls(text_config=_llama(), vision_config=vision, vq_config=vq, image_token_id=image_token)
    ids = _ids(7 + 16)
    ids[:, :16] = image_token
    inputs = {"input_ids": ids, "pixel_values": _pixels(32)}
    return model_cls(config).eval(), _with_labels(inputs)


def gemma3() -> tuple[torch.nn.Module, dict]:
    """Gemma-3: a SigLIP tower pooled to a few tokens per image, a Gemma-3 text model, tied embeddings."""
    (config_cls, model_cls) = _need("Gemma3Config", "Gemma3ForConditionalGeneration")
    torch.manual_seed(SEED)
    image_token = VOCAB - 1
    text = _llama(head_dim=8, num_key_value_heads=1, sliding_window=16)
    config = config_cls(
        text_config=text,
        vision_config=_vision(),
        mm_tokens_per_image=4,
        image_token_index=image_token,
        boi_token_index=VOCAB - 2,
        eoi_token_index=VOCAB - 3,
    )
    ids = _ids(10)
    ids[:, 1:5] = image_token
    inputs = {"input_ids": ids, "pixel_values": _pixels(32), "token_type_ids": (ids == image_token).long()}
    return model_cls(config).eval(), _with_labels(inputs)


def paligemma() -> tuple[torch.nn.Module, dict]:
    """PaliGemma (tests/families.py's config) with 16 image tokens (32 px in 8 px patches) in front."""
    import families

    model = families.paligemma()
    token = model.config.image_token_index
    ids = _ids(8)
    ids = torch.cat([torch.full((2, 16), token), ids], dim=1)
    inputs = {"input_ids": ids, "pixel_values": _pixels(32), "token_type_ids": torch.zeros_like(ids)}
    return model, _with_labels(inputs)


def llava() -> tuple[torch.nn.Module, dict]:
    """LLaVA (tests/families.py's) with labels."""
    import families

    model, inputs = families.llava()
    return model, _with_labels(inputs)


def truncated(inputs: dict, keep: int) -> dict:
    """The batch as left truncation to ``keep`` tokens leaves it (the image tokens come first)."""
    cut = {
        k: (v[:, -keep:] if k in ("input_ids", "labels", "token_type_ids") else v) for k, v in inputs.items()
    }
    return cut


IMAGE_TEXT = {"llava": llava, "paligemma": paligemma, "gemma3": gemma3}
