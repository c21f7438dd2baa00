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
# # 01 · CLIP + LoRA with `task_type=FEATURE_EXTRACTION`
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/01_clip_task_type.ipynb)
#
# **The report.** Someone adds LoRA to CLIP with `LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, ...)`
# and the first training step dies with
# `TypeError: CLIPModel.forward() got an unexpected keyword argument 'inputs_embeds'`.
#
# **What you will see here.** The failure, exactly as the installed libraries raise it (it looks
# different on transformers 4.x and 5.x); why the `task_type` causes it; the fix (no `task_type`);
# and proof that the fixed model trains: the loss falls, image-text retrieval on held-out images
# rises, and the saved adapter reloads to identical outputs.

# %%
import sys

if "google.colab" in sys.modules:  # on Colab only: install peftlab, keeping Colab's own torch
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "peftlab @ git+https://github.com/peftlab/peftlab"],
                   check=True)

# %%
import time

import peftlab

started = time.perf_counter()
peftlab.scorecard.reset()
print(peftlab.versions_table())

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "openai/clip-vit-base-patch32" on Colab / a GPU machine
DEVICE = None  # None picks CUDA, then MPS, then the CPU
LORA_STEPS = 150
SEED = 0

# %% [markdown]
# ## The model and the data
#
# By default `load_clip` builds a tiny CLIP (two layers per tower), pre-trains it for a few seconds
# on synthetic shapes in three colours (red, green, blue), saves it with `save_pretrained` and loads
# it back with `from_pretrained`, like any checkpoint. The task: match each image to its caption
# among 16 ("a red circle", ..., "a yellow cross"). Yellow was never seen in pre-training, so the
# base model gets those images wrong: that is what fine-tuning has to fix.

# %%
from peftlab import data, plots, retrieval, scorecard
from peftlab.models import load_clip

peftlab.seed_everything(SEED)
model, processor = load_clip(CHECKPOINT, device=DEVICE)
size = processor.image_processor.crop_size["height"]
train_set, test_set = data.train_test_split(256, 256, size=size, seed=SEED)
texts = retrieval.prompts()
train_batches = retrieval.batches(processor, train_set, texts)
test_batches = retrieval.batches(processor, test_set, texts)
data.show_samples(test_set)

# %% [markdown]
# ## The failure
#
# This is the configuration from the report. `get_peft_model` accepts it without complaint; the
# error only comes with the first forward pass, i.e. the first training step.

# %%
from peft import LoraConfig, TaskType, get_peft_model

wrong_config = LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=8, lora_alpha=16, lora_dropout=0.1,
                          target_modules=["q_proj", "v_proj"])
wrong_model = get_peft_model(load_clip(CHECKPOINT, device=DEVICE)[0], wrong_config)
print(type(wrong_model).__name__)

# %%
from peftlab.capture import expect_failure

batch = peftlab.train.to_device(train_batches[0], peftlab.train.model_device(wrong_model))
inputs = {k: v for k, v in batch.items() if k != "labels"}
with expect_failure("clip_task_type") as seen:
    wrong_model(**inputs, return_loss=True)

# %% [markdown]
# ## Why it happens
#
# A `task_type` picks a wrapper class. `FEATURE_EXTRACTION` gives `PeftModelForFeatureExtraction`,
# written for text encoders: its `forward` has a fixed list of keywords and passes every one of
# them on to the model, `inputs_embeds=None` included. CLIP's `forward` was never written to take
# `inputs_embeds`:
#
# * on **transformers 4.x** `CLIPModel.forward` has no `**kwargs`, so Python rejects the keyword at
#   once: *unexpected keyword argument 'inputs_embeds'*;
# * on **transformers 5.x** `CLIPModel.forward` gained `**kwargs`, so the stray keyword is accepted,
#   travels down to the text encoder, and collides there with the `inputs_embeds` the text model
#   computes itself: *got multiple values for keyword argument 'inputs_embeds'*.
#
# Left: the wrapper's `forward`, which passes every one of these names on; red marks the ones
# CLIP's `forward` does not declare. Right: CLIP's own parameters (grey ones reach it only through
# the wrapper's `**kwargs`). `inputs_embeds` is the one that breaks: on 5.x the other red names are
# harmless options that CLIP's `**kwargs` absorbs.

# %%
plots.signature_comparison(type(wrong_model).forward, type(wrong_model.get_base_model()).forward,
                           f"{type(wrong_model).__name__}.forward",
                           f"{type(wrong_model.get_base_model()).__name__}.forward")

# %%
print("The registry's explanation for these versions:\n ", seen.expectation.reason)

# %% [markdown]
# ## The fix: no `task_type`
#
# Without a `task_type`, `get_peft_model` returns the plain `PeftModel`, whose `forward` passes on
# exactly the arguments it is given. CLIP's own signature is kept.

# %%
config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])
peftlab.seed_everything(SEED)
peft_model = get_peft_model(load_clip(CHECKPOINT, device=DEVICE)[0], config)
print(type(peft_model).__name__)
peft_model.print_trainable_parameters()

# %% [markdown]
# **Check before you train.** One line tells whether the wrapper passes keywords the model does not
# declare. For the wrong wrapper it names them (`inputs_embeds` among them); for the plain
# `PeftModel` the list is empty, because it passes on only what you give it.

# %%
from peftlab.preflight.signatures import unaccepted_wrapper_arguments

print("wrong wrapper passes:", unaccepted_wrapper_arguments(wrong_model))
print("plain PeftModel passes:", unaccepted_wrapper_arguments(peft_model))
scorecard.check("the fixed wrapper passes nothing CLIP does not declare",
             unaccepted_wrapper_arguments(peft_model) == [] and "inputs_embeds" in unaccepted_wrapper_arguments(wrong_model),
             "inputs_embeds flagged for the wrong wrapper, nothing for PeftModel")

# %% [markdown]
# **The doctor would have told you.** `peftlab.doctor(model, peft_config)` makes this check, and the
# checks for the collection's other four failure classes, on any model before anything runs. It
# follows each keyword the wrapper passes through the installed code (CLIP's `forward`, and on 5.x
# the `**kwargs` path down to the encoder) and predicts the error. For the report's configuration:

# %%
flagged = peftlab.doctor(model, wrong_config)
scorecard.check_flagged("task_type=FEATURE_EXTRACTION on CLIP", flagged, "wrapper", seen.error)
flagged

# %% [markdown]
# And for the fix, nothing:

# %%
clear = peftlab.doctor(model, config)
scorecard.check_clear("LoRA on CLIP without a task_type", clear)
clear

# %%
plots.parameter_counts({"CLIP, full fine-tuning": peftlab.train.count_parameters(model),
                        "CLIP + LoRA (q_proj, v_proj)": peftlab.train.count_parameters(peft_model)})

# %% [markdown]
# ## Proof 1: it trains, and retrieval gets better
#
# Accuracy is measured on 256 held-out images, in both directions: each image must find its caption
# among the 16, and each caption must rank an image of its class first.

# %%
before = retrieval.accuracy(peft_model, test_batches)
losses = peftlab.train.train(peft_model, train_batches, LORA_STEPS, lr=3e-3, loss_fn=retrieval.loss,
                             desc="LoRA on CLIP")
after = retrieval.accuracy(peft_model, test_batches)
plots.loss_curves({"CLIP + LoRA, no task_type": losses})

# %%
first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
scorecard.check("loss falls", last < 0.7 * first, f"mean of first 10 steps {first:.3f} -> last 10 steps {last:.3f}")
scorecard.check_gain("image-to-text retrieval rises", before["image_to_text"], after["image_to_text"], 0.10)
plots.bars({"base": before["image_to_text"], "LoRA": after["image_to_text"]},
           "image-to-text retrieval on held-out images", "top-1 accuracy")

# %% [markdown]
# ## Proof 2: the adapter survives save and reload
#
# `save_pretrained` on a `PeftModel` writes only the adapter (a few kilobytes). Loading it onto a
# freshly loaded base model must give the same logits, bit for bit.

# %%
import tempfile

from peft import PeftModel

with tempfile.TemporaryDirectory() as adapter_dir:
    peft_model.save_pretrained(adapter_dir)
    reloaded = PeftModel.from_pretrained(load_clip(CHECKPOINT, device=DEVICE)[0], adapter_dir)
scores, _ = retrieval.logits(peft_model, test_batches)
scores_reloaded, _ = retrieval.logits(reloaded, test_batches)
scorecard.check_same("reloaded adapter gives identical logits", scores, scores_reloaded)

# %% [markdown]
# ## Summary
#
# * `task_type` is not a label for your data; it selects a wrapper class with its own `forward`.
#   For CLIP (and other multi-input models) leave it out.
# * Before training, compare the wrapper's `forward` with the model's (`unaccepted_wrapper_arguments`).
# * The same mistake fails differently on transformers 4.x and 5.x; the registry in
#   `peftlab.failures` records both, and this notebook fails if neither happens.

# %%
scorecard.save(seconds=time.perf_counter() - started)
