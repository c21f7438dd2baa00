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
# # 02 · BLIP-2 + LoRA with `task_type="CAUSAL_LM"`: the report's TypeError, live on older transformers, recorded on newer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/02_blip2_inputs_embeds.ipynb)
#
# **The report.** A write-up on fine-tuning BLIP-2 (`Salesforce/blip2-opt-2.7b`) for visual question
# answering loads it in 4-bit, adds LoRA to `q_proj`/`v_proj` and warns: do not set
# `task_type="CAUSAL_LM"`, or the first training step stops with
# `TypeError: Blip2ForConditionalGeneration.forward() got an unexpected keyword argument 'inputs_embeds'`.
#
# **Live or recorded.** The report's transformers raises this error, and so does the *documented
# stack* (the library versions this collection is written and checked against). Newer transformers
# accept the call: there, the failure's box says so and shows beside it the traceback the same cell
# raised on the documented stack, with its versions (re-checked on every CI run). The recap names the
# releases; [What your room will see](https://github.com/peftlab/peftlab#what-your-room-will-see) lists
# each Colab runtime.
#
# **Learning goals**
#
# * Explain why a text `task_type` (`CAUSAL_LM`) is the wrong wrapper for BLIP-2, an image-text model.
# * Predict the error from two `forward` signatures before training, on any transformers release.
# * Fix it (no `task_type`) and train LoRA (in 4-bit where possible) so BLIP-2 names a new colour.
#
# **Prerequisites**: notebook 01 (`task_type` picks the wrapper class and its `forward`).

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

peftlab.start("02_blip2_inputs_embeds")

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "Salesforce/blip2-opt-2.7b" on a Colab GPU (then set GRADIENT_CHECKPOINTING to True; about 2.5 GB in 4-bit NF4, scales included: the memory deep dive's arithmetic)
DEVICE = None  # None picks CUDA, then MPS, then the CPU
QUANTIZE = True  # 4-bit NF4 wherever the installed libraries and the device allow it
AUTOCAST = True  # mixed precision where it pays (a GPU); the CPU computes in float32
GRADIENT_CHECKPOINTING = False  # trades compute for activation memory; needed for the 2.7b model on a T4
LORA_STEPS = 150  # optimiser steps; keep 150 with the real checkpoint
LR = 3e-3  # suits the tiny model; about 1e-4 (the usual QLoRA rate) with the real checkpoint (not measured here)
GRAD_ACCUM = 2  # batches averaged per optimiser step; 2 with the real checkpoint too
BATCH_SIZE = 32  # training batch; 4 with the real checkpoint on a T4
EVAL_BATCH_SIZE = 64  # scoring and generation batch (no gradients); 16 with the real checkpoint on a T4
SEED = 0

# %% [markdown]
# ## The model and the data
#
# BLIP-2 has three parts: a ViT reads the image; the Q-Former, a small transformer, turns its
# features into a few "soft words"; an OPT language model reads them before the question and writes
# the answer. The tiny BLIP-2 was trained on red, green and blue shapes only: it never answered "yellow".
#
# `load_blip2_4bit` loads it in 4-bit **NF4** (each weight stored in 4 bits, as one of 16 values,
# with a scale per block of 64 weights) where the libraries and the device allow it; LoRA trained on
# such a frozen 4-bit model is **QLoRA**. The line below says which path ran here, and why.

# %%
import torch

from peftlab import data, exercises, plots, scorecard, vqa
from peftlab.lessons import memory
from peftlab.models import blip2

peftlab.seed_everything(SEED)
base, processor, loaded_as = blip2.load_blip2_4bit(CHECKPOINT, DEVICE, quantize=QUANTIZE)
quantised = bool(getattr(base, "is_loaded_in_4bit", False))
device = peftlab.train.model_device(base)
print(f"{type(base).__name__} on {device}: {loaded_as}")

# %% [markdown]
# Each training image is asked three questions (*what colour / shape / where is the shape?*), each
# answered in one word. Accuracy on held-out images: the candidate answer the model finds most likely
# wins.

# %%
size = processor.image_processor.size["height"]
train_set, test_set = data.train_test_split(256, 192, size=size, seed=SEED)
train_batches = vqa.training_batches(processor, train_set, batch_size=BATCH_SIZE)
before = vqa.accuracy_report(base, processor, test_set, batch_size=EVAL_BATCH_SIZE)


def colour_accuracy_per_colour(model):
    """Colour-question accuracy on the held-out images of each colour."""
    predicted = vqa.answer_scores(model, processor, test_set, "colour", EVAL_BATCH_SIZE).argmax(dim=1)
    truth = torch.tensor([vqa.CANDIDATES["colour"].index(vqa.answer(s, "colour")) for s in test_set])
    colours = [s.colour for s in test_set]
    return {c: (predicted == truth)[[x == c for x in colours]].float().mean().item() for c in data.COLOURS}


premise = colour_accuracy_per_colour(base)
print("base model:", ", ".join(f"{name} {value:.0%}" for name, value in before.items()))
print("base model, colour answers per colour:", ", ".join(f"{c} {v:.0%}" for c, v in premise.items()))

# %%
shown = [s for colour in data.COLOURS for s in test_set if s.colour == colour][::24][:8]
base_answers = vqa.generate_answers(base, processor, shown, "colour", batch_size=EVAL_BATCH_SIZE)

# %% [markdown]
# ## The failure
#
# The report's LoRA settings, with `task_type="CAUSAL_LM"`. `get_peft_model` accepts them:

# %%
from peft import LoraConfig, TaskType, get_peft_model

from peftlab.capture import expect_failure

lora = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "v_proj"],
}  # the report's
wrong_model = get_peft_model(
    blip2.load_blip2_4bit(CHECKPOINT, DEVICE, quantize=QUANTIZE)[0],
    LoraConfig(task_type=TaskType.CAUSAL_LM, **lora),
)
print(type(wrong_model).__name__)

# %% [markdown]
# The error comes with the first forward pass (the first training step). The box shows it live, or
# says none came here and shows the documented stack's recording.

# %%
batch = peftlab.train.to_device(train_batches[0], device)
with expect_failure("blip2_causal_lm_inputs_embeds") as seen:
    wrong_model(**batch)

# %% [markdown]
# ## Why it happens
#
# `task_type="CAUSAL_LM"` makes `get_peft_model` return `PeftModelForCausalLM`, a wrapper written for
# text models. Its `forward` has a fixed list of keywords and passes every one of them on to the
# model, `inputs_embeds=None` included. On the report's transformers, BLIP-2's `forward` neither
# declares `inputs_embeds` nor takes `**kwargs`, so Python rejects the keyword. Later releases changed
# BLIP-2's `forward` (exercise 3 and a deep dive follow that history).
#
# Left: the wrapper's `forward` (in red: names the installed BLIP-2 does not declare); right: BLIP-2's.

# %%
plots.signature_comparison(
    type(wrong_model).forward,
    type(wrong_model.get_base_model()).forward,
    f"{type(wrong_model).__name__}.forward",
    f"{type(wrong_model.get_base_model()).__name__}.forward",
)

# %% [markdown]
# **Check before you train.** The same few lines of `inspect` as in notebook 01: the keywords the
# wrapper's `forward` names that BLIP-2's does not, and whether BLIP-2 takes `**kwargs`, predict what
# the call does on the installed versions: no error, or which `TypeError`.

# %%
import inspect


# Copied from notebooks/01_clip_task_type.py: forward_mismatch
def forward_mismatch(peft_model):
    """(keywords the wrapper's forward names but the model's forward does not, model takes **kwargs?)"""

    def params(cls):
        return inspect.signature(cls.forward).parameters.values()

    def named(cls):
        return {p.name for p in params(cls) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {"self"}

    wrapper, base = type(peft_model), type(peft_model.get_base_model())
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params(base))
    return sorted(named(wrapper) - named(base) - {"task_ids"}), takes_kwargs  # task_ids is PEFT's own


# Copied from notebooks/01_clip_task_type.py: predicted_error
def predicted_error(extra, takes_kwargs, keyword="inputs_embeds"):
    """The TypeError message the first forward pass will raise, or None."""
    if keyword not in extra:
        return None
    return "got multiple values for keyword argument" if takes_kwargs else "unexpected keyword argument"


extra, takes_kwargs = forward_mismatch(wrong_model)
prediction = predicted_error(extra, takes_kwargs)
print(f"the wrapper passes, BLIP-2 does not declare: {extra}; BLIP-2 takes **kwargs: {takes_kwargs}")
print(f"predicted: {prediction or 'no error'}")

# %%
came_true = prediction in str(seen.error) if prediction else seen.error is None
scorecard.check(
    "the signatures predict what the call did",
    came_true,
    f"predicted: {prediction or 'no error'}; raised: {type(seen.error).__name__ if seen.error else 'no error'}",
)

# %% [markdown]
# ## The fix: no `task_type`
#
# Without a `task_type`, `get_peft_model` returns the plain `PeftModel`, whose `forward` passes on
# exactly what it is given: BLIP-2 keeps its own signature on every release. The model is loaded
# afresh (`get_peft_model` changes the model it is given). `prepare_model_for_kbit_training`, the
# usual QLoRA preparation, freezes the 4-bit weights and casts the other half-precision ones to float32.

# %%
from peft import prepare_model_for_kbit_training

model = blip2.load_blip2_4bit(CHECKPOINT, DEVICE, quantize=QUANTIZE)[0]
checkpointing = {"gradient_checkpointing_kwargs": {"use_reentrant": False}}
if quantised:
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=GRADIENT_CHECKPOINTING, **checkpointing
    )
elif GRADIENT_CHECKPOINTING:
    model.gradient_checkpointing_enable(**checkpointing)
    model.enable_input_require_grads()
peftlab.seed_everything(SEED)
peft_model = get_peft_model(model, LoraConfig(**lora))
print(type(peft_model).__name__, "| gradient checkpointing:", GRADIENT_CHECKPOINTING)
peft_model.print_trainable_parameters()

# %% [markdown]
# The call that failed now runs, by keyword as in the report, and in BLIP-2's own positional order
# (images first), which the `CAUSAL_LM` wrapper's `forward` reads differently. Both must give the same
# logits (same seed, so LoRA's dropout draws the same mask).

# %%
pixels, ids = batch["pixel_values"], batch["input_ids"]
peft_model.train()
with torch.no_grad():
    peftlab.seed_everything(SEED)
    by_position = peft_model(pixels, ids).logits
    peftlab.seed_everything(SEED)
    by_keyword = peft_model(pixel_values=pixels, input_ids=ids).logits
scorecard.check_same(
    "the fixed model runs the call, by keyword and by position alike", by_position, by_keyword
)

# %% [markdown]
# ## Proof: it learns the new colour
#
# The training set holds all four colours and all three questions. Each optimiser step averages
# `GRAD_ACCUM` batches; mixed precision is used on a GPU only.

# %%
autocast = blip2.autocast_dtype(device, AUTOCAST)
losses = peftlab.train.train(
    peft_model,
    train_batches,
    LORA_STEPS,
    lr=LR,
    grad_accum=GRAD_ACCUM,
    autocast_dtype=autocast,
    desc="QLoRA on BLIP-2" if quantised else "LoRA on BLIP-2",
)
after = vqa.accuracy_report(peft_model, processor, test_set, batch_size=EVAL_BATCH_SIZE)
plots.loss_curves({"BLIP-2 + LoRA, no task_type": losses})

# %% [markdown]
# A gain is judged as the share of the gap to 100% it closes, so it means the same whatever the base
# model's accuracy.

# %%
first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
scorecard.prove(
    "the loss falls below 60% of where it started",
    last / first,
    f"mean of the first 10 steps {first:.3f} -> last 10 {last:.3f}",
    needs_pretrained=True,
    below=0.6,
)
scorecard.check_headroom(
    "colour answers on held-out images close at least 35% of the gap", before["colour"], after["colour"], 0.35
)
scorecard.check_headroom(
    "colour answers on held-out yellow images close at least 40% of the gap",
    before["colour (yellow images)"],
    after["colour (yellow images)"],
    0.40,
)
plots.bars(
    {"base": before["colour"], "LoRA": after["colour"]},
    "what colour is the shape? (held-out images)",
    "accuracy",
)

# %% [markdown]
# What a user sees: the answers each model *writes* (greedy decoding, no candidate list) for two
# held-out images per colour, then its share of right written answers over all of them.

# %%
lora_answers = vqa.generate_answers(peft_model, processor, shown, "colour", batch_size=EVAL_BATCH_SIZE)
vqa.show_answers(shown, {"base": base_answers, "LoRA": lora_answers}, "colour")

# %%
generated = {
    name: vqa.generate_answers(m, processor, test_set, "colour", batch_size=EVAL_BATCH_SIZE)
    for name, m in (("base", base), ("LoRA", peft_model))
}
scorecard.check_headroom(
    "written colour answers close at least 35% of the gap",
    vqa.generation_accuracy(generated["base"], test_set, "colour"),
    vqa.generation_accuracy(generated["LoRA"], test_set, "colour"),
    0.35,
)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a cell that checks it. Answer, run, retry at will.
#
# ### Exercise 1: other target names (predict first)
#
# The report's `q_proj`/`v_proj` adapt one part of BLIP-2. Suppose you target `["query", "value"]`
# instead. **Predict**: which part gets LoRA layers? Answer with one of `vision_model`, `qformer`,
# `language_projection`, `language_model`; the check cell counts them.

# %%
answer = None  # your answer: the name of one part

# %%
from peftlab.targets import lora_can_wrap, target_entry

matches = {
    part: sum(
        1
        for name, module in getattr(base, part).named_modules()
        if name and target_entry(f"{part}.{name}", ["query", "value"]) and lora_can_wrap(module)
    )
    for part in blip2.COMPONENTS
}
exercises.check(
    "02.1",
    answer,
    expected=" + ".join(part for part, n in matches.items() if n) or "none",
    hint="PEFT compares each entry with the end of every layer's name: `[n for n, _ in base.named_modules()]` "
    "lists them; which part's names end in query or value?",
    explain=f"Layers adapted per part: {matches}. Each part names its attention layers its own way (the ViT "
    "a fused qkv, the Q-Former query/key/value like BERT, the OPT q_proj/k_proj/v_proj): names decide where "
    "LoRA lands.",
)

# %% [markdown]
# ### Exercise 2: NF4 by hand
#
# In the real `Salesforce/blip2-opt-2.7b`, each attention projection of the OPT (`q_proj`, for
# example) is a linear layer of 2560 x 2560 weights. How many **bytes** do its weights take in NF4,
# not counting the scales?

# %%
answer = None  # your answer: a whole number of bytes

# %%
width = memory.real_config().text_config.hidden_size  # the OPT's width in the real model
exercises.check(
    "02.2",
    answer,
    expected=width * width // 2,
    hint="How many bits does NF4 store per weight (the model section says), and how many bits make a byte?",
    explain=f"{width} x {width} weights at half a byte each: {width * width // 2:,} bytes, an eighth of float32.",
)

# %% [markdown]
# ### Exercise 3: the releases in between (predict first)
#
# For a few releases after the report's, BLIP-2's `forward` took `**kwargs` but did not yet declare
# `inputs_embeds`; it built the OPT's input from image and text and called
# `self.language_model(inputs_embeds=..., **kwargs)`. **Predict**: what did the report's call raise
# there? Answer `"unexpected keyword"`, `"multiple values"` or `"no error"`; the check compares with
# what those releases raised when peftlab ran this cell on them.

# %%
answer = None  # your answer: "unexpected keyword", "multiple values" or "no error"

# %%
from peftlab.registry import change, get

kwargs_change = change("blip2_forward_kwargs")
in_between = get("blip2_causal_lm_inputs_embeds").expected({"transformers": kwargs_change.release})
outcome_in_between = (
    "no error"
    if in_between.raises is None
    else "multiple values"
    if "multiple values" in in_between.match
    else "unexpected keyword"
)
exercises.check(
    "02.3",
    answer,
    expected=outcome_in_between,
    hint="Follow the stray inputs_embeds=None: where does **kwargs put it, and where does **kwargs go next?",
    explain=f"On transformers {kwargs_change.release}: {in_between.reason}",
)

# %% [markdown]
# ## Recap
#
# * `task_type` is not a label for your data: it picks a wrapper class with its own `forward`. For
#   BLIP-2 and other image-text models, leave it out; the plain `PeftModel` keeps the model's signature.
# * Two signatures predict the outcome before training (`forward_mismatch`, as in notebook 01); then
#   run one forward pass of the model you will train.
# * LoRA on the frozen BLIP-2 (QLoRA where it loaded in 4-bit) taught it a colour it had never named,
#   in the answers it picks and writes.
#
# Which transformers raise the report's error live, and which show it recorded:

# %%
from IPython.display import Markdown, display

from peftlab import recordings

declared_change = change("blip2_inputs_embeds")
display(
    Markdown(
        f"* Live: transformers before {kwargs_change.release} raise the report's `TypeError`; releases from "
        f"{kwargs_change.release} to before {declared_change.release} raise another (exercise 3).\n"
        f"* From transformers {declared_change.release} the call runs; the notebook then shows the traceback "
        f"recorded on the documented stack ({recordings.load('blip2_causal_lm_inputs_embeds').label()}).\n"
        f"* Here, transformers {peftlab.versions.installed()['transformers']}: "
        + (
            "the box above showed that recording."
            if seen.recording_shown
            else "the box above showed the error live."
        )
    )
)

# %% [markdown]
# **Upstream thread**: [huggingface/peft#2528](https://github.com/huggingface/peft/issues/2528)
# (BLIP-2 in 4-bit NF4, LoRA on `q_proj`/`v_proj`: removing `task_type="CAUSAL_LM"` fixed it; the
# maintainer's answer is that `task_type` is optional).
#
# ## Deep dive: three releases, three outcomes
#
# What BLIP-2's `forward` looked like, release by release (from the registry), and where this run is:
#
# * no `**kwargs`, no `inputs_embeds` (the report's): *unexpected keyword argument 'inputs_embeds'*;
# * `**kwargs`, no `inputs_embeds`: the stray `None` lands in `**kwargs` and collides with the
#   `inputs_embeds` BLIP-2 hands its OPT: *got multiple values for keyword argument 'inputs_embeds'*;
# * `inputs_embeds` declared: the call runs, and the wrapper's `None` is ignored.

# %%
case = "third" if declared_change.holds() else "second" if kwargs_change.holds() else "first"
display(
    Markdown(
        f"`**kwargs` arrived in transformers {kwargs_change.release}; `inputs_embeds` is declared from "
        f"{declared_change.release}. Installed: transformers "
        f"{peftlab.versions.installed()['transformers']}, so this run is in the {case} case."
    )
)
print("Why, on these versions:", seen.expectation.reason)

# %% [markdown]
# ## Deep dive: the report's import
#
# The report's first line of model code is `from transformers import AutoModelForVision2Seq`. A later
# transformers removed that class, so there the report stops before PEFT is involved.
# `AutoModelForImageTextToText` exists on both sides and gives the same `Blip2ForConditionalGeneration`;
# `load_blip2` uses it.

# %%
print(f"AutoModelForVision2Seq is gone from transformers {change('vision2seq_removed').release}")
with expect_failure("blip2_vision2seq_import"):
    from transformers import AutoModelForVision2Seq  # noqa: F401  (the report's import)

# %% [markdown]
# ## Deep dive: what the `CAUSAL_LM` wrapper still breaks where the call runs
#
# The wrapper's `forward` begins with `input_ids, attention_mask`, BLIP-2's with `pixel_values,
# input_ids`. Called by keyword (as the Hugging Face `Trainer` and this notebook do), that does not
# matter; called positionally, in BLIP-2's own order, the images go in as token ids:

# %%
print("wrapper:", plots.signature_names(type(wrong_model).forward)[:3], "...")
print("BLIP-2: ", plots.signature_names(type(wrong_model.get_base_model()).forward)[:3], "...")
with expect_failure("blip2_causal_lm_positional") as positional:
    wrong_model(batch["pixel_values"], batch["input_ids"])

# %% [markdown]
# `peftlab.doctor` reads the same signatures (and, where a keyword disappears into `**kwargs`, the
# code it flows into) before anything runs. On the `CAUSAL_LM` wrapper it predicts what these
# versions do; the plain `PeftModel` gets no problem (where `AutoModelForVision2Seq` still exists it adds an
# advisory: code that loads BLIP-2 with it breaks on the release that removes it).

# %%
from peftlab.doctor.signatures import unaccepted_wrapper_arguments

flagged, clear = peftlab.doctor(wrong_model), peftlab.doctor(peft_model)
scorecard.record("signature check agrees with the doctor", extra == unaccepted_wrapper_arguments(wrong_model))
scorecard.record("doctor: CAUSAL_LM wrapper", flagged.as_dict())
scorecard.record("doctor: plain PeftModel", clear.as_dict())
scorecard.record("raised", [cls.__name__ for cls in type(seen.error or positional.error).__mro__])
flagged

# %% [markdown]
# ## Deep dive: where the 4-bit layers and LoRA went
#
# Where the model loads in 4-bit (the line under the model says whether it did), bitsandbytes
# replaces the `nn.Linear` layers of the ViT, the projection and the OPT with `Linear4bit`; the Q-Former stays in full precision (BLIP-2 lists it in `_keep_in_fp32_modules`),
# and so does the OPT's output layer `lm_head`. The report's `q_proj`/`v_proj` are names of the OPT's
# attention layers only, so its LoRA adapts the language model alone, reading the same image
# features as before.

# %%
layers = blip2.layers_by_component(base, ("Linear", "Linear4bit"))
for part, counts in layers.items():
    print(f"{part:<20} {counts['Linear']:>3} Linear  {counts['Linear4bit']:>3} Linear4bit")
lora_layers = blip2.lora_layers_by_component(peft_model)
print("LoRA layers per part:", lora_layers)
scorecard.record("LoRA layers per part", lora_layers)
full = peftlab.train.count_parameters(memory.meta_model(base.config))[
    1
]  # 4-bit weights count as packed bytes
trainable = peftlab.train.count_parameters(peft_model)[0]
plots.parameter_counts(
    {
        "BLIP-2, full fine-tuning": (full, full),
        "BLIP-2 + LoRA (q_proj, v_proj)": (trainable, full + trainable),
    }
)

# %% [markdown]
# ## Deep dive: every metric, per colour
#
# One adapter changes the OPT for all three questions at once; training lowers the loss averaged over
# all of them, most of it on the colour question, where the base model had the most to learn. Below,
# every metric before and after, with the share of the gap to 100% each change closes (negative where
# a metric fell).

# %%
gap_closed = scorecard.headroom_closed
after_per_colour = colour_accuracy_per_colour(peft_model)
rows = [(name, before[name], after[name]) for name in before]
rows += [(f"colour ({c} images)", premise[c], after_per_colour[c]) for c in data.COLOURS if c != "yellow"]
for name, b, a in rows:
    closed = f"{gap_closed(b, a):>5.0%}" if b < 1 else "  (no gap)"
    print(f"{name:<24} base {b:>4.0%}   LoRA {a:>4.0%}   gap closed {closed}")
fell = [f"{name} ({b:.0%} -> {a:.0%})" for name, b, a in rows if a < b]
for name in ("shape", "position"):
    scorecard.record(f"{name} change", after[name] - before[name])
display(
    Markdown(
        "Metrics that fell in this run: "
        + "; ".join(fell)
        + ". A metric with little room to gain can lose a few of its held-out answers on the way."
        if fell
        else "No metric fell in this run."
    )
)

# %% [markdown]
# ## Deep dive: the wrong wrapper, where it runs
#
# Where the `CAUSAL_LM` call raised nothing, does the wrapper compute what the plain `PeftModel` does?
# A fair comparison needs the same base model under both: `prepare_model_for_kbit_training` cast the
# fixed model's half-precision weights that are not 4-bit to float32, so the report's model is
# prepared the same way, then given the trained adapter (copied parameter by parameter). Any
# difference left would come from the wrapper itself.

# %%
if seen.error is None:
    half = [n for n, p in wrong_model.named_parameters() if p.dtype in (torch.float16, torch.bfloat16)]
    if quantised:  # as the fixed model was prepared (checkpointing does not change a forward pass)
        prepare_model_for_kbit_training(wrong_model.get_base_model(), use_gradient_checkpointing=False)
    same_dtypes = {n: p.dtype for n, p in wrong_model.named_parameters()} == {
        n: p.dtype for n, p in peft_model.named_parameters()
    }
    wrong_params = dict(wrong_model.named_parameters())
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:  # the trained adapter
                wrong_params[name].copy_(param)
        wrong_model.eval()
        peft_model.eval()
        difference = scorecard.max_difference(wrong_model(**batch).logits, peft_model(**batch).logits)
    print(f"{len(half)} half-precision weights before preparing; same dtypes after: {same_dtypes}")
    print(f"largest logit difference, CAUSAL_LM wrapper vs PeftModel: {difference:.3g}")
else:
    same_dtypes = difference = "the wrapper cannot run here"
    print("Not on these versions: the CAUSAL_LM wrapper cannot run a forward pass at all.")
scorecard.record("wrapper vs PeftModel: same dtypes", same_dtypes)
scorecard.record("wrapper vs PeftModel: max logit difference", difference)

# %% [markdown]
# ## Deep dive: what 4-bit buys in memory
#
# `get_memory_footprint()` on the tiny model, loaded in each precision, beside the same arithmetic
# done from the config alone. The arithmetic must match the measurement exactly before it is trusted
# for the real model (3.7 billion parameters, built on PyTorch's `meta` device: shapes, no memory).
# In 4-bit, the Q-Former and `lm_head` stay as they are, every other linear layer takes half a byte a
# weight, and the rest (embeddings, norms, biases) stays in float16. Which modules stay in float32
# depends on the transformers release, so the arithmetic asks the installed one
# (`memory.kept_in_fp32`). On the tiny model 4-bit saves little over bfloat16: most of its bytes are
# the Q-Former and the embeddings. On the real model the ViT's and the OPT's linear layers are nearly
# everything.
#
# *Double quantisation* stores NF4's per-block scales in 8 bits instead of 32 (plus one 32-bit scale
# per 256 of them); `get_memory_footprint()` does not count these scales, so they are added apart.


# %%
def load_tiny(dtype, four_bit):
    config = blip2.nf4_config(blip2.compute_dtype(device)) if four_bit else None
    return blip2.load_blip2("tiny", DEVICE, quantization_config=config, dtype=dtype)[0]


measured = memory.measure(load_tiny)
tiny_meta = memory.meta_model(load_tiny(torch.float32, False).config)
for scheme, value in measured.items():
    estimate = memory.estimate(tiny_meta, scheme)
    print(
        f"tiny {scheme}: measured {value if isinstance(value, str) else f'{value:,} bytes'}, arithmetic {estimate:,} bytes"
        f" (kept in float32: {', '.join(memory.kept_in_fp32(tiny_meta, memory.SCHEMES[scheme][0])) or 'nothing'})"
    )
scorecard.record(
    "memory arithmetic minus get_memory_footprint(), per precision",
    {s: memory.estimate(tiny_meta, s) - v for s, v in measured.items() if isinstance(v, int)},
)

# %%
real = memory.meta_model(memory.real_config())
real_bytes = {scheme: memory.estimate(real, scheme) for scheme in memory.SCHEMES}
scales = memory.nf4_constants(real)
print(f"Salesforce/blip2-opt-2.7b: {sum(p.numel() for p in real.parameters()):,} parameters")
for scheme, value in real_bytes.items():
    print(f"  {scheme}: {value / 1e9:5.2f} GB")
print(f"  plus the NF4 scales get_memory_footprint() does not count: {scales / 1e9:.2f} GB")
scorecard.record("real model in 4-bit NF4 with its scales, GB", (real_bytes["nf4"] + scales) / 1e9)
memory.plot(measured, real_bytes)
display(
    Markdown(
        f"4-bit takes the real model's weights from {real_bytes['fp32'] / 1e9:.1f} GB in float32 "
        f"({real_bytes['fp16'] / 1e9:.1f} GB in float16) to {real_bytes['nf4'] / 1e9:.2f} GB, plus "
        f"{scales / 1e9:.2f} GB of NF4 scales: {(real_bytes['nf4'] + scales) / 1e9:.2f} GB in all, what lets "
        "it fit a free Colab GPU with room left for training."
    )
)

# %%
scorecard.save()
