"""Visual question answering on the synthetic shapes (notebook 02: BLIP-2).

Each image is asked three questions ("what colour is the shape?", "what shape is it?",
"where is the shape?") in BLIP-2's prompt format ``Question: ... Answer:``; the answer is one
word. The model is trained on the answer tokens only. Accuracy is measured two ways: by scoring
the candidate answers of the question (the one the model finds most likely wins) or by greedy
generation (the first generated word must be the answer), as a user would see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from peftlab.data import COLOURS, POSITIONS, SHAPES, Sample
from peftlab.parameters import check_batch_size
from peftlab.train import model_device, to_device

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, ProcessorMixin

#: The three questions, by kind; the answers come from :attr:`Sample.questions` in the same order.
QUESTIONS = {
    "colour": "what colour is the shape?",
    "shape": "what shape is it?",
    "position": "where is the shape?",
}
#: The possible answers to each kind of question.
CANDIDATES = {"colour": tuple(COLOURS), "shape": SHAPES, "position": POSITIONS}
KINDS = tuple(QUESTIONS)


def prompt(question: str) -> str:
    """BLIP-2's VQA prompt, e.g. ``"Question: what colour is the shape? Answer:"``."""
    return f"Question: {question} Answer:"


def answer(sample: Sample, kind: str) -> str:
    """The one-word answer of ``sample`` to the question of ``kind``."""
    return dict(zip(KINDS, (a for _, a in sample.questions)))[kind]


def words() -> list[str]:
    """Every word the prompts and answers use (the vocabulary of the tiny BLIP-2's tokenizer)."""
    text = " ".join(prompt(q) for q in QUESTIONS.values())
    return sorted(
        set(text.replace("?", " ").replace(":", " ").split()) | {a for c in CANDIDATES.values() for a in c}
    )


def batches(
    processor: ProcessorMixin,
    samples: Sequence[Sample],
    kinds: Sequence[str] = KINDS,
    batch_size: int = 32,
    with_answers: bool = True,
) -> list[dict]:
    """Pre-processed batches; sample ``i`` is asked the question ``kinds[i % len(kinds)]``.

    With answers, the text is ``prompt + " " + answer + eos`` and ``labels`` keep only the answer
    and the end-of-sequence token (image tokens, prompt and padding are ``-100``). Without answers
    (for scoring and generation) every row is the same prompt, so no padding is needed.
    """
    check_batch_size(batch_size)
    tokenizer = processor.tokenizer
    out = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        asked = [kinds[(start + i) % len(kinds)] for i in range(len(chunk))]
        prompts = [prompt(QUESTIONS[k]) for k in asked]
        texts = [f"{p} {answer(s, k)}{tokenizer.eos_token}" for p, s, k in zip(prompts, chunk, asked)]
        enc = processor(
            images=[s.image for s in chunk],
            text=texts if with_answers else prompts,
            padding=True,
            return_tensors="pt",
        )
        batch = {k: enc[k] for k in ("pixel_values", "input_ids", "attention_mask")}
        if with_answers:
            labels = batch["input_ids"].clone()
            n_image = processor.num_query_tokens or 0
            for row, p in enumerate(prompts):  # the processor put the image tokens first, then the text
                labels[row, : n_image + len(tokenizer(p)["input_ids"])] = -100  # with any BOS token
            labels[batch["attention_mask"] == 0] = -100
            batch["labels"] = labels
        out.append(batch)
    return out


def training_batches(
    processor: ProcessorMixin, samples: Sequence[Sample], batch_size: int = 32
) -> list[dict]:
    """Batches that ask every image all three questions: three batches per slice of images in a row.

    The three passes over ``samples`` rotate :data:`KINDS`, so each image is asked each kind once.
    (Asking each image one question left it to the seed how often, say, yellow's colour was asked:
    docs/sweep/why_07_yellow.md measured the spread that caused.)
    """
    rotations = [KINDS[k:] + KINDS[:k] for k in range(len(KINDS))]
    passes = [batches(processor, samples, kinds, batch_size=batch_size) for kinds in rotations]
    return [batch for same_images in zip(*passes) for batch in same_images]


def candidate_ids(tokenizer: PreTrainedTokenizerBase, kind: str) -> list[int]:
    """The token id of each candidate answer of ``kind`` (each answer is one word, one token)."""
    # with a leading space, as the answer follows "Answer:" (byte-pair tokenizers mark the space)
    ids = [tokenizer(" " + a, add_special_tokens=False)["input_ids"] for a in CANDIDATES[kind]]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"Every {kind} answer must be a single token; got {ids}.")
    return [i[0] for i in ids]


@torch.no_grad()
def answer_scores(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    samples: Sequence[Sample],
    kind: str,
    batch_size: int = 64,
) -> torch.Tensor:
    """Next-token logits of the candidate answers after the prompt: ``[len(samples), candidates]``."""
    model.eval()
    ids = candidate_ids(processor.tokenizer, kind)
    scores = []
    for batch in batches(processor, samples, (kind,), batch_size, with_answers=False):
        logits = model(**to_device(batch, model_device(model))).logits
        scores.append(logits[:, -1, ids].float().cpu())
    return torch.cat(scores)


def accuracy(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    samples: Sequence[Sample],
    kind: str,
    batch_size: int = 64,
) -> float:
    """Share of ``samples`` whose most likely candidate answer to the ``kind`` question is right."""
    predicted = answer_scores(model, processor, samples, kind, batch_size).argmax(dim=1).tolist()
    truth = [CANDIDATES[kind].index(answer(s, kind)) for s in samples]
    return sum(p == t for p, t in zip(predicted, truth)) / len(samples)


@torch.no_grad()
def accuracy_report(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    samples: Sequence[Sample],
    new_colour: str = "yellow",
    batch_size: int = 64,
) -> dict[str, float]:
    """Accuracy per kind of question, and on the colour question for ``new_colour`` images alone
    (``batch_size`` images per forward pass)."""
    out = {kind: accuracy(model, processor, samples, kind, batch_size) for kind in KINDS}
    new = [s for s in samples if s.colour == new_colour]
    out[f"colour ({new_colour} images)"] = (
        accuracy(model, processor, new, "colour", batch_size) if new else float("nan")
    )
    return out


def generate_answers(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    samples: Sequence[Sample],
    kind: str,
    max_new_tokens: int = 3,
    batch_size: int = 64,
) -> list[str]:
    """Greedy answers to the ``kind`` question, as text (whatever words the model produces)."""
    model.eval()
    answers = []
    for batch in batches(processor, samples, (kind,), batch_size, with_answers=False):
        batch = to_device(batch, model_device(model))
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        n = batch["input_ids"].shape[1]
        if out.shape[1] > n and torch.equal(out[:, :n], batch["input_ids"]):
            out = out[:, n:]  # the prompt comes back in front of the new tokens: drop it
        answers += [a.strip() for a in processor.tokenizer.batch_decode(out, skip_special_tokens=True)]
    return answers


def generation_accuracy(answers: Sequence[str], samples: Sequence[Sample], kind: str) -> float:
    """Share of generated ``answers`` whose first word is the right answer."""
    first = [(a.split() or [""])[0] for a in answers]
    return sum(f == answer(s, kind) for f, s in zip(first, samples)) / len(samples)


def show_answers(samples: Sequence[Sample], answers: dict[str, Sequence[str]], kind: str, n: int = 8):  # noqa: ANN201
    """Images with each model's generated answer underneath (a tick when right)."""
    from peftlab.plots import image_grid

    titles = []
    for i, s in enumerate(samples[:n]):
        lines = [
            f"{name}: {a[i] or '(nothing)'} {'✓' if a[i].split()[:1] == [answer(s, kind)] else '✗'}"
            for name, a in answers.items()
        ]
        titles.append("\n".join(lines))
    return image_grid([s.image for s in samples[:n]], titles)
