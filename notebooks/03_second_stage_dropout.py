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
# # 03 · A second LoRA stage: "Target module Dropout is not supported" (live on older PEFT, recorded on newer)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/03_second_stage_dropout.ipynb)
#
# **The report.** Someone trains a language model with LoRA, saves the adapter, and later loads it
# for a second stage of training. They run stage one's set-up code again, and `get_peft_model` stops
# with `ValueError: Target module Dropout(p=0.05, inplace=False) is not supported`. The target names
# came from the popular `find_all_linear_names` helper.
#
# **Live or recorded.** Newer PEFT raises another error here (why is part of the lesson); there the
# notebook shows, beside it, the report's error as recorded on the report's versions. The line under
# the versions table names the releases; see also
# [What your room will see](https://github.com/peftlab/peftlab#what-your-room-will-see).
# `peftlab.versions.switch_to("documented")` installs the report's versions.
#
# **Learning goals**
#
# * Explain how PEFT matches `target_modules` (by the end of each module's name, before it looks at
#   the type), and why names collected on a LoRA model name LoRA's own parts.
# * Train a second stage the right way: reload with `is_trainable=True`, add a second adapter, or
#   merge and start a fresh LoRA.
# * Check that stage two builds on what it should, and that it reloads.
#
# **Prerequisites**: notebook 00 (what a LoRA adapter is); `named_modules` and a training loop in
# PyTorch.

# %%
import sys

if "google.colab" in sys.modules:  # on Colab only: install peftlab, keeping Colab's own torch
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "peftlab @ git+https://github.com/peftlab/peftlab"],
        check=True,
    )

# %%
from IPython.display import Markdown, display

import peftlab
from peftlab import recordings
from peftlab.registry import change
from peftlab.versions import installed, stacks_where

peftlab.start("03_second_stage_dropout")
skips = change("peft_skips_adapter_layers")  # the PEFT release from which the report's error is gone
newer = stacks_where(peft=skips.since)  # the Colab runtimes (and a fresh install) with that release
colab = [name.removeprefix("colab-") for name in newer if name.startswith("colab-")]
where_live = (
    f"**Live** with {skips.library} before {skips.release}, as in the report. **Recorded** from "
    f"{skips.library} {skips.release} on (Colab runtimes {', '.join(colab)}"
    f"{', and a fresh install' if 'current' in newer else ''}): another error, and beside it the "
    f"report's, recorded on {recordings.load('second_stage_dropout').label()}. **Here** "
    f"({skips.library} {installed((skips.library,))[skips.library]}): "
    f"{'the recording' if skips.holds() else 'live'}."
)
display(Markdown(where_live))

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "facebook/opt-125m" on Colab / a GPU machine (3.4 GB peak RSS measured on a CPU at real size with batch 8, random weights; GPU memory not measured)
DEVICE = None  # None picks CUDA, then MPS, then the CPU
STAGE_ONE_STEPS = 15
STAGE_TWO_STEPS = 25
LR = 3e-3
BATCH_SIZE = 64  # training batch (question/answer pairs); lower it for a real checkpoint if memory runs short
EVAL_BATCH_SIZE = 64  # evaluation batch (no gradients)
GRADIENT_CHECKPOINTING = False  # True: stage one recomputes activations in the backward pass (less memory)
SCENES = 128  # scenes per stage and held out (four questions each)
SEED = 0

# %% [markdown]
# ## The model and the task
#
# A tiny OPT (the family of `facebook/opt-125m`), pre-trained to answer three questions about a scene
# described in words. Fine-tuning teaches a fourth, *which side is opposite?*, in two stages on
# different scenes. `measure` gives the loss on held-out scenes (lower is better) and the accuracy on
# the new question.

# %%
import tempfile
import textwrap
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from peftlab import data, exercises, scorecard
from peftlab.capture import expect_failure
from peftlab.models import opt
from peftlab.train import count_parameters, train

peftlab.seed_everything(SEED)
base, tokenizer = opt.load_opt(CHECKPOINT, device=DEVICE)  # stays plain: LoRA goes on fresh copies
stage_one_batches = opt.qa_batches(
    tokenizer, opt.scene_texts(data.make_shapes(SCENES, seed=SEED)), BATCH_SIZE
)
stage_two_batches = opt.qa_batches(
    tokenizer, opt.scene_texts(data.make_shapes(SCENES, seed=SEED + 1)), BATCH_SIZE
)
test_scenes = data.make_shapes(SCENES, seed=SEED + 7919)  # held out: never trained on
test_batches = opt.qa_batches(tokenizer, opt.scene_texts(test_scenes), EVAL_BATCH_SIZE)
new_question = opt.qa_batches(tokenizer, opt.scene_texts(test_scenes, ["opposite"]), EVAL_BATCH_SIZE)


def fresh_base():
    """A new copy of the base model (get_peft_model changes the model it is given)."""
    return opt.load_opt(CHECKPOINT, device=DEVICE)[0]


def measure(model):
    """Held-out loss (all four questions) and accuracy on the new question."""
    return {
        "loss": opt.evaluate(model, test_batches)["loss"],
        "new question": opt.evaluate(model, new_question)["accuracy"],
    }


base_scores, base_logits = measure(base), opt.answer_logits(base, test_batches)
for prompt, answer in opt.scene_texts(test_scenes[:1]):
    print(f"{prompt}  ->  {answer}")
print(f"base model: held-out loss {base_scores['loss']:.3f}, new question {base_scores['new question']:.0%}")

# %% [markdown]
# ## Stage one, with the popular recipe
#
# Which modules should LoRA adapt? Many scripts answer with `find_all_linear_names` from the QLoRA
# repository ([artidoro/qlora](https://github.com/artidoro/qlora), `qlora.py`): the *last part of the
# name* of every linear layer, `lm_head` left out. (The original looks for 4-bit layers in a 4-bit
# model; the logic is the same.)


# %%
def find_all_linear_names(model):
    """The QLoRA recipe: the last name part of every linear layer, lm_head excluded."""
    cls = torch.nn.Linear
    lora_module_names = set()
    for name, module in model.named_modules():
        if isinstance(module, cls):
            names = name.split(".")
            lora_module_names.add(names[0] if len(names) == 1 else names[-1])
    if "lm_head" in lora_module_names:  # needed for 16-bit
        lora_module_names.remove("lm_head")
    return list(lora_module_names)


def lora_config(target_modules):
    """The LoRA settings of both stages; lora_dropout=0.05 as in the report."""
    return LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.05, target_modules=target_modules, task_type="CAUSAL_LM"
    )


targets_one = find_all_linear_names(base)
print("the recipe on the plain model:", sorted(targets_one))
model_one = fresh_base()
peftlab.seed_everything(SEED)
stage_one = get_peft_model(model_one, lora_config(targets_one))
if GRADIENT_CHECKPOINTING:
    stage_one.get_base_model().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )
losses_one = train(stage_one, stage_one_batches, STAGE_ONE_STEPS, lr=LR, progress=False)
after_one, stage_one_logits = measure(stage_one), opt.answer_logits(stage_one, test_batches)
print(
    f"stage one: held-out loss {base_scores['loss']:.3f} -> {after_one['loss']:.3f}, "
    f"new question {base_scores['new question']:.0%} -> {after_one['new question']:.0%}"
)
scorecard.record(
    "stage one: share of the new question's gap closed",
    scorecard.headroom_closed(base_scores["new question"], after_one["new question"]),
)
scorecard.record("stage one: held-out loss / the base model's", after_one["loss"] / base_scores["loss"])

work = tempfile.TemporaryDirectory(prefix="peftlab-03-")  # this notebook's files, gone with the kernel
stage_one_dir = Path(work.name, "stage_one")
stage_one.save_pretrained(stage_one_dir)


def load_stage_one(**kwargs):
    """A fresh base model with stage one's adapter loaded onto it."""
    return PeftModel.from_pretrained(fresh_base(), stage_one_dir, **kwargs)


# %% [markdown]
# ## The failure: stage two, the usual wrong way
#
# Stage two loads stage one's adapter onto the base model with `PeftModel.from_pretrained` and runs
# stage one's set-up code again: the recipe, a `LoraConfig`, `get_peft_model`. Look at the names the
# recipe returns now.


# %%
def show_warnings(caught, width=200):
    """The UserWarnings caught, one line each: all PEFT says about a model wrapped twice."""
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print("PEFT warns:", textwrap.shorten(str(warning.message), width, placeholder=" ..."))


model = load_stage_one()  # a fresh one each run: get_peft_model changes the model it is given
targets_two = find_all_linear_names(model)
print("the recipe on the loaded stage-one model:", sorted(targets_two))
with expect_failure("second_stage_dropout") as seen, warnings.catch_warnings(record=True) as said:
    warnings.simplefilter("always", UserWarning)
    get_peft_model(model, lora_config(targets_two))
show_warnings(said)

# %% [markdown]
# ## Why it happens
#
# LoRA replaces each targeted linear layer by a **LoRA layer**. It keeps the original as
# `base_layer` and holds the adapter in small dictionaries keyed by the adapter's name, `default`
# unless you name it: `lora_A.default` and `lora_B.default` (two small linear layers) and
# `lora_dropout.default` (a dropout on the adapter's input). The recipe keeps last name parts, so it
# now returns `base_layer` and `default`.
#
# PEFT matches a list of target names by the *end of each module's full name*, and looks at the
# module's type only afterwards. Here is that rule, and what it matches inside the first LoRA layer:


# %%
def matches(name, target_modules):
    """PEFT's rule for a list of names: the full name is an entry, or ends with "." and an entry."""
    return any(name == entry or name.endswith("." + entry) for entry in target_modules)


fresh = load_stage_one()  # a model the failed call did not touch
layer_name = next(name for name, module in fresh.named_modules() if hasattr(module, "lora_A"))
print(layer_name)
for name, module in fresh.get_submodule(layer_name).named_modules(prefix=layer_name):
    if matches(name, targets_two):
        print(f"  {name.removeprefix(layer_name):<22} {module}")

# %% [markdown]
# `default` also names the Dropout. Older PEFT wraps the matches in order: `base_layer` (a LoRA layer
# inside a LoRA layer), then `lora_dropout.default`, and LoRA cannot wrap a Dropout: the report's
# error. Newer PEFT skips every module inside an existing adapter layer
# ([PR #2539](https://github.com/huggingface/peft/pull/2539)); all the recipe's matches lie inside
# one, so nothing is left to wrap, and it says that instead.

# %%
not_linear = [
    module
    for name, module in fresh.named_modules()
    if matches(name, targets_two) and not isinstance(module, torch.nn.Linear)
]
report_error = seen.recording.message if seen.recording_shown else str(seen.error)
display(
    Markdown(
        f"The change came with {skips.library} {skips.release}. Here PEFT raised `{type(seen.error).__name__}`; "
        f"the report's error ({'recorded' if seen.recording_shown else 'live'}) names "
        f"`{report_error.split(' is not supported')[0].removeprefix('Target module ')}`."
    )
)
scorecard.check(
    "PEFT's name rule, in one line of Python, finds the module the report's error names",
    bool(not_linear) and f"Target module {not_linear[0]} is not supported" in report_error,
    f"the first match that is not a linear layer: {not_linear[0] if not_linear else 'none'} "
    f"({len(not_linear)} such matches)",
)

# %% [markdown]
# ## The fix: three ways to train a second stage
#
# Never call `get_peft_model` on a model that already carries LoRA. Pick one of these instead.
#
# ### (a) Continue stage one's adapter
#
# `PeftModel.from_pretrained(..., is_trainable=True)` loads the adapter ready to train. (Without it,
# the adapter is loaded for inference and nothing trains: see the deep dive on the second trap.)
# Stage two carries on with the weights stage one ended with, so its loss starts where stage one's
# ended.


# %%
def lora_weights(model, adapter="default"):
    """Every LoRA weight of one adapter, as one flat tensor (a copy)."""
    return torch.cat(
        [
            p.detach().flatten().clone()
            for n, p in model.named_parameters()
            if "lora_" in n and f".{adapter}." in f"{n}."
        ]
    )


peftlab.seed_everything(SEED)
continued = load_stage_one(is_trainable=True)
trainable_a, weights_a = count_parameters(continued)[0], lora_weights(continued)
scorecard.record(
    "(a) before training: max |logit difference| from stage one",
    scorecard.max_difference(stage_one_logits, opt.answer_logits(continued, test_batches)),
)
losses_a = train(continued, stage_two_batches, STAGE_TWO_STEPS, lr=LR, desc="(a) continue stage one")
after_a = measure(continued)
scorecard.prove(
    "(a) stage two starts where stage one ended, not from scratch",
    losses_a[0] / losses_one[0],
    f"first training loss {losses_one[0]:.3f} in stage one, {losses_a[0]:.3f} in stage two",
    needs_pretrained=True,
    below=0.35,
)
scorecard.check_headroom(
    "the two stages, continued with (a), teach the new question",
    base_scores["new question"],
    after_a["new question"],
    0.8,
)
scorecard.record(
    "(a) trains stage one's adapter",
    {
        "trainable": trainable_a,
        "stage one trainable": count_parameters(stage_one)[0],
        "weights moved": not torch.equal(weights_a, lora_weights(continued)),
    },
)
scorecard.record("(a) held-out loss / stage one's", after_a["loss"] / after_one["loss"])

# %%
dir_a = Path(work.name, "a")
continued.save_pretrained(dir_a)
reloaded_a = PeftModel.from_pretrained(fresh_base(), dir_a)
scorecard.check_same(
    "(a) the saved adapter reloads exactly",
    opt.answer_logits(continued, test_batches),
    opt.answer_logits(reloaded_a, test_batches),
)

# %% [markdown]
# ### (b) A second adapter beside the first
#
# `add_adapter` adds an adapter under a new name; `set_adapter` makes it the active one, the only one
# that trains and the only one in the forward pass. So stage two learns from the base model, not on
# top of stage one, and stage one stays as it was: switch back to it at any time. The new adapter's
# target names are stage one's, from the plain model.

# %%
peftlab.seed_everything(SEED)
two = load_stage_one(adapter_name="stage_one")
two.add_adapter("stage_two", lora_config(targets_one))
two.set_adapter("stage_two")
trainable_b, stage_one_weights = count_parameters(two)[0], lora_weights(two, "stage_one")
losses_b = train(two, stage_two_batches, STAGE_TWO_STEPS, lr=LR, progress=False)
after_b, stage_two_logits = measure(two), opt.answer_logits(two, test_batches)
scorecard.check_same(
    "(b) training the second adapter leaves the first unchanged",
    stage_one_weights,
    lora_weights(two, "stage_one"),
)
scorecard.record("(b) first loss / (a)'s first loss", losses_b[0] / losses_a[0])
scorecard.record(
    "(b) stage two vs stage one: max |logit difference|",
    scorecard.max_difference(stage_one_logits, stage_two_logits),
)

dir_b = Path(work.name, "b")
two.save_pretrained(dir_b)  # one folder per adapter
both = PeftModel.from_pretrained(fresh_base(), dir_b / "stage_one", adapter_name="stage_one")
both.load_adapter(str(dir_b / "stage_two"), adapter_name="stage_two")
for adapter, logits in {"stage_one": stage_one_logits, "stage_two": stage_two_logits}.items():
    both.set_adapter(adapter)
    scorecard.record(
        f"(b) reloaded, adapter {adapter}: max |logit difference| from its own",
        scorecard.max_difference(logits, opt.answer_logits(both, test_batches)),
    )
print(sorted(p.name for p in dir_b.iterdir()))

# %% [markdown]
# ### (c) Merge stage one, then a fresh LoRA
#
# `merge_and_unload` adds stage one's update into the weights and removes the LoRA layers: a plain
# model again, on which the recipe returns the plain names and `get_peft_model` works as in stage
# one. Stage one is fixed from then on. To reload, merge stage one again and load the new adapter.

# %%
merged = load_stage_one().merge_and_unload()
scorecard.record(
    "(c) merged vs stage one: max |logit difference|",
    scorecard.max_difference(stage_one_logits, opt.answer_logits(merged, test_batches)),
)
print("the recipe on the merged model:", sorted(find_all_linear_names(merged)))
with warnings.catch_warnings():  # older PEFT leaves stage one's peft_config on the merged model and says
    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")  # so: harmless here
    peftlab.seed_everything(SEED)
    fresh_c = get_peft_model(merged, lora_config(find_all_linear_names(merged)))
    losses_c = train(fresh_c, stage_two_batches, STAGE_TWO_STEPS, lr=LR, progress=False)
    after_c = measure(fresh_c)
    dir_c = Path(work.name, "c")
    fresh_c.save_pretrained(dir_c)
    reloaded_c = PeftModel.from_pretrained(load_stage_one().merge_and_unload(), dir_c)
scorecard.prove(
    "(c) the held-out loss keeps falling below stage one's",
    after_c["loss"] / after_one["loss"],
    f"{after_one['loss']:.3f} (stage one) -> {after_c['loss']:.3f}",
    needs_pretrained=True,
    below=1.0,
)
scorecard.record(
    "(c) stage one merged again + the saved adapter: max |logit difference|",
    scorecard.max_difference(
        opt.answer_logits(fresh_c, test_batches), opt.answer_logits(reloaded_c, test_batches)
    ),
)

# %% [markdown]
# ## Exercises
#
# Answer in the first cell, then run the second: it runs the experiment and checks. Retry freely.
#
# ### Exercise 1: `default` without dropout (predict first)
#
# Stage one used `lora_dropout=0.05`. Had it used `lora_dropout=0`, would the name `default` still
# match a module that is not a linear layer? Give that module's class name, or `"none"`.

# %%
answer = None  # your answer: a class name, or "none"

# %%
no_dropout = get_peft_model(
    fresh_base(), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj"])
)
not_linear_names = sorted(
    {
        type(module).__name__
        for name, module in no_dropout.named_modules()
        if matches(name, ["default"]) and not isinstance(module, torch.nn.Linear)
    }
)
exercises.check(
    "03.1",
    answer,
    expected=" + ".join(not_linear_names) or "none",
    hint="Make a LoRA model with lora_dropout=0 and print one of its LoRA layers.",
    explain=f"`default` matches {' + '.join(not_linear_names) or 'nothing'} besides lora_A and lora_B: PEFT "
    "keeps a module under the dropout's name, one that does nothing. It is no more a linear layer than the "
    "Dropout was, so older PEFT names it in the same error.",
)

# %% [markdown]
# ### Exercise 2: a stage one on `q_proj` and `v_proj` only (predict first)
#
# Many recipes adapt only the attention's `q_proj` and `v_proj`. Predict the list the recipe,
# `find_all_linear_names`, returns on such a stage-one model (any order).

# %%
answer = None  # your answer: a list of names

# %%
qv_model = get_peft_model(fresh_base(), lora_config(["q_proj", "v_proj"]))
recipe_on_qv = find_all_linear_names(qv_model)
exercises.check(
    "03.2",
    answer,
    test=lambda a: {exercises.normalise(x) for x in a} == {exercises.normalise(x) for x in recipe_on_qv},
    hint="The recipe keeps the last name part of every nn.Linear: which ones lie inside a LoRA layer, "
    "and which did stage one leave alone?",
    explain=f"{sorted(recipe_on_qv)}: LoRA's own parts and the linear layers stage one left alone. Those "
    "still match plain layers, so newer PEFT wraps them: the third trap (a deep dive).",
)

# %% [markdown]
# ### Exercise 3: PEFT's own list, `"all-linear"` (predict first)
#
# `target_modules="all-linear"` makes PEFT choose the linear layers itself, and it never chooses a
# module inside a LoRA layer. Stage two with `get_peft_model(load_stage_one(), lora_config("all-linear"))`:
# predict what it gives. Answer `"error"`, `"stage one"` (it builds on stage one) or `"base"` (its
# outputs are the base model's).

# %%
answer = None  # your answer: "error", "stage one" or "base"

# %%
with warnings.catch_warnings(record=True) as said:
    warnings.simplefilter("always")
    try:
        all_linear = get_peft_model(load_stage_one(), lora_config("all-linear"))
        outputs = opt.answer_logits(all_linear, test_batches)
        outcome = "something else"
        if torch.equal(outputs, stage_one_logits):
            outcome = "stage one"
        elif torch.equal(outputs, base_logits):
            outcome = "base"
    except Exception:  # any error counts as "error"
        outcome = "error"
exercises.check(
    "03.3",
    answer,
    expected=outcome,
    hint="Compare its outputs (opt.answer_logits) with stage_one_logits and base_logits.",
    explain=f"Here: {outcome}. all-linear chose stage one's LoRA layers as a whole, and get_peft_model put a "
    "new adapter, again named `default`, into them, newly initialised: stage one is gone. PEFT's only word: "
    f"{len(said)} warnings, the first '{str(said[0].message)[:70] if said else ''}...'.",
)

# %% [markdown]
# ## Recap
#
# * Collect target names on the plain model. PEFT matches names by their end before it looks at
#   types: on a LoRA model the recipe returns `base_layer` and `default`, LoRA's own parts, and
#   `default` also names LoRA's Dropout.
# * Never call `get_peft_model` on a model that carries LoRA. Continue with `is_trainable=True`;
#   learn a separate skill with `add_adapter` + `set_adapter`; or `merge_and_unload` and start a
#   fresh LoRA on a fixed stage one.
# * Check that a stage trains (its loss starts where it should) and reloads exactly.
# * Where you see the report's error live, and where as a recording:
#
# **Upstream threads**: the report,
# [huggingface/peft#2286](https://github.com/huggingface/peft/issues/2286); the change,
# [huggingface/peft#2539](https://github.com/huggingface/peft/pull/2539) ("Prevent adapters
# targeting themselves").

# %%
display(Markdown(where_live))

# %% [markdown]
# ## Deep dive: the three fixes side by side
#
# Same data, same number of steps. "On disk" is what stage two needs kept: one adapter for (a), both
# for (b), and for (c) stage one's adapter (to merge again) plus the new one.

# %%
from peftlab import plots, tables


def size_on_disk(*folders):
    return sum(f.stat().st_size for folder in folders for f in Path(folder).rglob("*") if f.is_file())


fixes = {
    "(a) continue stage one's adapter": (trainable_a, size_on_disk(dir_a), losses_a, after_a),
    "(b) a second adapter beside it": (trainable_b, size_on_disk(dir_b), losses_b, after_b),
    "(c) merge, then a fresh LoRA": (
        count_parameters(fresh_c)[0],
        size_on_disk(stage_one_dir, dir_c),
        losses_c,
        after_c,
    ),
}
display(
    tables.Table(
        ["stage two", "trainable parameters", "on disk", "first loss", "held-out loss", "new question"],
        [
            (
                name,
                f"{n:,}",
                f"{size / 1024:,.0f} KiB",
                f"{losses[0]:.3f}",
                f"{scores['loss']:.4f}",
                f"{scores['new question']:.0%}",
            )
            for name, (n, size, losses, scores) in fixes.items()
        ],
        notes=[
            f"Stage one ended at held-out loss {after_one['loss']:.4f}; the base model is at "
            f"{base_scores['loss']:.4f}."
        ],
    )
)
plots.staged_loss_curves(
    {
        "stage one": (0, losses_one),
        "(a) continue": (STAGE_ONE_STEPS, losses_a),
        "(b) second adapter": (STAGE_ONE_STEPS, losses_b),
        "(c) merged + fresh LoRA": (STAGE_ONE_STEPS, losses_c),
    },
    title="training loss across both stages",
    stages={"stage two": STAGE_ONE_STEPS},
)

# %% [markdown]
# (a) and (c) pick up where stage one stopped; (b) starts over from the base model, because its new
# adapter is the only one active. (a) keeps one small adapter; (b) keeps stage one intact beside a
# different skill; (c) builds on stage one and keeps it fixed.
#
# ## Deep dive: `"all-linear"` fixes the names, not the second stage
#
# On the plain model `"all-linear"` chooses the recipe's layers. On the loaded stage-one model
# (exercise 3) it chooses stage one's LoRA layers as a whole, and nothing inside them, so no Dropout
# and no error; `get_peft_model` then puts a fresh adapter into them.

# %%
from peftlab import targets

plain_all_linear = targets.adapter_layers(get_peft_model(fresh_base(), lora_config("all-linear")))
scorecard.record(
    "all-linear on the plain model = the recipe's layers",
    plain_all_linear == targets.adapter_layers(stage_one),
)
on_lora_model = load_stage_one()
stage_one_layers = targets.adapter_layers(on_lora_model)
with warnings.catch_warnings(record=True) as said:
    warnings.simplefilter("always", UserWarning)
    on_lora = get_peft_model(on_lora_model, lora_config("all-linear"))
chosen = sorted(on_lora.base_model.targeted_module_names)  # full names (the config may shorten them)
inside = [n for n in chosen if any(n.startswith(f"{layer}.") for layer in stage_one_layers)]
extra = [n for n in chosen if n not in stage_one_layers and n not in inside]
on_lora_logits = opt.answer_logits(on_lora, test_batches)
scorecard.record(
    "all-linear on the LoRA model: what it chose",
    {
        "inside a LoRA layer": len(inside),
        "stage one's layers chosen": len(set(stage_one_layers) & set(chosen)),
        "stage one's layers": len(stage_one_layers),
    },
)
scorecard.record(
    "all-linear on the LoRA model: max |logit difference| from stage one",
    scorecard.max_difference(stage_one_logits, on_lora_logits),
)
scorecard.record(
    "all-linear on the LoRA model: max |logit difference| from the base",
    scorecard.max_difference(base_logits, on_lora_logits),
)
show_warnings(said)
print(
    f"chosen: {len(set(stage_one_layers) & set(chosen))} of stage one's {len(stage_one_layers)} LoRA layers, "
    f"{len(inside)} modules inside them, and {', '.join(extra) or 'nothing else'}"
)

# %% [markdown]
# `lm_head` comes in too: PEFT leaves the output layer out by asking a transformers model for it,
# and a `PeftModel` cannot answer. Use `"all-linear"` in stage one in place of the recipe; go on with
# one of the three fixes.
#
# ## Deep dive: the second trap, an adapter loaded for inference
#
# `PeftModel.from_pretrained` without `is_trainable=True` leaves nothing trainable. Most LLM scripts
# turn on gradient checkpointing (the QLoRA script does), which makes the inputs require gradients,
# so `loss.backward()` still runs, and a hand-written loop "trains" without a word from PyTorch,
# transformers or PEFT:

# %%
base_for_trap = fresh_base()
base_for_trap.config.use_cache = False  # training caches nothing (and says so once per run otherwise)
with warnings.catch_warnings(record=True) as said:  # transformers 5 renames it: its notice as one line
    warnings.simplefilter("always")
    base_for_trap.gradient_checkpointing_enable()  # as the QLoRA script and most LLM recipes do
for warning in said:
    print(f"transformers says: {warning.message}")
frozen = PeftModel.from_pretrained(base_for_trap, stage_one_dir)  # is_trainable=True forgotten
trainable, total = count_parameters(frozen)
weights_before, loss_before = lora_weights(frozen), measure(frozen)["loss"]
optimiser = torch.optim.AdamW(frozen.parameters(), lr=LR)
frozen.train()
for step in range(10):
    batch = peftlab.train.to_device(
        stage_two_batches[step % len(stage_two_batches)], peftlab.train.model_device(frozen)
    )
    frozen(**batch).loss.backward()
    optimiser.step()
    optimiser.zero_grad()
scorecard.prove(
    "from_pretrained without is_trainable leaves nothing to train",
    trainable,
    f"{trainable} trainable of {total:,} parameters; 10 optimiser steps ran without an error",
    equals=0,
)
scorecard.record(
    "second trap: 10 optimiser steps, max |change| of the adapter weights",
    scorecard.max_difference(weights_before, lora_weights(frozen)),
)
scorecard.record("second trap: |change| of the held-out loss", abs(measure(frozen)["loss"] - loss_before))

# %% [markdown]
# peftlab's training loop checks for this and refuses. `NothingToTrainError` is **peftlab's own
# detector**, not an error of PyTorch, transformers or PEFT: they say nothing here.

# %%
with expect_failure("second_stage_nothing_to_train") as nothing:
    train(frozen, stage_two_batches, STAGE_TWO_STEPS, lr=LR, progress=False)

# %% [markdown]
# ## Deep dive: the third trap, a double wrap that loses stage two
#
# Stage one adapted only `q_proj` and `v_proj` (exercise 2). The recipe then also returns the
# plain linear layers stage one left alone. `preview_targets` (peftlab) applies PEFT's rules before
# anything is wrapped:

# %%
peftlab.seed_everything(SEED)
qv = get_peft_model(fresh_base(), lora_config(["q_proj", "v_proj"]))
train(qv, stage_one_batches, STAGE_ONE_STEPS, lr=LR, progress=False)
qv_dir = Path(work.name, "stage_one_qv")
qv.save_pretrained(qv_dir)
model_qv = PeftModel.from_pretrained(fresh_base(), qv_dir)
targets_qv = find_all_linear_names(model_qv)
print(sorted(targets_qv))
print("\n".join(targets.preview_targets(model_qv, targets_qv).notes))

# %%
with expect_failure("second_stage_double_wrap") as double, warnings.catch_warnings(record=True) as said:
    warnings.simplefilter("always", UserWarning)
    twice = get_peft_model(model_qv, lora_config(targets_qv))
show_warnings(said)

# %% [markdown]
# Where PEFT skips its own adapter layers, this goes through with a warning: a `PeftModel` inside a
# `PeftModel`. It trains, but its saved keys carry a doubled prefix
# (`base_model.model.base_model.model.`), and `PeftModel.from_pretrained` on a fresh base model finds
# none of them: a warning about "missing adapter keys", and the base model back.

# %%
double_wrap = {"went through": double.error is None}
if double.error is None:
    from safetensors.torch import load_file

    train(twice, stage_two_batches, STAGE_TWO_STEPS, lr=LR, progress=False)
    trained_logits = opt.answer_logits(twice, test_batches)
    twice_dir = Path(work.name, "twice")
    twice.save_pretrained(twice_dir)
    keys = sorted(load_file(twice_dir / "adapter_model.safetensors"))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", UserWarning)
        reloaded_twice = PeftModel.from_pretrained(fresh_base(), twice_dir)
    double_wrap |= {
        "saved keys": len(keys),
        "with a doubled prefix": sum(k.startswith("base_model.model.base_model.model.") for k in keys),
        "trained: max |logit difference| from the base": scorecard.max_difference(
            trained_logits, base_logits
        ),
        "reloaded: max |logit difference| from the base": scorecard.max_difference(
            base_logits, opt.answer_logits(reloaded_twice, test_batches)
        ),
    }
    print(f"{len(keys)} saved tensors, e.g. {keys[0]}")
    show_warnings(said)
else:
    print("This PEFT raises the Dropout error here as well: nothing is silently lost.")
scorecard.record("double wrap", double_wrap)

# %% [markdown]
# ## Deep dive: the preview and the doctor would have told you
#
# `targets.preview_targets` lists what a target list hits, with its type and what the installed PEFT
# does with it; `peftlab.doctor(model, peft_config)` predicts what `get_peft_model` and the training
# after it will do, before anything runs. Both flag every trap above; the first diagnosis:


# %%
def verdict(diagnosis, error=None):
    """The doctor's findings, with the classes of the error the setup raised (None: it raised nothing)."""
    raised = [cls.__name__ for cls in type(error).__mro__] if error is not None else None
    return diagnosis.as_dict() | {"raised": raised}


preview = targets.preview_targets(load_stage_one(), targets_two)
scorecard.record("preview: predicted and raised", [preview.predicted_error, type(seen.error).__name__])
flagged = peftlab.doctor(load_stage_one(), lora_config(targets_two))
scorecard.record("doctor: get_peft_model on the loaded stage-one model", verdict(flagged, seen.error))
scorecard.record(
    "doctor: training an adapter loaded without is_trainable",
    verdict(peftlab.doctor(load_stage_one()), nothing.error),
)
fresh_qv = PeftModel.from_pretrained(fresh_base(), qv_dir)
scorecard.record(
    "doctor: the double wrap",
    verdict(peftlab.doctor(fresh_qv, lora_config(find_all_linear_names(fresh_qv))), double.error),
)
scorecard.record("doctor: fix (a)", peftlab.doctor(load_stage_one(is_trainable=True)).as_dict())
merged_base = load_stage_one().merge_and_unload()
scorecard.record(
    "doctor: fix (c)", peftlab.doctor(merged_base, lora_config(find_all_linear_names(merged_base))).as_dict()
)
flagged

# %%
scorecard.save()
