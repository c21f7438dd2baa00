"""BLIP-2 with an OPT language model: the model of notebook 02 (task_type="CAUSAL_LM", 4-bit NF4).

The tiny BLIP-2 has the real architecture (ViT -> Q-Former with learned query tokens -> linear
projection -> OPT decoder), two layers of width 64 everywhere and 8 query tokens. Its tokenizer
knows ``<image>``, so the processor inserts one image token per query token, as transformers 5
requires. Pre-training takes three short phases, like the real model's making (see
:func:`_build_tiny`): the ViT and the OPT are pre-trained first, the OPT on text in all four
colours (a real BLIP-2's language model knows the word "yellow"), then the model learns to answer
questions about images, the colour question in the base colours only. So the base model has seen
yellow shapes but never named their colour: fine-tuning has a real gap to close, and the image
features it needs are there (as in a real BLIP-2, whose encoders know yellow).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (
    BitsAndBytesConfig,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
    OPTConfig,
    PreTrainedTokenizerBase,
)

from peftlab import data, vqa
from peftlab.device import pick_device, placement
from peftlab.models.cache import TINY, TinyRecipe, pretrain_seed, quiet_loading, resolve, tiny_checkpoint
from peftlab.models.vocab import word_tokenizer
from peftlab.registry import change
from peftlab.train import interleave, train
from peftlab.versions import installed

#: The tiny BLIP-2: width 64 and 2 layers in the ViT, the Q-Former and the OPT; 32 px images.
TINY_BLIP2 = {"width": 64, "layers": 2, "heads": 4, "image_size": 32, "patch_size": 8, "query_tokens": 8}
#: Its pre-training (measured 71 s of CPU time, once per cache): steps of each phase, images, learning rate.
PRETRAIN = {
    "vision_steps": 800,
    "text_steps": 150,
    "images": 1536,
    "steps": 900,
    "lr": 1e-3,
    "batch_size": 32,
    "seed": 0,
}


def tiny_blip2_config(tokenizer: PreTrainedTokenizerBase) -> Blip2Config:
    """The config of the tiny BLIP-2 (see :data:`TINY_BLIP2`) for a tokenizer that knows ``<image>``."""
    t, w = TINY_BLIP2, TINY_BLIP2["width"]
    common = {
        "hidden_size": w,
        "intermediate_size": 2 * w,
        "num_hidden_layers": t["layers"],
        "num_attention_heads": t["heads"],
    }
    text = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=w,
        ffn_dim=2 * w,
        word_embed_proj_dim=w,
        num_hidden_layers=t["layers"],
        num_attention_heads=t["heads"],
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dropout=0.0,
    )
    return Blip2Config(
        # BLIP-2's vision config initialises with std 1e-10 (fine for loading weights, fatal for training)
        vision_config={
            **common,
            "image_size": t["image_size"],
            "patch_size": t["patch_size"],
            "initializer_range": 0.02,
        },
        qformer_config={
            **common,
            "encoder_hidden_size": w,
            "cross_attention_frequency": 1,
            "vocab_size": 2,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
        },
        text_config=text.to_dict(),
        num_query_tokens=t["query_tokens"],
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )


def caption_batches(
    tokenizer: PreTrainedTokenizerBase, samples: list[data.Sample], batch_size: int
) -> list[dict]:
    """Text-only VQA: a caption, a question about it and its answer (reading comprehension)."""
    texts = [f"{s.caption} {vqa.prompt(q)} {a}{tokenizer.eos_token}" for s in samples for q, a in s.questions]
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    return out


class _VisionProbe(torch.nn.Module):
    """The vision tower with one linear head per question kind, for the vision pre-training phase."""

    def __init__(self, vision: torch.nn.Module, width: int) -> None:
        super().__init__()
        self.vision = vision
        self.heads = torch.nn.ModuleDict(
            {k: torch.nn.Linear(width, len(c)) for k, c in vqa.CANDIDATES.items()}
        )

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pooled = self.vision(pixel_values=pixel_values).pooler_output
        return sum(F.cross_entropy(head(pooled), labels[:, i]) for i, head in enumerate(self.heads.values()))


def vision_batches(processor: Blip2Processor, samples: list[data.Sample], batch_size: int) -> list[dict]:
    """Images with their colour, shape and position labels, for the vision pre-training phase."""
    out = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        labels = [[vqa.CANDIDATES[k].index(vqa.answer(s, k)) for k in vqa.KINDS] for s in chunk]
        pixels = processor.image_processor([s.image for s in chunk], return_tensors="pt")["pixel_values"]
        out.append({"pixel_values": pixels, "labels": torch.tensor(labels)})
    return out


def _qa_or_text_loss(model: Blip2ForConditionalGeneration, batch: dict) -> torch.Tensor:
    """The loss of a VQA batch through the whole model, or of a caption batch through the OPT."""
    return (model if "pixel_values" in batch else model.language_model)(**batch).loss


def _build_tiny(folder: Path) -> None:
    """Make the tiny BLIP-2 and pre-train it the way BLIP-2 was made, in three short phases:

    1. the vision tower learns colour, shape and position of images in all four colours (BLIP-2
       starts from a pre-trained ViT, which has seen yellow);
    2. the OPT learns the captions of all four colours as plain text (BLIP-2 starts from a
       pre-trained OPT, which knows the word "yellow");
    3. with the ViT frozen, the Q-Former, its query tokens, the projection and the OPT learn to
       answer questions about base-colour images, while the OPT keeps reading the captions of
       phase 2 (BLIP-2 keeps the OPT frozen, so it never unlearns "yellow"; a two-layer OPT
       cannot read the Q-Former's output unless it learns to).

    Without the captions in phase 3 (and with a ViT that had seen base colours only), one
    pre-training seed in three gave a model that LoRA on the OPT could not teach yellow to
    (0% -> 0%): the answer "yellow" had been trained away, not merely never given.
    """
    tokenizer = word_tokenizer(
        vqa.words() + " ".join(s.caption for s in data.make_shapes(128)).split(),
        folder,
        extra_special=("<image>",),
    )
    size = TINY_BLIP2["image_size"]
    processor = Blip2Processor(
        BlipImageProcessor(size={"height": size, "width": size}),
        tokenizer,
        num_query_tokens=TINY_BLIP2["query_tokens"],
    )
    p = {**PRETRAIN, "seed": pretrain_seed()}  # $PEFTLAB_PRETRAIN_SEED: another tiny checkpoint
    torch.manual_seed(p["seed"])
    model = Blip2ForConditionalGeneration(tiny_blip2_config(tokenizer))
    torch.nn.init.normal_(model.query_tokens, std=0.02)  # zeros would make every query the same
    samples = data.make_shapes(p["images"], size, seed=1000 + p["seed"], colours=data.BASE_COLOURS)
    seen = data.make_shapes(p["images"], size, seed=1000 + p["seed"])  # all four colours
    train(
        _VisionProbe(model.vision_model, TINY_BLIP2["width"]),
        vision_batches(processor, seen, p["batch_size"]),
        p["vision_steps"],
        lr=p["lr"],
        loss_fn=lambda m, b: m(**b),
        desc="pre-training the tiny ViT (once, then cached)",
    )
    text = data.make_shapes(64, size, seed=999 - p["seed"])
    train(
        model.language_model,
        caption_batches(tokenizer, text, p["batch_size"]),
        p["text_steps"],
        lr=p["lr"],
        desc="pre-training the tiny OPT on text (once, then cached)",
    )
    model.vision_model.requires_grad_(False)
    qa = interleave(
        vqa.batches(processor, samples, batch_size=p["batch_size"]),
        caption_batches(tokenizer, text, p["batch_size"]),
    )
    train(
        model,
        qa,
        p["steps"],
        lr=p["lr"],
        loss_fn=_qa_or_text_loss,
        desc="pre-training the tiny Q-Former on VQA (once, then cached)",
    )
    model.requires_grad_(True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def compute_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype to compute in: bfloat16 (or float16) on a GPU; float32 on the CPU.

    On the CPU, bfloat16 compute of the 4-bit layers was 3.5-4x slower than float32 (FINDINGS.md).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def nf4_config(compute: torch.dtype = torch.float32) -> BitsAndBytesConfig:
    """The report's quantisation: 4-bit NF4 weights with double quantisation of the scales."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def autocast_dtype(device: torch.device | str, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for training on ``device``, or ``None`` for no autocast.

    Mixed precision pays on a GPU; on the CPU it is turned off (float32 compute), because bfloat16
    made each step several times slower there.
    """
    dtype = compute_dtype(device)
    return dtype if enabled and dtype != torch.float32 else None


def tiny_recipe() -> TinyRecipe:
    """How the tiny BLIP-2 is made (pre-training seed: ``$PEFTLAB_PRETRAIN_SEED``, read by the build)."""
    return TinyRecipe(
        "blip2",
        {**TINY_BLIP2, **PRETRAIN, "seed": pretrain_seed()},
        _build_tiny,
        sources=(
            data,
            vqa,
            tiny_blip2_config,
            word_tokenizer,
            caption_batches,
            vision_batches,
            _VisionProbe,
            _qa_or_text_loss,
            interleave,
            train,
        ),
    )


def load_blip2(
    checkpoint: str = TINY,
    device: str | None = None,
    quantization_config: BitsAndBytesConfig | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """Load BLIP-2 and its processor: the tiny pre-trained one by default, else a folder or Hub id
    (for example ``Salesforce/blip2-opt-2.7b``). The model comes back on ``device`` in eval mode.

    It loads through ``AutoModelForImageTextToText``, the auto class that exists on transformers
    4.x and 5.x (``AutoModelForVision2Seq``, which the report used, is gone from 5.0).
    ``quantization_config`` (e.g. :func:`nf4_config`) quantises the weights with bitsandbytes; the
    error transformers raises where the stack or the device cannot do that is left to the caller.
    ``dtype`` loads the weights in that dtype.
    """
    from transformers import AutoModelForImageTextToText

    target = pick_device(device)
    path = resolve(checkpoint, "BLIP-2", lambda: tiny_checkpoint(*tiny_recipe()))
    kwargs: dict = {}
    if dtype is not None:
        kwargs["dtype" if change("dtype_keyword").holds() else "torch_dtype"] = dtype
    kwargs |= placement(target, quantization_config)
    with quiet_loading(checkpoint == TINY):
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        processor = Blip2Processor.from_pretrained(path)
    if quantization_config is None:
        model = model.to(target)
    return model.eval(), processor


#: Devices on which this process already saw transformers refuse 4-bit, with the reason.
_REFUSED: dict[str, str] = {}


def load_blip2_4bit(
    checkpoint: str = TINY, device: str | None = None, quantize: bool = True
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor, str]:
    """Load BLIP-2 in 4-bit NF4 with double quantisation where this stack and device allow it,
    else in full precision; returns ``(model, processor, note)``, the note saying which path ran
    and why. Any error other than "bitsandbytes cannot run here" is raised as it is.
    """
    target = pick_device(device)
    if not quantize:
        return (*load_blip2(checkpoint, device), "full precision (QUANTIZE is off)")
    compute = compute_dtype(target)
    if target.type not in _REFUSED:  # try once per device; the refusal is logged at length each time
        try:
            model, processor = load_blip2(checkpoint, device, quantization_config=nf4_config(compute))
            note = (
                f"4-bit NF4, double quantisation, compute in {str(compute).replace('torch.', '')} on {target}"
            )
            return model, processor, note
        except (RuntimeError, ImportError) as error:
            if "bitsandbytes" not in str(error):
                raise
            _REFUSED[target.type] = str(error).split(":")[0]
    note = (
        f"full precision: transformers {installed()['transformers']} refuses 4-bit bitsandbytes on "
        f"{target.type.upper()} ({_REFUSED[target.type]}). On a CUDA GPU this stack quantises."
    )
    return (*load_blip2(checkpoint, device), note)


#: BLIP-2's four parts, in the order an image goes through them.
COMPONENTS = ("vision_model", "qformer", "language_projection", "language_model")


def layers_by_component(model: torch.nn.Module, kinds: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """How many modules of each class name in ``kinds`` each part of BLIP-2 holds.

    Used by notebook 02 to show where 4-bit layers (``Linear4bit``) and LoRA layers landed.
    ``model`` may be a PeftModel; ``kinds`` are class names, e.g. ``("Linear", "Linear4bit")``.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    table = {part: dict.fromkeys(kinds, 0) for part in COMPONENTS}
    for part in COMPONENTS:
        for module in getattr(base, part).modules():
            if type(module).__name__ in kinds:
                table[part][type(module).__name__] += 1
    return table


def lora_layers_by_component(peft_model: torch.nn.Module) -> dict[str, int]:
    """How many layers of each part of BLIP-2 carry a LoRA adapter (notebook 02)."""
    base = peft_model.get_base_model()
    return {part: sum(hasattr(m, "lora_A") for m in getattr(base, part).modules()) for part in COMPONENTS}
