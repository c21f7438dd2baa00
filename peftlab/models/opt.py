"""OPT: the causal language model of notebook 03 (a second LoRA stage).

The tiny OPT (two decoder layers of width 64) answers questions about a scene described in text:
``"a red circle on the left . what colour is the shape? red"``. It is pre-trained on three
questions (colour, shape, position) about scenes in all four colours. A fourth question, "which
side is opposite?", is left for fine-tuning: the base model has never been asked it, so LoRA has a
real gap to close, with answers (left, right, top, bottom) the model already knows how to say.
The helpers below make the question/answer batches (the loss counts only the answer and the
end-of-text token, as instruction tuning does) and measure the loss and answer accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer, OPTConfig, OPTForCausalLM, PreTrainedTokenizerBase

from peftlab import data
from peftlab.device import pick_device
from peftlab.models.cache import TINY, TinyRecipe, pretrain_seed, quiet_loading, resolve, tiny_checkpoint
from peftlab.models.vocab import word_tokenizer
from peftlab.parameters import check_batch_size
from peftlab.train import model_device, to_device, train

#: The tiny OPT: 2 decoder layers of width 64, 4 heads, a word-level vocabulary.
TINY_OPT = {"width": 64, "layers": 2, "heads": 4, "ffn": 128, "positions": 32}
#: Its pre-training: the three questions of :attr:`peftlab.data.Sample.questions`, all colours.
PRETRAIN = {"scenes": 768, "steps": 150, "lr": 3e-3, "batch_size": 64, "seed": 0}

#: The question kinds, in order: the three of ``Sample.questions``, then the one left for fine-tuning.
KINDS = ("colour", "shape", "position", "opposite")
#: The question pre-training never asks, and its answers.
NEW_QUESTION = "which side is opposite?"
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}


def scene_prompt(sample: data.Sample, question: str) -> str:
    """The text the model reads, e.g. ``"a red circle on the left . what colour is the shape?"``."""
    return f"{sample.caption} . {question}"


def scene_texts(samples: Sequence[data.Sample], kinds: Sequence[str] = KINDS) -> list[tuple[str, str]]:
    """The (prompt, answer) pairs of ``samples``, one per question kind in ``kinds`` (see :data:`KINDS`)."""
    pairs = []
    for s in samples:
        asked = dict(zip(KINDS, [*s.questions, (NEW_QUESTION, OPPOSITE[s.position])]))
        pairs += [(scene_prompt(s, asked[k][0]), asked[k][1]) for k in kinds]
    return pairs


def words() -> list[str]:
    """Every word of every scene text (the tiny tokenizer's vocabulary), punctuation aside."""
    samples = data.make_shapes(len(data.SHAPES) * len(data.COLOURS) * len(data.POSITIONS))
    text = " ".join(f"{p} {a}" for p, a in scene_texts(samples))
    return sorted(set(text.replace("?", " ").replace(".", " ").split()))


def qa_batches(
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 64,
    answers_only: bool = True,
) -> list[dict[str, torch.Tensor]]:
    """Batches of ``prompt + " " + answer + eos``, right-padded.

    With ``answers_only`` the labels keep only the answer and the end-of-text token (the prompt
    and the padding are ``-100``); without it they keep every real token (language modelling).
    """
    check_batch_size(batch_size)
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        texts = [f"{p} {a}{tokenizer.eos_token}" for p, a in chunk]
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        if answers_only:
            for row, (prompt, _) in enumerate(chunk):
                labels[row, : len(tokenizer(prompt)["input_ids"])] = -100
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    return out


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Mean answer loss and answer accuracy (the first answer token is the most likely one).

    The loss is averaged over the labelled tokens of all batches; accuracy counts a question right
    when the model's top next-token prediction after the prompt is the answer's first token.
    """
    model.eval()
    device = model_device(model)
    loss_sum, tokens, right, questions = 0.0, 0, 0, 0
    for batch in batches:
        batch = to_device(batch, device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        predicted, target = logits[:, :-1], batch["labels"][:, 1:]
        mask = target != -100
        loss_sum += torch.nn.functional.cross_entropy(predicted[mask], target[mask], reduction="sum").item()
        tokens += int(mask.sum())
        first = mask.int().argmax(dim=1)  # position of each row's first labelled token
        rows = torch.arange(len(first), device=device)
        right += int((predicted[rows, first].argmax(-1) == target[rows, first]).sum())
        questions += len(first)
    return {"loss": loss_sum / max(tokens, 1), "accuracy": right / max(questions, 1)}


@torch.no_grad()
def answer_logits(model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """The logits of every labelled position, concatenated: a model's "outputs" for exact comparisons."""
    model.eval()
    device = model_device(model)
    out = []
    for batch in batches:
        batch = to_device(batch, device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        out.append(logits[:, :-1][batch["labels"][:, 1:] != -100].float().cpu())
    return torch.cat(out)


def tiny_opt_config(tokenizer: PreTrainedTokenizerBase) -> OPTConfig:
    """The config of the tiny OPT (see :data:`TINY_OPT`) for a tokenizer."""
    t = TINY_OPT
    return OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=t["width"],
        word_embed_proj_dim=t["width"],
        ffn_dim=t["ffn"],
        num_hidden_layers=t["layers"],
        num_attention_heads=t["heads"],
        max_position_embeddings=t["positions"],
        dropout=0.0,
        attention_dropout=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def _build_tiny(folder: Path) -> None:
    """Make the tiny OPT, pre-train it on the first three questions, and save model + tokenizer."""
    tokenizer = word_tokenizer(words(), folder)
    p = {**PRETRAIN, "seed": pretrain_seed()}  # $PEFTLAB_PRETRAIN_SEED: another tiny checkpoint
    torch.manual_seed(p["seed"])
    model = OPTForCausalLM(tiny_opt_config(tokenizer))
    scenes = data.make_shapes(p["scenes"], seed=1000 + p["seed"])
    batches = qa_batches(tokenizer, scene_texts(scenes, KINDS[:3]), p["batch_size"])
    train(model, batches, p["steps"], lr=p["lr"], desc="pre-training the tiny OPT (once, then cached)")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def tiny_recipe() -> TinyRecipe:
    """How the tiny OPT is made (pre-training seed: ``$PEFTLAB_PRETRAIN_SEED``, read by the build)."""
    return TinyRecipe(
        "opt",
        {**TINY_OPT, **PRETRAIN, "seed": pretrain_seed()},
        _build_tiny,
        sources=(data, tiny_opt_config, qa_batches, scene_texts, scene_prompt, words, word_tokenizer, train),
    )


def load_opt(
    checkpoint: str = TINY, device: str | None = None
) -> tuple[OPTForCausalLM, PreTrainedTokenizerBase]:
    """Load OPT and its tokenizer: the tiny pre-trained one by default, else a folder or Hub id
    (for example ``facebook/opt-125m``). The model comes back on ``device`` in eval mode.
    """
    target = pick_device(device)
    path = resolve(checkpoint, "OPT", lambda: tiny_checkpoint(*tiny_recipe()))
    with quiet_loading(checkpoint == TINY):
        model = OPTForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(target).eval(), tokenizer
