"""What the doctor reports: :class:`Finding` (one problem) and :class:`Diagnosis` (all of them).

A diagnosis shows as a table in Jupyter, as plain text elsewhere, and as plain data through
:meth:`Diagnosis.as_dict`.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import asdict, dataclass, field

#: The failure classes, in the order the doctor checks them.
CLASSES = {
    "wrapper": "wrapper/forward mismatch",
    "targets": "bad targets",
    "unsaved": "unsaved trainables",
    "checkpoint": "checkpoint/config mismatch",
    "versions": "library versions",  # advisories about other releases, and the installed pairing
    "checkpointing": "checkpointing with frozen inputs",  # notebook 06
    "inputs": "batch/model input mismatch",
    "adapter": "adapter/model key mismatch",
}

#: Per class: what the doctor finds, and what it decides from (the README's doctor table is made from this).
DETAILS = {
    "wrapper": (
        "a `task_type` wrapper that passes keywords the model rejects (`unexpected keyword`), or that collide "
        "further down (`got multiple values`); a required argument such as `pixel_values` that the wrapper does "
        "not name",
        "the wrapper's call and the model's signatures. Where a keyword goes into `**kwargs`, the installed "
        "source is followed down to the submodule call that receives it",
    ),
    "targets": (
        "types LoRA cannot wrap (a Dropout matched by `default`; a module around `nn.Linear`, with the inner "
        "layers as the fix); nothing matched; layers that already carry an adapter (the double wrap); a "
        "contrastive two-tower model with only one tower adapted; an image-text generator whose targets also "
        "land in its vision tower (notebook 07); LoRA inside a VQ image tokenizer (discrete codes: no "
        "gradient); with a batch, LoRA layers whose output the model never uses (a pooling head that the "
        "image features skip, an image-generation head). Every diagnosis counts each `target_modules` "
        "entry's matches per part of the model",
        "PEFT's own matching rules for the installed version (`peftlab.targets`); a vision tower is what "
        "consumes the pixels, not a name; every fix proposed is matched before it is printed; the model's "
        "image path run once on the batch, with a probe on each adapted layer",
    ),
    "unsaved": (
        "`modules_to_save` naming a parameter, or matching a module nested in another; parameters unfrozen "
        "outside PEFT; a PeftModel with nothing to train; an output layer tied to the input embeddings in "
        "the targets, or in `modules_to_save` where a reload ties it again",
        "module and parameter names; what `save_pretrained` writes; whether the head's weight is the "
        "embeddings' weight; whether the installed `tie_weights` ties a pair that the checkpoint holds both of",
    ),
    "checkpoint": (
        "every tensor whose shape disagrees, folded by family, and the config that matches, searched for any "
        "model class (no list of models) and checked on the meta device before it is proposed",
        "tensor shapes read from the file header (`peftlab.checkpoints`)",
    ),
    "versions": (
        "target names that transformers 5 renamed (ViT, DeiT, Swin, BEiT, DINOv2, ...), models loaded through "
        "`AutoModelForVision2Seq` (removed in 5.0); an installed peft below the installed transformers' own "
        "minimum for its adapter API",
        "measured on both stacks; the installed transformers' `MIN_PEFT_VERSION`",
    ),
    "checkpointing": (
        "reentrant gradient checkpointing where no input of a checkpointed block requires grad "
        "(`RuntimeError: element 0 of tensors does not require grad`), and the silent case: one tower's "
        "adapters that get no gradient (notebook 06); the hook that makes inputs require grad on a module "
        "that returns a tuple, or whose frozen output its caller changes in place; `get_peft_model` with "
        "checkpointing on, on a model without input embeddings",
        "which layers are checkpointed and with which `use_reentrant`, the hooks that make inputs require "
        "grad, which parameters train, and how image features reach the language model's layers (the "
        "installed code, read); with a batch, which trainable layers the image path runs and uses",
    ),
    "inputs": (
        "a batch whose image placeholder tokens differ from the image features the model makes (truncation "
        "by `max_length`): a `ValueError` where the installed code compares the counts, else a shape error, "
        "or a silent loss where `masked_scatter` drops the extra features; an input the model requires in "
        "training mode (`token_type_ids`) missing",
        "`doctor(..., batch=...)`: the batch, the model's `get_image_features` run once (on the meta device "
        "when the model is there), the installed merge code, and its `raise` under "
        "`if training and <input> is None`",
    ),
    "adapter": (
        "a saved adapter whose keys name no module of the model: it loads with a warning and does nothing "
        "(module names moved between releases, or another model class)",
        "`doctor(..., adapter=folder)`: the adapter file's keys, after the renames the installed libraries "
        "apply on load",
    ),
}

NUMBERS = (
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)


def class_count() -> str:
    """How many failure classes the doctor checks, in words (``"eight"``): read from :data:`CLASSES`."""
    return NUMBERS[len(CLASSES)] if len(CLASSES) < len(NUMBERS) else str(len(CLASSES))


#: Severities, worst first. An advisory is about another library version, not about this run.
SEVERITIES = ("error", "silent loss", "warning", "advisory")


@dataclass(frozen=True)
class Finding:
    """One thing that will go wrong (or differ on another library version), found before training."""

    failure_class: str  # a key of CLASSES
    code: str  # stable id, e.g. "wrapper.unexpected_keyword"
    severity: str  # one of SEVERITIES
    what: str  # what will happen: the error, or the silent loss
    evidence: str  # names, signatures, shapes
    fix: str
    raises: str | None = None  # the exception class expected, None when nothing will be raised
    when: str = ""  # where it happens: "get_peft_model", "first forward", "reload", ...

    def __post_init__(self) -> None:
        if self.failure_class not in CLASSES:
            raise ValueError(f"Unknown failure class {self.failure_class!r}; known: {list(CLASSES)}.")
        if self.severity not in SEVERITIES:
            raise ValueError(f"Unknown severity {self.severity!r}; known: {SEVERITIES}.")

    def __str__(self) -> str:
        head = f"[{self.severity}] {CLASSES[self.failure_class]} ({self.code})"
        body = [("what", self.what), ("evidence", self.evidence), ("fix", self.fix)]
        wrap = lambda label, text: textwrap.fill(  # noqa: E731
            text, 100, initial_indent=f"  {label:<9}", subsequent_indent=" " * 11
        )
        return "\n".join([head] + [wrap(label, text) for label, text in body])


@dataclass
class Diagnosis:
    """The doctor's findings for one model (and config, and checkpoint), worst first."""

    subject: str
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    #: Per ``target_modules`` entry, the modules it matches per part of the model (peft #3658).
    target_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.findings.sort(key=lambda f: SEVERITIES.index(f.severity))

    @property
    def problems(self) -> list[Finding]:
        """The findings about this run: everything except advisories."""
        return [f for f in self.findings if f.severity != "advisory"]

    @property
    def ok(self) -> bool:
        """True when nothing will go wrong on the installed versions (advisories allowed)."""
        return not self.problems

    def codes(self) -> list[str]:
        """The codes of every finding, e.g. ``["wrapper.unexpected_keyword"]``."""
        return [f.code for f in self.findings]

    def of(self, failure_class: str) -> list[Finding]:
        """The findings of one class (a key of :data:`CLASSES`)."""
        return [f for f in self.findings if f.failure_class == failure_class]

    def __iter__(self):  # noqa: ANN204
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def headline(self) -> str:
        """One line: how many problems and advisories, or that all is well."""
        counts = {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}
        found = ", ".join(
            f"{n} {s}{'s' if n > 1 and s != 'silent loss' else ''}" for s, n in counts.items() if n
        )
        return f"peftlab doctor, {self.subject}: {found or 'no problems found'} ({self.seconds:.2f} s)"

    def as_dict(self) -> dict:
        """Plain data (JSON-ready): the subject, ``ok``, the seconds and every finding's fields."""
        return {
            "subject": self.subject,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "target_counts": self.target_counts,
            "findings": [asdict(f) for f in self.findings],
        }

    def counts_line(self) -> str:
        """``target_modules: 'q_proj' 6 (vision tower 4, language model 2); 'qkv' matches nothing``."""
        shown = []
        for entry, per_part in self.target_counts.items():
            total = sum(per_part.values())
            where = ", ".join(f"{part} {n}" for part, n in per_part.items() if n)
            shown.append(f"{entry!r} {total} ({where})" if total else f"{entry!r} matches nothing")
        return "target_modules: " + "; ".join(shown) if shown else ""

    def __str__(self) -> str:
        head = "\n".join(filter(None, [self.headline(), self.counts_line()]))
        return "\n\n".join([head] + [str(f) for f in self.findings])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colours = {"error": "#c62828", "silent loss": "#ad1457", "warning": "#ef6c00", "advisory": "#1565c0"}
        cell = "<td style='text-align:left;vertical-align:top;overflow-wrap:anywhere;max-width:26em'>{}</td>"
        rows = "".join(
            "<tr>"
            + cell.format(
                f"<b style='color:{colours[f.severity]}'>{f.severity}</b><br>"
                f"{CLASSES[f.failure_class]}<br><code>{f.code}</code>"
            )
            + "".join(cell.format(html.escape(text)) for text in (f.what, f.evidence, f.fix))
            + "</tr>"
            for f in self.findings
        )
        head = "".join(
            f"<th style='text-align:left'>{c}</th>"
            for c in ("finding", "what will happen", "evidence", "fix")
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>" if rows else ""
        counts = f"<br><small>{html.escape(self.counts_line())}</small>" if self.target_counts else ""
        return f"<div><b>{html.escape(self.headline())}</b>{counts}{table}</div>"
