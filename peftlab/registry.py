"""The failure registry: what each documented failure does on each range of library versions.

This module is data, and the one place where a version boundary is written. :data:`CHANGES` lists the
library releases that change how a failure looks (each with the releases it was run on, either side);
each :class:`Failure` says, per range of versions, which exception (type and message pattern) must be
raised, or that none is, and why. The notebooks, the doctor, ``peftlab.targets``, the drift watch and
the README's notebooks table (``peftlab readme``) read these entries; none of them re-types a version.

Showing an error and checking it against these entries is :mod:`peftlab.capture`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from peftlab.detectors import DETECTORS
from peftlab.versions import Versions, describe, installed


class UnexpectedOutcome(AssertionError):
    """What happened differs from what the registry records for the installed versions."""


@dataclass(frozen=True)
class Change:
    """A library release that changes how a failure looks: one behaviour before it, another from it."""

    library: str
    release: str  # the first release with the new behaviour
    what: str  # what changed, in a sentence
    measured: tuple[str, ...] = ()  # releases of ``library`` the failing code was run on
    bisected: bool = False  # True when the last measured release without it is the one just before

    @property
    def since(self) -> str:
        """The specifier of the releases that have the change: ``>=0.16.0``."""
        return f">={self.release}"

    @property
    def before(self) -> str:
        """The specifier of the releases that lack it: ``<0.16.0``."""
        return f"<{self.release}"

    def holds(self, version: str | Version | None = None) -> bool:
        """True when ``version`` (the installed one by default) has the change."""
        version = version if version is not None else installed((self.library,))[self.library] or "0"
        return Version(str(version)) >= Version(self.release)

    def bracket(self) -> tuple[str | None, str | None]:
        """The measured releases either side of the boundary: (last before, first from), None if unmeasured."""
        runs = sorted(Version(v) for v in self.measured)
        before = [v for v in runs if v < Version(self.release)]
        after = [v for v in runs if v >= Version(self.release)]
        return (str(before[-1]) if before else None, str(after[0]) if after else None)

    def phrase(self) -> str:
        """Where the change lies, as far as runs show it, for prose and tables ("... from <phrase>").

        ``peft 0.16.0 (bisected: 0.15.2 has not)`` where the release just before was run too;
        otherwise only what runs show, ``transformers 5.13.1 or earlier (5.0.0 has not)``: a release
        that no run brackets is not a claim to make.
        """
        last, first = self.bracket()
        if self.bisected and last:
            return f"{self.library} {self.release} (bisected: {last} has not)"
        return f"{self.library} {first or self.release} or earlier ({last or 'no earlier release measured'} has not)"


#: Every release boundary that a notebook, the doctor or the README mentions. Keys are stable ids.
CHANGES: dict[str, Change] = {
    "clip_forward_kwargs": Change(
        "transformers",
        "5.0.0",
        "CLIPModel.forward takes **kwargs and passes them to both towers",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "vision2seq_removed": Change(
        "transformers",
        "5.0.0",
        "AutoModelForVision2Seq is removed (AutoModelForImageTextToText stays)",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "blip2_forward_kwargs": Change(
        "transformers",
        "4.52.0",
        "Blip2ForConditionalGeneration.forward takes **kwargs",
        measured=(
            "4.51.3",
            "4.52.0",
            "4.52.4",
            "4.53.0",
            "4.53.2",
            "4.53.3",
            "4.54.0",
            "4.55.0",
            "4.57.0",
            "5.23.0",
        ),
        bisected=True,
    ),
    "blip2_inputs_embeds": Change(
        "transformers",
        "4.54.0",
        "Blip2ForConditionalGeneration.forward declares inputs_embeds",
        measured=(
            "4.51.3",
            "4.52.0",
            "4.52.4",
            "4.53.0",
            "4.53.2",
            "4.53.3",
            "4.54.0",
            "4.55.0",
            "4.57.0",
            "5.23.0",
        ),
        bisected=True,
    ),
    "load_report": Change(
        "transformers",
        "5.0.0",
        "from_pretrained loads every tensor, prints a LOAD REPORT, then raises",
        measured=("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0"),
        bisected=True,
    ),
    "dtype_keyword": Change(
        "transformers",
        "4.56.0",
        "from_pretrained takes dtype= (torch_dtype= is deprecated)",
        measured=("4.51.3", "4.53.2", "4.55.4", "4.56.0", "4.57.0", "4.57.6", "5.0.0", "5.23.0"),
        bisected=True,
    ),
    "vit_attention_renamed": Change(
        "transformers",
        "5.9.0",
        "ViT's attention layers are q_proj/k_proj/v_proj/o_proj under vit.layers.N",
        measured=(
            "4.51.3",
            "4.53.2",
            "4.57.0",
            "4.57.6",
            "5.0.0",
            "5.8.1",
            "5.9.0",
            "5.13.1",
            "5.15.0",
            "5.23.0",
        ),
        bisected=True,
    ),
    "peft_mts_attribute_passthrough": Change(
        "peft",
        "0.14.0",
        "ModulesToSaveWrapper passes attribute reads on to the wrapped module (PR #2117)",
        measured=("0.13.2", "0.14.0", "0.15.2", "0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.2"),
        bisected=True,
    ),
    "peft_mts_nested_keyerror": Change(
        "peft",
        "0.15.0",
        "a modules_to_save wrapper nested in another no longer reloads (KeyError)",
        measured=(
            "0.14.0",
            "0.15.0",
            "0.15.1",
            "0.15.2",
            "0.16.0",
            "0.17.0",
            "0.17.1",
            "0.18.1",
            "0.19.1",
            "0.20.0",
            "0.21.0",
            "0.21.2",
        ),
        bisected=True,
    ),
    "peft_skips_adapter_layers": Change(
        "peft",
        "0.16.0",
        "get_peft_model skips modules inside an existing adapter layer (PR #2539)",
        measured=("0.15.2", "0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.0", "0.21.2"),
        bisected=True,
    ),
    "peft_target_parameters": Change(
        "peft",
        "0.17.0",
        "LoraConfig(target_parameters=...) puts LoRA on nn.Parameter objects",
        measured=("0.15.2", "0.16.0", "0.17.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.0", "0.21.2"),
        bisected=True,
    ),
    "peft_no_matching_module_error": Change(
        "peft",
        "0.21.0",
        "a target list that matches nothing raises NoMatchingPeftModuleError",
        measured=("0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.0", "0.21.2"),
        bisected=True,
    ),
}


def change(key: str) -> Change:
    """Look up a :class:`Change` by id, with a helpful error for an unknown one."""
    try:
        return CHANGES[key]
    except KeyError:
        raise KeyError(f"Unknown change {key!r}; known: {sorted(CHANGES)}") from None


@dataclass(frozen=True)
class Expectation:
    """What happens on the versions that satisfy every specifier in ``when``."""

    when: dict[str, str]
    raises: str | None  # exception class name, or None for "no error on these versions"
    match: str = ""  # regular expression searched in the message
    reason: str = ""  # why it happens (or, for ``raises=None``, why it no longer does)
    measured: tuple[str, ...] = ()  # the stacks (pin files) or releases this was run on

    def applies(self, versions: Versions) -> bool:
        """True when the installed ``versions`` satisfy every specifier of ``when``."""
        return all(
            versions.get(lib) is not None and SpecifierSet(spec).contains(versions[lib], prereleases=True)
            for lib, spec in self.when.items()
        )

    @property
    def detector(self) -> str:
        """The peftlab check that raises ``raises`` for a silent failure, or '' for a library error."""
        detector = DETECTORS.get(self.raises or "")
        return detector.reveals if detector else ""

    def describe(self) -> str:
        """A short phrase: the error expected, or "no error"."""
        if not self.raises:
            return "no error"
        return f"{self.raises}: /{self.match}/" + (" (peftlab's detector)" if self.detector else "")

    def versions_phrase(self) -> str:
        """``peft >=0.16.0`` or ``every version``: the range, for tables."""
        return ", ".join(f"{lib} {spec}" for lib, spec in self.when.items()) or "every version"


@dataclass(frozen=True)
class Failure:
    """A documented failure: where it is taught and what happens on each range of versions."""

    id: str
    notebook: str
    title: str
    expectations: tuple[Expectation, ...]

    def expected(self, versions: Versions | None = None) -> Expectation:
        """The expectation for ``versions`` (the installed ones by default)."""
        versions = versions or installed()
        for expectation in self.expectations:
            if expectation.applies(versions):
                return expectation
        raise UnexpectedOutcome(
            f"No expectation is recorded for failure {self.id!r} on the {describe(versions)}. "
            "Record what happens there in peftlab/registry.py (see README, 'Recording a new observation')."
        )

    def reproduces_on(self) -> str:
        """Where it raises: each version range with its exception, or a note when it never does."""
        ranges = [f"{e.versions_phrase()}: {e.raises}" for e in self.expectations if e.raises]
        return "; ".join(ranges) or "no version recorded (documented as no error)"


@dataclass(frozen=True)
class Lesson:
    """A notebook: what it teaches and the fix it proves (for the README and the docs index)."""

    notebook: str  # file name without suffix
    title: str  # Markdown
    fix: str  # Markdown (for a primer: what it shows)
    #: A primer shows no failure: it teaches what the failures build on. Its scorecard holds checks
    #: only, and it is named from this registry (the one lesson that is a primer), never typed.
    primer: bool = False


#: The notebooks, in order.
LESSONS: dict[str, Lesson] = {
    lesson.notebook: lesson
    for lesson in (
        Lesson(
            "00_lora_primer",
            "LoRA in ten minutes: `r`, `lora_alpha`, `target_modules`, `task_type`, `modules_to_save`",
            "none to fix: each argument's effect counted and measured (parameters vs `r`, rank of `B @ A`, "
            "the `lora_alpha / r` scale)",
            primer=True,
        ),
        Lesson(
            "01_clip_task_type",
            "CLIP + `task_type=FEATURE_EXTRACTION`",
            "no `task_type`: the plain `PeftModel` keeps CLIP's forward",
        ),
        Lesson(
            "02_blip2_inputs_embeds",
            'BLIP-2 + `task_type="CAUSAL_LM"`, 4-bit NF4',
            "no `task_type`; `AutoModelForImageTextToText`; QLoRA VQA fine-tune",
        ),
        Lesson(
            "03_second_stage_dropout",
            "a second LoRA stage on a LoRA model",
            "`PeftModel.from_pretrained(..., is_trainable=True)`; a second adapter; or merge and re-wrap",
        ),
        Lesson(
            "04_vit_position_embeddings",
            "ViT at a new resolution: position embeddings",
            'resize the table once; `modules_to_save=["vit.embeddings"]`, or LoRA plus a sidecar file; '
            "exact round trip",
        ),
        Lesson(
            "05_chinese_clip_shapes",
            "Chinese-CLIP: checkpoint vs config",
            "read the architecture from the checkpoint's tensor shapes; LoRA on both towers",
        ),
    )
}


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


def for_notebook(notebook: str) -> list[Failure]:
    """The failures taught in ``notebook`` (its file name without suffix), in registry order."""
    return [f for f in REGISTRY.values() if f.notebook == notebook]


# ---------------------------------------------------------------------------------------------
# The entries. Each cites what was measured (../shared/FINDINGS.md and the notebooks); ``measured``
# names the stacks (peftlab/stacks/*.txt) and single releases the failing block was run on.
# ---------------------------------------------------------------------------------------------
C = CHANGES

register(
    Failure(
        id="clip_task_type",
        notebook="01_clip_task_type",
        title="CLIP + LoRA with task_type=FEATURE_EXTRACTION",
        expectations=(
            Expectation(
                when={"transformers": C["clip_forward_kwargs"].before},
                raises="TypeError",
                match=r"CLIPModel\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
                reason="PeftModelForFeatureExtraction.forward passes inputs_embeds=None to the base "
                "model, and CLIPModel.forward has no such parameter.",
                measured=("documented", "colab-2025.07", "colab-2025.10", "colab-2026.01"),
            ),
            Expectation(
                when={"transformers": C["clip_forward_kwargs"].since},
                raises="TypeError",
                match=r"got multiple values for keyword argument 'inputs_embeds'",
                reason="CLIPModel.forward accepts **kwargs since transformers 5, so the stray inputs_embeds=None "
                "travels on with them. The image tower runs first: CLIPVisionModel.forward calls its encoder "
                "with inputs_embeds=hidden_states and **kwargs, which hold inputs_embeds a second time.",
                measured=("current", "colab-2026.04", "colab-2026.07", "colab-2026.08"),
            ),
        ),
    )
)

register(
    Failure(
        id="blip2_vision2seq_import",
        notebook="02_blip2_inputs_embeds",
        title="The report's `from transformers import AutoModelForVision2Seq`",
        expectations=(
            Expectation(
                when={"transformers": C["vision2seq_removed"].before},
                raises=None,
                reason="AutoModelForVision2Seq exists in every transformers 4.x (from 4.54 it warns that it "
                "is deprecated in favour of AutoModelForImageTextToText, which exists on 4.x and 5.x).",
                measured=("documented", "colab-2025.07", "colab-2025.10", "colab-2026.01"),
            ),
            Expectation(
                when={"transformers": C["vision2seq_removed"].since},
                raises="ImportError",
                match=r"cannot import name 'AutoModelForVision2Seq' from 'transformers'",
                reason="transformers 5 removed AutoModelForVision2Seq; AutoModelForImageTextToText "
                "loads BLIP-2 as Blip2ForConditionalGeneration on 4.x and 5.x alike.",
                measured=("current", "colab-2026.04", "colab-2026.07", "colab-2026.08"),
            ),
        ),
    )
)

register(
    Failure(
        id="blip2_causal_lm_inputs_embeds",
        notebook="02_blip2_inputs_embeds",
        title='BLIP-2 + LoRA with task_type="CAUSAL_LM"',
        expectations=(
            Expectation(
                when={"transformers": C["blip2_forward_kwargs"].before},
                raises="TypeError",
                match=r"Blip2ForConditionalGeneration\.forward\(\) got an unexpected keyword argument 'inputs_embeds'",
                reason="PeftModelForCausalLM.forward passes inputs_embeds=None to the model, and "
                "Blip2ForConditionalGeneration.forward (no **kwargs yet) has no such parameter.",
                measured=("documented",),
            ),
            Expectation(
                when={"transformers": f"{C['blip2_forward_kwargs'].since},{C['blip2_inputs_embeds'].before}"},
                raises="TypeError",
                match=r"got multiple values for keyword argument 'inputs_embeds'",
                reason="Blip2ForConditionalGeneration.forward has **kwargs but not yet inputs_embeds: "
                "the stray inputs_embeds=None lands in **kwargs and collides with the inputs_embeds BLIP-2 "
                "passes to its OPT.",
                measured=(
                    "transformers 4.52.0",
                    "transformers 4.52.4",
                    "transformers 4.53.0",
                    "colab-2025.07",
                    "transformers 4.53.3",
                ),
            ),
            Expectation(
                when={"transformers": C["blip2_inputs_embeds"].since},
                raises=None,
                reason="Blip2ForConditionalGeneration.forward declares inputs_embeds, so "
                "PeftModelForCausalLM's inputs_embeds=None is accepted and ignored. The wrapper is still "
                "PeftModelForCausalLM, whose forward starts with input_ids, not pixel_values.",
                measured=(
                    "transformers 4.54.0",
                    "transformers 4.55.0",
                    "current",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="blip2_causal_lm_positional",
        notebook="02_blip2_inputs_embeds",
        title="BLIP-2 called positionally, model(pixel_values, input_ids), through the CAUSAL_LM wrapper",
        expectations=(
            Expectation(
                when={"transformers": C["blip2_forward_kwargs"].before},
                raises="TypeError",
                match=r"got an unexpected keyword argument 'inputs_embeds'",
                reason="The wrapper passes inputs_embeds=None whatever the call, and Python rejects that "
                "keyword before it looks at the arguments that are missing.",
                measured=("documented",),
            ),
            Expectation(
                when={"transformers": C["blip2_forward_kwargs"].since},
                raises="TypeError",
                match=r"missing 1 required positional argument: 'pixel_values'",
                reason="PeftModelForCausalLM.forward(input_ids, attention_mask, ...) takes the images as "
                "input_ids and the token ids as attention_mask, then calls BLIP-2 by keyword, with no "
                "pixel_values.",
                measured=(
                    "transformers 4.52.0",
                    "transformers 4.53.0",
                    "transformers 4.54.0",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "transformers 4.53.3",
                ),
            ),
        ),
    )
)

_DROPOUT_NOT_SUPPORTED = Expectation(
    when={"peft": C["peft_skips_adapter_layers"].before},
    raises="ValueError",
    match=r"Target module Dropout\(p=[\d.]+, inplace=False\) is not supported",
    reason="The recipe's names 'base_layer' and 'default' match modules inside the LoRA layers; "
    "'default' also names each lora_dropout.default, a Dropout, and LoRA cannot wrap a Dropout.",
    measured=("documented",),
)

register(
    Failure(
        id="second_stage_dropout",
        notebook="03_second_stage_dropout",
        title="Second LoRA stage with get_peft_model on a model that carries LoRA (stage one: every linear layer)",
        expectations=(
            _DROPOUT_NOT_SUPPORTED,
            Expectation(
                when={
                    "peft": f"{C['peft_skips_adapter_layers'].since},{C['peft_no_matching_module_error'].before}"
                },
                raises="ValueError",
                match=r"No modules were targeted for adaptation",
                reason="PEFT skips modules inside an existing adapter layer (PR #2539); every match of "
                "'base_layer' and 'default' lies inside one, so nothing is left to wrap, and these releases "
                "say so with a plain ValueError.",
                measured=(
                    "peft 0.16.0",
                    "peft 0.17.1",
                    "peft 0.18.1",
                    "peft 0.19.1",
                    "peft 0.20.0",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                ),
            ),
            Expectation(
                when={"peft": C["peft_no_matching_module_error"].since},
                raises="NoMatchingPeftModuleError",
                match=r"Target modules \{.*\} not found in the base model",
                reason="PEFT skips modules inside an existing adapter layer (PR #2539); every match of "
                "'base_layer' and 'default' lies inside one, so nothing is left to wrap, and "
                "NoMatchingPeftModuleError (a ValueError) says no target matched.",
                measured=("current", "peft 0.21.0"),
            ),
        ),
    )
)

register(
    Failure(
        id="second_stage_nothing_to_train",
        notebook="03_second_stage_dropout",
        title="Training an adapter loaded with PeftModel.from_pretrained without is_trainable=True",
        expectations=(
            Expectation(
                when={},
                raises="NothingToTrainError",
                match=r"has 0 trainable parameters",
                reason="PeftModel.from_pretrained loads an adapter for inference unless is_trainable=True; "
                "peftlab.train.train refuses a model with nothing to train.",
                measured=(
                    "documented",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.16.0",
                    "peft 0.20.0",
                    "peft 0.21.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="second_stage_double_wrap",
        notebook="03_second_stage_dropout",
        title="Second LoRA stage with get_peft_model on a model that carries LoRA (stage one: q_proj, v_proj)",
        expectations=(
            _DROPOUT_NOT_SUPPORTED,
            Expectation(
                when={"peft": C["peft_skips_adapter_layers"].since},
                raises=None,
                reason="PEFT skips the matches inside the LoRA layers but still wraps the linear layers "
                "stage one left alone (fc1, fc2, k_proj, out_proj): a PeftModel inside a PeftModel, with only "
                "a warning. Its saved keys carry a doubled 'base_model.model.' prefix, so a later "
                "PeftModel.from_pretrained loads none of them.",
                measured=(
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.16.0",
                    "peft 0.20.0",
                    "peft 0.21.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="vit_image_size",
        notebook="04_vit_position_embeddings",
        title="ViT fed images larger than its pre-training resolution",
        expectations=(
            Expectation(
                when={},
                raises="ValueError",
                match=r"Input image size \(\d+\*\d+\) doesn't match model \(\d+\*\d+\)",
                reason="The position-embedding table has one row per patch of the pre-training grid, and "
                "the model checks the image size it remembers (config.image_size) before adding it.",
                measured=(
                    "documented",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.16.0",
                    "peft 0.20.0",
                    "peft 0.21.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="vit_query_value_targets",
        notebook="04_vit_position_embeddings",
        title='LoRA target_modules=["query", "value"] on ViT',
        expectations=(
            Expectation(
                when={"transformers": C["vit_attention_renamed"].before},
                raises=None,
                reason="ViT's attention keeps its query/key/value layers (under vit.encoder.layer.N), so the "
                "classic target list matches.",
                measured=(
                    "documented",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "peft 0.16.0",
                    "transformers 5.8.1",
                ),
            ),
            Expectation(
                when={
                    "transformers": C["vit_attention_renamed"].since,
                    "peft": C["peft_no_matching_module_error"].since,
                },
                raises="NoMatchingPeftModuleError",
                match=r"Target modules \{.*\} not found in the base model",
                reason="transformers renamed ViT's attention layers to q_proj/k_proj/v_proj/o_proj (under "
                "vit.layers.N); PEFT reports a target list matching nothing with NoMatchingPeftModuleError, "
                "a ValueError subclass.",
                measured=("current", "peft 0.21.0", "transformers 5.9.0"),
            ),
            Expectation(
                when={
                    "transformers": C["vit_attention_renamed"].since,
                    "peft": C["peft_no_matching_module_error"].before,
                },
                raises="ValueError",
                match=r"Target modules \{.*\} not found in the base model",
                reason="transformers renamed ViT's attention layers to q_proj/k_proj/v_proj/o_proj; these "
                "PEFT releases raise a plain ValueError for a target list that matches nothing.",
                measured=("peft 0.20.0", "colab-2026.07", "colab-2026.08"),
            ),
        ),
    )
)

register(
    Failure(
        id="vit_modules_to_save_parameter",
        notebook="04_vit_position_embeddings",
        title='modules_to_save=["position_embeddings"] trains nothing, silently',
        expectations=(
            Expectation(
                when={},
                raises="SilentLossError",
                match=r"Not trainable: .*position_embeddings",
                reason="modules_to_save matches module names, and position_embeddings is an nn.Parameter of "
                "ViTEmbeddings, not a module: nothing is wrapped, no warning is given and the table stays "
                "frozen.",
                measured=(
                    "peft 0.13.2",
                    "peft 0.14.0",
                    "documented",
                    "peft 0.17.0",
                    "peft 0.20.0",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.16.0",
                    "peft 0.21.0",
                    "peft 0.15.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="vit_target_parameters",
        notebook="04_vit_position_embeddings",
        title='LoraConfig(target_parameters=["position_embeddings"]) on ViT',
        expectations=(
            Expectation(
                when={"peft": C["peft_target_parameters"].before},
                raises="TypeError",
                match=r"unexpected keyword argument 'target_parameters'",
                reason="LoraConfig has no target_parameters (LoRA on nn.Parameter objects) yet.",
                measured=("documented", "colab-2025.07", "peft 0.16.0"),
            ),
            Expectation(
                when={"peft": C["peft_target_parameters"].since},
                raises="AttributeError",
                match=r"'ParamWrapper' object has no attribute 'patch_embeddings'",
                reason="PEFT wraps the module that owns the parameter (ViTEmbeddings) in a ParamWrapper, "
                "and ViTModel.forward then reads embeddings.patch_embeddings through the wrapper, which "
                "does not pass attribute reads on.",
                measured=(
                    "peft 0.17.0",
                    "peft 0.20.0",
                    "current",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.21.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="vit_unfrozen_parameter_not_saved",
        notebook="04_vit_position_embeddings",
        title="A hand-unfrozen position-embedding table is trained, then dropped by save_pretrained",
        expectations=(
            Expectation(
                when={},
                raises="SilentLossError",
                match=r"does not carry the trained .*position_embeddings",
                reason="save_pretrained writes the adapter's own weights and the modules_to_save copies; "
                "a base-model parameter unfrozen by hand is neither, so it is not written and the "
                "reloaded model silently keeps the original table.",
                measured=(
                    "documented",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.16.0",
                    "peft 0.20.0",
                    "peft 0.21.0",
                    "peft 0.13.2",
                    "peft 0.14.0",
                    "peft 0.15.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="vit_modules_to_save_embeddings",
        notebook="04_vit_position_embeddings",
        title='modules_to_save=["embeddings"] on ViT: the saved adapter cannot be loaded',
        expectations=(
            Expectation(
                when={"peft": C["peft_mts_attribute_passthrough"].before},
                raises="AttributeError",
                match=r"ModulesToSaveWrapper has no attribute `patch_embeddings`",
                reason="A ModulesToSaveWrapper does not yet pass attribute reads on to the module it wraps "
                "(PR #2117 came later); 'embeddings' also matches 'vit.embeddings.patch_embeddings', which "
                "get_peft_model then cannot reach.",
                measured=("peft 0.13.2",),
            ),
            Expectation(
                when={
                    "peft": f"{C['peft_mts_attribute_passthrough'].since},{C['peft_mts_nested_keyerror'].before}"
                },
                raises=None,
                reason="This release wraps vit.embeddings and, inside it, patch_embeddings, and loads the "
                "saved adapter back.",
                measured=("peft 0.14.0",),
            ),
            Expectation(
                when={"peft": C["peft_mts_nested_keyerror"].since},
                raises="KeyError",
                match=r"patch_embeddings.*projection\.weight",
                reason="'embeddings' matches both vit.embeddings and vit.embeddings.patch_embeddings (a "
                "suffix match), so a wrapper ends up inside a wrapper; save_pretrained writes both, and "
                "from_pretrained looks for a key that the nested names do not produce.",
                measured=(
                    "peft 0.15.0",
                    "peft 0.15.1",
                    "documented",
                    "peft 0.17.0",
                    "peft 0.20.0",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                    "peft 0.16.0",
                    "peft 0.21.0",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="chinese_clip_size_mismatch",
        notebook="05_chinese_clip_shapes",
        title="A 'large' Chinese-CLIP checkpoint loaded into a model built from the 'base' config",
        expectations=(
            Expectation(
                when={},  # torch's load_state_dict, the same on every transformers version
                raises="RuntimeError",
                match=r"Error\(s\) in loading state_dict for ChineseCLIPModel:[\s\S]*size mismatch for vision_model\.",
                reason="load_state_dict compares every tensor's shape with the model's, strict or not, and "
                "lists one line per tensor that differs (then the blocks only one side has): the vision "
                "tower and both projections are wider in the checkpoint; the shared text tower fits.",
                measured=(
                    "documented",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                ),
            ),
        ),
    )
)

register(
    Failure(
        id="chinese_clip_wrong_config",
        notebook="05_chinese_clip_shapes",
        title="ChineseCLIPModel.from_pretrained(checkpoint, config=<the other size's config>)",
        expectations=(
            Expectation(
                when={"transformers": C["load_report"].before},
                raises="RuntimeError",
                match=r"Error\(s\) in loading state_dict for \w+:\s+size mismatch for \w+: copying a param with shape",
                reason="transformers 4.x copies the checkpoint tensor by tensor into the module that owns it, "
                "so the first mismatched tensor in the file stops the load, and torch's message names only "
                "that module's class (e.g. Linear) and the parameter's short name (weight).",
                measured=("documented", "colab-2025.07", "colab-2025.10", "colab-2026.01"),
            ),
            Expectation(
                when={"transformers": C["load_report"].since},
                raises="RuntimeError",
                match=r"You set `ignore_mismatched_sizes` to `False`, thus raising an error",
                reason="transformers 5 loads every tensor, logs a LOAD REPORT table (one row per tensor, "
                "layer numbers folded, each MISMATCH with both shapes) and then raises, pointing at it.",
                measured=("current", "colab-2026.04", "colab-2026.07", "colab-2026.08"),
            ),
        ),
    )
)

register(
    Failure(
        id="chinese_clip_ignore_mismatched_sizes",
        notebook="05_chinese_clip_shapes",
        title="from_pretrained(..., ignore_mismatched_sizes=True) loads, with the weights re-initialised",
        expectations=(
            Expectation(
                when={},
                raises="WeightsNotLoadedError",
                match=r"checkpoint tensors are not in the model as saved: [1-9]\d* re-initialised at another shape",
                reason="ignore_mismatched_sizes=True replaces every tensor whose shape disagrees with a freshly "
                "initialised one and drops those the model has no place for; from_pretrained succeeds (a "
                "warning on 4.x, a LOAD REPORT on 5.x), so only a comparison with the checkpoint shows it.",
                measured=(
                    "documented",
                    "current",
                    "colab-2025.07",
                    "colab-2025.10",
                    "colab-2026.01",
                    "colab-2026.04",
                    "colab-2026.07",
                    "colab-2026.08",
                ),
            ),
        ),
    )
)

# ---------------------------------------------------------------------------------------------
# Notebook 06: gradient checkpointing with a frozen base (tiny BLIP-2, measured 2026-12-02 on the
# documented and current stacks and the six Colab runtimes' pins; /tmp measurement in the report).
# ---------------------------------------------------------------------------------------------
_GC_RELEASES = ("4.51.3", "4.53.2", "4.57.0", "4.57.6", "5.0.0", "5.13.1", "5.15.0", "5.23.0")
CHANGES.update(
    {
        "gc_default_non_reentrant": Change(
            "transformers",
            "5.0.0",
            "gradient_checkpointing_enable() defaults to use_reentrant=False (4.x passes use_reentrant=True)",
            measured=_GC_RELEASES,
            bisected=True,
        ),
        "input_grads_every_tower": Change(
            "transformers",
            "5.0.0",
            "enable_input_require_grads() hooks the input embeddings of every sub-model (each tower), "
            "not only the language model's",
            measured=_GC_RELEASES,
            bisected=True,
        ),
    }
)
LESSONS["06_gradient_checkpointing"] = Lesson(
    "06_gradient_checkpointing",
    "gradient checkpointing with a frozen base (BLIP-2's towers)",
    '`gradient_checkpointing_kwargs={"use_reentrant": False}` and `enable_input_require_grads()` before '
    "`get_peft_model`; gradients checked per tower at step 1",
)
_GC_BEFORE_5 = ("documented", "colab-2025.07", "colab-2025.10", "colab-2026.01")
_GC_FROM_5 = ("current", "colab-2026.04", "colab-2026.07", "colab-2026.08")
_NO_GRAD_FN = r"element 0 of tensors does not require grad and does not have a grad_fn"

register(
    Failure(
        id="gc_enabled_after_peft_model",
        notebook="06_gradient_checkpointing",
        title="gradient_checkpointing_enable() with its defaults, called after get_peft_model (LoRA on the OPT)",
        expectations=(
            Expectation(
                when={"transformers": C["gc_default_non_reentrant"].before},
                raises="RuntimeError",
                match=_NO_GRAD_FN,
                reason="gradient_checkpointing_enable() picks reentrant checkpointing, which gives a layer's output "
                "a grad_fn only when an input requires grad. Under the frozen base nothing before the OPT's first "
                "layer does: get_peft_model hooks the input embeddings only when checkpointing is already on.",
                measured=_GC_BEFORE_5,
            ),
            Expectation(
                when={"transformers": C["gc_default_non_reentrant"].since},
                raises=None,
                reason="gradient_checkpointing_enable() defaults to non-reentrant checkpointing, which records the "
                "graph through the LoRA parameters inside each layer, whatever requires grad upstream.",
                measured=_GC_FROM_5,
            ),
        ),
    )
)

register(
    Failure(
        id="gc_reentrant_after_peft_model",
        notebook="06_gradient_checkpointing",
        title='gradient_checkpointing_kwargs={"use_reentrant": True}, switched on after get_peft_model',
        expectations=(
            Expectation(
                when={},
                raises="RuntimeError",
                match=_NO_GRAD_FN,
                reason="Reentrant checkpointing on every layer that trains, and no hook makes an input require "
                "grad (get_peft_model adds one only when checkpointing is already on; BLIP-2's main input is "
                "pixel_values, so transformers 5 does not add one either): the loss has no grad_fn.",
                measured=_GC_BEFORE_5 + _GC_FROM_5,
            ),
        ),
    )
)

register(
    Failure(
        id="gc_tower_without_gradient",
        notebook="06_gradient_checkpointing",
        title="Checkpointing on before get_peft_model, LoRA on the ViT, Q-Former and OPT: a tower gets no gradient",
        expectations=(
            Expectation(
                when={"transformers": C["input_grads_every_tower"].before},
                raises="SilentLossError",
                match=r"get no gradient: vision_model: 2 of 2",
                reason="Reentrant checkpointing (the default) and one require-grad hook, on the OPT's token "
                "embeddings (enable_input_require_grads, called by get_peft_model): the OPT learns, the ViT's "
                "layers see pixels through a frozen patch embedding and their LoRA gets no gradient. On the "
                "documented stack the Q-Former's layers are not checkpointed (its encoder reads "
                "config.gradient_checkpointing, which is never set) and learn; on later 4.x releases they are, "
                "and get no gradient either.",
                measured=_GC_BEFORE_5,
            ),
            Expectation(
                when={"transformers": C["input_grads_every_tower"].since},
                raises=None,
                reason="Non-reentrant checkpointing by default, and enable_input_require_grads() hooks every "
                "tower's input embeddings: every adapted layer gets its gradient.",
                measured=_GC_FROM_5,
            ),
        ),
    )
)

# ---------------------------------------------------------------------------------------------
# Notebook 07 (LLaVA: LoRA that lands in the vision tower). One self-contained block: its change,
# its detector, its lesson and its failures.
# ---------------------------------------------------------------------------------------------
CHANGES["peft_exclude_modules"] = Change(
    "peft",
    "0.14.0",
    "LoraConfig takes exclude_modules (names or a regular expression that target_modules must not match)",
    measured=("0.13.2", "0.14.0", "0.15.2", "0.21.2"),
    bisected=True,
)
LESSONS["07_lora_in_vision_tower"] = Lesson(
    "07_lora_in_vision_tower",
    "LLaVA: LoRA that lands in the vision tower",
    "a regular expression over the whole module name (PEFT's `re.fullmatch`), or `exclude_modules` as one; "
    "the vision tower stays bit-identical",
)

_VISION_TOWER_EVERYWHERE = ("documented", "current", "peft 0.13.2", "peft 0.14.0")

register(
    Failure(
        id="llava_qv_vision_tower",
        notebook="07_lora_in_vision_tower",
        title='LoRA target_modules=["q_proj", "v_proj"] on LLaVA adapts the vision tower too',
        expectations=(
            Expectation(
                when={},
                raises="VisionTowerAdaptedError",
                match=r"LoRA on [1-9]\d* layers of the vision tower",
                reason="A list entry matches every module whose name ends in '.q_proj' or '.v_proj': the CLIP "
                "vision tower names its attention layers exactly like the Llama does, so get_peft_model "
                "wraps both, silently.",
                measured=_VISION_TOWER_EVERYWHERE,
            ),
        ),
    )
)

register(
    Failure(
        id="llava_all_linear_vision_tower",
        notebook="07_lora_in_vision_tower",
        title='LoRA target_modules="all-linear" on LLaVA adapts the vision tower and the projector too',
        expectations=(
            Expectation(
                when={},
                raises="VisionTowerAdaptedError",
                match=r"LoRA on [1-9]\d* layers of the vision tower",
                reason="PEFT expands 'all-linear' to every linear layer of the model except the output layer "
                "(get_output_embeddings()), whatever tower it lies in.",
                measured=_VISION_TOWER_EVERYWHERE,
            ),
        ),
    )
)

register(
    Failure(
        id="llava_exclude_modules_list",
        notebook="07_lora_in_vision_tower",
        title='exclude_modules=["vision_tower"] excludes nothing inside the vision tower',
        expectations=(
            Expectation(
                when={"peft": C["peft_exclude_modules"].before},
                raises="TypeError",
                match=r"unexpected keyword argument 'exclude_modules'",
                reason="LoraConfig has no exclude_modules yet.",
                measured=("peft 0.13.2",),
            ),
            Expectation(
                when={"peft": C["peft_exclude_modules"].since},
                raises="VisionTowerAdaptedError",
                match=r"LoRA on [1-9]\d* layers of the vision tower",
                reason="A list in exclude_modules is matched like target_modules, against each candidate's own "
                "name (equal to an entry, or ending in '.' + entry): 'vision_tower' names the tower, not the "
                "q_proj layers inside it, so nothing is excluded. A regular expression (a string) over the "
                "whole name does exclude them.",
                measured=("documented", "current", "peft 0.14.0"),
            ),
        ),
    )
)
