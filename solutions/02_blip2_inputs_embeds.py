"""Solutions to the exercises of notebook 02 (BLIP-2 + LoRA with task_type="CAUSAL_LM", in 4-bit)."""

from typing import Any

#: The OPT's width in ``Salesforce/blip2-opt-2.7b`` (``text_config.hidden_size``).
OPT_WIDTH = 2560


def exercise_1(ns: dict[str, Any]) -> Any:
    """qformer.

    PEFT compares each entry of a target list with the end of every layer's name. Only the Q-Former, a
    BERT-like transformer, names its attention projections ``query``/``key``/``value``; the ViT uses one
    fused ``qkv`` layer and the OPT ``q_proj``/``k_proj``/``v_proj``. So ``["query", "value"]`` adapts
    the Q-Former alone, as ``["q_proj", "v_proj"]`` adapted the OPT alone.
    """
    return "qformer"


def exercise_2(ns: dict[str, Any]) -> Any:
    """3,276,800 bytes.

    2560 x 2560 = 6,553,600 weights; NF4 stores each in 4 bits, two to a byte. (float16 would take
    13,107,200 bytes, float32 26,214,400.)
    """
    return OPT_WIDTH * OPT_WIDTH // 2


def exercise_3(ns: dict[str, Any]) -> Any:
    """multiple values: ``TypeError: ... got multiple values for keyword argument 'inputs_embeds'``.

    The wrapper passes ``inputs_embeds=None``; BLIP-2's ``forward`` does not declare it, so ``**kwargs``
    takes it and hands it on to ``self.language_model(inputs_embeds=..., **kwargs)``: the keyword
    arrives twice. The registry records it for the releases in between (run on several of them).
    Notebook 01's ``predicted_error(["inputs_embeds"], takes_kwargs=True)`` says the same.
    """
    return "multiple values"


#: Right answers in other forms, per exercise.
VARIANTS = {
    1: ["Q-Former", "QFormer", " qformer "],
    2: ["3,276,800", "3276800", 3276800.0],
    3: ["Multiple values", "multiple-values", "'multiple values'"],
}
#: Plausible wrong answers, per exercise.
WRONG = {
    1: ["vision_model", "language_model"],
    2: [6553600, 13107200],
    3: ["unexpected keyword", "no error"],
}
#: The wrong answer the one-kernel learner test gives first (tests/learner.py).
WRONG_ANSWERS = {k: answers[0] for k, answers in WRONG.items()}
