"""Notebook 07 (LLaVA: LoRA that lands in the vision tower): the checks it shows and the proofs the tests judge.

Learned figures (the yellow images' gap, the shape and position answers) from ``peftlab sweep --only 07
--seeds 0 1 2 3 4 5 6 --pretrain-seeds 0 1 2 3`` on both stacks (56 runs; figures beside each).
"""

from peftlab.tools.proofs import Proof, Shown, above, at_least, at_most

PARTS = ("vision tower", "projector", "language model")


def _exclude_regex_matches_the_report(counts: dict) -> bool:
    """the language model's layers of the report's list, and nothing else (where peft has exclude_modules)"""
    fixed = counts["exclude_modules regex"]
    if isinstance(fixed, str):  # a peft before exclude_modules: the notebook could not build it
        return fixed == "no exclude_modules in this peft"
    wanted = dict.fromkeys(PARTS, 0) | {"language model": counts["the report's list"]["language model"]}
    return fixed == wanted and wanted["language model"] > 0


def _flags_targets(diagnosis: dict | str) -> bool:
    """a problem of class 'targets' (where peft has exclude_modules)"""
    if isinstance(diagnosis, str):
        return diagnosis == "no exclude_modules"
    problems = [f for f in diagnosis["findings"] if f["severity"] != "advisory"]
    return any(f["failure_class"] == "targets" for f in problems)


def _doctor_is_clear(diagnosis: dict) -> bool:
    """no problem (advisories allowed)"""
    return diagnosis["ok"]


SHOWN = [
    Shown("fix: LoRA on the language model only, on the same layers as the report's list"),
    Shown("fix: the vision tower's outputs are bit-identical after training", at_most(0.0)),
    # The same comparison on the report's model: the check above can fail, and here it does.
    Shown("the report's setup: the vision tower's outputs moved in training", above(0)),
    Shown("fix: the saved adapter holds no vision-tower tensor"),
    # THRESHOLD_DERIVATION
    Shown("fix: colour answers on held-out yellow images", at_least(0.55)),
]

PROOFS = [
    Proof(
        "fix (exclude_modules regex): LoRA on the language model only, on the same layers as the report's list",
        "LoRA layers per part",
        _exclude_regex_matches_the_report,
    ),
    Proof(
        'the doctor flags ["q_proj", "v_proj"] on LLaVA before it runs',
        "doctor: the report's list",
        _flags_targets,
    ),
    Proof(
        'the doctor flags exclude_modules=["vision_tower"] before it runs',
        "doctor: exclude_modules list",
        _flags_targets,
    ),
    Proof(
        "the doctor has no problem with LoRA on the language model only",
        "doctor: the regex fix",
        _doctor_is_clear,
    ),
    # SHAPE_DERIVATION
    Proof(
        "fix: shape and position answers are not lost (at most 10 points)",
        "fix: shape and position change (the larger loss)",
        at_least(-0.10),
        learned=True,
    ),
]
