"""Solutions to the exercises of notebook 02 (BLIP-2 + LoRA, 4-bit)."""

import math
from typing import Any


def exercise_1(ns: dict[str, Any]) -> Any:
    """qformer.

    PEFT matches target names by the end of each module's name. Only the Q-Former, a BERT-like
    transformer, names its attention projections ``query``/``key``/``value``; the ViT uses one
    fused ``qkv`` layer and the OPT ``q_proj``/``k_proj``/``v_proj``. So ``["query", "value"]``
    adapts the Q-Former alone, as ``["q_proj", "v_proj"]`` adapted the OPT alone.
    """
    return "qformer"


def exercise_2(ns: dict[str, Any]) -> Any:
    """3,276,800 bytes.

    2560 x 2560 = 6,553,600 weights; NF4 stores each in 4 bits, two to a byte. (float16 would take
    13,107,200 bytes, float32 26,214,400.)
    """
    return 2560 * 2560 // 2


def exercise_3(ns: dict[str, Any]) -> Any:
    """104,000 bytes.

    6,553,600 weights / 64 = 102,400 blocks, one 8-bit scale each (102,400 bytes), plus one 32-bit
    float per 256 scales: 400 x 4 = 1,600 bytes. Without double quantisation the scales would take
    102,400 x 4 = 409,600 bytes: about 0.5 bit per weight instead of 0.13.
    """
    blocks = math.ceil(2560 * 2560 / 64)
    return blocks + 4 * math.ceil(blocks / 256)
