"""The held-out figure of issue 26: the doctor's verdict on each setup of each held-out family, compared
with what really happens when the setup is run (``get_peft_model``, a forward and a backward pass).

A **setup** is a LoRA config and what goes with it (a batch cut by truncation, reentrant gradient
checkpointing switched on before or after ``get_peft_model``, LLaVA's recipe). Its **verdict** is three
facts, each predicted by the doctor and observed in the run:

* ``raises``: where the run stops and with which exception (``wrap``, ``forward``, ``backward``), or None;
* ``dead``: some LoRA layer gets no gradient (its ``lora_B`` gradient is None or zero) although training runs;
* ``vision``: LoRA lands in the vision encoder as well as in the language model (judged only where the
  doctor sees the config: every setup but the checkpointing ones, whose doctor runs on the PeftModel).

The doctor is asked as a learner would: ``doctor(model, config, batch=batch)`` just before
``get_peft_model``, and ``doctor(peft_model, batch=batch)`` just before the first step (as
``peftlab.DoctorCallback`` does); its prediction is the union of both. The observation never calls
the doctor: where LoRA landed is read from the wrapped model's module names against each family's
labels (tests/held_out.py), gradients from ``.grad`` after ``backward()``.

``python tests/held_out_verdicts.py`` prints every verdict and the figure (right / total) for the
installed stack.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

sys.path.insert(0, str(Path(__file__).parent))

import held_out  # noqa: E402

from peftlab.doctor import doctor  # noqa: E402

#: Where a finding says the run stops (``Finding.when``), as a stage of the run.
STAGES = {
    "get_peft_model": "wrap",
    "wrap": "wrap",
    "first forward": "forward",
    "first training step": "forward",
    "loss.backward()": "backward",
}
ORDER = ("wrap", "forward", "backward")
#: Findings that say some LoRA layer will get no gradient while training runs.
DEAD = ("checkpointing.tower_without_gradient", "targets.no_gradient_path", "targets.output_unused")
REENTRANT = {"use_reentrant": True}


@dataclass(frozen=True)
class Setup:
    """One way to train a family: the config and what goes with it."""

    name: str
    config: Callable[[dict[str, str]], LoraConfig]  # from the family's resolved labels
    batch: Callable[[dict, held_out.Family], dict] = lambda inputs, family: inputs
    checkpointing: str | None = None  # "before" or "after" get_peft_model, reentrant
    judged: tuple[str, ...] = ("raises", "dead", "vision")
    needs: tuple[str, ...] = ()  # labels the family must have


@dataclass
class Verdict:
    """What the doctor said and what the run did, for one family and setup."""

    family: str
    setup: str
    predicted: dict = field(default_factory=dict)
    observed: dict = field(default_factory=dict)
    judged: tuple[str, ...] = ()
    codes: list[str] = field(default_factory=list)

    @property
    def facts(self) -> tuple[str, ...]:
        """The facts judged: only where the run stops when it stops (nothing after it is observed)."""
        return ("raises",) if self.observed["raises"] else self.judged

    @property
    def right(self) -> bool:
        return all(self.predicted[k] == self.observed[k] for k in self.facts)

    def __str__(self) -> str:
        facts = ", ".join(
            f"{k}={self.observed[k]}"
            + ("" if self.predicted[k] == self.observed[k] else f" (said {self.predicted[k]})")
            for k in self.facts
        )
        return f"{'right' if self.right else 'WRONG'}  {self.family:16} {self.setup:24} {facts}"


def _lm_regex(labels: dict[str, str]) -> str:
    return rf"{re.escape(labels['language'])}\..*\.(q_proj|v_proj|query|value|q|v)"


def _truncated(inputs: dict, family: held_out.Family) -> dict:
    """Left truncation through the middle of the image tokens (max_length cutting them)."""
    ids = inputs["input_ids"]
    first = int((ids[0] == family.image_token).nonzero()[0])
    count = int((ids[0] == family.image_token).sum())
    return held_out.truncated(inputs, ids.shape[-1] - first - count // 2)


def _without(name: str) -> Callable[[dict, held_out.Family], dict]:
    return lambda inputs, family: {k: v for k, v in inputs.items() if k != name}


SETUPS = (
    Setup("q_proj,v_proj", lambda labels: LoraConfig(target_modules=["q_proj", "v_proj"])),
    Setup("all-linear", lambda labels: LoraConfig(target_modules="all-linear")),
    Setup(
        "all-linear, tower excluded",
        lambda labels: LoraConfig(
            target_modules="all-linear",
            exclude_modules=rf".*{re.escape(labels['tower'].rsplit('.', 1)[-1])}.*",
        ),
        needs=("tower", "language"),
    ),
    Setup(
        "task_type, all-linear",
        lambda labels: LoraConfig(
            task_type="CAUSAL_LM" if "language" in labels else "FEATURE_EXTRACTION",
            target_modules="all-linear",
        ),
    ),
    Setup(
        "truncated batch",
        lambda labels: LoraConfig(target_modules="all-linear"),
        batch=_truncated,
        needs=("image_token",),
    ),
    Setup(
        "no token_type_ids",
        lambda labels: LoraConfig(target_modules="all-linear"),
        batch=_without("token_type_ids"),
        needs=("token_type_ids",),
    ),
    Setup(
        "checkpointing after wrap",
        lambda labels: LoraConfig(target_modules="all-linear"),
        checkpointing="after",
        judged=("raises", "dead"),
    ),
    Setup(
        "checkpointing before wrap",
        lambda labels: LoraConfig(target_modules="all-linear"),
        checkpointing="before",
        judged=("raises", "dead"),
    ),
    Setup(
        "LLaVA's recipe",
        lambda labels: LoraConfig(target_modules=_lm_regex(labels), modules_to_save=[labels["projector"]]),
        checkpointing="after",
        judged=("raises", "dead"),
        needs=("language", "projector"),
    ),
)


def _predicted(findings: list, judged_vision: bool) -> dict:
    errors = sorted(
        (STAGES[f.when], f.raises)
        for f in findings
        if f.severity == "error" and f.raises and f.when in STAGES
    )
    errors.sort(key=lambda e: ORDER.index(e[0]))
    return {
        "raises": errors[0] if errors else None,
        "dead": any(f.code in DEAD for f in findings),
        "vision": judged_vision and any(f.code == "targets.multi_tower" for f in findings),
    }


def _landed(peft_model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The LoRA layers of a PeftModel, by their base model's module name."""
    return {
        name.removeprefix("base_model.model."): module
        for name, module in peft_model.named_modules()
        if hasattr(module, "lora_B") and hasattr(module, "base_layer") and len(module.lora_B)
    }


def _gets_gradient(layer: torch.nn.Module) -> bool:
    grads = [p.grad for p in layer.lora_B.parameters()]
    return any(g is not None and bool(g.abs().sum() > 0) for g in grads)


def _loss(output: object) -> torch.Tensor:
    """The model's loss, or (a model without one: detection, feature models) every float output's mean square."""
    loss = getattr(output, "loss", None)
    if loss is None:
        floats = [v for v in output.values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
        loss = sum(v.float().pow(2).mean() for v in floats)
    return loss


def _inside(name: str, prefix: str | None) -> bool:
    return prefix is not None and (name == prefix or name.startswith(prefix + "."))


def _enable(model: torch.nn.Module) -> bool:
    if not getattr(model, "supports_gradient_checkpointing", False):
        return False
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=REENTRANT)
    return True


def verdict(name: str, setup: Setup) -> Verdict | None:
    """Predict, run and compare one setup of one family; None when it does not apply here."""
    family = held_out.FAMILIES[name]
    try:
        model, inputs = family.build()
    except held_out.Missing:
        return None
    labels = family.resolve(model)
    if any(need not in labels for need in setup.needs) or (
        "token_type_ids" in setup.needs and "token_type_ids" not in inputs
    ):
        return None
    config = setup.config(labels)
    batch = setup.batch(inputs, family)
    if setup.checkpointing == "before" and not _enable(model):
        return None
    judged_vision = "vision" in setup.judged
    findings = list(doctor(model, config, batch=batch))
    observed: dict = {"raises": None, "dead": False, "vision": False}
    try:
        peft_model = get_peft_model(model, config)
    except Exception as error:  # noqa: BLE001  (what the run raises is the observation)
        observed["raises"] = ("wrap", type(error).__name__)
        return Verdict(
            name,
            setup.name,
            _predicted(findings, judged_vision),
            observed,
            setup.judged,
            [f.code for f in findings],
        )
    if setup.checkpointing == "after" and not _enable(peft_model.get_base_model()):
        return None
    landed = _landed(peft_model)
    if judged_vision:
        observed["vision"] = any(_inside(n, labels.get("tower")) for n in landed) and any(
            _inside(n, labels.get("language")) for n in landed
        )
    peft_model.train()
    findings += list(doctor(peft_model, batch=batch))
    try:
        output = peft_model(**batch)
    except Exception as error:  # noqa: BLE001
        observed["raises"] = ("forward", type(error).__name__)
    else:
        try:
            _loss(output).backward()
        except Exception as error:  # noqa: BLE001
            observed["raises"] = ("backward", type(error).__name__)
        else:
            observed["dead"] = not all(_gets_gradient(layer) for layer in landed.values())
    return Verdict(
        name,
        setup.name,
        _predicted(findings, judged_vision),
        observed,
        setup.judged,
        [f.code for f in findings],
    )


def verdicts(names: list[str] | None = None) -> Iterator[Verdict]:
    """Every applicable (family, setup) of the held-out set, in order."""
    for name in names or held_out.FAMILIES:
        for setup in SETUPS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = verdict(name, setup)
            if found is not None:
                yield found


def main(argv: list[str]) -> int:
    import transformers

    right = total = 0
    for v in verdicts(argv or None):
        right += v.right
        total += 1
        print(v, flush=True)
    print(f"transformers {transformers.__version__}: {right} of {total} verdicts right")
    return 0 if right == total else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
