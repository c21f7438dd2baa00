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
# # 05 · Chinese-CLIP: a checkpoint and a config that disagree
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/peftlab/peftlab/blob/main/notebooks/05_chinese_clip_shapes.ipynb)
#
# **The report** ([Chinese-CLIP#302](https://github.com/OFA-Sys/Chinese-CLIP/issues/302)). Someone
# starts fine-tuning from a pre-trained Chinese-CLIP, and loading it stops with hundreds of lines such as
# `size mismatch for ...mlp.c_proj.bias: copying a param with shape torch.Size([1024]) from checkpoint,
# the shape in current model is torch.Size([768])`. The checkpoint was a ViT-L/14 (width 1024); the
# script had built a ViT-B/16 (width 768).
#
# **Learning goals**
#
# * Read a wall of `size mismatch` lines: which two models disagree, and where.
# * See why `ignore_mismatched_sizes=True` is no fix, and check after a load that every weight arrived.
# * Load a checkpoint with the architecture it was saved with: its own `config.json`, or a config read
#   from its tensor shapes.
#
# **Prerequisites**: `from_pretrained` and what a config is; CLIP-style retrieval (notebook 01).

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

peftlab.start("05_chinese_clip_shapes")

# %% tags=["parameters"]
CHECKPOINT = "tiny"  # the checkpoint you have: peftlab's tiny "large"; on Colab "OFA-Sys/chinese-clip-vit-large-patch14" (7.5 GB peak RSS measured on a CPU at real size with batch 4, random weights; GPU memory not measured)
WRONG_CONFIG = "tiny-base"  # the config the script builds: the tiny "base"; on Colab "OFA-Sys/chinese-clip-vit-base-patch16"
DEVICE = None  # None picks CUDA, then MPS, then the CPU
LORA_STEPS = 150
LR = 3e-3
BATCH_SIZE = 64  # training batch; with ViT-L/14 at 224 px, lower it if memory runs short
EVAL_BATCH_SIZE = 64  # evaluation batch (no gradients)
GRADIENT_CHECKPOINTING = False  # True: recompute activations in the backward pass (less memory, slower)
TRAIN_IMAGES, TEST_IMAGES = 256, 256
SEED = 0

# %% [markdown]
# ## The checkpoint and the data
#
# The checkpoint is peftlab's tiny "large" Chinese-CLIP, a miniature of CN-CLIP ViT-L/14: a CLIP-style
# vision tower and a BERT-style text tower, pre-trained on shapes in red, green and blue (once, then
# cached) and saved with `save_pretrained`. Its partner, the tiny "base", has the same text tower and a narrower, shallower
# vision tower, like ViT-B/16 beside ViT-L/14. The task: match each image of a shape with its Chinese
# caption among 16 (红色的圆形 "red circle", ..., 黄色的十字 "yellow cross").

# %%
import torch
from IPython.display import Markdown, display
from transformers import ChineseCLIPModel

from peftlab import checkpoints, data, exercises, plots, retrieval, scorecard, tables
from peftlab.models.chinese_clip import checkpoint_folder, load_chinese_clip, load_config

peftlab.seed_everything(SEED)
folder = checkpoint_folder(CHECKPOINT, size="large")
model, processor = load_chinese_clip(str(folder), device=DEVICE)
device = peftlab.train.model_device(model)
size = processor.image_processor.crop_size["height"]
train_set, test_set = data.train_test_split(TRAIN_IMAGES, TEST_IMAGES, size=size, seed=SEED)
texts = retrieval.prompts(chinese=True)
train_batches = retrieval.batches(processor, train_set, texts, BATCH_SIZE)
test_batches = retrieval.batches(processor, test_set, texts, EVAL_BATCH_SIZE)
# zero-shot: the colours of pre-training only, 12 captions (chance is 1 in 12)
base_set = [s for s in test_set if s.colour in data.BASE_COLOURS]
base_texts = retrieval.prompts(chinese=True, colours=data.BASE_COLOURS)
zero_shot_batches = retrieval.batches(processor, base_set, base_texts, EVAL_BATCH_SIZE)
chance = 1 / len(base_texts)
data.show_samples(test_set)  # titles in English: this machine's fonts may lack Chinese characters

# %% [markdown]
# ## The failure
#
# The training script builds its model from a config (`WRONG_CONFIG`, the "base" one), then loads the
# checkpoint's tensors into it.

# %%
from peftlab.capture import expect_failure

wrong_config = load_config(WRONG_CONFIG, vocab_size=len(processor.tokenizer))
torch.manual_seed(SEED)
wrong_model = ChineseCLIPModel(wrong_config)
with expect_failure("chinese_clip_size_mismatch") as seen:
    wrong_model.load_state_dict(model.state_dict())

# %% [markdown]
# That is the start of a long message: one line per tensor that differs, hundreds with the published
# models. Folded by tensor family, it fits in a few rows: the vision tower and both projections differ,
# the checkpoint has a vision block the model lacks, and the text tower, absent from the table, fits.

# %%
print(f"the error has {len(str(seen.error).splitlines())} lines")
checkpoints.summarise_mismatch(seen.error)

# %% [markdown]
# The report's own lines (the original code's names) fold the same way: 1024 against 768 is ViT-L/14
# against ViT-B/16.

# %%
REPORTED = """
size mismatch for visual.transformer.resblocks.0.mlp.c_proj.bias: copying a param with shape torch.Size([1024]) from checkpoint, the shape in current model is torch.Size([768]).
size mismatch for visual.transformer.resblocks.0.ln_2.weight: copying a param with shape torch.Size([1024]) from checkpoint, the shape in current model is torch.Size([768]).
size mismatch for visual.transformer.resblocks.0.attn.in_proj_weight: copying a param with shape torch.Size([3072, 1024]) from checkpoint, the shape in current model is torch.Size([2304, 768]).
"""
checkpoints.summarise_mismatch(REPORTED)

# %% [markdown]
# ## Why it happens
#
# A config describes a model; a checkpoint's tensors *are* one. Their shapes carry the architecture:
# the patch-embedding kernel is `(width, 3, patch, patch)`, the position table has one row per patch
# plus one, the numbered blocks give the depth, the projection's rows the embedding width. Reading
# them needs only the file's header (`read_shapes`), not the weights. Here is the checkpoint beside
# the model the script built:

# %%
import math
import re


def count_blocks(shapes: dict[str, tuple[int, ...]], prefix: str) -> int:
    """How many numbered blocks ``prefix0.``, ``prefix1.``, ... the checkpoint holds."""
    return len({m.group(1) for name in shapes if (m := re.match(re.escape(prefix) + r"(\d+)\.", name))})


def read_architecture(shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """The architecture of a transformers Chinese-CLIP checkpoint, from its tensor shapes alone."""
    width, _, patch, _ = shapes["vision_model.embeddings.patch_embedding.weight"]
    positions = shapes["vision_model.embeddings.position_embedding.weight"][0]  # patches + class token
    vocab_size, text_width = shapes["text_model.embeddings.word_embeddings.weight"]
    return {
        "vision_width": width,
        "vision_layers": count_blocks(shapes, "vision_model.encoder.layers."),
        "patch_size": patch,
        "image_size": math.isqrt(positions - 1) * patch,
        "projection_dim": shapes["visual_projection.weight"][0],
        "text_width": text_width,
        "text_layers": count_blocks(shapes, "text_model.encoder.layer."),
        "vocab_size": vocab_size,
    }


shapes = checkpoints.read_shapes(folder)
architecture = read_architecture(shapes)
built = read_architecture(checkpoints.model_shapes(wrong_model))
tables.Table(
    ["", "the checkpoint's tensors", "the model built from WRONG_CONFIG", ""],
    [[k, v, built[k], "<- differs" if v != built[k] else ""] for k, v in architecture.items()],
)

# %% [markdown]
# ## The tempting fix: `ignore_mismatched_sizes=True`
#
# This `from_pretrained` option exists to swap in a new head of another size. Here it makes the error
# go away by replacing every tensor that does not fit with a freshly initialised one. The load
# "succeeds"; transformers only logs it.

# %%
from peftlab.noise import captured_transformers_log

torch.manual_seed(SEED)
with captured_transformers_log() as log:  # kept, not printed: the same mismatches as above
    trap_model = ChineseCLIPModel.from_pretrained(folder, config=wrong_config, ignore_mismatched_sizes=True)
trap_model = trap_model.to(device)
print(f"{type(trap_model).__name__} loaded without an error; transformers logged {len(log.lines)} lines.")

# %% [markdown]
# **Check after you load.** `assert_loaded(model, checkpoint)` compares the model with the file,
# tensor by tensor. The `WeightsNotLoadedError` it raises is **peftlab's own detector, not a library
# error**: transformers stays silent here, and this check makes the lost weights visible.

# %%
from peftlab.checkpoints import assert_loaded

with expect_failure("chinese_clip_ignore_mismatched_sizes"):
    assert_loaded(trap_model, folder)

# %% [markdown]
# What is lost shows in use: zero-shot retrieval (no fine-tuning) on the colours of pre-training, 12
# captions.

# %%
trap_zero_shot = retrieval.accuracy(trap_model, zero_shot_batches)
own_zero_shot = retrieval.accuracy(model, zero_shot_batches)  # the same checkpoint, its own config
scorecard.prove(
    "ignore_mismatched_sizes=True leaves zero-shot retrieval at chance",
    trap_zero_shot["image_to_text"] / chance,
    f"image-to-text {trap_zero_shot['image_to_text']:.0%} = {trap_zero_shot['image_to_text'] / chance:.1f} x "
    f"chance ({chance:.0%}); loaded with its own config: {own_zero_shot['image_to_text']:.0%}",
    needs_pretrained=True,
    below=2,
)
scorecard.record("own config: zero-shot image-to-text / chance", own_zero_shot["image_to_text"] / chance)

# %% [markdown]
# ## The fix: load the checkpoint with the architecture it was saved with
#
# **Fix 1: its own `config.json`.** A folder written by `save_pretrained` (or a Hub model) holds the
# config of the very model whose tensors it saved. `from_pretrained(folder)` without `config=` reads it.

# %%
own_model = ChineseCLIPModel.from_pretrained(folder)  # no config=...: the folder's own config.json
n_tensors, n_own = len(shapes), assert_loaded(own_model, folder)  # assert_loaded raises if any differs
scorecard.prove(
    "the checkpoint's own config.json loads every tensor, bit for bit",
    n_tensors - n_own,
    f"{n_tensors - n_own} of {n_tensors} tensors not as saved",
    equals=0,
)
own_model = None  # proven; frees its memory for the real-size checkpoint

# %% [markdown]
# **Fix 2: a config read from the shapes**, when there is no `config.json` (the original repository's
# `.pt` files hold tensors only) or it does not describe its tensors. `identify` reads the
# architecture as above and names the published model that has it; `build_config` gives its config.

# %%
from peftlab.lessons.chinese_clip_architecture import build_config, identify

identified = identify(folder)
print(identified.name)
right_config = build_config(identified)
fixed_model = ChineseCLIPModel.from_pretrained(folder, config=right_config).to(device)
fixed_zero_shot = retrieval.accuracy(fixed_model, zero_shot_batches)
plots.bars(
    {
        "ignore_\nmismatched_\nsizes=True": trap_zero_shot["image_to_text"],
        "config read\nfrom the\nshapes": fixed_zero_shot["image_to_text"],
        "chance": chance,
    },
    "zero-shot image-to-text, 12 captions",
    "top-1 accuracy",
)

# %% [markdown]
# ## The proof
#
# Every tensor arrived, and the model works again.

# %%
n_loaded = assert_loaded(fixed_model, folder)
scorecard.prove(
    "every tensor of the checkpoint loaded",
    n_tensors - n_loaded,
    f"{n_tensors - n_loaded} of {n_tensors} tensors not as saved",
    equals=0,
)
scorecard.prove(
    "zero-shot retrieval on Chinese captions works after the right load",
    min(fixed_zero_shot.values()) / chance,
    f"image-to-text {fixed_zero_shot['image_to_text']:.0%}, text-to-image "
    f"{fixed_zero_shot['text_to_image']:.0%}: the lower is {min(fixed_zero_shot.values()) / chance:.1f} x "
    f"chance ({chance:.0%})",
    needs_pretrained=True,
    at_least=3,
)

# %% [markdown]
# ## Exercises
#
# Each exercise: edit the answer cell, then run the cell after it. It prints *correct*, or a hint.
#
# ### Exercise 1: what does `ignore_mismatched_sizes=True` keep? (predict first)
#
# The text tower has the same shapes in both configs. How many of the checkpoint's text-tower tensors
# does `trap_model` hold exactly as saved: `"all"`, `"some"` or `"none"`?

# %%
answer = None  # your prediction: "all", "some" or "none"

# %%
lost = checkpoints.differences(trap_model, folder)  # the tensors not as saved, by kind
text_names = [k for k in lost["compared"] if k.startswith("text_model.")]
kept = len([k for k in text_names if k not in lost["missing"] + lost["reshaped"] + lost["changed"]])
exercises.check(
    "05.1",
    answer,
    expected="all" if kept == len(text_names) else "none" if kept == 0 else "some",
    hint="the option replaces the tensors whose shapes differ; look at which families the folded table lists.",
    explain=f"{kept} of {len(text_names)} text-tower tensors arrived as saved; one random tower is enough "
    "to break every image-caption match.",
)

# %% [markdown]
# ### Exercise 2: a config that fits every shape (predict first)
#
# Take `right_config` and change only the vision tower's number of attention heads, from
# `right_config.vision_config.num_attention_heads` to 1. Every tensor keeps its shape. Load the
# checkpoint with it: does `assert_loaded` pass or raise? Answer `"passes"` or `"raises"`.

# %%
answer = None  # your prediction: "passes" or "raises"

# %%
import copy

from peftlab.detectors import WeightsNotLoadedError


def load_with_vision_heads(heads: int) -> tuple[str, float, float]:
    """Load the checkpoint with ``heads`` vision attention heads: assert_loaded's verdict, zero-shot
    image-to-text, and the largest change of a zero-shot logit against ``fixed_model``."""
    config = copy.deepcopy(right_config)
    config.vision_config.num_attention_heads = heads
    other = ChineseCLIPModel.from_pretrained(folder, config=config).to(device)
    try:
        assert_loaded(other, folder)
        verdict = "passes"
    except WeightsNotLoadedError:
        verdict = "raises"
    logits = retrieval.logits(other, zero_shot_batches)[0]
    change = scorecard.max_difference(logits, retrieval.logits(fixed_model, zero_shot_batches)[0])
    return verdict, retrieval.accuracy(other, zero_shot_batches)["image_to_text"], change


one_head, one_head_zero_shot, one_head_change = load_with_vision_heads(1)
scorecard.record("one vision head: assert_loaded", one_head)
scorecard.record("one vision head: largest change of a zero-shot logit", one_head_change)
exercises.check(
    "05.2",
    answer,
    expected=one_head,
    hint="what does assert_loaded compare, and does a head count change any tensor's shape?",
    explain=f"every tensor arrives, yet the outputs change (a logit by up to {one_head_change:.2f}; zero-shot "
    f"image-to-text {one_head_zero_shot:.0%} with 1 head, {fixed_zero_shot['image_to_text']:.0%} with "
    f"{right_config.vision_config.num_attention_heads}). No shape shows the head count: build_config takes "
    "it from the identified model. Check the outputs too, not only the tensors.",
)

# %% [markdown]
# ### Exercise 3: write the check
#
# Write `not_as_saved(model, saved)`: the names of the tensors of `saved` (name -> tensor, read from the
# checkpoint below) that `model` does not hold exactly as saved. The check tries it on `fixed_model`,
# `trap_model` and a model with the right shapes and random values.

# %%
saved = checkpoints.read_state_dict(folder)


def not_as_saved(model, saved):
    return None  # your code


# %%
def finds_every_lost_tensor(f) -> bool:
    """``f`` agrees with peftlab's comparison on three models: right, trap, right shapes with random values."""
    torch.manual_seed(SEED)
    for candidate in (fixed_model, trap_model, ChineseCLIPModel(right_config).to(device)):
        lost, found = checkpoints.differences(candidate, saved), f(candidate, saved)
        if found is None or sorted(found) != sorted(lost["missing"] + lost["reshaped"] + lost["changed"]):
            return False
    return True


exercises.check(
    "05.3",
    not_as_saved,
    test=finds_every_lost_tensor,
    hint="model.state_dict(): a name can be missing, have another shape, or hold other values "
    "(torch.equal, both tensors on the CPU).",
    explain="names, then shapes, then values: a load is proven only when all three agree for every tensor.",
)

# %% [markdown]
# ## Recap
#
# * A wall of `size mismatch` lines means the config and the checkpoint describe different models.
#   Fold it by tensor family and the two widths show at once.
# * `ignore_mismatched_sizes=True` is not a fix: it re-initialises every tensor that does not fit,
#   silently. After any load, compare the model with the checkpoint (`assert_loaded`).
# * Load a checkpoint with its own `config.json`; without one, read the architecture from its tensor
#   shapes (`identify`, `build_config`), then check the outputs too.
#
# **Upstream thread**: [OFA-Sys/Chinese-CLIP#302](https://github.com/OFA-Sys/Chinese-CLIP/issues/302)
# (a ViT-L/14-336 checkpoint into a ViT-B/16: `size mismatch ... [1024] ... [768]`).
#
# ## Deep dive: the same mistake through `from_pretrained`
#
# Passing the wrong config to `from_pretrained` fails too, in one of two ways. Older transformers load
# tensor by tensor into the module that owns each one, so the first mismatched tensor stops everything,
# and the message names only that module's class and the parameter's short name (`Error(s) in loading
# state_dict for Linear: size mismatch for weight`). Newer ones load everything, print a *LOAD REPORT*
# (one row per tensor that is MISSING from the file, UNEXPECTED in it, or a MISMATCH of shapes,
# numbered layers folded) and then raise, pointing at `ignore_mismatched_sizes`.

# %%
from peftlab.registry import change

load_report = change("load_report")
last_without, _ = load_report.bracket()
display(
    Markdown(
        f"The LOAD REPORT came with transformers {load_report.release}"
        + (f" ({last_without} does not have it)" if last_without else "")
        + f"; your transformers {'has it' if load_report.holds() else 'stops at the first mismatched tensor'}:"
    )
)
with captured_transformers_log() as report, expect_failure("chinese_clip_wrong_config") as seen_pretrained:
    ChineseCLIPModel.from_pretrained(folder, config=wrong_config)
if report.lines:  # the LOAD REPORT: kept, not printed (the same tensors as the folded table)
    rows = {
        status: sum(f"| {status}" in line for line in report.lines) for status in ("MISMATCH", "UNEXPECTED")
    }
    print(
        f"before the error, a LOAD REPORT of {len(report.lines)} lines:",
        rows["MISMATCH"],
        "MISMATCH rows,",
        rows["UNEXPECTED"],
        "UNEXPECTED rows",
    )

# %% [markdown]
# ## Deep dive: the published models, and a checkpoint that matches none
#
# `identify` (which the doctor uses too) reads the shapes with `infer_architecture`, which knows more
# layouts than `read_architecture` above (the original repository's names, a ResNet vision tower,
# wrapper prefixes), then looks the architecture up in the correspondence table of the original
# release (github.com/OFA-Sys/Chinese-CLIP). Below, each published model, built at full size on
# PyTorch's `meta` device (shapes only, no memory, nothing downloaded), and what `identify` reads.

# %%
from peftlab.lessons import chinese_clip_architecture as cca

package_view = cca.infer_architecture(shapes)
scorecard.record(
    "read_architecture agrees with infer_architecture",
    architecture == {k: getattr(package_view, k) for k in architecture},
)
rows = []
for release in cca.RELEASES:
    vision, text = cca.VISION_MODELS[release["vision"]], cca.TEXT_MODELS[release["text"]]
    if release["hub_id"]:
        with torch.device("meta"):
            read_as = identify(
                ChineseCLIPModel(cca.release_config(release)).state_dict(), include_tiny=False
            ).name
    else:
        read_as = "(no transformers port: ResNet vision tower)"
    rows.append(
        [release["name"], release["vision"], release["text"], vision["width"], vision["layers"]]
        + [vision["patch_size"], vision["image_size"], text["width"], release["hub_id"] or "-", read_as]
    )
tables.Table(
    ["release", "--vision-model", "--text-model", "vision width", "layers", "patch", "image"]
    + ["text width", "transformers", "shapes read as"],
    rows,
)

# %% [markdown]
# A checkpoint that matches no row is reported as such, with the towers that match on their own.
# Here a ViT-L/14 vision tower with the large RoBERTa text tower, a pair that was never released:

# %%
never_released = cca.release_config({"vision": "ViT-L-14", "text": "RoBERTa-wwm-ext-large-chinese"})
with torch.device("meta"):
    print(identify(ChineseCLIPModel(never_released).state_dict(), include_tiny=False))

# %% [markdown]
# ## Deep dive: LoRA on both towers, and what fine-tuning gains and loses
#
# The usual LoRA recipe for CLIP targets `["q_proj", "v_proj"]`. Chinese-CLIP's vision tower is
# CLIP's and has those names; its text tower is BERT's, where the same projections are called `query`,
# `key` and `value`. So the recipe adapts the vision tower alone, silently: `get_peft_model` complains
# only when *no* module matches.

# %%
from peft import LoraConfig, get_peft_model

from peftlab.models.chinese_clip import lora_layers_per_tower


def adapted_layers(targets: list[str]) -> dict[str, int]:
    """LoRA layers per tower for ``target_modules=targets``: module names decide, so the model is built
    on PyTorch's meta device (shapes only, no weights)."""
    with torch.device("meta"):
        skeleton = ChineseCLIPModel(right_config)
    return lora_layers_per_tower(
        get_peft_model(skeleton, LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    )


both_towers_targets = ["q_proj", "v_proj", "query", "value"]
vision_only, both_towers = adapted_layers(["q_proj", "v_proj"]), adapted_layers(both_towers_targets)
tables.Table(
    ["target_modules", "vision tower", "text tower"],
    [
        ['["q_proj", "v_proj"]', vision_only["vision_model"], vision_only["text_model"]],
        [str(both_towers_targets), both_towers["vision_model"], both_towers["text_model"]],
    ],
)

# %%
scorecard.record("LoRA layers per tower, q_proj and v_proj", vision_only)
scorecard.check(
    "the wider target list adapts both towers",
    min(both_towers["vision_model"], both_towers["text_model"]) > 0,
    f"{both_towers['vision_model']} vision layers, {both_towers['text_model']} text layers",
)

# %% [markdown]
# Then 256 training images in four colours, yellow included (pre-training never showed yellow), each
# pulled towards its caption among all 16; measured on 256 held-out images. Before the first step, one
# backward pass checks that the loss reaches every LoRA layer of the text tower.

# %%
peftlab.seed_everything(SEED)
peft_model = get_peft_model(
    load_chinese_clip(str(folder), device=DEVICE)[0],
    LoraConfig(r=8, lora_alpha=16, target_modules=both_towers_targets),
)
if GRADIENT_CHECKPOINTING:
    peft_model.get_base_model().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )


def per_colour(model: torch.nn.Module, batch_list: list[dict]) -> dict[str, dict[str, float]]:
    """Per colour: the share of images that find their caption, and the share whose caption has their colour."""
    scores, labels = retrieval.logits(model, batch_list)
    predicted, n_shapes = scores.argmax(dim=1), len(data.SHAPES)
    out = {}
    for i, colour in enumerate(data.COLOURS):
        mine = labels // n_shapes == i
        out[colour] = {
            "caption": (predicted[mine] == labels[mine]).float().mean().item(),
            "colour": (predicted[mine] // n_shapes == i).float().mean().item(),
        }
    return out


def r_precision(model: torch.nn.Module) -> float:
    """Text to image: each caption's share of its class among its n best images (n: the class's images)."""
    scores, labels = retrieval.logits(model, test_batches)
    return (
        torch.stack(
            [
                (labels[scores[:, c].topk(int((labels == c).sum())).indices] == c).float().mean()
                for c in labels.unique()
            ]
        )
        .mean()
        .item()
    )


before, before_overall = per_colour(peft_model, test_batches), retrieval.accuracy(peft_model, test_batches)
before_r_precision = r_precision(peft_model)  # LoRA starts at zero: this is the base model
retrieval.loss(peft_model, peftlab.train.to_device(train_batches[0], device)).backward()
text_lora = {n: p for n, p in peft_model.named_parameters() if ".text_model." in n and "lora_B" in n}
reached = [n for n, p in text_lora.items() if p.grad is not None and p.grad.abs().sum() > 0]
peft_model.zero_grad(set_to_none=True)
scorecard.record("text-tower lora_B matrices reached at step 1", [len(reached), len(text_lora)])

# %%
losses = peftlab.train.train(
    peft_model, train_batches, LORA_STEPS, lr=LR, loss_fn=retrieval.loss, desc="LoRA on both towers"
)
after, after_overall = per_colour(peft_model, test_batches), retrieval.accuracy(peft_model, test_batches)
after_r_precision = r_precision(peft_model)
on_training_images = per_colour(peft_model, train_batches)
plots.loss_curves({"Chinese-CLIP + LoRA, both towers": losses})

# %% [markdown]
# What fine-tuning gained and what it lost, per colour. For the held-out images: the share that finds
# its caption (right colour *and* shape) before and after, and the share whose chosen caption at least
# has the right colour; then the first figure on the training images.

# %%
tables.Table(
    ["colour", "caption found: base", "LoRA", "change", "right colour: LoRA", "training images: LoRA"],
    [
        [c]
        + [f"{before[c]['caption']:.0%}", f"{after[c]['caption']:.0%}"]
        + [f"{after[c]['caption'] - before[c]['caption']:+.0%}", f"{after[c]['colour']:.0%}"]
        + [f"{on_training_images[c]['caption']:.0%}"]
        for c in data.COLOURS
    ],
)

# %%
base_changes = {c: after[c]["caption"] - before[c]["caption"] for c in data.BASE_COLOURS}
worst = min(base_changes, key=base_changes.get)
fell = [c for c in data.BASE_COLOURS if base_changes[c] < 0]
overfit = [c for c in fell if on_training_images[c]["caption"] > after[c]["caption"]]
colour_right = all(after[c]["colour"] == 1 for c in data.COLOURS)
display(
    Markdown(
        f"**Gained**: yellow, {before['yellow']['caption']:.0%} -> {after['yellow']['caption']:.0%}. "
        + "**Lost**: "
        + (
            ", ".join(f"{c} {before[c]['caption']:.0%} -> {after[c]['caption']:.0%}" for c in fell)
            or "nothing"
        )
        + ". "
        + (
            "After LoRA every held-out image picks a caption of its own colour: what goes wrong is the shape. "
            if colour_right
            else ""
        )
        + (
            "On the training images "
            + ", ".join(f"{c} reaches {on_training_images[c]['caption']:.0%}" for c in overfit)
            + f": the adapters fit these {len(train_set)} images better than new ones (overfitting)."
            if overfit
            else ""
        )
    )
)
# %% [markdown]
# The proof is per colour too: yellow must close at least 20% of its gap to 100%, and no colour of
# pre-training may lose more than 30 percentage points. Both thresholds come from the spread over 30
# runs (5 values of `SEED`, 3 pre-trainings of the tiny checkpoint, both library versions this project
# tests) with a margin; `tests/proofs/nb05_chinese_clip_shapes.py` gives the figures. Accuracy over
# all colours together is recorded for the tests, not shown: the gain on yellow and the losses on the
# other colours pull against each other, and over those runs it did not always rise.

# %%
scorecard.check_headroom(
    "yellow, the colour pre-training never showed, is learned",
    before["yellow"]["caption"],
    after["yellow"]["caption"],
    0.20,
)
scorecard.prove(
    "no colour of pre-training loses more than 30 percentage points",
    base_changes[worst],
    f"worst: {worst}, {before[worst]['caption']:.0%} -> {after[worst]['caption']:.0%} ({base_changes[worst]:+.2f})",
    needs_pretrained=True,
    at_least=-0.30,
)
scorecard.record("LoRA per colour, base", before)
scorecard.record("LoRA per colour, after", after)
scorecard.record("LoRA per colour, training images after", on_training_images)
scorecard.record(
    "image-to-text, share of the gap closed",
    scorecard.headroom_closed(before_overall["image_to_text"], after_overall["image_to_text"]),
)
scorecard.record(
    "text-to-image R-precision, share of the gap closed",
    scorecard.headroom_closed(before_r_precision, after_r_precision),
)
scorecard.record(
    "text-to-image top-1, base and after", [before_overall["text_to_image"], after_overall["text_to_image"]]
)

# %% [markdown]
# ## Deep dive: the doctor would have told you
#
# `peftlab.doctor(model, peft_config, checkpoint)` compares the checkpoint's shapes with the model
# before loading (reading the file's header, not its weights) and names the config that fits; it also
# sees LoRA targets that leave one tower untouched.

# %%
flagged = peftlab.doctor(wrong_model, checkpoint=folder)
flagged_tower = peftlab.doctor(
    fixed_model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
)
clear = peftlab.doctor(
    fixed_model, LoraConfig(r=8, lora_alpha=16, target_modules=both_towers_targets), folder
)
scorecard.record("doctor: wrong config", flagged.as_dict())
scorecard.record("doctor: q_proj and v_proj", flagged_tower.as_dict())
scorecard.record("doctor: fixed load, both towers", clear.as_dict())
scorecard.record("raised by the failing load", [cls.__name__ for cls in type(seen.error).__mro__])
flagged

# %%
scorecard.save()
