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
# # 04 · ViT at a new resolution: position embeddings that PEFT does not save
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/04_vit_position_embeddings.ipynb)
#
# **The report** ([huggingface/peft#2099](https://github.com/huggingface/peft/issues/2099)). Someone
# fine-tunes `google/vit-base-patch16-224-in21k` with LoRA at 512 px instead of 224 px, and lists
# the position embeddings in `modules_to_save` to train them too. Nothing complains, and the table
# never trains. Unfrozen by hand, it trains, but the saved adapter comes back without it.
#
# **Learning goals**
# * Move a ViT to a new resolution: interpolate its table of position embeddings once.
# * Tell why `modules_to_save` neither trains nor saves an `nn.Parameter`, and catch both silent
#   losses: one check before training, one after reloading.
# * Keep a trained table with its adapter: in a file of its own, or through the module that owns it.
#
# **Prerequisites**: notebook 00 (`target_modules`, `modules_to_save`); a ViT cuts an image into
# patches and adds a learned *position embedding* to each: one row of a table per patch.

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

peftlab.start("04_vit_position_embeddings")

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # or "google/vit-base-patch16-224-in21k" on Colab / a GPU machine (then set NEW_SIZE to 512; 4.6 GB peak RSS measured on a CPU at real size with batch 2, random weights; GPU memory not measured)
DEVICE = None  # None picks CUDA, then MPS, then the CPU
NEW_SIZE = 64  # the fine-tuning resolution in pixels, a multiple of the patch size
LORA_STEPS = 200
LR = 1e-2
BATCH_SIZE = 32  # training batch; with the real checkpoint at 512 px, lower it if memory runs short
EVAL_BATCH_SIZE = 64  # evaluation batch (no gradients)
GRADIENT_CHECKPOINTING = False  # True: recompute activations in the backward pass (less memory, slower)
TRAIN_IMAGES, TEST_IMAGES = 1024, 256
SEED = 0

# %% [markdown]
# ## The model and the data
#
# `load_vit` loads a tiny `ViTForImageClassification` pre-trained at a small resolution. Its task:
# which shape is where (16 classes, "circle left" to "cross bottom"), so only the position embeddings
# tell it where a patch lies. The fine-tuning images, at the new resolution, include yellow, a colour
# it never saw.

# %%
import copy
import tempfile
from pathlib import Path

import torch
from IPython.display import Markdown, display
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

from peftlab import data, exercises, module_names, plots, scorecard
from peftlab.capture import expect_failure
from peftlab.lessons import position_embeddings as pe
from peftlab.models import load_vit, vit
from peftlab.registry import change
from peftlab.train import count_parameters, train

peftlab.seed_everything(SEED)
model, processor = load_vit(CHECKPOINT, device=DEVICE)
device = peftlab.train.model_device(model)
OLD_SIZE, PATCH = model.config.image_size, model.config.patch_size
train_set, test_set = data.train_test_split(TRAIN_IMAGES, TEST_IMAGES, size=NEW_SIZE, seed=SEED)
train_batches = vit.batches(processor, train_set, NEW_SIZE, batch_size=BATCH_SIZE)
test_batches = vit.batches(processor, test_set, NEW_SIZE, batch_size=EVAL_BATCH_SIZE)
work = tempfile.TemporaryDirectory(prefix="peftlab-04-")  # adapters are saved here (removed at exit)
print(f"pre-trained at {OLD_SIZE} px in {PATCH} px patches; fine-tuning at {NEW_SIZE} px")
plots.image_grid([s.image for s in test_set[:8]], [vit.class_names()[vit.label(s)] for s in test_set[:8]])

# %% [markdown]
# ### A model of the new size
#
# Fed the new images, the model refuses before any PEFT code is involved: it remembers the size it
# was built for (`config.image_size`), because its table has one row per patch of that grid.

# %%
with expect_failure("vit_image_size"):
    model(pixel_values=test_batches[0]["pixel_values"].to(device))

# %% [markdown]
# *Interpolating* the table resizes it like a small image: set the class token's row aside, fold the
# patch rows into their square grid, resize it (bicubic), unfold it. `resize_position_embeddings`
# also records the new size wherever the model keeps it. `interpolate_pos_encoding=True` at every
# call does the same on the fly: same logits.

# %%
import math

import torch.nn.functional as F


def interpolate_table(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ``(1, 1 + side*side, dim)`` table to ``grid`` patches; the class token's row is kept."""
    cls, patches = table[:, :1], table[:, 1:]
    side, dim = math.isqrt(patches.shape[1]), table.shape[-1]
    image = patches.reshape(1, side, side, dim).permute(0, 3, 1, 2)  # (1, dim, side, side)
    image = F.interpolate(image, size=grid, mode="bicubic", align_corners=False)
    return torch.cat((cls, image.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


@torch.no_grad()
def resize_position_embeddings(model: torch.nn.Module, image_size: int) -> torch.nn.Module:
    """Make a ViT a model of ``image_size`` px: a new table, and the new size wherever it is recorded."""
    embeddings = model.vit.embeddings
    grid = (image_size // model.config.patch_size,) * 2
    embeddings.position_embeddings = torch.nn.Parameter(
        interpolate_table(embeddings.position_embeddings, grid)
    )
    embeddings.patch_embeddings.image_size = (image_size, image_size)
    embeddings.patch_embeddings.num_patches = grid[0] * grid[1]
    if hasattr(embeddings, "image_size"):  # where the installed transformers checks the size
        embeddings.image_size = (image_size, image_size)
    model.config.image_size = image_size
    return model


def fresh_base() -> torch.nn.Module:
    """A fresh copy of the pre-trained model, resized to NEW_SIZE: the base of every run below."""
    base = resize_position_embeddings(copy.deepcopy(model), NEW_SIZE)
    if GRADIENT_CHECKPOINTING:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return base


base = fresh_base()
print(
    f"table: {tuple(model.vit.embeddings.position_embeddings.shape)} -> "
    f"{tuple(base.vit.embeddings.position_embeddings.shape)} (1, rows, width)"
)
scorecard.check_same(
    "resizing once = interpolate_pos_encoding=True at every call",
    vit.logits(model, test_batches, interpolate_pos_encoding=True),
    vit.logits(base, test_batches),
)

# %% [markdown]
# Neither makes the model good at the new size (each patch covers less of the shape): that is what
# fine-tuning is for.

# %%
base_accuracy = vit.accuracy(base, test_batches)
same_scenes_old_size = vit.batches(
    processor, data.make_shapes(len(test_set), OLD_SIZE, seed=SEED + 7919), batch_size=EVAL_BATCH_SIZE
)
zero_shot_old_size = vit.accuracy(model, same_scenes_old_size)
print(
    f"test accuracy of the pre-trained model: {zero_shot_old_size:.1%} on the test scenes drawn at "
    f"{OLD_SIZE} px, {base_accuracy:.1%} on the same scenes at {NEW_SIZE} px (table resized)"
)

# %% [markdown]
# ## The baseline: LoRA only
#
# LoRA on the attention's query and value projections (their names depend on the transformers
# version: read from the model, see a deep dive below), and the head trained in full
# (`modules_to_save=["classifier"]`).


# %%
TARGETS = module_names.attention_targets(base)


def lora_config(*extra: str) -> LoraConfig:
    """LoRA on the attention's query and value projections; the head (and ``extra``) trained in full."""
    return LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, modules_to_save=["classifier", *extra])


peftlab.seed_everything(SEED)
lora_only = get_peft_model(fresh_base(), lora_config())
losses = {"LoRA only": train(lora_only, train_batches, LORA_STEPS, lr=LR, desc="LoRA only")}
accuracy = {"base (table resized)": base_accuracy, "LoRA only": vit.accuracy(lora_only, test_batches)}
print(f"LoRA targets: {TARGETS}; LoRA only: {accuracy['LoRA only']:.1%}")

# %% [markdown]
# ## The failure: `modules_to_save=["position_embeddings"]`
#
# The report's configuration. `get_peft_model` accepts it, and the trainable count is exactly that
# of LoRA only. **PEFT raises nothing.** The check in the box, `pe.require_trainable`, is peftlab's:
# the `SilentLossError` it raises is peftlab's own, raised because the libraries stay silent. Run
# such a check before training.

# %%
wrong = get_peft_model(fresh_base(), lora_config("position_embeddings"))
extra = count_parameters(wrong)[0] - count_parameters(lora_only)[0]
print(
    f"trainable: {count_parameters(wrong)[0]:,} vs LoRA only {count_parameters(lora_only)[0]:,}: "
    f"{extra:,} extra (the table holds {base.vit.embeddings.position_embeddings.numel():,} values)"
)
with expect_failure("vit_modules_to_save_parameter"):
    pe.require_trainable(wrong, ["position_embeddings"])

# %% [markdown]
# ## Why it happens
#
# For each **module** whose name ends with an entry of `modules_to_save`, PEFT puts a
# `ModulesToSaveWrapper` in its place: it keeps the original frozen, trains a copy, and
# `save_pretrained` writes the copy. The table is no module but an `nn.Parameter` of
# `vit.embeddings`: nothing matches, and nothing is said.

# %%
entry = "position_embeddings"
print("modules whose name ends with it:   ", [n for n, _ in base.named_modules() if n.endswith(entry)])
print("parameters whose name ends with it:", [n for n, _ in base.named_parameters() if n.endswith(entry)])

# %% [markdown]
# ### The report's workaround: unfreeze the table by hand
#
# After `get_peft_model`, set `requires_grad=True` on the table. Now it trains with LoRA...

# %%
peftlab.seed_everything(SEED)
with_table = get_peft_model(fresh_base(), lora_config())
pe.vit_embeddings(with_table).position_embeddings.requires_grad_(True)
pe.require_trainable(with_table, ["position_embeddings"])  # passes: the table is trainable now
losses["LoRA + position embeddings"] = train(
    with_table, train_batches, LORA_STEPS, lr=LR, desc="LoRA + position embeddings"
)
accuracy["LoRA + position embeddings"] = vit.accuracy(with_table, test_batches)
moved = scorecard.max_difference(
    pe.vit_embeddings(with_table).position_embeddings, base.vit.embeddings.position_embeddings
)
print(
    f"LoRA + position embeddings: {accuracy['LoRA + position embeddings']:.1%}; the table moved by up to {moved:.2f}"
)

# %% [markdown]
# ...but `save_pretrained` on a `PeftModel` writes the adapter only: LoRA's matrices and the
# `modules_to_save` copies. The keys of the saved file:

# %%
table_dir = Path(work.name, "lora_and_table")
with_table.save_pretrained(table_dir)
saved = sorted(load_file(table_dir / "adapter_model.safetensors"))
print(len(saved), "tensors saved; any position embeddings among them?", any(entry in k for k in saved))

# %% [markdown]
# Loading the adapter onto a fresh base raises nothing: the reloaded model carries the *original*
# table. `pe.require_same_parameters` compares the trained and reloaded tables: again peftlab's check
# and peftlab's error, where PEFT says nothing.

# %%
peft_alone = PeftModel.from_pretrained(fresh_base(), table_dir)
accuracy["reloaded by PEFT alone"] = vit.accuracy(peft_alone, test_batches)
with expect_failure("vit_unfrozen_parameter_not_saved"):
    pe.require_same_parameters(with_table, peft_alone, ["position_embeddings"])

# %%
lost = accuracy["LoRA + position embeddings"] - accuracy["reloaded by PEFT alone"]
scorecard.prove(
    "PEFT alone reloads a worse model: the trained table is lost",
    lost,
    f"{accuracy['LoRA + position embeddings']:.1%} trained -> {accuracy['reloaded by PEFT alone']:.1%} "
    f"reloaded ({lost:.1%} lost)",
    needs_pretrained=True,
    at_least=0.04,
)
scorecard.prove(
    "...worse even than never training the table",
    accuracy["LoRA only"] - accuracy["reloaded by PEFT alone"],
    f"reloaded {accuracy['reloaded by PEFT alone']:.1%} vs LoRA only {accuracy['LoRA only']:.1%}",
    needs_pretrained=True,
    above=0.0,
)

# %% [markdown]
# The LoRA weights learned to work *with* the moved table; under the old one the model is worse than
# one that never trained it.
#
# ## Fix 1: save the table beside the adapter
#
# PEFT has no switch for a parameter it does not wrap, so save it yourself: a safetensors file of its
# own in the adapter's folder. To reload, prepare the base as before saving (resized), copy the table
# in, then load the adapter.

# %%
TABLE = "vit.embeddings.position_embeddings"  # the table's name in the base model
SIDECAR = "extra_parameters.safetensors"


def save_table(peft_model: PeftModel, folder: Path) -> Path:
    """Write the position-embedding table beside the adapter that ``save_pretrained`` wrote to ``folder``."""
    table = peft_model.get_base_model().get_parameter(TABLE)
    save_file({TABLE: table.detach().cpu().contiguous()}, Path(folder, SIDECAR))
    return Path(folder, SIDECAR)


@torch.no_grad()
def load_table(base: torch.nn.Module, folder: Path) -> None:
    """Copy the saved table into ``base``, which must be resized as the saved model was."""
    saved, target = load_file(Path(folder, SIDECAR))[TABLE], base.get_parameter(TABLE)
    if saved.shape != target.shape:
        raise ValueError(
            f"saved table {tuple(saved.shape)}, model {tuple(target.shape)}: resize the base first"
        )
    target.copy_(saved)


sidecar = save_table(with_table, table_dir)
restored_base = fresh_base()
load_table(restored_base, table_dir)
restored = PeftModel.from_pretrained(restored_base, table_dir)
pe.require_same_parameters(with_table, restored, ["position_embeddings"])  # raises nothing now
scorecard.check_same(
    "sidecar round trip: identical logits",
    vit.logits(with_table, test_batches),
    vit.logits(restored, test_batches),
)

# %% [markdown]
# ## Fix 2: wrap the module that owns the table, by its full path
#
# `modules_to_save` can wrap `vit.embeddings`, the module that holds the table (and the class token
# and the patch convolution). How to name it? **`modules_to_save` does not match names the way
# `target_modules` does.** Notebook 00's rule for a `target_modules` list: a name matches when it
# *is* the entry or ends with `.` + the entry. A `modules_to_save` entry matches every module whose
# name merely ends with it (`name.endswith(entry)`, no dot needed). Both rules on `"embeddings"`:

# %%
names = [n for n, _ in base.named_modules()]
print("target_modules' rule: ", [n for n in names if n == "embeddings" or n.endswith(".embeddings")])
print("modules_to_save's rule:", [n for n in names if n.endswith("embeddings")])

# %% [markdown]
# With `"embeddings"`, a wrapper ends up inside a wrapper: training and saving go through, loading
# does not (a deep dive below). The full path matches one module only, and PEFT saves and reloads
# it with no extra code.

# %%
peftlab.seed_everything(SEED)
whole = get_peft_model(fresh_base(), lora_config("vit.embeddings"))
print("wrapped:", pe.wrapped_modules(whole), "| trainable:", f"{count_parameters(whole)[0]:,}")
losses["LoRA + vit.embeddings"] = train(whole, train_batches, LORA_STEPS, lr=LR, desc="LoRA + vit.embeddings")
accuracy["LoRA + vit.embeddings"] = vit.accuracy(whole, test_batches)
whole_dir = Path(work.name, "lora_and_embeddings")
whole.save_pretrained(whole_dir)
whole_reloaded = PeftModel.from_pretrained(fresh_base(), whole_dir)
scorecard.check_same(
    'modules_to_save=["vit.embeddings"] round trip: identical logits',
    vit.logits(whole, test_batches),
    vit.logits(whole_reloaded, test_batches),
)

# %% [markdown]
# ## Proof: accuracy at the new resolution
#
# Every figure is the test accuracy on the same held-out images at the new resolution.

# %%
scorecard.check_headroom(
    "fine-tuning at the new resolution beats the resized base",
    base_accuracy,
    accuracy["LoRA + position embeddings"],
    0.3,
)
scorecard.record("accuracy", accuracy)
scorecard.record("pre-trained model at its own resolution", zero_shot_old_size)
display(
    Markdown(
        f"| model at {NEW_SIZE} px | test accuracy |\n|---|---|\n"
        + "\n".join(f"| {name} | {value:.1%} |" for name, value in accuracy.items())
    )
)
short = {
    "base (table resized)": "base",
    "LoRA only": "LoRA\nonly",
    "LoRA + position embeddings": "LoRA +\ntable",
    "reloaded by PEFT alone": "reloaded,\nPEFT alone",
    "LoRA + vit.embeddings": "LoRA +\nvit.embeddings",
}
plots.bars({short[k]: v for k, v in accuracy.items()}, f"test accuracy at {NEW_SIZE} px", "top-1 accuracy")


# %%
def compared(a: str, b: str) -> str:
    """``a`` against ``b`` in words, from the table: 'is 1.9 points above', 'is 0.4 points below'."""
    gap = 100 * (accuracy[a] - accuracy[b])
    return "is level with" if gap == 0 else f"is {abs(gap):.1f} points {'above' if gap > 0 else 'below'}"


display(
    Markdown(
        f"Reading the table: LoRA plus the table {compared('LoRA + position embeddings', 'LoRA only')} "
        f"LoRA alone; LoRA plus the whole embeddings module {compared('LoRA + vit.embeddings', 'LoRA only')} "
        f"LoRA alone. The same model as LoRA plus the table, reloaded by PEFT alone, "
        f"{compared('reloaded by PEFT alone', 'LoRA only')} LoRA alone: the silent loss. Both fixes reload "
        "exactly (the round trips above compare every logit)."
    )
)
plots.loss_curves(losses, f"fine-tuning at {NEW_SIZE} px")

# %% [markdown]
# ## Exercises
#
# Edit the answer cell, then run the cells after it: *correct*, or a hint (retry freely).
#
# ### Exercise 1: which table comes back? (predict first)
#
# Reload fix 2's adapter (`whole_dir`) onto a fresh resized base and read
# `vit.embeddings.position_embeddings` *through* the reloaded model's `ModulesToSaveWrapper`: the
# **trained** table, or the **base** one (as interpolated)? Answer `"trained"` or `"base"`.

# %%
answer = None  # your prediction: "trained" or "base"

# %%
reread = (
    PeftModel.from_pretrained(fresh_base(), whole_dir).get_base_model().vit.embeddings.position_embeddings
)
trained_table = whole.get_base_model().vit.embeddings.modules_to_save["default"].position_embeddings
happened = (
    "trained"
    if torch.equal(reread, trained_table)
    else "base"
    if torch.equal(reread, base.vit.embeddings.position_embeddings)
    else "neither"
)
print("the reloaded model's table is the", happened, "one")
exercises.check(
    "04.1",
    answer,
    expected=happened,
    hint="the wrapper holds two copies of ViTEmbeddings; which one runs, and which one did save_pretrained write?",
    explain="save_pretrained wrote the trained copy of the whole module, from_pretrained put it back as the "
    "wrapper's active copy, and (since PEFT PR #2117) reading an attribute through the wrapper reads that copy.",
)

# %% [markdown]
# ### Exercise 2: a check of your own
#
# Write `unsaved_trainables(peft_model)`: the names (from `named_parameters()`) of the parameters
# that will train but that `save_pretrained` will not write. The check tries it on `with_table`,
# `whole` (fix 2) and `lora_only`.


# %%
def unsaved_trainables(peft_model):
    return None  # your code


# %%
def finds_the_unsaved(f) -> bool:
    """True when ``f`` names the hand-unfrozen table alone, and nothing in fix 2 or LoRA only."""
    found = f(with_table)
    if found is None:
        return False
    found = list(found)
    return len(found) == 1 and found[0].endswith(TABLE) and not list(f(whole)) and not list(f(lora_only))


exercises.check(
    "04.2",
    unsaved_trainables,
    test=finds_the_unsaved,
    hint="look at the names of with_table's trainable parameters (requires_grad): which kinds does the "
    "adapter file hold?",
    explain="save_pretrained writes LoRA's matrices and the modules_to_save copies; any other trainable "
    "parameter is lost at the reload. peftlab's doctor makes the same check (a deep dive below).",
)

# %% [markdown]
# ### Exercise 3: `modules_to_save` on CLIP (predict first)
#
# CLIP's embedding modules are `text_model.embeddings` with `token_embedding` and
# `position_embedding` inside, and `vision_model.embeddings` with `patch_embedding` and
# `position_embedding` inside. How many modules does `modules_to_save=["embedding"]` wrap? (A
# number; the check builds a small CLIP and counts.)

# %%
answer = None  # your answer: a number

# %%
from transformers import CLIPModel

from peftlab.models.clip import tiny_clip_config

clip = CLIPModel(tiny_clip_config(vocab_size=64, eos_token_id=2, bos_token_id=1))
clip_wrapped = pe.wrapped_modules(
    get_peft_model(clip, LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["embedding"]))
)
exercises.check(
    "04.3",
    answer,
    expected=len(clip_wrapped),
    hint="apply modules_to_save's rule (the end of the name, no dot needed) to each of the six names; "
    "mind the last letter",
    explain=f"{', '.join(clip_wrapped)}: every name ending in 'embedding', with or without a dot before it; "
    "the two `embeddings` modules do not end that way. CLIP's tables are nn.Embedding modules, so "
    "modules_to_save can train them (unlike ViT's nn.Parameter). target_modules' rule would match none.",
)

# %% [markdown]
# ## Recap
#
# * A ViT remembers its resolution in its table of position embeddings: interpolate it once.
# * The table is an `nn.Parameter`: `modules_to_save=["position_embeddings"]` trains nothing; unfrozen
#   by hand it trains but is not saved, and the reloaded model is *worse* than LoRA alone. PEFT says
#   nothing either time: check before training and after reloading.
# * Save the table beside the adapter, or wrap its module by the full path (`modules_to_save` matches
#   the end of a name, dot or not). Reload onto a base resized as before.
#
# **Upstream threads**: the report, [huggingface/peft#2099](https://github.com/huggingface/peft/issues/2099);
# the maintainer's fix that fix 2 relies on, [huggingface/peft#2117](https://github.com/huggingface/peft/pull/2117).
#
# ## Deep dive: what interpolation does to the table
#
# Each small square below belongs to one patch position and shows how similar (cosine) that
# position's embedding is to every other position's: the picture of the ViT paper. Bicubic
# interpolation stretches the pre-trained patterns over a finer grid; the in-between positions get
# blends of their neighbours, a reasonable start but not what a model trained at the new size would
# have learned. That is why one may want to train the table.

# %%
table = pe.vit_embeddings(model).position_embeddings.detach().cpu()
pe.plot_similarity(
    {
        f"pre-trained, {OLD_SIZE} px": table,
        f"interpolated to {NEW_SIZE} px": interpolate_table(table, (NEW_SIZE // PATCH,) * 2),
    }
)

# %% [markdown]
# Move the slider to interpolate the same table to other resolutions (in Jupyter or Colab; a static
# copy of the notebook shows the figure above only).

# %%
import ipywidgets as widgets

slider = widgets.IntSlider(
    value=NEW_SIZE, min=2 * PATCH, max=max(4 * OLD_SIZE, NEW_SIZE), step=PATCH, description="image px"
)
figure = widgets.Output()


def show_interpolated(change: dict) -> None:
    grid = (change["new"] // PATCH,) * 2
    with figure:
        figure.clear_output(wait=True)
        display(
            pe.plot_similarity(
                {
                    f"pre-trained, {OLD_SIZE} px": table,
                    f"interpolated to {change['new']} px": interpolate_table(table, grid),
                }
            )
        )


slider.observe(show_interpolated, names="value")
display(widgets.VBox([slider, figure]))

# %% [markdown]
# ## Deep dive: LoRA target names depend on the transformers version
#
# The classic recipe targets ViT's `query` and `value` layers. A later transformers release (printed
# below) rewrote ViT's attention with the names most models use: `q_proj`, `k_proj`, `v_proj`, `o_proj` (under
# `vit.layers.N` instead of `vit.encoder.layer.N`). On such a version the classic list matches
# nothing. The release comes from peftlab's registry (its table of which library release changed
# what, each boundary run on both sides); "bisected" means the release just before it was run too
# and still behaves the old way.

# %%
renamed = change("vit_attention_renamed")
print(
    f"renamed from {renamed.phrase()}; the installed transformers has",
    "the new names" if renamed.holds() else "the classic names",
)
with expect_failure("vit_query_value_targets") as old_names:
    get_peft_model(fresh_base(), LoraConfig(r=8, target_modules=["query", "value"]))

# %% [markdown]
# So `TARGETS` above was read from the model: the names of its linear layers (what
# `target_modules` matches), with how often each occurs.

# %%
print(module_names.linear_layer_names(base))

# %% [markdown]
# ## Deep dive: two more ways that look right
#
# **`target_parameters`.** PEFT added `LoraConfig(target_parameters=[...])`, which puts LoRA on an
# `nn.Parameter`. It is made for weight matrices such as those of mixture-of-experts layers, and it
# wraps the *module that owns* the parameter in a `ParamWrapper` (PEFT's LoRA layer for a
# parameter). Here that is `ViTEmbeddings`, and `ViTModel.forward` reads
# `embeddings.patch_embeddings` through the wrapper, which does not pass the attribute on. A PEFT
# release from before `target_parameters` refuses the keyword instead.

# %%
print("target_parameters exists from", change("peft_target_parameters").phrase())
with expect_failure("vit_target_parameters"):
    config = LoraConfig(r=8, target_modules=TARGETS, target_parameters=["position_embeddings"])
    get_peft_model(fresh_base(), config)(pixel_values=test_batches[0]["pixel_values"].to(device))

# %% [markdown]
# **`modules_to_save=["embeddings"]`.** By the end-of-name rule it wraps `vit.embeddings` and, inside
# it, `vit.embeddings.patch_embeddings`. Training and saving go through; loading the result does not.

# %%
with expect_failure("vit_modules_to_save_embeddings") as nested_seen:
    nested = get_peft_model(fresh_base(), lora_config("embeddings"))
    print("wrapped:", pe.wrapped_modules(nested))
    nested.save_pretrained(Path(work.name, "nested"))
    PeftModel.from_pretrained(fresh_base(), Path(work.name, "nested"))

# %% [markdown]
# ## Deep dive: what PEFT's own fix for the report changed
#
# The maintainer traced the report to `ModulesToSaveWrapper`. It passed on `forward` calls, and
# reads of `.weight` and `.bias`, but no other attribute. `ViTModel.forward` reads
# `self.embeddings.patch_embeddings.projection.weight.dtype`, so wrapping `ViTEmbeddings` broke it:
# `AttributeError: 'ModulesToSaveWrapper' object has no attribute 'patch_embeddings'`. PR #2117
# ("Improved attribute access for modules_to_save", merged 2024-10-02) passes any attribute read on
# to the active copy: fix 2 relies on it. What it did *not* change: `modules_to_save` still matches
# modules only, and parameters outside a wrapped module are still not saved. The releases, from the
# registry:

# %%
from packaging.version import Version

passthrough, nested_reload = change("peft_mts_attribute_passthrough"), change("peft_mts_nested_keyerror")
wrapper = whole.get_base_model().vit.embeddings
scorecard.record(
    "attribute read through the wrapper reaches the trained copy",
    getattr(wrapper, "patch_embeddings", None) is wrapper.modules_to_save["default"].patch_embeddings,
)
display(
    Markdown(
        f"* attribute reads pass through the wrapper from **{passthrough.phrase()}**; installed: "
        f"{'has it' if passthrough.holds() else 'does not have it'}.\n"
        f'* the nested wrapper of `["embeddings"]` reloads on {nested_reload.library} '
        f"{nested_reload.bracket()[0]} and fails with a `KeyError` from **{nested_reload.phrase()}**, up to "
        f"the newest release measured ({max(nested_reload.measured, key=Version)})."
    )
)

# %% [markdown]
# ## Deep dive: the doctor would have told you
#
# The failure, the workaround and `["embeddings"]` raise nothing until the damage is done (or until
# the reload). `peftlab.doctor` sees each of them before training, from the module and parameter
# names alone; the tests check its verdicts (`tests/proofs/nb04_vit_position_embeddings.py`).

# %%
doctor_verdicts = {
    'modules_to_save=["position_embeddings"]': peftlab.doctor(
        fresh_base(), lora_config("position_embeddings")
    ),
    "a table unfrozen by hand": peftlab.doctor(with_table),
    'modules_to_save=["embeddings"]': peftlab.doctor(fresh_base(), lora_config("embeddings")),
    'target_modules=["query", "value"]': peftlab.doctor(
        fresh_base(), LoraConfig(r=8, target_modules=["query", "value"])
    ),
    'modules_to_save=["vit.embeddings"] (fix 2)': peftlab.doctor(fresh_base(), lora_config("vit.embeddings")),
}
raised = {
    'modules_to_save=["embeddings"]': nested_seen.error,
    'target_modules=["query", "value"]': old_names.error,
}
for setup, diagnosis in doctor_verdicts.items():
    error = raised.get(setup)
    mro = [c.__name__ for c in type(error).__mro__] if error is not None else None
    scorecard.record(f"doctor: {setup}", diagnosis.as_dict() | {"raised": mro})
doctor_verdicts["a table unfrozen by hand"]

# %% [markdown]
# peftlab keeps general versions of this notebook's functions (`pe.resize_position_embeddings`, also
# for a `PeftModel` and non-square patches, and `pe.save_extra_parameters` for any list of
# parameters) for its tests and the doctor; the tests check that they agree with the ones above.

# %%
by_package = pe.resize_position_embeddings(copy.deepcopy(model), NEW_SIZE)
scorecard.record(
    "resize: notebook vs package, table",
    scorecard.max_difference(
        base.vit.embeddings.position_embeddings, by_package.vit.embeddings.position_embeddings
    ),
)
scorecard.record(
    "resize: notebook vs package, recorded sizes",
    [
        (
            m.config.image_size,
            m.vit.embeddings.patch_embeddings.image_size,
            getattr(m.vit.embeddings, "image_size", None),
        )
        for m in (base, by_package)
    ],
)
package_dir = Path(work.name, "package_sidecar")
package_dir.mkdir(exist_ok=True)
mine, theirs = load_file(sidecar), load_file(pe.save_extra_parameters(with_table, package_dir, [entry]))
scorecard.record(
    "sidecar: notebook vs package",
    mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine),
)

# %%
scorecard.save()
