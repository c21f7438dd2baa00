"""The failures the doctor predicts and no notebook teaches: what each does on each range of versions.

Each :class:`Failure` has no notebook (``notebook=""``) and names the doctor's finding code that
predicts it. Its reproducer is in ``tests/doctor_failures.py``; ``tests/test_doctor_registry.py`` runs
it on the installed stack, checks the outcome against these entries and checks the doctor's verdict.
A silent loss is measured by the reproducer and raised as peftlab's detector (``SilentLossError``).

``measured`` names the stacks whose environments ran ``python tests/doctor_failures.py`` (:data:`RUN_ON`:
a new pin file joins a claim only once it is run and named there) and single transformers releases,
run as that release's wheel in front of a stack's environment (the other libraries of the stack kept).
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure
from peftlab.versions import stacks_where

#: The stacks whose environments ran every reproducer (``peftlab/stacks/<name>.txt``).
RUN_ON = (
    "documented",
    "current",
    "colab-2025.07",
    "colab-2025.10",
    "colab-2026.01",
    "colab-2026.04",
    "colab-2026.07",
    "colab-2026.08",
)
#: The single releases run beyond the stacks (5.25.0: its own environment, with peft 0.21.2).
NEWER = ("transformers 5.24.0", "transformers 5.25.0")


def ran(**specifiers: str) -> tuple[str, ...]:
    """The stacks of :data:`RUN_ON` whose pins satisfy ``specifiers`` (``stacks_where`` order)."""
    return tuple(s for s in stacks_where(**specifiers) if s in RUN_ON)


TIED_HEAD = change("tied_head_kept_if_saved_apart")
REQUIRED = change("paligemma_token_type_ids_required")
OPTIONAL = change("paligemma_token_type_ids_optional")
MIN_PEFT = change("min_peft_above_released")
#: The releases whose PaliGemma raises without token_type_ids in training.
TOKEN_TYPES_REQUIRED = f"{REQUIRED.since},{OPTIONAL.before}"

FAILURES = (
    Failure(
        id="doctor_image_tokens_truncated",
        notebook="",
        title="LLaVA trained on a batch whose image placeholder tokens max_length truncation cut",
        finding="inputs.image_tokens_vs_features",
        expectations=(
            Expectation(
                when={},
                raises="ValueError",
                match=r"Image features and image tokens do not match",
                reason="LLaVA compares the placeholder tokens in input_ids with the image features its "
                "vision tower makes before it merges them; the cut batch keeps 2 of the 16.",
                measured=ran() + NEWER,
            ),
        ),
    ),
    Failure(
        id="doctor_adapter_keys_match_no_module",
        notebook="",
        title="A LoRA adapter saved on LLaVA, loaded into a Llama: no key names a module of the model",
        finding="adapter.keys_match_no_module",
        expectations=(
            Expectation(
                when={},
                raises="SilentLossError",
                match=r"changes no output \(peft said: .*Found missing adapter keys",
                reason="PeftModel.from_pretrained creates fresh LoRA layers (B = 0), finds none of the saved "
                "keys and only warns: the loaded adapter does nothing.",
                measured=ran() + NEWER,
            ),
        ),
    ),
    Failure(
        id="doctor_module_around_linear",
        notebook="",
        title='Fuyu with target_modules=["mlp"]: a module around nn.Linear, not one',
        finding="targets.unsupported_type",
        expectations=(
            Expectation(
                when={},
                raises="ValueError",
                match=r"Target module PersimmonMLP\([\s\S]*\) is not supported",
                reason="LoRA wraps layer types (Linear, Embedding, Conv...); a name that matches the MLP "
                "module holding them is refused. The inner layers are the targets to name.",
                measured=ran() + NEWER,
            ),
        ),
    ),
    Failure(
        id="doctor_token_type_ids_in_training",
        notebook="",
        title="PaliGemma trained on a batch without token_type_ids",
        finding="inputs.required_in_training",
        expectations=(
            Expectation(
                when={"transformers": REQUIRED.before},
                raises=None,
                reason="PaliGemma 4.x builds its attention mask without token_type_ids when they are missing.",
                measured=ran(transformers=REQUIRED.before),
            ),
            Expectation(
                when={"transformers": TOKEN_TYPES_REQUIRED},
                raises="ValueError",
                match=r"`token_type_ids` is required as a model input when training",
                reason="These releases raise under `if training and token_type_ids is None` (the prefix "
                "attention mask is built from them).",
                measured=ran(transformers=TOKEN_TYPES_REQUIRED)
                + ("transformers 5.2.0", "transformers 5.6.0", "transformers 5.8.0", "transformers 5.8.1"),
            ),
            Expectation(
                when={"transformers": OPTIONAL.since},
                raises=None,
                reason="The check is gone: PaliGemma trains without token_type_ids again.",
                measured=ran(transformers=OPTIONAL.since)
                + ("transformers 5.9.0", "transformers 5.10.1")
                + NEWER,
            ),
        ),
    ),
    Failure(
        id="doctor_tied_head_lora_merge",
        notebook="",
        title="Kosmos-2 (output layer tied to the input embeddings) with LoRA on lm_head, merged",
        finding="unsaved.tied_head",
        expectations=(
            Expectation(
                when={},
                raises="SilentLossError",
                match=r"moved the input embeddings",
                reason="merge_and_unload adds the LoRA update to the one matrix the output layer and the input "
                "embeddings share: the embeddings move too, without a word.",
                measured=ran() + NEWER,
            ),
        ),
    ),
    Failure(
        id="doctor_tied_head_modules_to_save",
        notebook="",
        title='Kosmos-2 with modules_to_save=["lm_head"] (tied to the embeddings): trained, merged, reloaded',
        finding="unsaved.tied_head",
        expectations=(
            Expectation(
                when={"transformers": TIED_HEAD.before},
                raises="SilentLossError",
                match=r"lost the trained output layer",
                reason="from_pretrained ties the output layer to the input embeddings again, as the config "
                "says: the trained copy that was saved is dropped silently.",
                measured=ran(transformers=TIED_HEAD.before),
            ),
            Expectation(
                when={"transformers": TIED_HEAD.since},
                raises=None,
                reason="from_pretrained keeps a saved output layer that differs from the embeddings (and warns "
                "that it does not tie them), so the trained head survives the reload.",
                measured=ran(transformers=TIED_HEAD.since) + NEWER,
            ),
        ),
    ),
    Failure(
        id="doctor_peft_below_transformers_minimum",
        notebook="",
        title="model.add_adapter(LoraConfig(...)) with the installed peft",
        finding="versions.peft_below_transformers_minimum",
        expectations=(
            Expectation(
                when={"transformers": MIN_PEFT.before},
                raises=None,
                reason="Each of these stacks pins a peft at or above its transformers' MIN_PEFT_VERSION.",
                measured=ran(transformers=MIN_PEFT.before),
            ),
            Expectation(
                when={"transformers": MIN_PEFT.since},
                raises="ValueError",
                match=r"The version of PEFT you are using is not compatible, please use a version >= 0\.22\.0",
                reason="transformers' adapter API checks MIN_PEFT_VERSION, 0.22.0 here, above every peft "
                "released when it was run (get_peft_model and PeftModel do not check it).",
                measured=ran(transformers=MIN_PEFT.since) + NEWER,
            ),
        ),
    ),
)
