"""The failure registry, and ``expect_failure``: show an expected error without stopping "Run all".

One place knows, for each documented failure and each range of library versions, what must happen:
an exception of a given type whose message matches a pattern, or no error at all (with the reason).
A notebook runs the failing code inside ``with expect_failure("id"):``. The block

* shows the real error as a learner would see it (a message that embeds a whole module repr is
  trimmed), then lets the notebook go on, like debuggingbook's ``ExpectError``;
* raises :class:`UnexpectedOutcome` (an ``AssertionError`` naming the installed versions) when what
  happened differs from what the registry records, including the case where nothing failed.

Observe mode (used by ``peftlab drift``, see :mod:`peftlab.drift`): with ``$PEFTLAB_OBSERVE`` set to a
file, every block appends what happened to it (one JSON line) and a difference from the registry is
shown but not raised, so the notebook goes on. A person who has confirmed an observation records it
as a new :class:`Expectation` in the failure's entry below (``peftlab drift --record ID`` prints one
ready to paste; README, "Recording a new observation").
"""

from __future__ import annotations

import html
import json
import os
import re
import traceback
from dataclasses import dataclass, field
from types import TracebackType

from packaging.specifiers import SpecifierSet

from peftlab.versions import describe, installed


@dataclass(frozen=True)
class Expectation:
    """What happens on the versions that satisfy every specifier in ``when``."""

    when: dict[str, str]
    raises: str | None  # exception class name, or None for "no error on these versions"
    match: str = ""  # regular expression searched in the message
    reason: str = ""  # why it happens (or, for ``raises=None``, why it no longer does)

    def applies(self, versions: dict[str, str | None]) -> bool:
        """True when the installed ``versions`` satisfy every specifier of ``when``."""
        return all(
            versions.get(lib) is not None and SpecifierSet(spec).contains(versions[lib], prereleases=True)
            for lib, spec in self.when.items()
        )

    def describe(self) -> str:
        """A short phrase: the error expected, or "no error"."""
        return f"{self.raises}: /{self.match}/" if self.raises else "no error"


@dataclass(frozen=True)
class Failure:
    """A documented failure: where it is taught and what happens on each range of versions."""

    id: str
    notebook: str
    title: str
    expectations: tuple[Expectation, ...]
    seen: tuple[str, ...] = field(default=())  # stacks on which this was measured

    def expected(self, versions: dict[str, str | None] | None = None) -> Expectation:
        """The expectation for ``versions`` (the installed ones by default)."""
        versions = versions or installed()
        for expectation in self.expectations:
            if expectation.applies(versions):
                return expectation
        raise UnexpectedOutcome(
            f"No expectation is recorded for failure {self.id!r} on the {describe(versions)}. "
            "Record what happens there in peftlab/failures.py (see README, 'Recording a new observation')."
        )


class UnexpectedOutcome(AssertionError):
    """What happened differs from what the registry records for the installed versions."""


REGISTRY: dict[str, Failure] = {}


def register(failure: Failure) -> Failure:
    """Add ``failure`` to :data:`REGISTRY` (ids are unique)."""
    if failure.id in REGISTRY:
        raise ValueError(f"Failure id {failure.id!r} is registered twice.")
    REGISTRY[failure.id] = failure
    return failure


def get(failure_id: str) -> Failure:
    """Look up a failure by id, with a helpful error for an unknown one."""
    try:
        return REGISTRY[failure_id]
    except KeyError:
        raise KeyError(f"Unknown failure {failure_id!r}; known: {sorted(REGISTRY)}") from None


# ---------------------------------------------------------------------------------------------
# The registry. Each entry cites what was measured (../shared/FINDINGS.md and the notebooks).
# ---------------------------------------------------------------------------------------------

register(Failure(
    id="clip_task_type",
    notebook="01_clip_task_type",
    title="CLIP + LoRA with task_type=FEATURE_EXTRACTION",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<5"},
            raises="TypeError",
            match=r"CLIPModel\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
            reason="PeftModelForFeatureExtraction.forward passes inputs_embeds=None to the base "
            "model, and CLIPModel.forward has no such parameter.",
        ),
        Expectation(
            when={"transformers": ">=5"},
            raises="TypeError",
            match=r"got multiple values for keyword argument 'inputs_embeds'",
            reason="CLIPModel.forward accepts **kwargs since transformers 5.0, so the stray "
            "inputs_embeds=None travels down to the text encoder, which already passes its own.",
        ),
    ),
))  # fmt: skip

# --- notebook 02 (BLIP-2) entries go here ---
# Measured on the two stacks, and on transformers 4.52.0, 4.52.4, 4.53.0, 4.54.0 and 4.55.0 (their
# wheels unpacked over the documented stack, peft 0.15.2); 5.0.0's auto classes were read from its wheel.

register(Failure(
    id="blip2_vision2seq_import",
    notebook="02_blip2_inputs_embeds",
    title="The report's `from transformers import AutoModelForVision2Seq`",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<5"},
            raises=None,
            reason="AutoModelForVision2Seq exists in every transformers 4.x (from 4.54 it warns that it "
            "is deprecated in favour of AutoModelForImageTextToText, which exists on both stacks).",
        ),
        Expectation(
            when={"transformers": ">=5"},
            raises="ImportError",
            match=r"cannot import name 'AutoModelForVision2Seq' from 'transformers'",
            reason="transformers 5.0 removed AutoModelForVision2Seq; AutoModelForImageTextToText "
            "loads BLIP-2 as Blip2ForConditionalGeneration on 4.x and 5.x alike.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="blip2_causal_lm_inputs_embeds",
    notebook="02_blip2_inputs_embeds",
    title='BLIP-2 + LoRA with task_type="CAUSAL_LM"',
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<4.52"},
            raises="TypeError",
            match=r"Blip2ForConditionalGeneration\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
            reason="PeftModelForCausalLM.forward passes inputs_embeds=None to the model, and "
            "Blip2ForConditionalGeneration.forward (no **kwargs before 4.52) has no such parameter.",
        ),
        Expectation(
            when={"transformers": ">=4.52,<4.54"},
            raises="TypeError",
            match=r"got multiple values for keyword argument 'inputs_embeds'",
            reason="Blip2ForConditionalGeneration.forward gained **kwargs in 4.52 but not inputs_embeds: "
            "the stray inputs_embeds=None lands in **kwargs and collides with the inputs_embeds BLIP-2 "
            "passes to its OPT (measured on 4.52.0, 4.52.4 and 4.53.0).",
        ),
        Expectation(
            when={"transformers": ">=4.54"},
            raises=None,
            reason="Since transformers 4.54.0 (absent in 4.53.0), Blip2ForConditionalGeneration.forward "
            "declares inputs_embeds, so PeftModelForCausalLM's inputs_embeds=None is accepted and "
            "ignored. The wrapper is still PeftModelForCausalLM, whose forward starts with input_ids, "
            "not pixel_values.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="blip2_causal_lm_positional",
    notebook="02_blip2_inputs_embeds",
    title='BLIP-2 called positionally, model(pixel_values, input_ids), through the CAUSAL_LM wrapper',
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<4.52"},
            raises="TypeError",
            match=r"got an unexpected keyword argument 'inputs_embeds'",
            reason="The wrapper passes inputs_embeds=None whatever the call, and Python rejects that "
            "keyword before it looks at the arguments that are missing.",
        ),
        Expectation(
            when={"transformers": ">=4.52"},
            raises="TypeError",
            match=r"missing 1 required positional argument: 'pixel_values'",
            reason="PeftModelForCausalLM.forward(input_ids, attention_mask, ...) takes the images as "
            "input_ids and the token ids as attention_mask, then calls BLIP-2 by keyword, with no "
            "pixel_values (measured on 4.52.0, 4.53.0, 4.54.0 and the current stack).",
        ),
    ),
))  # fmt: skip

# --- notebook 03 (second LoRA stage) entries go here ---

_DROPOUT_NOT_SUPPORTED = Expectation(
    when={"peft": "<0.16"},
    raises="ValueError",
    match=r"Target module Dropout\(p=[\d.]+, inplace=False\) is not supported",
    reason="The recipe's names 'base_layer' and 'default' match modules inside the LoRA layers; "
    "'default' also names each lora_dropout.default, a Dropout, and LoRA cannot wrap a Dropout.",
)

register(Failure(
    id="second_stage_dropout",
    notebook="03_second_stage_dropout",
    title="Second LoRA stage with get_peft_model on a model that carries LoRA (stage one: every linear layer)",
    seen=("documented", "current"),
    expectations=(
        _DROPOUT_NOT_SUPPORTED,
        Expectation(
            when={"peft": ">=0.16"},
            raises="NoMatchingPeftModuleError",
            match=r"Target modules \{.*\} not found in the base model",
            reason="Since PEFT PR #2539 (first released in 0.16.0) get_peft_model skips modules inside "
            "an existing adapter layer; every match of 'base_layer' and 'default' lies inside one, so "
            "nothing is left to wrap.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="second_stage_nothing_to_train",
    notebook="03_second_stage_dropout",
    title="Training an adapter loaded with PeftModel.from_pretrained without is_trainable=True",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={},
            raises="NothingToTrainError",
            match=r"has 0 trainable parameters",
            reason="PeftModel.from_pretrained loads an adapter for inference unless is_trainable=True; "
            "peftlab.train.train refuses a model with nothing to train.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="second_stage_double_wrap",
    notebook="03_second_stage_dropout",
    title="Second LoRA stage with get_peft_model on a model that carries LoRA (stage one: q_proj, v_proj)",
    seen=("documented", "current"),
    expectations=(
        _DROPOUT_NOT_SUPPORTED,
        Expectation(
            when={"peft": ">=0.16"},
            raises=None,
            reason="PEFT >= 0.16 skips the matches inside the LoRA layers but still wraps the linear layers "
            "stage one left alone (fc1, fc2, k_proj, out_proj): a PeftModel inside a PeftModel, with only "
            "a warning. Its saved keys carry a doubled 'base_model.model.' prefix, so a later "
            "PeftModel.from_pretrained loads none of them.",
        ),
    ),
))  # fmt: skip

# --- notebook 04 (ViT position embeddings) entries go here ---

# Measured with the tiny ViT on both stacks; the other PEFT versions named in the reasons were measured
# by putting that PEFT release ahead of the installed one on PYTHONPATH (transformers unchanged).
register(Failure(
    id="vit_image_size",
    notebook="04_vit_position_embeddings",
    title="ViT fed images larger than its pre-training resolution",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": ">=4.51"},
            raises="ValueError",
            match=r"Input image size \(\d+\*\d+\) doesn't match model \(\d+\*\d+\)",
            reason="The position-embedding table has one row per patch of the pre-training grid, and "
            "the model checks the image size it remembers (config.image_size) before adding it.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="vit_query_value_targets",
    notebook="04_vit_position_embeddings",
    title='LoRA target_modules=["query", "value"] on ViT',
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<5.9"},
            raises=None,
            reason="Up to transformers 5.8 ViT's attention keeps its query/key/value layers (under "
            "vit.encoder.layer.N), so the classic target list matches.",
        ),
        Expectation(
            when={"transformers": ">=5.9", "peft": ">=0.21"},
            raises="NoMatchingPeftModuleError",
            match=r"Target modules \{.*\} not found in the base model",
            reason="transformers 5.9 renamed ViT's attention layers to q_proj/k_proj/v_proj/o_proj "
            "(under vit.layers.N); PEFT 0.21 reports a target list matching nothing with "
            "NoMatchingPeftModuleError, a ValueError subclass.",
        ),
        Expectation(
            when={"transformers": ">=5.9", "peft": "<0.21"},
            raises="ValueError",
            match=r"Target modules \{.*\} not found in the base model",
            reason="transformers 5.9 renamed ViT's attention layers to q_proj/k_proj/v_proj/o_proj; "
            "PEFT before 0.21 raises a plain ValueError (measured with PEFT 0.20.0).",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="vit_modules_to_save_parameter",
    notebook="04_vit_position_embeddings",
    title='modules_to_save=["position_embeddings"] trains nothing, silently',
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"peft": ">=0.13"},
            raises="SilentLossError",
            match=r"Not trainable: .*position_embeddings",
            reason="modules_to_save matches module names, and position_embeddings is an nn.Parameter of "
            "ViTEmbeddings, not a module: nothing is wrapped, no warning is given and the table stays "
            "frozen (measured on PEFT 0.13.2, 0.14.0, 0.15.2, 0.17.0, 0.20.0 and 0.21.2).",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="vit_target_parameters",
    notebook="04_vit_position_embeddings",
    title='LoraConfig(target_parameters=["position_embeddings"]) on ViT',
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"peft": "<0.17"},
            raises="TypeError",
            match=r"unexpected keyword argument 'target_parameters'",
            reason="target_parameters (LoRA on nn.Parameter objects) arrived in PEFT 0.17.0.",
        ),
        Expectation(
            when={"peft": ">=0.17"},
            raises="AttributeError",
            match=r"'ParamWrapper' object has no attribute 'patch_embeddings'",
            reason="PEFT wraps the module that owns the parameter (ViTEmbeddings) in a ParamWrapper, "
            "and ViTModel.forward then reads embeddings.patch_embeddings through the wrapper, which "
            "does not pass attribute reads on (measured on PEFT 0.17.0, 0.20.0 and 0.21.2).",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="vit_unfrozen_parameter_not_saved",
    notebook="04_vit_position_embeddings",
    title="A hand-unfrozen position-embedding table is trained, then dropped by save_pretrained",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"peft": ">=0.15"},
            raises="SilentLossError",
            match=r"does not carry the trained .*position_embeddings",
            reason="save_pretrained writes the adapter's own weights and the modules_to_save copies; "
            "a base-model parameter unfrozen by hand is neither, so it is not written and the "
            "reloaded model silently keeps the original table.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="vit_modules_to_save_embeddings",
    notebook="04_vit_position_embeddings",
    title='modules_to_save=["embeddings"] on ViT: the saved adapter cannot be loaded',
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"peft": "<0.14"},
            raises="AttributeError",
            match=r"ModulesToSaveWrapper has no attribute `patch_embeddings`",
            reason="Before PEFT 0.14.0 (PR #2117) a ModulesToSaveWrapper did not pass attribute reads "
            "on to the module it wraps; 'embeddings' also matches 'vit.embeddings.patch_embeddings', "
            "which get_peft_model then cannot reach (measured on PEFT 0.13.2).",
        ),
        Expectation(
            when={"peft": ">=0.14,<0.15"},
            raises=None,
            reason="PEFT 0.14.0 wraps vit.embeddings and, inside it, patch_embeddings, and loads the "
            "saved adapter back (measured).",
        ),
        Expectation(
            when={"peft": ">=0.15"},
            raises="KeyError",
            match=r"patch_embeddings.*projection\.weight",
            reason="'embeddings' matches both vit.embeddings and vit.embeddings.patch_embeddings (a "
            "suffix match), so a wrapper ends up inside a wrapper; save_pretrained writes both, and "
            "from_pretrained looks for a key that the nested names do not produce (measured on PEFT "
            "0.15.0, 0.15.1, 0.15.2, 0.17.0, 0.20.0 and 0.21.2).",
        ),
    ),
))  # fmt: skip

# --- notebook 05 (Chinese-CLIP) entries go here ---

register(Failure(
    id="chinese_clip_size_mismatch",
    notebook="05_chinese_clip_shapes",
    title="A 'large' Chinese-CLIP checkpoint loaded into a model built from the 'base' config",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={},  # torch's load_state_dict, the same on every transformers version
            raises="RuntimeError",
            match=r"Error\(s\) in loading state_dict for ChineseCLIPModel:[\s\S]*size mismatch for vision_model\.",
            reason="load_state_dict compares every tensor's shape with the model's, strict or not, and "
            "lists one line per tensor that differs (then the blocks only one side has): the vision "
            "tower and both projections are wider in the checkpoint; the shared text tower fits.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="chinese_clip_wrong_config",
    notebook="05_chinese_clip_shapes",
    title="ChineseCLIPModel.from_pretrained(checkpoint, config=<the other size's config>)",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={"transformers": "<5"},
            raises="RuntimeError",
            match=r"Error\(s\) in loading state_dict for \w+:\s+size mismatch for \w+: copying a param with shape",
            reason="transformers 4.x (measured on 4.51.3; 4.57.1 has the same loading code, read, not run) copies the "
            "checkpoint tensor by tensor into the module that owns it (_load_parameter_into_model), so "
            "the first mismatched tensor in the file stops the load, and torch's message names only "
            "that module's class (e.g. Linear) and the parameter's short name (weight).",
        ),
        Expectation(
            when={"transformers": ">=5"},
            raises="RuntimeError",
            match=r"You set `ignore_mismatched_sizes` to `False`, thus raising an error",
            reason="transformers 5 loads every tensor, logs a LOAD REPORT table (one row per tensor, "
            "layer numbers folded, each MISMATCH with both shapes) and then raises, pointing at it.",
        ),
    ),
))  # fmt: skip

register(Failure(
    id="chinese_clip_ignore_mismatched_sizes",
    notebook="05_chinese_clip_shapes",
    title="from_pretrained(..., ignore_mismatched_sizes=True) loads, with the weights re-initialised",
    seen=("documented", "current"),
    expectations=(
        Expectation(
            when={},  # a silent failure: peftlab.checkpoint_shapes.assert_loaded makes it raise
            raises="WeightsNotLoadedError",
            match=r"checkpoint tensors are not in the model as saved: [1-9]\d* re-initialised at another shape",
            reason="ignore_mismatched_sizes=True replaces every tensor whose shape disagrees with a freshly "
            "initialised one and drops those the model has no place for; from_pretrained succeeds (a "
            "warning on 4.x, a LOAD REPORT on 5.x), so only a comparison with the checkpoint shows it.",
        ),
    ),
))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Showing an error, trimmed, and checking it against the registry.
# ---------------------------------------------------------------------------------------------

_MODULE_REPR = re.compile(r"\b([A-Z]\w*)\(\n")

#: Set to a file path, this environment variable switches ``expect_failure`` to observe mode.
OBSERVE_ENV = "PEFTLAB_OBSERVE"


def record_observation(
    path: str | os.PathLike,
    failure: Failure,
    versions: dict[str, str | None],
    expectation: Expectation | None,
    error: BaseException | None,
) -> dict:
    """Append what one ``expect_failure`` block saw to the JSON-lines file ``path``; return the record."""
    record = {
        "id": failure.id,
        "notebook": failure.notebook,
        "versions": versions,
        "raised": type(error).__name__ if error is not None else None,
        "types": [cls.__name__ for cls in type(error).__mro__] if error is not None else [],
        "message": str(error)[:20_000] if error is not None else "",
        "expected": expectation.describe() if expectation is not None else None,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    return record


def trim_message(message: str, max_lines: int = 12) -> str:
    """Collapse embedded multi-line module reprs to ``Name(...)`` and cap the number of lines."""
    out, pos = [], 0
    for found in _MODULE_REPR.finditer(message):
        if found.start() < pos:
            continue  # inside a repr already collapsed
        depth, end = 0, len(message)
        for i in range(found.end() - 2, len(message)):
            depth += {"(": 1, ")": -1}.get(message[i], 0)
            if depth == 0:
                end = i + 1
                break
        out.append(message[pos : found.start()] + f"{found.group(1)}(...)")
        pos = end
    text = "".join(out) + message[pos:]
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def format_error(error: BaseException, frames: int = 3) -> str:
    """The error as a learner would see it: the last few frames and the (trimmed) message."""
    stack = traceback.extract_tb(error.__traceback__)
    shown = stack[-frames:]
    lines = [f"Traceback (most recent call last; {len(stack) - len(shown)} earlier frames hidden):"]
    lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in shown]
    lines.append(f"{type(error).__name__}: {trim_message(str(error))}")
    return "\n".join(lines)


@dataclass
class ErrorBox:
    """An error (or a documented non-error) rendered as a box in Jupyter and as text elsewhere."""

    title: str
    body: str
    expected: bool = True

    def __str__(self) -> str:
        return f"{self.title}\n{self.body}"

    __repr__ = __str__  # what a terminal or a text-only notebook viewer shows

    def _repr_html_(self) -> str:
        colour, kind = ("#b22222", "expected") if self.expected else ("#e67e00", "unexpected")
        return (
            f'<div class="peftlab-error-box {kind}" style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0;'
            f'background:rgba(178,34,34,0.07)"><b>{html.escape(self.title)}</b>'
            f'<pre style="white-space:pre-wrap;margin:4px 0 0 0">{html.escape(self.body)}</pre></div>'
        )


def _show(box: ErrorBox) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(box)
            return
    except ImportError:
        pass
    print(box)


def _type_matches(error: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(error).__mro__)


class expect_failure:  # noqa: N801  (used as a lower-case context manager, like contextlib's)
    """Run a block that should fail as the registry records for the installed versions.

    >>> with expect_failure("clip_task_type") as seen:   # doctest: +SKIP
    ...     peft_model(**batch)
    >>> seen.error   # the exception, for the cells that explain it   # doctest: +SKIP
    """

    def __init__(self, failure_id: str, versions: dict[str, str | None] | None = None) -> None:
        self.failure = get(failure_id)
        self.versions = versions or installed()
        self.observe = os.environ.get(OBSERVE_ENV, "")  # observe mode: record, show, never raise
        self.missing: UnexpectedOutcome | None = None  # set when nothing is recorded for these versions
        try:
            self.expectation = self.failure.expected(self.versions)
        except UnexpectedOutcome as missing:
            if not self.observe:
                raise
            self.missing, self.expectation = (
                missing,
                Expectation({}, None, reason=f"(observe mode) {missing}"),
            )
        self.error: BaseException | None = None

    def __enter__(self) -> expect_failure:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if not self.observe or (error is not None and not isinstance(error, Exception)):
            return self._judge(error)
        from peftlab import report

        expected = self.expectation if self.missing is None else None
        record_observation(self.observe, self.failure, self.versions, expected, error)
        try:
            return self._judge(error)
        except UnexpectedOutcome as drift:
            title = f"Observe mode (${OBSERVE_ENV}): recorded for `peftlab drift`; the notebook goes on"
            _show(ErrorBox(title, str(drift), expected=False))
            outcome = f"drift: {type(error).__name__ if error else 'no error'}"
            report.record_failure(self.failure.id, reproduced=error is not None, outcome=outcome)
            self.error = error
            return True  # swallow the error, if any

    def _judge(self, error: BaseException | None) -> bool:
        """Show the outcome, record it in the scorecard; raise UnexpectedOutcome if the registry differs."""
        from peftlab import report

        if self.missing is not None:
            raise self.missing  # "No expectation is recorded ..."
        exp, where = self.expectation, describe(self.versions)
        if error is None:
            if exp.raises is not None:
                raise UnexpectedOutcome(
                    f"{self.failure.id}: expected {exp.describe()} on the {where}, "
                    "but the code ran without any error. The failure did not reproduce."
                )
            _show(ErrorBox(f"No error on these versions, as recorded for {self.failure.id}", exp.reason))
            report.record_failure(self.failure.id, reproduced=False, outcome="no error (as recorded)")
            return False
        if not isinstance(error, Exception):
            return False  # KeyboardInterrupt and friends are never expected
        self.error = error
        shown = format_error(error)
        if exp.raises is None or not _type_matches(error, exp.raises):
            _show(ErrorBox("Unexpected error", shown, expected=False))
            raise UnexpectedOutcome(
                f"{self.failure.id}: expected {exp.describe()} on the {where}, "
                f"but got {type(error).__name__}: {trim_message(str(error), 3)}"
            ) from error
        if not re.search(exp.match, str(error)):
            _show(ErrorBox("Error with an unexpected message", shown, expected=False))
            raise UnexpectedOutcome(
                f"{self.failure.id}: a {exp.raises} was raised on the {where}, but its message does "
                f"not match /{exp.match}/: {trim_message(str(error), 3)}"
            ) from error
        _show(ErrorBox(f"Expected failure reproduced: {self.failure.title}", shown))
        report.record_failure(self.failure.id, reproduced=True, outcome=type(error).__name__)
        return True
