# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · LLaVA: LoRA that lands in the vision tower
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/07_lora_in_vision_tower.ipynb)
#
# **The report** (a pattern of several threads: LLaVA, vLLM and PEFT issues, linked in the recap).
# Someone fine-tunes a LLaVA-style model (a CLIP or SigLIP vision encoder, a projector and a language
# model) with the LoRA settings that work for a text model: `target_modules=["q_proj", "v_proj"]`, or
# `"all-linear"`. Training runs, the loss falls, nothing warns. Later they find more trainable
# parameters than they planned, a vision encoder that is no longer the pre-trained one, and an adapter
# that a serving stack refuses because it carries weights for modules outside the language model.
#
# **What you will see here**, on a tiny LLaVA that knows the colours red, green and blue: where the
# report's target lists really land, part by part; why `exclude_modules=["vision_tower"]`, the obvious
# repair, excludes nothing; two fixes that keep LoRA in the language model; and the proof: the vision
# tower's outputs bit-identical after training, an adapter with no vision weights, and a new colour
# learnt all the same.
#
# **Learning goals**
# * Read where a `target_modules` value lands in a multi-tower model, part by part, before training.
# * Keep LoRA in the language model with an anchored regular expression, or with `exclude_modules`
#   written as a regular expression, and know why a list of tower names does not work there.
# * Prove the fix: the vision tower bit-identical after training, the adapter's tensors per part, and
#   the task metric.
#
# **Prerequisites**: notebook 02 (visual question answering with a tiny image-text model) and
# notebook 03 (how PEFT matches `target_modules` against module names).
#
# **Time**: about 10 minutes to read; to run, about 1.5 minutes on a laptop CPU with the tiny default
# (plus about 2 minutes once, to pre-train the tiny model), and with `llava-hf/llava-1.5-7b-hf` in 4-bit
# on a Colab T4 mostly the download and the 4-bit load (not measured here: this machine has no Hub).

# %%
import sys

if "google.colab" in sys.modules:  # on Colab only: install peftlab, keeping Colab's own torch
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "peftlab @ git+https://github.com/peftlab/peftlab"],
        check=True,
    )

# %%
import time

import peftlab

started = time.perf_counter()
peftlab.start("07_lora_in_vision_tower")

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "llava-hf/llava-1.5-7b-hf" on a Colab GPU: 7.1 B parameters, about 4 GB in 4-bit NF4
DEVICE = None  # None picks CUDA, then MPS, then the CPU
QUANTIZE = None  # None: 4-bit NF4 for a real checkpoint only (a T4 has 15 GB; float16 weights take 14 GB)
LORA_STEPS = 120  # optimiser steps; keep 120 with the real checkpoint
LR = 3e-3  # suits the tiny model; about 1e-4 (the usual QLoRA rate) with the real checkpoint (not measured here)
BATCH_SIZE = 32  # training batch; 4 with the real checkpoint on a T4 (576 image tokens per question)
EVAL_BATCH_SIZE = 64  # scoring batch (no gradients); 16 with the real checkpoint on a T4
GRADIENT_CHECKPOINTING = False  # True with the real checkpoint on a T4 (recompute activations)
SEED = 0

# %% [markdown]
# ## The model: three parts
#
# LLaVA reads an image with a CLIP vision tower, turns its patch features into "image tokens" with a
# small projector, and hands them to a Llama in place of the `<image>` placeholder. The tiny LLaVA is
# built the same way: a CLIP ViT pre-trained on colour, shape and position of images in all four
# colours, a Llama that met the word "yellow" in text, and a projector trained with the Llama to answer
# questions about red, green and blue shapes only. So its vision tower has seen yellow shapes, but the
# model has never answered "yellow" about an image.
#
# The table lists the linear layers of each part by their last name component: the names a
# `target_modules` list matches. Both towers call their attention projections `q_proj` and `v_proj`.

# %%
from collections import Counter

import torch

from peftlab import data, exercises, vqa
from peftlab.lessons import towers
from peftlab.models import llava
from peftlab.module_names import tower_of
from peftlab.tables import Table


def load_model():
    """A fresh copy of the pre-trained model (get_peft_model changes the model it is given)."""
    quantization = None
    quantize = CHECKPOINT != "tiny" if QUANTIZE is None else QUANTIZE
    if quantize:
        from peftlab.models.blip2 import compute_dtype, nf4_config

        quantization = nf4_config(compute_dtype(peftlab.pick_device(DEVICE)))
    return llava.load_llava(CHECKPOINT, DEVICE, quantization_config=quantization)


peftlab.seed_everything(SEED)
base, processor = load_model()
names = {part: Counter() for part in towers.PARTS}
for name, module in base.named_modules():
    if isinstance(module, torch.nn.Linear) and module is not base.get_output_embeddings():
        names[tower_of(name)][name.rsplit(".", 1)[-1]] += 1
Table(
    ["part", "linear layers (name x count)"],
    [(part, ", ".join(f"{n} x{c}" for n, c in sorted(found.items()))) for part, found in names.items()],
    f"{type(base).__name__}: where each linear-layer name occurs",
)

# %% [markdown]
# ## The task: questions about shapes
#
# The questions of notebook 02, behind LLaVA's placeholder: `<image> Question: what colour is the
# shape? Answer:`, one word to answer. The processor expands `<image>` into one token per image patch
# (16 here), which the model replaces with the projector's output. Accuracy on held-out images is
# measured by scoring the possible answers. The last line is the premise: the base model per colour.

# %%
size = processor.image_processor.crop_size["height"]
train_set, test_set = data.train_test_split(256, 192, size=size, seed=SEED)
train_batches = vqa.batches(processor, train_set, batch_size=BATCH_SIZE)
before = vqa.accuracy_report(base, processor, test_set, batch_size=EVAL_BATCH_SIZE)
print(processor.tokenizer.convert_ids_to_tokens(train_batches[0]["input_ids"][0])[14:])
for name, value in before.items():
    print(f"base model, {name:<24} {value:.0%}")

# %% [markdown]
# ### Exercise 1: predict before you wrap
#
# The report's LoRA uses `target_modules=["q_proj", "v_proj"]`. The tiny vision tower has 2
# transformer layers, the Llama 2. **How many layers of the vision tower will get a LoRA adapter?**
# Answer before running the next section; the check comes after it.

# %%
answer_1 = None  # your answer: a whole number

# %% [markdown]
# ## The failure: `["q_proj", "v_proj"]`
#
# PEFT matches each module *name* against a list entry: equal to it, or ending in `"." + entry`.
# Nothing in that rule knows about towers. The ten lines below count the LoRA layers per part,
# readable without peftlab (the projector is named `multi_modal_projector`).

# %%
from peft import LoraConfig, get_peft_model


def lora_layers_per_part(model):
    """How many layers of each part of a LLaVA carry a LoRA adapter."""
    counts = {"vision tower": 0, "projector": 0, "language model": 0}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer"):  # a LoRA layer
            part = (
                "vision tower"
                if "vision_tower" in name
                else "projector"
                if "projector" in name
                else "language model"
            )
            counts[part] += 1
    return counts


lora = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
report_config = LoraConfig(target_modules=["q_proj", "v_proj"], **lora)  # the report's
report_model = get_peft_model(load_model()[0], report_config)
report_model.print_trainable_parameters()
print(lora_layers_per_part(report_model))

# %% [markdown]
# `get_peft_model` said nothing. peftlab's check `towers.assert_language_model_only` (the same count,
# as an exception) makes the silent failure visible: the setup meant the language model only.

# %%
from peftlab.capture import expect_failure

with expect_failure("llava_qv_vision_tower") as leak:
    towers.assert_language_model_only(report_model)

# %%
exercises.check(
    "07.1",
    answer_1,
    expected=lora_layers_per_part(report_model)["vision tower"],
    hint="count the q_proj and v_proj layers in the vision tower's 2 layers: the list has no idea which tower a name is in",
    explain="Both towers name their attention projections q_proj/v_proj, so a list entry matches in both: "
    "2 names x 2 layers in the vision tower, and as many in the Llama.",
)

# %% [markdown]
# ## `"all-linear"`: more of the same
#
# PEFT expands `"all-linear"` to every linear layer except the output layer (`lm_head`): the vision
# tower's attention and MLP layers and the projector too.

# %%
all_linear_model = get_peft_model(load_model()[0], LoraConfig(target_modules="all-linear", **lora))
print(lora_layers_per_part(all_linear_model))
with expect_failure("llava_all_linear_vision_tower"):
    towers.assert_language_model_only(all_linear_model)

# %% [markdown]
# ## The obvious repair that does nothing: `exclude_modules=["vision_tower"]`
#
# PEFT's `exclude_modules` (a `LoraConfig` field from the release printed below) looks like the
# answer. Given a *list*, though, it is matched like `target_modules`: against each candidate's own
# name, equal to an entry or ending in `"." + entry`. A candidate is a `q_proj` layer such as
# `...vision_tower...layers.0.self_attn.q_proj`; it neither equals nor ends in `vision_tower`, so
# nothing is excluded. On a PEFT without the field, `LoraConfig` refuses the keyword instead.

# %%
from peftlab.registry import change

print("exclude_modules exists from", change("peft_exclude_modules").phrase())
with expect_failure("llava_exclude_modules_list") as excluded:
    exclude_list_config = LoraConfig(
        target_modules=["q_proj", "v_proj"], exclude_modules=["vision_tower"], **lora
    )
    exclude_list_model = get_peft_model(load_model()[0], exclude_list_config)
    print(lora_layers_per_part(exclude_list_model))
    towers.assert_language_model_only(exclude_list_model)

# %% [markdown]
# ## The fixes
#
# A *string* in `target_modules` (or `exclude_modules`) is a regular expression that must match the
# whole module name. So:
#
# 1. **An anchored regular expression** names the language model's layers only:
#    `r".*language_model.*\.(q_proj|v_proj)"`. It holds on both module layouts transformers has used
#    for LLaVA (`language_model.model.layers...` in 4.x, `model.language_model.layers...` in 5.x),
#    which a pattern starting `^language_model` would not.
# 2. **`exclude_modules` as a regular expression**: keep the report's list and add
#    `exclude_modules=r".*vision_tower.*"`, which matches every name inside the tower.
#
# Both must adapt exactly the language-model layers the report's list adapted there, and nothing else.

# %%
regex_config = LoraConfig(target_modules=r".*language_model.*\.(q_proj|v_proj)", **lora)
fixes = {"regex": regex_config}
if change("peft_exclude_modules").holds():
    fixes["exclude_modules regex"] = LoraConfig(
        target_modules=["q_proj", "v_proj"], exclude_modules=r".*vision_tower.*", **lora
    )
fixed_models = {label: get_peft_model(load_model()[0], config) for label, config in fixes.items()}
towers.parts_table(
    {
        '["q_proj", "v_proj"] (the report)': report_model,
        '"all-linear"': all_linear_model,
        **{f"fix: {label}": m for label, m in fixed_models.items()},
    }
)

# %%
from peftlab import scorecard

report_lm = lora_layers_per_part(report_model)["language model"]
for label, model in fixed_models.items():
    counts = lora_layers_per_part(model)
    scorecard.check(
        f"fix ({label}): LoRA on the language model only, on the same layers as the report's list",
        counts == {"vision tower": 0, "projector": 0, "language model": report_lm}
        and towers.assert_language_model_only(model) == report_lm,
        f"{counts}",
    )

# %% [markdown]
# **The doctor would have told you.** `peftlab.doctor` reads the module names before anything is
# wrapped: for an image-text model with a vision tower and a language model, a target list that lands
# in both is flagged (`targets.multi_tower`), with the layers it found; the fixed configs are clear.

# %%
flagged = peftlab.doctor(base, report_config)
scorecard.check_flagged('["q_proj", "v_proj"] on LLaVA', flagged, "targets")
flagged

# %%
if change("peft_exclude_modules").holds():  # the list in exclude_modules is read as PEFT reads it
    scorecard.check_flagged(
        'exclude_modules=["vision_tower"]', peftlab.doctor(base, exclude_list_config), "targets"
    )
clear = peftlab.doctor(base, regex_config)
scorecard.check_clear("LoRA anchored on the language model", clear)
clear

# %% [markdown]
# ## Proof: train both, look at the vision tower
#
# The report's model and the regex fix train on the same batches for the same number of steps. Before
# and after, each model's vision tower encodes the same held-out images (with its LoRA, where it has
# one): the features the projector receives.

# %%
fixed_model = fixed_models["regex"]
pixels = vqa.batches(processor, test_set[:64], batch_size=EVAL_BATCH_SIZE, with_answers=False)[0][
    "pixel_values"
]
features_before = {
    "report": towers.vision_features(report_model, pixels),
    "fix": towers.vision_features(fixed_model, pixels),
}
losses = {}
for label, model in (("fix", fixed_model), ("report", report_model)):
    if GRADIENT_CHECKPOINTING:  # less activation memory, one more forward pass per step
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peftlab.seed_everything(SEED)
    losses[label] = peftlab.train.train(model, train_batches, LORA_STEPS, lr=LR, desc=f"LoRA, {label}")
features_after = {
    "report": towers.vision_features(report_model, pixels),
    "fix": towers.vision_features(fixed_model, pixels),
}
peftlab.plots.loss_curves(
    {"fix: regex on the language model": losses["fix"], 'the report: ["q_proj", "v_proj"]': losses["report"]}
)

# %% [markdown]
# The fix's vision tower must give bit-identical features; the report's must not (the same
# comparison, so the check can fail: it is what the report's model shows).

# %%
moved = (features_after["report"] - features_before["report"]).abs().max().item()
scorecard.check_same(
    "fix: the vision tower's outputs are bit-identical after training",
    features_before["fix"],
    features_after["fix"],
)
scorecard.check(
    "the report's setup: the vision tower's outputs moved in training",
    moved > 0,
    f"max |difference| = {moved:.3g}",
    value=moved,
)

# %% [markdown]
# What a serving stack receives: the saved adapter's tensors, per part. vLLM serves LoRA on the language
# model of an image-text model only: in vllm#21500 (Qwen2.5-VL) an adapter with vision-tower tensors
# stopped the server with `ValueError: ... is unsupported LoRA weight`; its later releases filter such
# tensors out instead, so the adapter is served without the part that was trained there.

# %%
import tempfile
from pathlib import Path

saved = {}
with tempfile.TemporaryDirectory() as folder:
    for label, model in (("report", report_model), ("fix", fixed_model)):
        model.save_pretrained(Path(folder, label))
        saved[label] = towers.adapter_tensors_by_part(Path(folder, label))
for label, counts in saved.items():
    print(f"{label:<7} adapter tensors per part: {counts}")
scorecard.check(
    "fix: the saved adapter holds no vision-tower tensor",
    saved["fix"]["vision tower"] == 0
    and saved["fix"]["language model"] > 0
    and saved["report"]["vision tower"] > 0,
    f"{saved}",
)

# %% [markdown]
# The task: the colour question on held-out images, yellow ones above all. The fix adapts the language
# model alone, reading vision features that never change; it must still learn the new colour.

# %%
after = {
    label: vqa.accuracy_report(m, processor, test_set, batch_size=EVAL_BATCH_SIZE)
    for label, m in (("fix", fixed_model), ("report", report_model))
}
for name in before:
    print(
        f"{name:<24} base {before[name]:>4.0%}   fix {after['fix'][name]:>4.0%}   report {after['report'][name]:>4.0%}"
    )

# %%
# Thresholds from `peftlab sweep`: SEED 0-4 x pre-training seeds 0-2 (PEFTLAB_PRETRAIN_SEED) on both stacks,
# 30 runs, 2026-12-02. The fix closed 83% (min) / 94% (median) of the yellow images' gap on the documented
# stack, 90% / 98% on the current one; threshold 55%, a third below the smallest. The larger of the shape and
# position losses was at most 8 points (median 0); threshold 10 points.
MIN_CLOSED = 0.55
scorecard.check_headroom(
    "fix: colour answers on held-out yellow images",
    before["colour (yellow images)"],
    after["fix"]["colour (yellow images)"],
    MIN_CLOSED,
)
scorecard.check(
    "fix: shape and position answers are not lost (at most 10 points)",
    all(after["fix"][k] >= before[k] - 0.10 for k in ("shape", "position")),
    ", ".join(f"{k} {before[k]:.0%} -> {after['fix'][k]:.0%}" for k in ("shape", "position")),
    value=min(after["fix"][k] - before[k] for k in ("shape", "position")),
)

# %%
from IPython.display import Markdown, display

trainable = {
    label: peftlab.train.count_parameters(m)[0]
    for label, m in (("report", report_model), ("fix", fixed_model))
}
yellow = {label: after[label]["colour (yellow images)"] for label in after}
display(
    Markdown(
        f"The report's list trained {trainable['report']:,} parameters, {trainable['report'] / trainable['fix']:.1f}x the "
        f"fix's {trainable['fix']:,}, and moved the vision tower (features by up to {moved:.2g}). On yellow images it "
        f"reached {yellow['report']:.0%}, the fix {yellow['fix']:.0%}: "
        + (
            "adapting the vision tower helped this task, which is a fine choice when it is made on purpose, and "
            "served with a stack that accepts vision-tower adapters."
            if yellow["report"] > yellow["fix"]
            else "adapting the vision tower bought nothing here."
        )
    )
)

# %% [markdown]
# ## The real model: what the report's list costs there
#
# `llava-hf/llava-1.5-7b-hf` (CLIP ViT-L/14 at 336 px, 24 layers; Vicuna-7B, 32 layers) built on
# PyTorch's `meta` device (shapes, no memory), with the same name matching as above: LoRA parameters per
# part for each target value at r=16, and the weights' size in 4-bit NF4 (linear layers but `lm_head`
# at half a byte a weight, the rest in float16: arithmetic, not a measurement).

# %%
from transformers import LlavaForConditionalGeneration

from peftlab.module_names import all_linear_names
from peftlab.targets import target_entry

with torch.device("meta"):
    real = LlavaForConditionalGeneration(llava.real_config())
linear = {n: m for n, m in real.named_modules() if isinstance(m, torch.nn.Linear)}


def lora_parameters(targets, exclude=None):
    """LoRA parameters per part, r=16: r x (in + out) for each linear layer the targets wrap."""
    chosen = (
        all_linear_names(real) if targets == "all-linear" else [n for n in linear if target_entry(n, targets)]
    )
    counts = dict.fromkeys(towers.PARTS, 0)
    for name in chosen:
        if not (exclude and target_entry(name, exclude)):
            counts[tower_of(name)] += lora["r"] * (linear[name].in_features + linear[name].out_features)
    return counts


rows = {
    '["q_proj", "v_proj"]': lora_parameters(["q_proj", "v_proj"]),
    '"all-linear"': lora_parameters("all-linear"),
    "regex on language_model": lora_parameters(r".*language_model.*\.(q_proj|v_proj)"),
}
Table(
    ["target_modules", *towers.PARTS],
    [(k, *(f"{v[p]:,}" for p in towers.PARTS)) for k, v in rows.items()],
    "llava-1.5-7b: LoRA parameters per part, r=16",
)

# %%
head = real.get_output_embeddings()
total = sum(p.numel() for p in real.parameters())
in_linear = sum(m.weight.numel() for m in linear.values() if m is not head)
nf4_gb = (in_linear * 0.5 + (total - in_linear) * 2) / 1e9
print(
    f"{total / 1e9:.2f} billion parameters: {2 * total / 1e9:.1f} GB in float16, about {nf4_gb:.1f} GB in 4-bit NF4"
)

# %% [markdown]
# ## Exercises
#
# Exercise 1 (how many vision-tower layers `["q_proj", "v_proj"]` adapts) came before the failure, so
# that you predicted first. Two more, each checked with `get_peft_model` on a fresh tiny model.
#
# ### Exercise 2: a regular expression of your own
#
# Write a `target_modules` **string** that puts LoRA on the language model's `q_proj`, `k_proj` and
# `v_proj` layers, and on nothing else (not the vision tower's, not the projector). It must work on
# both module layouts: `language_model.model.layers.0.self_attn.q_proj` (transformers 4.x) and
# `model.language_model.layers.0.self_attn.q_proj` (5.x).

# %%
answer_2 = None  # your answer: a string, e.g. r"..."


# %%
def lands_in_language_model_only(pattern):
    """Which layers the pattern adapts on a fresh tiny LLaVA, checked with get_peft_model itself."""
    model = get_peft_model(load_model()[0], LoraConfig(target_modules=pattern, r=4))
    counts, kinds = (
        lora_layers_per_part(model),
        Counter(
            n.rsplit(".", 1)[-1]
            for n, m in model.named_modules()
            if hasattr(m, "lora_A") and hasattr(m, "base_layer")
        ),
    )
    layers = base.config.text_config.num_hidden_layers
    return counts["vision tower"] == counts["projector"] == 0 and kinds == {
        "q_proj": layers,
        "k_proj": layers,
        "v_proj": layers,
    }


exercises.check(
    "07.2",
    answer_2,
    test=lands_in_language_model_only,
    hint='a string is matched against the WHOLE name (re.fullmatch): start with ".*language_model" and end with '
    r'"\.(q_proj|k_proj|v_proj)"',
    explain="Anchoring on the component that only the language model's names contain keeps the vision tower out "
    "on both layouts; a list entry cannot do this, it only looks at the end of a name.",
)

# %% [markdown]
# ### Exercise 3: the exclusion that works
#
# `exclude_modules=["vision_tower"]` excluded nothing. Give an `exclude_modules` value that, together
# with `target_modules="all-linear"`, leaves every layer of the vision tower without LoRA while the
# language model keeps its adapters.

# %%
answer_3 = None  # your answer: a string or a list


# %%
def excludes_the_vision_tower(exclude):
    """True when all-linear minus ``exclude`` adapts the language model but no vision-tower layer."""
    model = get_peft_model(
        load_model()[0], LoraConfig(target_modules="all-linear", exclude_modules=exclude, r=4)
    )
    counts = lora_layers_per_part(model)
    return counts["vision tower"] == 0 and counts["language model"] > 0


exercises.check(
    "07.3",
    answer_3,
    test=excludes_the_vision_tower,
    hint="a list entry must equal the layer's whole name or end it; a string is a regular expression over the "
    "whole name",
    explain=f'r".*vision_tower.*" matches every name inside the tower (exclude_modules exists from '
    f"{change('peft_exclude_modules').phrase()}).",
)

# %% [markdown]
# ## Recap
#
# * A `target_modules` list matches names, not towers: in a LLaVA-style model `q_proj`/`v_proj` (and
#   all of `"all-linear"`) exist in the vision tower too, and `get_peft_model` wraps them silently.
# * Count LoRA layers per part before training (`lora_layers_per_part` above, or `peftlab.doctor`).
# * Keep LoRA in the language model with a regular expression anchored on it, or with
#   `exclude_modules` written as a regular expression; a list of tower names there excludes nothing.
# * Proven here: the vision tower bit-identical after training, an adapter with no vision tensors,
#   and the new colour learnt by the language model alone.
#
# **Upstream threads**: [haotian-liu/LLaVA#1380](https://github.com/haotian-liu/LLaVA/issues/1380),
# [vllm-project/vllm#21500](https://github.com/vllm-project/vllm/issues/21500),
# [huggingface/peft#2388](https://github.com/huggingface/peft/issues/2388).
#
# The cell below prints this run's time and the figures of the proof.

# %%
print(
    f"wall time {time.perf_counter() - started:.0f} s; yellow images {before['colour (yellow images)']:.0%} -> "
    f"{after['fix']['colour (yellow images)']:.0%} (fix); vision tower moved by {moved:.3g} (report), 0 (fix)"
)

# %%
scorecard.save()
