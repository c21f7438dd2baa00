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
# # 00 · LoRA in ten minutes: `r`, `lora_alpha`, `target_modules`, `task_type`, `modules_to_save`
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/00_lora_primer.ipynb)
#
# **The primer.** The other notebooks each take one real failure apart. They all assume you know what
# the five arguments of `LoraConfig` they keep changing actually do. This notebook shows it on a tiny
# CLIP by counting and measuring, not by asserting: how many parameters `r` adds, what rank the update
# `B @ A` really has, how `lora_alpha` scales the output, which modules a `target_modules` list
# matches, what a `task_type` changes, and what `modules_to_save` copies. Nothing fails here: this
# notebook is the one without a failure.
#
# **Learning goals**
# * Predict the number of trainable parameters of a LoRA config from `r` and the layers it targets,
#   and see that the update `B @ A` has rank at most `r`.
# * Read `lora_alpha / r` as the factor that scales the LoRA update, measured on a layer's output.
# * Tell which modules `target_modules` matches, what `task_type` changes (the wrapper, not the
#   adapter) and what `modules_to_save` adds (a trainable copy that is saved with the adapter).
#
# **Prerequisites**: PyTorch basics (`nn.Linear`, a training step), loading a model with
# transformers. No PEFT knowledge needed.
#
# **Time**: about 10 minutes to read and run; the cells take under 30 s on the tiny default on a
# laptop CPU, and about a minute with `openai/clip-vit-base-patch32` on a Colab T4 (estimated).

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
peftlab.start("00_lora_primer")

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "openai/clip-vit-base-patch32" on a Colab GPU (about 3 GB of GPU memory, estimated)
DEVICE = None  # None picks CUDA, then MPS, then the CPU
RANKS = (1, 2, 4, 8, 16, 32)
TRAIN_STEPS = 30
SEED = 0

# %% [markdown]
# ## The model: where LoRA can go
#
# `load_clip` builds a tiny CLIP (two layers per tower, width 64), pre-trains it for a few seconds on
# synthetic shapes and loads it with `from_pretrained`, like any checkpoint (notebook 01 uses the same
# model). LoRA adds a small trainable update beside a layer whose weight stays frozen: for an
# `nn.Linear` with weight `W` (`out x in`), the layer computes `W x + (lora_alpha / r) * B A x` with
# `A` (`r x in`) and `B` (`out x r`). So LoRA goes on linear layers; here are CLIP's, by the last part
# of their names:

# %%
import torch

from peftlab import data, exercises, plots, retrieval, scorecard
from peftlab.models import load_clip
from peftlab.tables import Table

peftlab.seed_everything(SEED)
model, processor = load_clip(CHECKPOINT, device=DEVICE)
size = processor.image_processor.crop_size["height"]
train_batches = retrieval.batches(processor, data.make_shapes(128, size=size, seed=SEED), retrieval.prompts())

linears = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
by_suffix = {}
for name, m in linears.items():
    by_suffix.setdefault(name.rsplit(".", 1)[-1], []).append(m)
Table(
    ["name ends in", "layers", "in x out"],
    [
        [s, len(ms), ", ".join(sorted({f"{m.in_features} x {m.out_features}" for m in ms}))]
        for s, ms in by_suffix.items()
    ],
    f"{len(linears)} nn.Linear layers; {sum(p.numel() for p in model.parameters()):,} parameters in all",
)

# %% [markdown]
# ## `target_modules`: which layers get LoRA
#
# `get_peft_model` changes the model it is given in place (it swaps layers for LoRA layers), so every
# experiment below wraps a fresh copy. The rule PEFT applies, written out: a **list** entry matches a
# module whose full name *is* the entry or *ends with* `.` + the entry (`"q_proj"` matches
# `...self_attn.q_proj`, `"proj"` matches nothing); a **string** is a regular expression that must
# match the *whole* name. Below, that rule predicts the layers before PEFT wraps them, for three
# target lists, and the table marks what PEFT actually wrapped (`targeted_module_names`).

# %%
import copy
import re

from peft import LoraConfig, get_peft_model


def lora(config):
    """A LoRA model on a fresh copy of the base model (get_peft_model changes its argument)."""
    return get_peft_model(copy.deepcopy(model), config)


def predicted_targets(names, target_modules):
    """The module names that target_modules matches: a list by suffix, a string as a full regex."""
    if isinstance(target_modules, str):
        return [n for n in names if re.fullmatch(target_modules, n)]
    return [n for n in names if any(n == t or n.endswith("." + t) for t in target_modules)]


target_lists = {
    "q, v": ["q_proj", "v_proj"],
    "MLP": ["fc1", "fc2"],
    "vision q, v (regex)": r"vision_model\..*\.(q_proj|v_proj)",
}
wrapped = {
    label: set(lora(LoraConfig(r=4, target_modules=t)).targeted_module_names)
    for label, t in target_lists.items()
}
predicted = {label: set(predicted_targets(linears, t)) for label, t in target_lists.items()}
Table(
    ["module"] + list(target_lists),
    [
        [name] + ["LoRA" if name in wrapped[label] else "" for label in target_lists]
        for name in linears
        if any(name in w for w in wrapped.values())
    ],
    "the layers each target list wrapped (only layers wrapped by at least one list are shown)",
)

# %%
print('by the same rule, ["proj"] matches', len(predicted_targets(linears, ["proj"])), "layers")
differences = sum(len(wrapped[label] ^ predicted[label]) for label in target_lists)
scorecard.check(
    "the suffix / full-regex rule predicts exactly the layers PEFT wraps",
    differences == 0,
    f"{len(target_lists)} target lists, {sum(map(len, wrapped.values()))} layers wrapped, "
    f"{differences} differences",
    value=differences,
)

# %% [markdown]
# ## `r`: how many parameters LoRA trains
#
# Each wrapped layer gets `A` (`r x in`) and `B` (`out x r`): `r * (in + out)` new parameters, and the
# layer's own `in x out` weight stays frozen.

# %% [markdown]
# ### Exercise 1: predict the count
#
# With `target_modules=["q_proj", "v_proj"]` on this model (the first column of the table above),
# how many trainable parameters will `r=8` give? Predict before you run the sweep below (use the
# `in x out` table; a number, no code needed).

# %%
answer = None  # your answer: a number, e.g. 1234

# %%
targets = ["q_proj", "v_proj"]
trainable = {}
for r in RANKS:
    trainable[r] = peftlab.train.count_parameters(lora(LoraConfig(r=r, target_modules=targets)))[0]
formula = {
    r: sum(r * (m.in_features + m.out_features) for n, m in linears.items() if n in wrapped["q, v"])
    for r in RANKS
}
for r in RANKS:
    print(
        f"r={r:<3} trainable {trainable[r]:>8,}   r * (in + out) summed over the wrapped layers {formula[r]:>8,}"
    )
plots.bars(
    {f"r={r}": trainable[r] for r in RANKS},
    "trainable parameters vs r (q_proj, v_proj)",
    "trainable parameters",
    percent=False,
)

# %%
exercises.check(
    "00.1",
    answer,
    expected=trainable[8],
    hint="each wrapped layer adds r * (in + out); count the q_proj and v_proj layers in both towers",
    explain=f"{len(wrapped['q, v'])} layers x 8 x (in + out) = {trainable[8]:,}: linear in r, "
    f"and {trainable[8] / sum(p.numel() for p in model.parameters()):.1%} of the model.",
)

# %%
mismatched = [r for r in RANKS if trainable[r] != formula[r]]
scorecard.check(
    "trainable parameters are r * (in + out) per wrapped layer, for every r",
    not mismatched,
    f"r in {list(RANKS)}: {len(RANKS) - len(mismatched)} of {len(RANKS)} counts match the formula",
    value=len(mismatched),
)

# %% [markdown]
# ## The update `B @ A` has rank at most `r`
#
# LoRA starts with `B = 0`, so the wrapped model first computes exactly what the base model computes.
# Training moves `A` and `B`; the change to each layer's weight is `(lora_alpha / r) * B @ A`, an
# `out x in` matrix (`64 x 64` on the tiny CLIP) that could have full rank. Its rank is measured
# below, after a few steps of training (image-text matching on the synthetic shapes).

# %%
R = 4
rank_model = lora(LoraConfig(r=R, lora_alpha=2 * R, target_modules=targets))
losses = peftlab.train.train(
    rank_model, train_batches, TRAIN_STEPS, lr=3e-3, loss_fn=retrieval.loss, desc=f"LoRA r={R}"
)


def lora_update(layer):
    """The change LoRA makes to a layer's weight: scaling * B @ A (out x in)."""
    return layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight


lora_layers = {n: m for n, m in rank_model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}
updates = {n.split("model.", 2)[-1]: lora_update(m).detach().float().cpu() for n, m in lora_layers.items()}
ranks = {n: int(torch.linalg.matrix_rank(u)) for n, u in updates.items()}
for name, rank in ranks.items():
    print(f"{name:<45} {tuple(updates[name].shape)}  rank {rank}")

# %%
import matplotlib.pyplot as plt

name = next(iter(updates))
singular = torch.linalg.svdvals(updates[name])
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogy(range(1, len(singular) + 1), singular.clamp_min(1e-12), "o-", markersize=3)
ax.axvline(R + 0.5, color="grey", linestyle="--")
ax.set(title=f"singular values of B @ A in {name} (r={R})", xlabel="index", ylabel="singular value (log)")
plt.show()

# %%
# SEED 0-4 on both stacks (10 runs, PEFTLAB_PRETRAIN_SEED=0): every update had rank exactly r, its
# r-th singular value at least 1.5% of the first (matrix_rank's tolerance is about 1e-5 of it). The
# check needs rank r (training moved all r directions) and never more (the factorisation's limit).
possible = min(next(iter(updates.values())).shape)
scorecard.check(
    f"after {TRAIN_STEPS} steps every LoRA update B @ A has rank exactly r={R} (of a possible {possible})",
    set(ranks.values()) == {R},
    f"ranks {sorted(set(ranks.values()))} over {len(ranks)} layers",
    value=min(ranks.values()),
)

# %% [markdown]
# ## `lora_alpha`: the update is scaled by `lora_alpha / r`
#
# PEFT stores the factor on each LoRA layer as `scaling`. Read for a few configs (with
# `use_rslora=True` it is `lora_alpha / sqrt(r)` instead):

# %%
configs = [(4, 8), (8, 8), (8, 16), (16, 16), (16, 32)]
read = {
    (r, a): next(
        m
        for m in lora(LoraConfig(r=r, lora_alpha=a, target_modules=targets)).modules()
        if hasattr(m, "scaling")
    ).scaling["default"]
    for r, a in configs
}
Table(
    ["r", "lora_alpha", "scaling read from PEFT", "lora_alpha / r"],
    [[r, a, read[(r, a)], a / r] for r, a in configs],
)

# %% [markdown]
# Now measured: the trained `A` and `B` above are loaded into models built with other `lora_alpha`
# values. If the output change is `(lora_alpha / r) * B A x`, a layer's change grows in proportion to
# `lora_alpha`; the whole model's output, where several layers add up through nonlinearities, just
# grows with it.

# %%
from peft import get_peft_model_state_dict, set_peft_model_state_dict

ALPHAS = (2, 4, 8, 16, 32)
trained = get_peft_model_state_dict(rank_model)
batch = peftlab.train.to_device(train_batches[0], peftlab.train.model_device(model))
inputs = {k: v for k, v in batch.items() if k != "labels"}
model.eval()
with torch.no_grad():
    base_logits = model(**inputs).logits_per_image
layer_change, model_change = {}, {}
x = torch.randn(16, next(iter(lora_layers.values())).in_features, device=batch["pixel_values"].device)
for alpha in ALPHAS:
    scaled = lora(LoraConfig(r=R, lora_alpha=alpha, target_modules=targets)).eval()
    set_peft_model_state_dict(scaled, trained)
    layer = next(m for m in scaled.modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    with torch.no_grad():
        layer_change[alpha] = (layer(x) - layer.base_layer(x)).norm().item()
        model_change[alpha] = (scaled(**inputs).logits_per_image - base_logits).abs().mean().item()
for alpha in ALPHAS:
    print(
        f"lora_alpha={alpha:<3} (scale {alpha / R:.1f}): one layer's output change {layer_change[alpha]:.4f}, "
        f"mean |change| of the logits {model_change[alpha]:.4f}"
    )

# %%
fig, ax = plt.subplots(figsize=(6, 3))
scales = [a / R for a in ALPHAS]
ax.plot(
    scales,
    [layer_change[a] / layer_change[ALPHAS[0]] for a in ALPHAS],
    "o-",
    label="one layer's output change",
)
ax.plot(scales, [model_change[a] / model_change[ALPHAS[0]] for a in ALPHAS], "s-", label="the logits' change")
ax.set(
    title="change vs lora_alpha / r (relative to the smallest)",
    xlabel="lora_alpha / r",
    ylabel="relative change",
)
ax.legend(frameon=False)
plt.show()

# %%
# The layer's change must be proportional to lora_alpha within 0.1% (float32 rounding is far below).
ratio = layer_change[ALPHAS[-1]] / layer_change[ALPHAS[0]]
expected_ratio = ALPHAS[-1] / ALPHAS[0]
scorecard.check(
    "a layer's output change is proportional to lora_alpha / r",
    abs(ratio / expected_ratio - 1) < 1e-3,
    f"lora_alpha {ALPHAS[0]} -> {ALPHAS[-1]}: change x{ratio:.4f} (predicted x{expected_ratio:g})",
    value=ratio / expected_ratio,
)

# %% [markdown]
# ## `task_type`: it picks the wrapper class, not the adapter
#
# `get_peft_model` returns a different class for each `task_type`, and each class has its own
# `forward` that decides which arguments reach your model. The LoRA layers are the same:

# %%
import inspect

rows, counts = [], {}
for task_type in (None, "FEATURE_EXTRACTION", "SEQ_CLS"):
    wrapper = lora(LoraConfig(task_type=task_type, r=R, target_modules=targets))
    counts[task_type] = peftlab.train.count_parameters(wrapper)[0]
    rows.append(
        [
            task_type,
            type(wrapper).__name__,
            counts[task_type],
            ", ".join(list(inspect.signature(type(wrapper).forward).parameters)[1:]),
        ]
    )
Table(["task_type", "get_peft_model returns", "trainable", "its forward(...) takes"], rows)

# %%
scorecard.check(
    "task_type changes the wrapper class, not the LoRA parameters",
    len(set(counts.values())) == 1 and len({r[1] for r in rows}) == len(rows),
    f"{len({r[1] for r in rows})} wrapper classes, trainable counts {sorted(set(counts.values()))}",
)

# %% [markdown]
# The plain `PeftModel` passes on whatever it is given (`*args, **kwargs`). The task wrappers name
# text-model arguments such as `input_ids` and `inputs_embeds`, while CLIP's `forward` also wants
# `pixel_values`. Does CLIP accept what `PeftModelForFeatureExtraction` hands it? Make a prediction;
# notebook 01 runs it.
#
# ## `modules_to_save`: a full trainable copy, saved with the adapter
#
# Some layers must be trained whole (a new classifier head, resized embeddings). `modules_to_save`
# keeps the original frozen and adds a trainable copy beside it; the copy is what the adapter file
# stores. Here CLIP's `visual_projection`:

# %%
plain = lora(LoraConfig(r=R, target_modules=targets))
saving = lora(LoraConfig(r=R, target_modules=targets, modules_to_save=["visual_projection"]))
projection = model.visual_projection.weight.numel()
(t_plain, n_plain), (t_saving, n_saving) = (peftlab.train.count_parameters(m) for m in (plain, saving))
print(f"visual_projection: {projection:,} parameters")
print(
    f"trainable: {t_plain:,} -> {t_saving:,} (+{t_saving - t_plain:,});  all: {n_plain:,} -> {n_saving:,} (+{n_saving - n_plain:,})"
)
print([n for n, _ in saving.named_parameters() if "visual_projection" in n])
plots.parameter_counts(
    {"LoRA (q_proj, v_proj)": (t_plain, n_plain), "LoRA + modules_to_save": (t_saving, n_saving)}
)

# %%
original_before = saving.base_model.model.visual_projection.original_module.weight.detach().clone()
copy_before = saving.base_model.model.visual_projection.modules_to_save["default"].weight.detach().clone()
peftlab.train.train(
    saving, train_batches, 3, lr=3e-3, loss_fn=retrieval.loss, desc="3 steps with modules_to_save"
)
wrapper = saving.base_model.model.visual_projection
original_moved = (wrapper.original_module.weight - original_before).abs().max().item()
copy_moved = (wrapper.modules_to_save["default"].weight - copy_before).abs().max().item()
saved = [k for k in get_peft_model_state_dict(saving) if "visual_projection" in k]
print(
    f"after 3 steps: original moved by {original_moved:.3g}, copy by {copy_moved:.3g}; saved with the adapter: {saved}"
)

# %%
scorecard.check(
    "modules_to_save adds one trainable copy: +its size to trainable and to all parameters; "
    "only the copy trains and is saved",
    t_saving - t_plain == projection
    and n_saving - n_plain == projection
    and original_moved == 0
    and copy_moved > 0
    and len(saved) == 1,
    f"+{t_saving - t_plain:,} trainable, +{n_saving - n_plain:,} in all ({projection:,} expected); "
    f"original moved {original_moved:.3g}, copy {copy_moved:.3g}; {len(saved)} tensor saved",
)

# %% [markdown]
# ## Exercises
#
# Exercise 1 is above: a prediction has to come before the experiment.
#
# ### Exercise 2: the scale
#
# You keep `lora_alpha=8` and raise `r` from 4 to 16 (more capacity, you hope). By what factor will
# PEFT multiply `B @ A` now? (A number; the check builds that config and reads `scaling`.)

# %%
answer = None  # your answer: a number, e.g. 1.5

# %%
scaling_16 = next(
    m for m in lora(LoraConfig(r=16, lora_alpha=8, target_modules=targets)).modules() if hasattr(m, "scaling")
).scaling["default"]
exercises.check(
    "00.2",
    answer,
    test=lambda a: abs(float(a) - scaling_16) < 1e-9,
    hint="the scale is lora_alpha / r",
    explain=f"8 / 16 = {scaling_16}: at a fixed lora_alpha, a larger r makes each "
    "direction count less; this is why configs often keep lora_alpha = 2 * r.",
)

# %% [markdown]
# ### Exercise 3: LoRA on the vision tower only
#
# Write a `target_modules` that puts LoRA on the `q_proj` and `v_proj` layers of the **vision
# tower** only (none in the text tower). The check wraps a fresh copy with it and looks at
# `targeted_module_names`.

# %%
answer = None  # your answer: a target_modules value (a list or a regex string)


# %%
def vision_only(target_modules):
    """True when target_modules wraps exactly the vision tower's q_proj and v_proj layers."""
    names = set(lora(LoraConfig(r=1, target_modules=target_modules)).targeted_module_names)
    wanted = {
        n for n in linears if n.startswith("vision_model.") and n.rsplit(".", 1)[-1] in ("q_proj", "v_proj")
    }
    return names == wanted


exercises.check(
    "00.3",
    answer,
    test=vision_only,
    hint="a list entry matches by the end of the name, so both towers match; a string is a "
    "regular expression over the whole name",
    explain="a regex over the full name (or a list of full names) is the only way to pick one "
    "tower; notebook 07 needs this.",
)

# %% [markdown]
# ## Recap
#
# * LoRA adds `r * (in + out)` trainable parameters per targeted linear layer, and the update it
#   learns, `B @ A`, has rank at most `r` (here exactly `r`).
# * The update is multiplied by `lora_alpha / r` (`lora_alpha / sqrt(r)` with `use_rslora`): changing
#   `r` alone also changes the scale.
# * `target_modules` matches a list by name suffix and a string as a regex over the full name; check
#   `targeted_module_names` rather than guessing.
# * `task_type` selects the wrapper class and its `forward` (notebooks 01 and 02); `modules_to_save`
#   trains and saves a full copy of a module (notebook 04).
#
# **Upstream**: [PEFT's LoRA guide](https://huggingface.co/docs/peft/developer_guides/lora),
# [`LoraConfig` reference](https://huggingface.co/docs/peft/package_reference/lora),
# [LoRA: Low-Rank Adaptation of Large Language Models (Hu et al., 2021)](https://arxiv.org/abs/2106.09685),
# [rsLoRA (Kalajdzievski, 2023)](https://arxiv.org/abs/2312.03732).

# %%
scorecard.save()
