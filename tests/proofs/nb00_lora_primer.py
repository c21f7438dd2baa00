"""Notebook 00 (the LoRA primer): the checks it shows. It records no other fact: every claim it makes
is one of its six shown checks, each a count or a measurement compared with what the formula predicts.
"""

from peftlab.tools.proofs import Shown, below, equals

SHOWN = [
    Shown("the suffix / full-regex rule predicts exactly the layers PEFT wraps", equals(0)),
    Shown("trainable parameters are r * (in + out) per wrapped layer, for every r", equals(0)),
    # SEED 0-4 on both stacks (10 runs, PEFTLAB_PRETRAIN_SEED=0): every update had rank exactly r, its
    # r-th singular value at least 1.5% of the first (matrix_rank's tolerance is about 1e-5 of it). The
    # check needs rank r (training moved all r directions) and never more (the factorisation's limit).
    Shown("after training, every LoRA update B @ A has rank exactly r"),
    # The relative error of the change ratio against lora_alpha's ratio: within 0.1% (float32 rounding
    # is far below).
    Shown("a layer's output change is proportional to lora_alpha / r", below(1e-3)),
    Shown("task_type changes the wrapper class, not the LoRA parameters"),
    Shown(
        "modules_to_save adds one trainable copy: +its size to trainable and to all parameters; "
        "only the copy trains and is saved"
    ),
]

PROOFS = []
