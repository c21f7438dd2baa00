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
# **Learning goals**
#
# * Say what LoRA's `task_type` really does: it picks the wrapper class around your model.
# * Predict this error before training, by comparing two `forward` signatures.
# * Fix it (no `task_type`) and check the fix: the model trains, retrieval improves, the adapter reloads.
#
# **Prerequisites**: notebook 00 (what `get_peft_model` does). CLIP in one line: an image tower and a
# text tower, trained so that an image and its caption get similar vectors.

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

peftlab.start("01_clip_task_type")

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "openai/clip-vit-base-patch32" on Colab / a GPU machine (2.4 GB peak RSS measured on a CPU at real size with batch 8, random weights; GPU memory not measured)
DEVICE = None  # None picks CUDA, then MPS, then the CPU
LORA_STEPS = 150
LR = 3e-3
BATCH_SIZE = 64  # training batch; with the real checkpoint, lower it if memory runs short
EVAL_BATCH_SIZE = 64  # evaluation batch (no gradients: can be larger)
GRADIENT_CHECKPOINTING = False  # True: recompute activations in the backward pass (less memory, slower)
TRAIN_IMAGES, TEST_IMAGES = 256, 256
SEED = 0

# %% [markdown]
# ## The model and the data
#
# `load_clip("tiny")` loads a small CLIP (two layers per tower) with `from_pretrained`, like any
# checkpoint. The images are synthetic shapes; the task is to match each image with its caption among
# 16 ("a red circle", ..., "a yellow cross").

# %%
from peftlab import data, exercises, plots, retrieval, scorecard
from peftlab.models import load_clip

peftlab.seed_everything(SEED)
model, processor = load_clip(CHECKPOINT, device=DEVICE)
size = processor.image_processor.crop_size["height"]
train_set, test_set = data.train_test_split(TRAIN_IMAGES, TEST_IMAGES, size=size, seed=SEED)
texts = retrieval.prompts()
train_batches = retrieval.batches(processor, train_set, texts, BATCH_SIZE)
test_batches = retrieval.batches(processor, test_set, texts, EVAL_BATCH_SIZE)
data.show_samples(test_set)

# %% [markdown]
# ## The failure
#
# A `LoraConfig` may name a **task type** (`CAUSAL_LM`, `FEATURE_EXTRACTION`, ...). This is the
# configuration from the report. `get_peft_model` accepts it without complaint:

# %%
from peft import LoraConfig, TaskType, get_peft_model

wrong_config = LoraConfig(
    task_type=TaskType.FEATURE_EXTRACTION, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]
)
wrong_model = get_peft_model(load_clip(CHECKPOINT, device=DEVICE)[0], wrong_config)
print(type(wrong_model).__name__)

# %% [markdown]
# The error comes with the first forward pass, i.e. the first training step. `expect_failure` runs
# the call, shows the error exactly as your installed libraries raise it, and lets the notebook go on
# (it stops the notebook if the error does not happen as recorded for your versions).

# %%
from peftlab.capture import expect_failure

batch = peftlab.train.to_device(train_batches[0], peftlab.train.model_device(wrong_model))
inputs = {k: v for k, v in batch.items() if k != "labels"}
with expect_failure("clip_task_type") as seen:
    wrong_model(**inputs, return_loss=True)

# %% [markdown]
# ## Why it happens
#
# The task type picked the **wrapper class**: `PeftModelForFeatureExtraction`, written for text
# encoders. Its `forward` has a fixed list of keywords and passes every one of them on to the model,
# `inputs_embeds=None` included. CLIP's `forward` was never written to take `inputs_embeds`. Which
# error you get depends on your transformers:
#
# * if `CLIPModel.forward` has no `**kwargs`, Python rejects the keyword at once:
#   *unexpected keyword argument 'inputs_embeds'*;
# * if it takes `**kwargs`, the keyword travels down until a call that passes its own `inputs_embeds`
#   receives it a second time: *got multiple values for keyword argument 'inputs_embeds'*.
#
# Left: the wrapper's `forward`; red marks the names CLIP's `forward` does not declare. Right:
# CLIP's own parameters.

# %%
plots.signature_comparison(
    type(wrong_model).forward,
    type(wrong_model.get_base_model()).forward,
    f"{type(wrong_model).__name__}.forward",
    f"{type(wrong_model.get_base_model()).__name__}.forward",
)

# %% [markdown]
# **Check before you train.** Ten lines of `inspect` predict this error: the keywords the wrapper's
# `forward` names (and so passes on) that the model's `forward` does not, and whether the model
# takes `**kwargs`.

# %%
import inspect


def forward_mismatch(peft_model):
    """(keywords the wrapper's forward names but the model's forward does not, model takes **kwargs?)"""

    def params(cls):
        return inspect.signature(cls.forward).parameters.values()

    def named(cls):
        return {p.name for p in params(cls) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {"self"}

    wrapper, base = type(peft_model), type(peft_model.get_base_model())
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params(base))
    return sorted(named(wrapper) - named(base) - {"task_ids"}), takes_kwargs  # task_ids is PEFT's own


def predicted_error(extra, takes_kwargs, keyword="inputs_embeds"):
    """The TypeError message the first forward pass will raise, or None."""
    if keyword not in extra:
        return None
    return "got multiple values for keyword argument" if takes_kwargs else "unexpected keyword argument"


extra, takes_kwargs = forward_mismatch(wrong_model)
prediction = predicted_error(extra, takes_kwargs)
print(f"the wrapper passes, CLIP does not declare: {extra}; CLIP takes **kwargs: {takes_kwargs}")
print(f"predicted: '{prediction}'")

# %%
scorecard.check(
    "ten lines of inspect predict the error before training",
    prediction is not None and prediction in str(seen.error),
    f"predicted '{prediction}', raised {type(seen.error).__name__}",
)

# %% [markdown]
# ## The fix: no `task_type`
#
# Without a `task_type`, `get_peft_model` returns the plain `PeftModel`. Its `forward` passes on
# exactly the arguments it is given, so CLIP keeps its own signature.

# %%
config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
peftlab.seed_everything(SEED)
peft_model = get_peft_model(load_clip(CHECKPOINT, device=DEVICE)[0], config)
if GRADIENT_CHECKPOINTING:
    peft_model.get_base_model().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )
peft_model.print_trainable_parameters()

# %% [markdown]
# The signature check has nothing to say about the plain `PeftModel` (its `forward` is
# `*args, **kwargs`), so it proves nothing here. Running the call that failed does: with the same
# inputs it must run, and give CLIP's own outputs, since new LoRA layers start at zero.

# %%
import torch

peft_model.eval()
model.eval()
with torch.no_grad():
    fixed_out, base_out = peft_model(**inputs), model(**inputs)
scorecard.check_same(
    "the call that failed runs and gives CLIP's own outputs",
    fixed_out.logits_per_image,
    base_out.logits_per_image,
)

# %% [markdown]
# ## Proof: it trains, and retrieval gets better
#
# Accuracy is measured on 256 held-out images: each image must find its caption among the 16. A gain
# is judged as the share of the gap to 100% it closes, so it means the same on a base model that is
# already good.

# %%
before = retrieval.accuracy(peft_model, test_batches)
losses = peftlab.train.train(
    peft_model, train_batches, LORA_STEPS, lr=LR, loss_fn=retrieval.loss, desc="LoRA on CLIP"
)
after = retrieval.accuracy(peft_model, test_batches)
plots.loss_curves({"CLIP + LoRA, no task_type": losses})

# %%
first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
scorecard.prove(
    "the loss falls below a quarter of where it started",
    last / first,
    f"{first:.3f} -> {last:.3f}",
    needs_pretrained=True,
    below=0.25,
)
scorecard.check_headroom(
    "image-to-text retrieval closes at least 25% of the gap to 100%",
    before["image_to_text"],
    after["image_to_text"],
    0.25,
)

# %% [markdown]
# `save_pretrained` on a `PeftModel` writes only the adapter (a few kilobytes). Loaded onto a fresh
# copy of the base model, it must give the same logits, bit for bit.

# %%
import tempfile

from peft import PeftModel

with tempfile.TemporaryDirectory() as adapter_dir:
    peft_model.save_pretrained(adapter_dir)
    reloaded = PeftModel.from_pretrained(load_clip(CHECKPOINT, device=DEVICE)[0], adapter_dir)
scores, _ = retrieval.logits(peft_model, test_batches)
scores_reloaded, _ = retrieval.logits(reloaded, test_batches)
scorecard.check_same("the saved adapter reloads to identical logits", scores, scores_reloaded)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it (*correct*, or a hint). Answer,
# run, and try again as often as you like.
#
# ### Exercise 1: where is the adapter? (predict first)
#
# `wrong_model` failed in its `forward`. `wrong_model.get_base_model()` is the CLIP inside the
# wrapper. **Predict**: does that inner CLIP carry LoRA layers, so that training it directly would
# train the adapter? Answer `"yes"` or `"no"`, then run the check.

# %%
answer = None  # your answer: "yes" or "no"

# %%
inner = wrong_model.get_base_model()
inner_lora_layers = sum(hasattr(module, "lora_A") for module in inner.modules())
exercises.check(
    "01.1",
    answer,
    expected="yes" if inner_lora_layers else "no",
    hint="get_peft_model puts LoRA layers into the model's own modules; the task type adds a class around it.",
    explain=f"The inner CLIP holds {inner_lora_layers} LoRA layers: the task type chose only the wrapper "
    "(its forward), not where LoRA goes.",
)

# %% [markdown]
# ### Exercise 2: another text task type (predict first)
#
# `TaskType.SEQ_CLS` gives `PeftModelForSequenceClassification`, also written for text models.
# **Predict**: does the same call (`model(**inputs)`) fail with it, on your installed versions?
# Answer `"fails"` or `"runs"`; the check cell builds that model and runs the call.

# %%
answer = None  # your answer: "fails" or "runs"

# %%
seq_cls = get_peft_model(
    load_clip(CHECKPOINT, device=DEVICE)[0], LoraConfig(task_type=TaskType.SEQ_CLS, target_modules=["q_proj"])
)
try:
    seq_cls(**inputs)
    outcome = "runs"
except Exception:  # any error: the call fails
    outcome = "fails"
exercises.check(
    "01.2",
    answer,
    expected=outcome,
    hint="Use forward_mismatch(seq_cls) from above: which keywords would it pass that CLIP does not declare?",
    explain="Any wrapper whose forward names text-only keywords passes them to CLIP; the plain PeftModel does not.",
)

# %% [markdown]
# ### Exercise 3: a check of your own
#
# Write `accepts(model_class, keyword)`: True when `model_class.forward(..., keyword=...)` cannot be
# rejected as an *unexpected keyword argument*, i.e. the keyword is declared or `forward` takes
# `**kwargs`. The check tries it on CLIP and on two small classes.


# %%
def accepts(model_class, keyword):
    return None  # your code


# %%
class _Strict(torch.nn.Module):
    def forward(self, pixel_values, input_ids=None):
        return pixel_values


class _Loose(torch.nn.Module):
    def forward(self, pixel_values, **kwargs):
        return pixel_values


clip_class = type(model)
exercises.check(
    "01.3",
    accepts,
    test=lambda f: (
        f(_Strict, "input_ids") is True
        and f(_Strict, "inputs_embeds") is False
        and f(_Loose, "inputs_embeds") is True
        and f(clip_class, "inputs_embeds") is takes_kwargs
    ),
    hint="inspect.signature(model_class.forward).parameters: look at each parameter's name and its kind.",
    explain="Declared, or swallowed by **kwargs: the same two facts forward_mismatch reads.",
)

# %% [markdown]
# ## Recap
#
# * `task_type` is not a label for your data: it selects a wrapper class with its own `forward`.
#   For CLIP (and other models with several inputs) leave it out.
# * Before training, compare the wrapper's `forward` with the model's (`forward_mismatch`, ten lines
#   of `inspect`); then run one forward pass of the model you will train.
# * The same mistake fails differently before and after CLIP's `forward` took `**kwargs`.
#
# **Upstream thread**: [huggingface/peft#2291](https://github.com/huggingface/peft/issues/2291)
# ("get_peft_model() adds unwanted arguments to CLIPModel").
#
# ## Deep dive: where the keyword ends on your transformers
#
# Followed through the installed code: where `inputs_embeds` lands, and the release that changed it.

# %%
from IPython.display import Markdown, display

from peftlab.doctor.signatures import keyword_fate
from peftlab.registry import change

kwargs_change = change("clip_forward_kwargs")
fate = keyword_fate(wrong_model.get_base_model(), "inputs_embeds")
display(
    Markdown(
        f"`CLIPModel.forward` {'takes' if kwargs_change.holds() else 'does not take'} `**kwargs` here "
        f"(it does from {kwargs_change.phrase()}). `inputs_embeds` ends in `{fate.where}` ({fate.outcome})."
    )
)
print(seen.expectation.reason)

# %% [markdown]
# ## Deep dive: the doctor would have told you
#
# `peftlab.doctor(model, peft_config)` makes this check on any model before anything runs, with the
# collection's other checks. It follows each keyword the wrapper passes through the installed code.

# %%
from peftlab.doctor.signatures import unaccepted_wrapper_arguments

flagged, clear = peftlab.doctor(model, wrong_config), peftlab.doctor(model, config)
flagged

# %%
scorecard.record("signature check agrees with the doctor", extra == unaccepted_wrapper_arguments(wrong_model))
scorecard.record("doctor: wrong config", flagged.as_dict())
scorecard.record("doctor: fixed config", clear.as_dict())
scorecard.record("raised", [cls.__name__ for cls in type(seen.error).__mro__])
clear

# %% [markdown]
# ## Deep dive: what improved, per colour and in both directions
#
# Retrieval works both ways: each image must find its caption (image to text), and each caption must
# rank an image of its class first (text to image: 16 captions, so it moves in steps of 1/16). The
# tiny model never saw yellow in pre-training, so the colours start far apart.

# %%
premise = retrieval.accuracy_per_colour(*retrieval.logits(model, test_batches))
after_per_colour = retrieval.accuracy_per_colour(*retrieval.logits(peft_model, test_batches))
for name, value in premise.items():
    print(f"image to text, {name:<7} images: base {value:>4.0%}   LoRA {after_per_colour[name]:>4.0%}")
for direction in ("image_to_text", "text_to_image"):
    print(
        f"{direction.replace('_', ' '):<14}  all: base {before[direction]:>4.0%}   LoRA {after[direction]:>4.0%}"
    )
scorecard.record("text to image change", after["text_to_image"] - before["text_to_image"])

# %%
scorecard.save()
