"""``peftlab run --real-size``: every notebook on its published architecture, with random weights.

For each notebook, :data:`PLANS` names the published checkpoints its parameters point at (see
:mod:`peftlab.tools.published`) and the few steps and small batches that make a run affordable on a
CPU. The runner builds each checkpoint's random-weight folder (once, cached), hands papermill
``CHECKPOINT=<folder>`` and the rest as parameters, and tells the kernel ``PEFTLAB_MODE=real-size``: the checks that need pre-trained weights (accuracy gains,
losses that must fall within a few steps) are then recorded "not judged: random weights", never
"passed". Everything else is judged as usual: the failure reproduced at real size, the fix runs,
save and reload are exact, gradients reach every adapted layer. The table adds the kernel's peak
RSS and the median seconds per training step.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from peftlab.tools.published import PUBLISHED


@dataclass(frozen=True)
class Plan:
    """How one notebook runs at real size: checkpoints by parameter name, other parameters, or why not."""

    checkpoints: dict[str, str] = field(default_factory=dict)  # parameter -> key of PUBLISHED
    parameters: dict[str, object] = field(default_factory=dict)
    left_out: str = ""  # empty: in the default set; else why not (printed by the CLI)
    summary: str = ""  # a short form of ``left_out`` for the README's table

    def reason(self) -> str:
        """Why the notebook is not in the default ``--real-size`` set ("" when it is)."""
        return self.left_out


def too_big_here(key: str) -> str:
    """Why the published checkpoint ``key`` is not built here, from its facts: parameters, float32 size."""
    published = PUBLISHED[key]
    return (
        f"`{published.hub_id}`: {published.parameters / 1e9:.2f} B parameters, "
        f"{published.float32_gigabytes:.0f} GB of float32 weights to build its random-weight copy"
    )


#: Notebook prefix -> its real-size plan. Few images and steps: shapes, memory and time per step are
#: the real model's; learning is not judged (random weights).
PLANS: dict[str, Plan] = {
    "01": Plan(
        {"CHECKPOINT": "clip-vit-base-patch32"},
        {"LORA_STEPS": 3, "BATCH_SIZE": 8, "EVAL_BATCH_SIZE": 32, "TRAIN_IMAGES": 16, "TEST_IMAGES": 32},
    ),
    "03": Plan(
        {"CHECKPOINT": "opt-125m"},
        {"STAGE_ONE_STEPS": 2, "STAGE_TWO_STEPS": 2, "BATCH_SIZE": 8, "EVAL_BATCH_SIZE": 32, "SCENES": 16},
    ),
    "05": Plan(
        {"CHECKPOINT": "chinese-clip-vit-large-patch14", "WRONG_CONFIG": "chinese-clip-vit-base-patch16"},
        {"LORA_STEPS": 2, "BATCH_SIZE": 4, "EVAL_BATCH_SIZE": 16, "TRAIN_IMAGES": 8, "TEST_IMAGES": 16},
    ),
    "02": Plan(
        {"CHECKPOINT": "blip2-opt-2.7b"},
        left_out=f"Salesforce/blip2-opt-2.7b in NF4 on this CPU: {PUBLISHED['blip2-opt-2.7b'].fits_here}",
        summary="`Salesforce/blip2-opt-2.7b` in NF4: not run here, estimated to need more than 20 minutes and "
        "about 15 GB to build on this 2-core CPU (`peftlab run --real-size --only 02` says why); run it on a GPU",
    ),
    "04": Plan(
        {"CHECKPOINT": "vit-base-patch16-224-in21k"},
        {
            "NEW_SIZE": 512,
            "LORA_STEPS": 2,
            "BATCH_SIZE": 2,
            "EVAL_BATCH_SIZE": 8,
            "TRAIN_IMAGES": 4,
            "TEST_IMAGES": 8,
        },
    ),
    "00": Plan(left_out="a primer on a toy model: it names no published checkpoint"),
    "06": Plan(
        {"CHECKPOINT": "blip2-opt-2.7b"},
        left_out=f"notebook 02's checkpoint, {too_big_here('blip2-opt-2.7b')}; 06 loads it once per "
        "gradient-checkpointing set-up it compares (QUANTIZE = True on a CUDA GPU)",
        summary=f"not run here: {too_big_here('blip2-opt-2.7b')}; run it on a GPU",
    ),
    "07": Plan(
        {"CHECKPOINT": "llava-1.5-7b"},
        left_out=f"{too_big_here('llava-1.5-7b')}, more than this machine's memory; 07 then loads it once per "
        "LoRA set-up it compares (NF4 on a GPU: QUANTIZE = None)",
        summary=f"not run here: {too_big_here('llava-1.5-7b')}, more than this machine's memory; run it on a GPU",
    ),
}


def default_set() -> list[str]:
    """The notebooks ``--real-size`` runs without ``--only``: those with no reason to leave them out."""
    return [n for n, p in PLANS.items() if not p.left_out]


def plan_for(stem: str) -> Plan:
    """The plan of the notebook named ``stem`` (e.g. ``01_clip_task_type``)."""
    key = stem[:2]
    if key not in PLANS:
        raise KeyError(f"No real-size plan for {stem}.")
    return PLANS[key]


def parameters_for(stem: str) -> dict[str, object]:
    """The parameters to inject: each checkpoint's random-weight folder (built now if needed) + the rest."""
    from peftlab.tools.published import random_weights_folder

    plan = plan_for(stem)
    if plan.left_out:
        raise ValueError(f"{stem} does not run at real size here: {plan.left_out}")
    folders = {name: str(random_weights_folder(key)) for name, key in plan.checkpoints.items()}
    return {**folders, **plan.parameters}


HEADER = [
    "notebook",
    "checkpoint",
    "failure at real size",
    "judged checks",
    "not judged (random weights)",
    "save/reload exact",
    "peak RSS",
    "s/step",
    "seconds",
]


def row(stem: str, seconds: float, card: dict | None, error: str) -> list[str]:
    """One row of the real-size table."""
    plan = plan_for(stem)
    checkpoint = ", ".join(PUBLISHED[k].hub_id for k in plan.checkpoints.values())
    if card is None:
        return [
            stem,
            checkpoint,
            "not run here" if error.startswith("not run here") else "no",
            f"no ({error or 'no scorecard'})",
            "-",
            "-",
            "-",
            "-",
            f"{seconds:.0f}",
        ]
    failures = (
        "; ".join(
            f"yes ({f['outcome']})" if f["reproduced"] else "no error on these versions"
            for f in card["failures"]
        )
        or "none"
    )
    judged = [c for c in card["checks"] if c["passed"] is not None]
    passed = sum(bool(c["passed"]) for c in judged)
    reload = [c for c in judged if "reload" in c["claim"] or "round trip" in c["claim"]]
    reload_text = f"{'yes' if all(c['passed'] for c in reload) else 'no'} ({len(reload)})" if reload else "-"
    error = re.sub(r"\x1b\[[0-9;]*m", "", error)[:90]  # the kernel's colours
    judged_text = f"{passed}/{len(judged)} passed" + (f" ({error})" if error else "")
    per_step = card.get("seconds_per_step")
    return [
        stem,
        checkpoint,
        failures,
        judged_text,
        str(len(card["checks"]) - len(judged)),
        reload_text,
        f"{card.get('peak_rss_mb', 0) / 1024:.1f} GB",
        f"{per_step:.1f}" if per_step else "-",
        f"{seconds:.0f}",
    ]


def ok(stem: str, card: dict | None, error: str) -> bool:
    """True when the notebook ran to its end, showed every failure it teaches and every judged check
    passed; "not judged" checks never count as passed, and at least one check must have been judged."""
    from peftlab.tools.execute import failures_missing

    if error or card is None or failures_missing(stem, card):
        return False
    judged = [c for c in card["checks"] if c["passed"] is not None]
    return bool(judged) and all(c["passed"] for c in judged)


def record(cards: dict[str, dict], target: Path) -> None:
    """Merge the peak RSS and s/step of ``cards`` into the facts file the README's memory table reads."""
    facts = json.loads(target.read_text()) if target.exists() else {"notebooks": {}}
    for stem, card in cards.items():
        plan = plan_for(stem)
        facts["notebooks"][stem] = {
            "checkpoints": [PUBLISHED[k].hub_id for k in plan.checkpoints.values()],
            "parameters": plan.parameters,
            "peak_rss_mb": card["peak_rss_mb"],
            "seconds_per_step": card.get("seconds_per_step"),
            "stack": card["stack"],
            "measured": time.strftime("%Y-%m-%d", time.gmtime()),
            "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 1),  # the machine is shared: an upper bound on time
            "versions": {
                k: card["versions"][k] for k in ("torch", "transformers", "peft") if k in card["versions"]
            },
        }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
