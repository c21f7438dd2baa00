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
# **The report.** Someone fine-tunes a LLaVA-style model with the LoRA targets that work for a text
# model, `target_modules=["q_proj", "v_proj"]`. Training runs, the loss falls, nothing warns. Later
# they find more trainable parameters than planned, a vision encoder that is no longer the
# pre-trained one, and an adapter that a serving stack refuses, or serves only in part.
#
# **Learning goals**
#
# * Count where a `target_modules` value lands in a model with several parts, before training.
# * Keep LoRA in the language model with a regular expression over the whole module name, or with
#   `exclude_modules` written as one, and know why a list of tower names excludes nothing.
# * Prove the fix: the vision tower bit-identical after training, no vision tensor in the adapter,
#   and the new task learnt all the same.
#
# **Prerequisites**: notebook 00 (how a `target_modules` list matches module names) and notebook 02
# (visual question answering on the tiny shapes).

# %%
import sys

if "google.colab" in sys.modules:  # on Colab only: install peftlab, keeping Colab's own torch
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "peftlab @ git+https://github.com/peftlab/peftlab"],
        check=True,
    )

# %%
import peftlab

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
# ## The model and the data
#
# LLaVA reads an image with a CLIP vision tower, turns its patch features into "image tokens" with a
# small projector, and hands them to a Llama language model in place of an `<image>` placeholder.
# The tiny LLaVA is built the same way. Its vision tower was pre-trained on shapes in four colours;
# the projector and the Llama learnt to answer questions about red, green and blue shapes only. So
# the model has seen yellow shapes but never answered "yellow": fine-tuning has something to learn.
#
# Each part's linear layers, by the last component of their names:

# %%
from collections import Counter

import torch

from peftlab import data, exercises, vqa
from peftlab.models import llava
from peftlab.tables import Table


def load_model():
    """A fresh copy of the pre-trained model (get_peft_model changes the model it is given)."""
    quantization = None
    quantize = CHECKPOINT != "tiny" if QUANTIZE is None else QUANTIZE
    if quantize:
        from peftlab.models.blip2 import compute_dtype, nf4_config

        quantization = nf4_config(compute_dtype(peftlab.pick_device(DEVICE)))
    return llava.load_llava(CHECKPOINT, DEVICE, quantization_config=quantization)


PARTS = ("vision tower", "projector", "language model")


def part_of(name):
    """The part of a LLaVA that a module name belongs to."""
    if "vision_tower" in name:
        return "vision tower"
    return "projector" if "multi_modal_projector" in name else "language model"


peftlab.seed_everything(SEED)
base, processor = load_model()
names = {part: Counter() for part in PARTS}
for name, module in base.named_modules():
    if isinstance(module, torch.nn.Linear) and module is not base.get_output_embeddings():
        names[part_of(name)][name.rsplit(".", 1)[-1]] += 1
Table(
    ["part", "linear layers (name x count)"],
    [(part, ", ".join(f"{n} x{c}" for n, c in sorted(found.items()))) for part, found in names.items()],
    f"{type(base).__name__}: where each linear-layer name occurs",
)

# %% [markdown]
# The task: each training image is asked three questions (colour, shape, position), such as
# `<image> Question: what colour is the shape? Answer:`, with a one-word answer. The base model on
# held-out images:

# %%
size = processor.image_processor.crop_size["height"]
train_set, test_set = data.train_test_split(256, 192, size=size, seed=SEED)
# each image asked all three questions (with one each, SEED decided how often yellow's colour was asked)
train_batches = vqa.training_batches(processor, train_set, batch_size=BATCH_SIZE)
before = vqa.accuracy_report(base, processor, test_set, batch_size=EVAL_BATCH_SIZE)
for name, value in before.items():
    print(f"base model, {name:<24} {value:.0%}")

# %% [markdown]
# ## The failure: `["q_proj", "v_proj"]`
#
# The report's configuration. `get_peft_model` wraps the model without a word; the lines below count
# the layers that carry a LoRA adapter, part by part.

# %%
from peft import LoraConfig, get_peft_model


def lora_layers_per_part(model):
    """How many layers of each part of a LLaVA carry a LoRA adapter."""
    counts = dict.fromkeys(PARTS, 0)
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer"):  # a LoRA layer
            counts[part_of(name)] += 1
    return counts


lora = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
report_config = LoraConfig(target_modules=["q_proj", "v_proj"], **lora)
report_model = get_peft_model(load_model()[0], report_config)
print(lora_layers_per_part(report_model))

# %% [markdown]
# Adapters sit in the vision tower too, and PEFT and transformers raise nothing. So peftlab
# raises its own detector, `VisionTowerAdaptedError`, *because* the libraries stay silent: it makes
# visible that the vision tower will train, which the setup never meant.

# %%
from peftlab.capture import expect_failure
from peftlab.lessons import towers

with expect_failure("llava_qv_vision_tower"):
    towers.assert_language_model_only(report_model)

# %% [markdown]
# ## Why it happens
#
# PEFT compares each entry of a `target_modules` *list* with every module's full name: a name
# matches when it equals the entry or ends in `"."` + the entry. The rule reads only the end of the
# name, and in both towers the attention layers end in `self_attn.q_proj`:

# %%
for name, _ in base.named_modules():
    if name.endswith("q_proj"):
        matched = any(name == entry or name.endswith("." + entry) for entry in ["q_proj", "v_proj"])
        print(f"{part_of(name):<15} {name:<50} matched: {matched}")

# %% [markdown]
# The names, not the towers, decide. `"all-linear"` and the obvious repair,
# `exclude_modules=["vision_tower"]`, land in the vision tower too: see the deep dive below.

# %% [markdown]
# ### Deep dive: `"all-linear"`, and a repair that excludes nothing
#
# PEFT expands `"all-linear"` to every linear layer except the output layer (`lm_head`): the vision
# tower's attention and MLP layers, and the projector's.

# %%
all_linear_model = get_peft_model(load_model()[0], LoraConfig(target_modules="all-linear", **lora))
print(lora_layers_per_part(all_linear_model))
with expect_failure("llava_all_linear_vision_tower"):
    towers.assert_language_model_only(all_linear_model)

# %% [markdown]
# `exclude_modules` (a `LoraConfig` field, from the release printed below) looks like the answer.
# Given a *list*, it follows the rule above: each candidate layer's own name must equal an entry or
# end in `"."` + the entry. `...vision_tower...layers.0.self_attn.q_proj` does neither with
# `vision_tower`, so nothing is excluded. On a PEFT without the field, `LoraConfig` refuses the keyword.

# %%
from peftlab.registry import change

exclude_field = change("peft_exclude_modules")
print(
    f"exclude_modules exists from peft {exclude_field.release} (peft {exclude_field.bracket()[0]} has none)"
)
with expect_failure("llava_exclude_modules_list"):
    exclude_list_config = LoraConfig(
        target_modules=["q_proj", "v_proj"], exclude_modules=["vision_tower"], **lora
    )
    exclude_list_model = get_peft_model(load_model()[0], exclude_list_config)
    print(lora_layers_per_part(exclude_list_model))
    towers.assert_language_model_only(exclude_list_model)

# %% [markdown]
# ## The fix
#
# A *string* in `target_modules` is read another way: as a regular expression that must match the
# whole name, first character to last (PEFT calls `re.fullmatch`). So:
#
# 1. `r".*language_model.*\.(q_proj|v_proj)"`: anything, then `language_model`, then a last
#    component `q_proj` or `v_proj`. Only the language model's names contain `language_model`, in
#    both layouts transformers has used for LLaVA (`language_model.model.layers...` in 4.x,
#    `model.language_model.layers...` in 5.x; yours are printed above). Without the leading `.*`,
#    the name would have to *start* with `language_model`.
# 2. Or keep the report's list and add `exclude_modules=r".*vision_tower.*"`, a regular expression
#    over the whole name too, which matches every layer inside the tower.
#
# Both must adapt exactly the language-model layers the report's list adapted, and nothing else.

# %%
from peftlab import scorecard

regex_config = LoraConfig(target_modules=r".*language_model.*\.(q_proj|v_proj)", **lora)
fixed_model = get_peft_model(load_model()[0], regex_config)
report_layers = lora_layers_per_part(report_model)["language model"]
fixed_counts = lora_layers_per_part(fixed_model)
scorecard.check(
    "fix: LoRA on the language model only, on the same layers as the report's list",
    fixed_counts == {"vision tower": 0, "projector": 0, "language model": report_layers}
    and towers.assert_language_model_only(fixed_model) == report_layers,
    f"{fixed_counts}",
)

# %%
if exclude_field.holds():
    exclude_model = get_peft_model(
        load_model()[0],
        LoraConfig(target_modules=["q_proj", "v_proj"], exclude_modules=r".*vision_tower.*", **lora),
    )
    exclude_counts = lora_layers_per_part(exclude_model)
    print(f"exclude_modules as a regular expression: {exclude_counts}")
else:
    exclude_counts = "no exclude_modules in this peft"
scorecard.record(
    "LoRA layers per part",
    {"the report's list": lora_layers_per_part(report_model), "exclude_modules regex": exclude_counts},
)

# %% [markdown]
# ## Proof: train both, look at the vision tower
#
# The report's model and the fix train on the same batches for the same number of steps. Before and
# after, each model's vision tower encodes the same held-out images (with its LoRA, where it has one):
# the features the projector receives.

# %%
pixels = vqa.batches(processor, test_set[:64], batch_size=EVAL_BATCH_SIZE, with_answers=False)[0][
    "pixel_values"
]
models = {"fix": fixed_model, "report": report_model}
features_before = {label: towers.vision_features(m, pixels) for label, m in models.items()}
losses = {}
for label, model in models.items():
    if GRADIENT_CHECKPOINTING:  # less activation memory, one more forward pass per step
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peftlab.seed_everything(SEED)
    losses[label] = peftlab.train.train(
        model, train_batches, LORA_STEPS, lr=LR, desc=f"LoRA, {label}", progress=label == "fix"
    )
features_after = {label: towers.vision_features(m, pixels) for label, m in models.items()}
peftlab.plots.loss_curves(
    {"fix: regex on the language model": losses["fix"], 'the report: ["q_proj", "v_proj"]': losses["report"]}
)

# %% [markdown]
# The fix's vision tower must give bit-identical features. The report's must not: the same comparison
# on the report's model shows that the check can fail.

# %%
moved = scorecard.max_difference(features_before["report"], features_after["report"])
scorecard.check_same(
    "fix: the vision tower's outputs are bit-identical after training",
    features_before["fix"],
    features_after["fix"],
)
scorecard.prove(
    "the report's setup: the vision tower's outputs moved in training",
    moved,
    f"max |difference| = {moved:.3g}",
    above=0,
)

# %% [markdown]
# What a serving stack receives: the saved adapter's tensors, per part. vLLM serves LoRA on the
# language model of an image-text model only: in vllm#21500 an adapter with vision-tower tensors
# stopped the server with `ValueError: ... is unsupported LoRA weight`; later releases drop such
# tensors instead, so the adapter is served without the part that was trained there.

# %%
import tempfile
from pathlib import Path

saved = {}
with tempfile.TemporaryDirectory() as folder:
    for label, model in models.items():
        model.save_pretrained(Path(folder, label))
        saved[label] = towers.adapter_tensors_by_part(Path(folder, label))
for label, counts in saved.items():
    print(f"{label:<7} adapter tensors per part: {counts}")
scorecard.check(
    "fix: the saved adapter holds no vision-tower tensor",
    saved["fix"]["vision tower"] == 0
    and saved["fix"]["language model"] > 0
    and saved["report"]["vision tower"] > 0,
    f"fix {saved['fix']['vision tower']}, report {saved['report']['vision tower']} vision-tower tensors",
)

# %% [markdown]
# The task: the colour question on held-out yellow images. The fix adapts the language model alone,
# and its vision features never change; it must learn the new colour all the same.

# %%
after = {
    label: vqa.accuracy_report(m, processor, test_set, batch_size=EVAL_BATCH_SIZE)
    for label, m in models.items()
}
for name in before:
    print(
        f"{name:<24} base {before[name]:>4.0%}   fix {after['fix'][name]:>4.0%}   report {after['report'][name]:>4.0%}"
    )
scorecard.check_headroom(
    "fix: colour answers on held-out yellow images",
    before["colour (yellow images)"],
    after["fix"]["colour (yellow images)"],
    0.55,
)
scorecard.record(
    "fix: shape and position change (the larger loss)",
    min(after["fix"][k] - before[k] for k in ("shape", "position")),
)

# %%
from IPython.display import Markdown, display

trainable = {label: peftlab.train.count_parameters(m)[0] for label, m in models.items()}
yellow = {label: after[label]["colour (yellow images)"] for label in after}
display(
    Markdown(
        f"The report's list trained {trainable['report']:,} parameters, {trainable['report'] / trainable['fix']:.1f}x "
        f"the fix's {trainable['fix']:,}, and moved the vision tower. On yellow images it reached "
        f"{yellow['report']:.0%}, the fix {yellow['fix']:.0%}: "
        + (
            "adapting the vision tower helped here, a fine choice when made on purpose and served with a stack "
            "that accepts vision-tower adapters."
            if yellow["report"] > yellow["fix"]
            else "adapting the vision tower bought nothing here."
        )
    )
)

# %% [markdown]
# ## Exercises
#
# Answer in the first cell, run the check; try again as often as you like.
#
# ### Exercise 1: a string without the `.*` (predict first)
#
# Someone writes the report's targets as one string: `target_modules="q_proj|v_proj"`. **How many
# layers of the tiny LLaVA get a LoRA adapter?** (Answer 0 if you think `get_peft_model` refuses.)

# %%
answer_1 = None  # your answer: a whole number

# %%
try:
    string_model = get_peft_model(load_model()[0], LoraConfig(target_modules="q_proj|v_proj", r=4))
    string_layers = sum(lora_layers_per_part(string_model).values())
except ValueError:  # PEFT found nothing to adapt
    string_layers = 0
exercises.check(
    "07.1",
    answer_1,
    expected=string_layers,
    hint="the fix section says how PEFT reads a string; try the pattern on one of the names printed "
    "under 'Why it happens' with Python's re module",
    explain="re.fullmatch must match the whole name, and no name is just 'q_proj' or 'v_proj': PEFT finds "
    "no target and refuses. A list entry is compared with the end of the name; a string, with all of it.",
)

# %% [markdown]
# ### Exercise 2: check before you wrap
#
# Write `vision_targets(model, target_modules)`: the names of the vision tower's modules that
# `target_modules` (a list or a string) would put LoRA on, without calling `get_peft_model`. The
# check compares it with PEFT's own matching on five target values.


# %%
def vision_targets(model, target_modules):
    return None  # your code


# %%
from peft.tuners.tuners_utils import check_target_module_exists

TRIALS = (
    ["q_proj", "v_proj"],
    ["fc1", "self_attn.k_proj"],
    "q_proj|v_proj",
    r".*language_model.*\.(q_proj|v_proj)",
    r".*vision_tower.*\.(k_proj|out_proj)",
)


def agrees_with_peft(function):
    """True when ``function`` names the vision-tower modules PEFT itself matches, for every trial."""
    for targets in TRIALS:
        config = LoraConfig(target_modules=targets)
        peft_says = sorted(
            name
            for name, _ in base.named_modules()
            if part_of(name) == "vision tower" and check_target_module_exists(config, name)
        )
        found = function(base, targets)
        if found is None or sorted(found) != peft_says:
            return False
    return True


exercises.check(
    "07.2",
    vision_targets,
    test=agrees_with_peft,
    hint="'Why it happens' states the rule for a list and the fix section the rule for a string; "
    "part_of(name) tells you the part",
    explain="Two rules, both blind to towers: a list entry must equal the name or end it after a dot; a "
    "string must match the whole name. Counting per part before training is all it takes.",
)

# %% [markdown]
# ### Exercise 3: an exclusion by suffix (predict first)
#
# Keep the report's `target_modules=["q_proj", "v_proj"]` and add `exclude_modules=["self_attn.q_proj"]`.
# **How many layers of the vision tower still get a LoRA adapter?**

# %%
answer_3 = None  # your answer: a whole number

# %%
suffix_model = get_peft_model(
    load_model()[0],
    LoraConfig(target_modules=["q_proj", "v_proj"], exclude_modules=["self_attn.q_proj"], r=4),
)
exercises.check(
    "07.3",
    answer_3,
    expected=lora_layers_per_part(suffix_model)["vision tower"],
    hint="a list in exclude_modules follows the same rule as a list in target_modules; apply it to the "
    "vision tower's names printed under 'Why it happens'",
    explain="Every name ending in '.self_attn.q_proj' is excluded, in both towers; the v_proj layers keep "
    "their adapters, in both towers too. A list cannot tell the towers apart, to include or to exclude.",
)

# %% [markdown]
# ## Recap
#
# * A `target_modules` list matches the end of module names, not towers: in a LLaVA-style model
#   `q_proj`/`v_proj` (and all of `"all-linear"`) exist in the vision tower too, and `get_peft_model`
#   wraps them without a word.
# * Count LoRA layers per part before training (`lora_layers_per_part` above, or `peftlab.doctor`).
# * Keep LoRA in the language model with a regular expression over the whole name, or with
#   `exclude_modules` written as one; a list of tower names there excludes nothing.
# * Proven here: the vision tower bit-identical after training, an adapter with no vision tensors,
#   and the new colour learnt by the language model alone.
#
# **Upstream threads**: [haotian-liu/LLaVA#1380](https://github.com/haotian-liu/LLaVA/issues/1380),
# [vllm-project/vllm#21500](https://github.com/vllm-project/vllm/issues/21500),
# [huggingface/peft#2388](https://github.com/huggingface/peft/issues/2388).
#
# ## Deep dive: the doctor would have told you
#
# `peftlab.doctor` reads the module names before anything is wrapped: for a model with a vision tower
# and a language model, a target list that lands in both is flagged (`targets.multi_tower`).

# %%
flagged = peftlab.doctor(base, report_config)
scorecard.record("doctor: the report's list", flagged.as_dict())
scorecard.record(
    "doctor: exclude_modules list",
    peftlab.doctor(base, exclude_list_config).as_dict() if exclude_field.holds() else "no exclude_modules",
)
scorecard.record("doctor: the regex fix", peftlab.doctor(base, regex_config).as_dict())
flagged

# %% [markdown]
# ## Deep dive: what the report's list costs at real size
#
# `llava-hf/llava-1.5-7b-hf` (CLIP ViT-L/14 at 336 px, 24 layers; Vicuna-7B, 32 layers) built on
# PyTorch's `meta` device (shapes, no memory), with PEFT's own matching: LoRA parameters per part for
# each target value at r=16, and the weights' size in 4-bit NF4 (linear layers but `lm_head` at half a
# byte a weight, the rest in float16: arithmetic, not a measurement).

# %%
from transformers import LlavaForConditionalGeneration

from peftlab.module_names import all_linear_names

with torch.device("meta"):
    real = LlavaForConditionalGeneration(llava.real_config())
linear = {n: m for n, m in real.named_modules() if isinstance(m, torch.nn.Linear)}


def lora_parameters(targets):
    """LoRA parameters per part, r=16: r x (in + out) for each linear layer the targets wrap."""
    config = LoraConfig(target_modules=targets)
    chosen = (
        all_linear_names(real)
        if targets == "all-linear"
        else [n for n in linear if check_target_module_exists(config, n)]
    )
    counts = dict.fromkeys(PARTS, 0)
    for name in chosen:
        counts[part_of(name)] += lora["r"] * (linear[name].in_features + linear[name].out_features)
    return counts


rows = {
    '["q_proj", "v_proj"]': lora_parameters(["q_proj", "v_proj"]),
    '"all-linear"': lora_parameters("all-linear"),
    "regex on language_model": lora_parameters(r".*language_model.*\.(q_proj|v_proj)"),
}
head = real.get_output_embeddings()
total = sum(p.numel() for p in real.parameters())
in_linear = sum(m.weight.numel() for m in linear.values() if m is not head)
print(
    f"{total / 1e9:.2f} billion parameters: {2 * total / 1e9:.1f} GB in float16, "
    f"about {(in_linear * 0.5 + (total - in_linear) * 2) / 1e9:.1f} GB in 4-bit NF4"
)
Table(
    ["target_modules", *PARTS],
    [(k, *(f"{v[part]:,}" for part in PARTS)) for k, v in rows.items()],
    "llava-1.5-7b: LoRA parameters per part, r=16",
)

# %%
scorecard.save()
