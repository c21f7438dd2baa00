"""How much memory BLIP-2's weights take in fp32, fp16, bf16 and 4-bit NF4 (notebook 02).

Two ways to the same numbers: :func:`measure` loads a checkpoint in each precision and asks the
model (``model.get_memory_footprint()``); :func:`estimate` does the arithmetic from the config
alone, on a model built on the ``meta`` device (shapes without storage, so even the real
3.7-billion-parameter BLIP-2 costs nothing to "build"). The notebook checks that the arithmetic
equals the measurement on the tiny model, then trusts it for ``Salesforce/blip2-opt-2.7b``.

The rules the arithmetic follows are the ones transformers and bitsandbytes apply:

* ``fp16``: BLIP-2 keeps its Q-Former and query tokens in float32 (``_keep_in_fp32_modules``);
  ``bf16`` converts everything on transformers 4.x and on the current stack, but
  transformers 5.0 keeps them in float32 in ``bf16`` too: its ``PreTrainedModel.__init__`` turns
  ``_keep_in_fp32_modules`` into a ``dtype_plan`` for every dtype, where 4.x and later 5.x apply it
  to float16 only (``_get_dtype_plan(dtype)``). :func:`kept_in_fp32` asks the installed version.
* ``nf4``: every ``nn.Linear`` becomes a 4-bit ``Linear4bit`` (half a byte per weight) except the
  Q-Former's (kept in float32) and the output layer ``lm_head``; everything else (embeddings,
  layer norms, biases) stays in the loading dtype, float16 here.
* ``get_memory_footprint`` counts parameters and buffers only: the 4-bit quantisation constants
  (one 8-bit scale per 64 weights plus a float32 per 256 scales, with double quantisation) are
  not among them; :func:`nf4_constants` gives their size.
"""

from __future__ import annotations

import math

import torch
from transformers import Blip2Config, Blip2ForConditionalGeneration

#: Salesforce/blip2-opt-2.7b, as its config.json on the Hugging Face Hub gives it (the revision
#: saved with transformers 4.47 that added image_token_index 50265 and grew the OPT vocabulary
#: from 50272 to 50304). That file leaves the vision and Q-Former settings at the defaults of
#: Blip2VisionConfig / Blip2QFormerConfig (ViT-g/14 and a BERT-base-sized Q-Former), and the OPT
#: ones it omits at OPTConfig's; they are written out here so that no library default can move them.
BLIP2_OPT_2_7B = {
    "vision_config": {
        "hidden_size": 1408,
        "intermediate_size": 6144,
        "num_hidden_layers": 39,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "qkv_bias": True,
    },
    "qformer_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "cross_attention_frequency": 2,
        "encoder_hidden_size": 1408,
        "vocab_size": 30522,
    },
    "text_config": {
        "model_type": "opt",
        "vocab_size": 50304,
        "hidden_size": 2560,
        "ffn_dim": 10240,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "word_embed_proj_dim": 2560,
        "max_position_embeddings": 2048,
    },
    "num_query_tokens": 32,
    "image_token_index": 50265,
}

#: The precisions compared, as they are loaded: name -> (dtype of the weights, 4-bit or not).
SCHEMES = {
    "fp32": (torch.float32, False),
    "fp16": (torch.float16, False),
    "bf16": (torch.bfloat16, False),
    "nf4": (torch.float16, True),
}


def real_config() -> Blip2Config:
    """The config of ``Salesforce/blip2-opt-2.7b`` (see :data:`BLIP2_OPT_2_7B`), built offline."""
    return Blip2Config(**BLIP2_OPT_2_7B)


def meta_model(config: Blip2Config) -> Blip2ForConditionalGeneration:
    """BLIP-2 of ``config`` on the meta device: every shape, no memory.

    Its OPT ``lm_head`` is tied to the input embeddings, as ``from_pretrained`` ties it:
    transformers 5.0 ties weights only when loading, not when a model is built from a config, and
    an untied copy would count ``vocab_size * hidden_size`` parameters twice.
    """
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
    model.tie_weights()
    return model


def quantised_linears(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The linear layers bitsandbytes turns into 4-bit ones: all but the Q-Former's and ``lm_head``."""
    output = model.get_output_embeddings()
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not name.startswith("qformer") and m is not output
    }


def kept_in_fp32(model: torch.nn.Module, dtype: torch.dtype) -> tuple[str, ...]:
    """The modules the installed transformers loads in float32 when ``model`` is loaded in ``dtype``.

    transformers 4.x (and the later 5.x releases, with ``_get_dtype_plan``, such as the current stack's) keeps
    ``_keep_in_fp32_modules`` in float32 for float16 only, ``_keep_in_fp32_modules_strict`` for
    float16 and bfloat16; transformers 5.0 builds one ``dtype_plan`` in ``__init__`` from both and
    applies it whatever the dtype (core_model_loading), so a bfloat16 BLIP-2 keeps its Q-Former in
    float32 there.
    """
    if dtype == torch.float32:
        return ()
    if hasattr(model, "_get_dtype_plan"):  # later 5.x: the plan depends on the dtype
        return tuple(model._get_dtype_plan(dtype))
    if isinstance(getattr(model, "dtype_plan", None), dict):  # 5.0: one plan for every dtype
        return tuple(model.dtype_plan)
    keep = list(model._keep_in_fp32_modules or []) if dtype == torch.float16 else []  # 4.x
    return (*keep, *(getattr(model, "_keep_in_fp32_modules_strict", None) or []))


def estimate(model: torch.nn.Module, scheme: str) -> int:
    """Bytes of ``model``'s parameters in ``scheme`` (one of :data:`SCHEMES`), counted as
    ``get_memory_footprint`` counts them; tied weights (OPT's ``lm_head``) count once, and the
    modules the installed transformers keeps in float32 (:func:`kept_in_fp32`) take 4 bytes.
    """
    dtype, four_bit = SCHEMES[scheme]
    packed = {id(m.weight) for m in quantised_linears(model).values()} if four_bit else set()
    fp32 = kept_in_fp32(model, dtype)
    total, seen = 0, set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in packed:
            total += math.ceil(p.numel() / 2)  # two 4-bit weights per byte
            continue
        keep = any(name == m or name.startswith(m + ".") for m in fp32)
        total += p.numel() * (4 if keep else dtype.itemsize)
    return total


def nf4_constants(model: torch.nn.Module, blocksize: int = 64, double_blocksize: int = 256) -> int:
    """Bytes of the NF4 scales that ``get_memory_footprint`` leaves out (double quantisation:
    an 8-bit scale per ``blocksize`` weights and a float32 per ``double_blocksize`` scales).
    """
    total = 0
    for m in quantised_linears(model).values():
        blocks = math.ceil(m.weight.numel() / blocksize)
        total += blocks + 4 * math.ceil(blocks / double_blocksize)
    return total


def measure(load, schemes: tuple[str, ...] = tuple(SCHEMES)) -> dict[str, int | str]:  # noqa: ANN001
    """``get_memory_footprint()`` of the model ``load(dtype, four_bit)`` returns, per scheme.

    Where a scheme cannot be loaded here (4-bit on a CPU with the documented stack), the entry is
    the reason instead of a number.
    """
    out: dict[str, int | str] = {}
    for scheme in schemes:
        dtype, four_bit = SCHEMES[scheme]
        try:
            out[scheme] = load(dtype, four_bit).get_memory_footprint()
        except (RuntimeError, ImportError, ValueError) as error:
            out[scheme] = f"not loadable here ({type(error).__name__}: {str(error).split(':')[0][:120]})"
    return out


def plot(tiny: dict[str, int | str], real: dict[str, int], real_name: str = "Salesforce/blip2-opt-2.7b"):  # noqa: ANN201
    """Two bar charts: the tiny model as measured (kB) and the real one by arithmetic (GB)."""
    import matplotlib.pyplot as plt

    from peftlab.plots import STYLE, new_figure

    with plt.style.context(STYLE):
        fig, (left, right) = new_figure(width=9.0, height=3.3, ncols=2)
        for ax, values, unit, scale, title in (
            (left, tiny, "kB", 1e3, "tiny BLIP-2: get_memory_footprint()"),
            (right, real, "GB", 1e9, f"{real_name}: arithmetic"),
        ):
            names = list(values)
            heights = [v / scale if isinstance(v, int) else 0.0 for v in values.values()]
            ax.bar(names, heights, color=[f"C{i}" for i in range(len(names))])
            for i, v in enumerate(values.values()):
                label = (
                    f"{v / scale:,.{0 if v >= 100 * scale else 2}f} {unit}"
                    if isinstance(v, int)
                    else "not loadable\nhere"
                )
                ax.text(i, heights[i], label, ha="center", va="bottom", fontsize=8)
            ax.set(title=title, ylabel=unit)
            ax.set_ylim(0, max(heights) * 1.25)
            ax.title.set_fontsize(9)
        fig.tight_layout()
    return fig
