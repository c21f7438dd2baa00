"""Notebook 02 (BLIP-2 + LoRA with task_type="CAUSAL_LM", in 4-bit): the checks it shows and the proofs the tests judge.

Learned thresholds from ``peftlab sweep``: SEED 0-4 x pre-training seeds 0-2 (PEFTLAB_PRETRAIN_SEED) on
both stacks, 30 runs, 2026-12-07, each training image asked all three questions (figures beside each);
held-back: SEED 5-14 x pre-training seed 3 and SEED 15-24 x pre-training seed 4 (docs/sweep/summary.md).
"""

from peftlab.tools.proofs import Proof, Shown, at_least, at_most, below

#: What the last proof accepts where the CAUSAL_LM wrapper raises (the report's transformers).
NOT_RUN = "the wrapper cannot run here"


def _doctor_flags_the_wrapper(diagnosis: dict) -> bool:
    """a wrapper finding that predicts the TypeError"""
    problems = [f for f in diagnosis["findings"] if f["severity"] != "advisory"]
    return any(f["failure_class"] == "wrapper" and f["raises"] == "TypeError" for f in problems)


def _doctor_is_clear(diagnosis: dict) -> bool:
    """no problem (advisories allowed)"""
    return diagnosis["ok"]


def _only_the_opt(per_part: dict) -> bool:
    """LoRA layers in the language model only, and some"""
    return sum(per_part.values()) == per_part["language_model"] > 0


def _arithmetic_exact(differences: dict) -> bool:
    """at least one precision measurable, and the arithmetic equal to every measured footprint"""
    return len(differences) >= 1 and all(d == 0 for d in differences.values())


def _same_or_not_run(value: object) -> bool:
    """True where the wrapper runs (it cannot on the report's transformers)"""
    return value is True or value == NOT_RUN


def _zero_or_not_run(value: object) -> bool:
    """0 where the wrapper runs (it cannot on the report's transformers)"""
    return value == 0 or value == NOT_RUN


def _about_the_parameters_cells_figure(gigabytes: float) -> bool:
    """rounds to the "about 2.5 GB in 4-bit NF4" that the parameters cell (and the README's agenda) states"""
    return round(gigabytes, 1) == 2.5


SHOWN = [
    Shown("the signatures predict what the call did"),
    Shown("the fixed model runs the call, by keyword and by position alike", at_most(0.0)),
    # last/first mean loss of 10 steps: at most 0.38 in 30 runs (current), 0.36 (documented).
    Shown("the loss falls below 60% of where it started", below(0.6)),
    # Share of the gap closed, min / median over the 30 runs: 71% / 87% (documented), 48% / 80% (current);
    # the threshold is about a quarter below the smallest min (set at a third below the one-question
    # recipe's mins, 52% and 61%; the new recipe's one low run, 48%, is current, pre-training seed 2, SEED 2).
    Shown("colour answers on held-out images close at least 35% of the gap", at_least(0.35)),
    # Yellow images: 71% / 90% (documented), 56% / 90% (current); about 30% below the smallest min.
    Shown("colour answers on held-out yellow images close at least 40% of the gap", at_least(0.40)),
    # Written (greedy) colour answers: the same figures as the scored ones in every run of the 30; the colour
    # question's threshold.
    Shown("written colour answers close at least 35% of the gap", at_least(0.35)),
]

PROOFS = [
    Proof("the notebook's signature check and the doctor's agree", "signature check agrees with the doctor"),
    Proof(
        'the doctor flags task_type="CAUSAL_LM" on BLIP-2 before it runs',
        "doctor: CAUSAL_LM wrapper",
        _doctor_flags_the_wrapper,
    ),
    Proof(
        "the doctor has no problem with BLIP-2 + LoRA without a task_type",
        "doctor: plain PeftModel",
        _doctor_is_clear,
    ),
    Proof("what the CAUSAL_LM wrapper raised is a TypeError", "raised", lambda mro: "TypeError" in mro),
    Proof("LoRA on q_proj/v_proj adapts only the OPT", "LoRA layers per part", _only_the_opt),
    # Change over the 30 runs: shape -2 to +10 points, position -1 to +4; at most 10 points may be lost.
    Proof("shape answers are not lost (at most 10 points)", "shape change", at_least(-0.10), learned=True),
    Proof(
        "position answers are not lost (at most 10 points)", "position change", at_least(-0.10), learned=True
    ),
    Proof(
        "where the CAUSAL_LM wrapper runs, both models hold the same dtypes, parameter by parameter",
        "wrapper vs PeftModel: same dtypes",
        _same_or_not_run,
    ),
    Proof(
        "where the CAUSAL_LM wrapper runs, it gives the plain PeftModel's logits, bit for bit",
        "wrapper vs PeftModel: max logit difference",
        _zero_or_not_run,
    ),
    Proof(
        "the memory arithmetic equals get_memory_footprint()",
        "memory arithmetic minus get_memory_footprint(), per precision",
        _arithmetic_exact,
    ),
    Proof(
        "the real model's size in 4-bit is what the parameters cell says",
        "real model in 4-bit NF4 with its scales, GB",
        _about_the_parameters_cells_figure,
    ),
]
