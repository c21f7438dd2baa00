"""The registry of notebook 04 (``notebooks/04_vit_position_embeddings.py``): its lesson and its failures.

``measured`` names the stacks (``peftlab/stacks/*.txt``, chosen by their pins with ``stacks_where``)
and the single releases the failing block was run on.
"""

from __future__ import annotations

from peftlab.registry.changes import change
from peftlab.registry.schema import Expectation, Failure, Lesson
from peftlab.versions import stacks_where

LESSON = Lesson(
    notebook="04_vit_position_embeddings",
    fix='resize the table once; `modules_to_save=["vit.embeddings"]`, or LoRA plus a sidecar file; '
    "exact round trip",
)

#: The ViT with q_proj/k_proj/v_proj/o_proj, and the PEFT releases either side of NoMatchingPeftModuleError.
RENAMED = change("vit_attention_renamed").since
NO_MATCH_ERROR = change("peft_no_matching_module_error")
#: The PEFT releases whose wrappers pass attribute reads on and do not yet nest.
PASSTHROUGH_NOT_NESTED = (
    f"{change('peft_mts_attribute_passthrough').since},{change('peft_mts_nested_keyerror').before}"
)

FAILURES = (
    Failure(
        id="vit_image_size",
        notebook=LESSON.notebook,
        title="ViT fed images larger than its pre-training resolution",
        expectations=(
            Expectation(
                when={},
                raises="ValueError",
                match=r"Input image size \(\d+\*\d+\) doesn't match model \(\d+\*\d+\)",
                reason="The position-embedding table has one row per patch of the pre-training grid, and "
                "the model checks the image size it remembers (config.image_size) before adding it.",
                measured=("peft 0.16.0", "peft 0.20.0", "peft 0.21.0") + stacks_where(),
            ),
        ),
    ),
    Failure(
        id="vit_query_value_targets",
        notebook=LESSON.notebook,
        title='LoRA target_modules=["query", "value"] on ViT',
        expectations=(
            Expectation(
                when={"transformers": change("vit_attention_renamed").before},
                raises=None,
                reason="ViT's attention keeps its query/key/value layers (under vit.encoder.layer.N), so the "
                "classic target list matches.",
                measured=("peft 0.16.0", "transformers 5.8.1")
                + stacks_where(transformers=change("vit_attention_renamed").before),
            ),
            Expectation(
                when={"transformers": RENAMED, "peft": NO_MATCH_ERROR.since},
                raises="NoMatchingPeftModuleError",
                match=r"Target modules \{.*\} not found in the base model",
                reason="transformers renamed ViT's attention layers to q_proj/k_proj/v_proj/o_proj (under "
                "vit.layers.N); PEFT reports a target list matching nothing with NoMatchingPeftModuleError, "
                "a ValueError subclass.",
                measured=("peft 0.21.0", "transformers 5.9.0")
                + stacks_where(transformers=RENAMED, peft=NO_MATCH_ERROR.since),
            ),
            Expectation(
                when={"transformers": RENAMED, "peft": NO_MATCH_ERROR.before},
                raises="ValueError",
                match=r"Target modules \{.*\} not found in the base model",
                reason="transformers renamed ViT's attention layers to q_proj/k_proj/v_proj/o_proj; these "
                "PEFT releases raise a plain ValueError for a target list that matches nothing.",
                measured=("peft 0.20.0",) + stacks_where(transformers=RENAMED, peft=NO_MATCH_ERROR.before),
            ),
        ),
    ),
    Failure(
        id="vit_modules_to_save_parameter",
        notebook=LESSON.notebook,
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
                    "peft 0.17.0",
                    "peft 0.20.0",
                    "peft 0.16.0",
                    "peft 0.21.0",
                    "peft 0.15.0",
                )
                + stacks_where(),
            ),
        ),
    ),
    Failure(
        id="vit_target_parameters",
        notebook=LESSON.notebook,
        title='LoraConfig(target_parameters=["position_embeddings"]) on ViT',
        expectations=(
            Expectation(
                when={"peft": change("peft_target_parameters").before},
                raises="TypeError",
                match=r"unexpected keyword argument 'target_parameters'",
                reason="LoraConfig has no target_parameters (LoRA on nn.Parameter objects) yet.",
                measured=("peft 0.16.0",) + stacks_where(peft=change("peft_target_parameters").before),
            ),
            Expectation(
                when={"peft": change("peft_target_parameters").since},
                raises="AttributeError",
                match=r"'ParamWrapper' object has no attribute 'patch_embeddings'",
                reason="PEFT wraps the module that owns the parameter (ViTEmbeddings) in a ParamWrapper, "
                "and ViTModel.forward then reads embeddings.patch_embeddings through the wrapper, which "
                "does not pass attribute reads on.",
                measured=("peft 0.17.0", "peft 0.20.0", "peft 0.21.0")
                + stacks_where(peft=change("peft_target_parameters").since),
            ),
        ),
    ),
    Failure(
        id="vit_unfrozen_parameter_not_saved",
        notebook=LESSON.notebook,
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
                    "peft 0.16.0",
                    "peft 0.20.0",
                    "peft 0.21.0",
                    "peft 0.13.2",
                    "peft 0.14.0",
                    "peft 0.15.0",
                )
                + stacks_where(),
            ),
        ),
    ),
    Failure(
        id="vit_modules_to_save_embeddings",
        notebook=LESSON.notebook,
        title='modules_to_save=["embeddings"] on ViT: the saved adapter cannot be loaded',
        expectations=(
            Expectation(
                when={"peft": change("peft_mts_attribute_passthrough").before},
                raises="AttributeError",
                match=r"ModulesToSaveWrapper has no attribute `patch_embeddings`",
                reason="A ModulesToSaveWrapper does not yet pass attribute reads on to the module it wraps "
                "(PR #2117 came later); 'embeddings' also matches 'vit.embeddings.patch_embeddings', which "
                "get_peft_model then cannot reach.",
                measured=("peft 0.13.2",)
                + stacks_where(peft=change("peft_mts_attribute_passthrough").before),
            ),
            Expectation(
                when={"peft": PASSTHROUGH_NOT_NESTED},
                raises=None,
                reason="This release wraps vit.embeddings and, inside it, patch_embeddings, and loads the "
                "saved adapter back.",
                measured=("peft 0.14.0",) + stacks_where(peft=PASSTHROUGH_NOT_NESTED),
            ),
            Expectation(
                when={"peft": change("peft_mts_nested_keyerror").since},
                raises="KeyError",
                match=r"patch_embeddings.*projection\.weight",
                reason="'embeddings' matches both vit.embeddings and vit.embeddings.patch_embeddings (a "
                "suffix match), so a wrapper ends up inside a wrapper; save_pretrained writes both, and "
                "from_pretrained looks for a key that the nested names do not produce.",
                measured=(
                    "peft 0.15.0",
                    "peft 0.15.1",
                    "peft 0.17.0",
                    "peft 0.20.0",
                    "peft 0.16.0",
                    "peft 0.21.0",
                )
                + stacks_where(peft=change("peft_mts_nested_keyerror").since),
            ),
        ),
    ),
)
