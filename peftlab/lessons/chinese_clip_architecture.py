"""Read a Chinese-CLIP checkpoint's architecture from its tensor shapes (notebook 05's lesson).

A config that disagrees with the checkpoint gives a wall of ``size mismatch`` lines, or, with
``ignore_mismatched_sizes=True``, a model whose weights were silently re-initialised. The shapes
of the saved tensors tell the truth: the patch-embedding kernel gives the vision width and patch
size, the position table the image size, the numbered blocks the depths, the word embeddings the
text width and vocabulary, the projections the embedding width.

* :func:`infer_architecture` turns shapes into an :class:`Architecture`; it understands the
  transformers names (``vision_model.encoder.layers.0...``) and those of the original
  Chinese-CLIP code (``visual.transformer.resblocks.0...``, as in the original report);
* :func:`identify` names the published model with that architecture, from the correspondence
  table below (kept as data), and :func:`build_config` builds the matching ``ChineseCLIPConfig``.

Reading shapes, summarising a size mismatch and proving a load work for any model: they live in
:mod:`peftlab.checkpoints`.

The head count is not visible in any shape: it comes from the identified model (the published
ones use heads of width 64, ViT-H-14's vision tower 80); for an unknown checkpoint it is assumed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from peftlab.checkpoints import Shapes, read_shapes

# ---------------------------------------------------------------------------------------------
# The correspondence table of the original release (github.com/OFA-Sys/Chinese-CLIP): the model
# configs of its package (cn_clip/clip/model_configs/*.json), the released checkpoints built from
# them, and their transformers ports on the Hub.
# ---------------------------------------------------------------------------------------------

#: Vision towers (``--vision-model`` of the original training scripts).
VISION_MODELS: dict[str, dict] = {
    "ViT-B-16": {
        "width": 768,
        "layers": 12,
        "patch_size": 16,
        "image_size": 224,
        "head_width": 64,
        "embed_dim": 512,
    },
    "ViT-L-14": {
        "width": 1024,
        "layers": 24,
        "patch_size": 14,
        "image_size": 224,
        "head_width": 64,
        "embed_dim": 768,
    },
    "ViT-L-14-336": {
        "width": 1024,
        "layers": 24,
        "patch_size": 14,
        "image_size": 336,
        "head_width": 64,
        "embed_dim": 768,
    },
    "ViT-H-14": {
        "width": 1280,
        "layers": 32,
        "patch_size": 14,
        "image_size": 224,
        "head_width": 80,
        "embed_dim": 1024,
    },
    "RN50": {
        "width": 64,
        "layers": (3, 4, 6, 3),
        "patch_size": None,
        "image_size": 224,
        "head_width": 64,
        "embed_dim": 1024,
    },
}
#: Text towers (``--text-model``): BERT-style encoders; vocabulary 21,128, 512 positions.
TEXT_MODELS: dict[str, dict] = {
    "RoBERTa-wwm-ext-base-chinese": {
        "width": 768,
        "layers": 12,
        "heads": 12,
        "intermediate": 3072,
        "vocab_size": 21128,
    },
    "RoBERTa-wwm-ext-large-chinese": {
        "width": 1024,
        "layers": 24,
        "heads": 16,
        "intermediate": 4096,
        "vocab_size": 21128,
    },
    "RBT3-chinese": {"width": 768, "layers": 3, "heads": 12, "intermediate": 3072, "vocab_size": 21128},
}
#: The released checkpoints: vision + text tower, original file, transformers port (None: no port).
RELEASES: list[dict] = [
    {
        "name": "CN-CLIP RN50",
        "vision": "RN50",
        "text": "RBT3-chinese",
        "file": "clip_cn_rn50.pt",
        "hub_id": None,
    },
    {
        "name": "CN-CLIP ViT-B/16",
        "vision": "ViT-B-16",
        "text": "RoBERTa-wwm-ext-base-chinese",
        "file": "clip_cn_vit-b-16.pt",
        "hub_id": "OFA-Sys/chinese-clip-vit-base-patch16",
    },
    {
        "name": "CN-CLIP ViT-L/14",
        "vision": "ViT-L-14",
        "text": "RoBERTa-wwm-ext-base-chinese",
        "file": "clip_cn_vit-l-14.pt",
        "hub_id": "OFA-Sys/chinese-clip-vit-large-patch14",
    },
    {
        "name": "CN-CLIP ViT-L/14@336px",
        "vision": "ViT-L-14-336",
        "text": "RoBERTa-wwm-ext-base-chinese",
        "file": "clip_cn_vit-l-14-336.pt",
        "hub_id": "OFA-Sys/chinese-clip-vit-large-patch14-336px",
    },
    {
        "name": "CN-CLIP ViT-H/14",
        "vision": "ViT-H-14",
        "text": "RoBERTa-wwm-ext-large-chinese",
        "file": "clip_cn_vit-h-14.pt",
        "hub_id": "OFA-Sys/chinese-clip-vit-huge-patch14",
    },
]


def tiny_models() -> tuple[dict[str, dict], dict[str, dict], list[dict]]:
    """peftlab's tiny pair as (vision models, text models, releases), in the format of the table.

    Their vocabulary depends on the tokenizer they were built with, so it is left open (None).
    """
    from peftlab.models.chinese_clip import TINY_COMMON, TINY_SIZES

    vision, text, releases = {}, {}, []
    for size, s in TINY_SIZES.items():
        c, mirror = TINY_COMMON, {"base": "CN-CLIP ViT-B/16", "large": "CN-CLIP ViT-L/14"}[size]
        vision[f"tiny-vit-{size}"] = {
            "width": s["vision_width"],
            "layers": s["vision_layers"],
            "patch_size": c["patch_size"],
            "image_size": c["image_size"],
            "head_width": c["head_width"],
            "embed_dim": s["projection"],
        }
        text[f"tiny-text-{size}"] = {
            "width": s["text_width"],
            "layers": s["text_layers"],
            "heads": s["text_width"] // c["head_width"],
            "intermediate": 4 * s["text_width"],
            "vocab_size": None,
        }
        releases.append(
            {
                "name": f"peftlab tiny '{size}' (a miniature of {mirror})",
                "vision": f"tiny-vit-{size}",
                "text": f"tiny-text-{size}",
                "file": None,
                "hub_id": None,
                "tiny": size,
            }
        )
    return vision, text, releases


# ---------------------------------------------------------------------------------------------
# Shapes -> architecture
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """What the tensor shapes say about a Chinese-CLIP checkpoint (``None``: not visible)."""

    naming: str  # "transformers" or "cn_clip" (the original repository's names)
    vision_kind: str  # "vit" or "resnet"
    vision_width: int
    vision_layers: int | tuple[int, ...]
    patch_size: int | None
    image_size: int
    vision_intermediate: int | None
    text_width: int
    text_layers: int
    text_intermediate: int
    vocab_size: int
    text_positions: int
    type_vocab_size: int
    projection_dim: int


def _strip_prefix(shapes: Shapes) -> Shapes:
    """Drop a wrapper prefix (``module.`` of DistributedDataParallel, ``model.``) from every name."""
    for marker in ("vision_model.", "visual.", "text_model.", "bert."):
        found = [k for k in shapes if marker in k]
        if found:
            prefix = found[0][: found[0].index(marker)]
            if prefix and all(k.startswith(prefix) for k in shapes):
                return {k[len(prefix) :]: v for k, v in shapes.items()}
            return shapes
    return shapes


def _count(shapes: Shapes, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for k in shapes if (m := pattern.match(k))})


def _need(shapes: Shapes, name: str) -> tuple[int, ...]:
    if name not in shapes:
        raise ValueError(
            f"Not a Chinese-CLIP checkpoint: no tensor {name!r} among its {len(shapes)} tensors "
            f"(first ones: {sorted(shapes)[:3]})."
        )
    return shapes[name]


def _grid_side(positions: int) -> int:
    side = math.isqrt(positions - 1)
    if side * side != positions - 1:
        raise ValueError(f"A position table of {positions} rows is not a square grid plus a class token.")
    return side


def infer_architecture(source: str | Path | Mapping) -> Architecture:
    """Read the architecture of a Chinese-CLIP checkpoint from its tensor shapes alone.

    ``source``: anything :func:`peftlab.checkpoints.read_shapes` takes, or a ``{name: shape}`` dict.
    """
    shapes = _strip_prefix(read_shapes(source) if not _is_shape_dict(source) else dict(source))
    if "vision_model.embeddings.patch_embedding.weight" in shapes:
        return _transformers_architecture(shapes)
    if "visual.conv1.weight" in shapes:
        return _cn_clip_architecture(shapes)
    _need(shapes, "vision_model.embeddings.patch_embedding.weight")  # raises with a clear message
    raise AssertionError  # unreachable


def _is_shape_dict(source: object) -> bool:
    return isinstance(source, Mapping) and all(isinstance(v, tuple) for v in source.values())


def _transformers_architecture(s: Shapes) -> Architecture:
    width, _, patch, _ = _need(s, "vision_model.embeddings.patch_embedding.weight")
    grid = _grid_side(_need(s, "vision_model.embeddings.position_embedding.weight")[0])
    vocab, text_width = _need(s, "text_model.embeddings.word_embeddings.weight")
    return Architecture(
        naming="transformers",
        vision_kind="vit",
        vision_width=width,
        vision_layers=_count(s, "vision_model.encoder.layers."),
        patch_size=patch,
        image_size=grid * patch,
        vision_intermediate=_need(s, "vision_model.encoder.layers.0.mlp.fc1.weight")[0],
        text_width=text_width,
        text_layers=_count(s, "text_model.encoder.layer."),
        text_intermediate=_need(s, "text_model.encoder.layer.0.intermediate.dense.weight")[0],
        vocab_size=vocab,
        text_positions=_need(s, "text_model.embeddings.position_embeddings.weight")[0],
        type_vocab_size=_need(s, "text_model.embeddings.token_type_embeddings.weight")[0],
        projection_dim=_need(s, "visual_projection.weight")[0],
    )


def _cn_clip_architecture(s: Shapes) -> Architecture:
    vocab, text_width = _need(s, "bert.embeddings.word_embeddings.weight")
    text = {
        "text_width": text_width,
        "text_layers": _count(s, "bert.encoder.layer."),
        "text_intermediate": _need(s, "bert.encoder.layer.0.intermediate.dense.weight")[0],
        "vocab_size": vocab,
        "text_positions": _need(s, "bert.embeddings.position_embeddings.weight")[0],
        "type_vocab_size": _need(s, "bert.embeddings.token_type_embeddings.weight")[0],
        "projection_dim": _need(s, "text_projection")[1],
    }
    if "visual.layer1.0.conv1.weight" in s:  # ModifiedResNet: 3-conv stem, 4 stages, attention pool
        grid = _grid_side(_need(s, "visual.attnpool.positional_embedding")[0])
        return Architecture(
            naming="cn_clip",
            vision_kind="resnet",
            vision_width=_need(s, "visual.conv3.weight")[0],
            vision_layers=tuple(_count(s, f"visual.layer{i}.") for i in range(1, 5)),
            patch_size=None,
            image_size=grid * 32,
            vision_intermediate=None,
            **text,
        )
    width, _, patch, _ = _need(s, "visual.conv1.weight")
    grid = _grid_side(_need(s, "visual.positional_embedding")[0])
    return Architecture(
        naming="cn_clip",
        vision_kind="vit",
        vision_width=width,
        vision_layers=_count(s, "visual.transformer.resblocks."),
        patch_size=patch,
        image_size=grid * patch,
        vision_intermediate=_need(s, "visual.transformer.resblocks.0.mlp.c_fc.weight")[0],
        **text,
    )


# ---------------------------------------------------------------------------------------------
# Architecture -> published model -> config
# ---------------------------------------------------------------------------------------------


class UnknownCheckpointError(ValueError):
    """The checkpoint's shapes match no model of the correspondence table."""


def _tables(include_tiny: bool = True) -> tuple[dict[str, dict], dict[str, dict], list[dict]]:
    """The correspondence table (vision models, text models, releases), with the tiny pair or not."""
    if not include_tiny:
        return dict(VISION_MODELS), dict(TEXT_MODELS), list(RELEASES)
    tv, tt, tr = tiny_models()
    return {**VISION_MODELS, **tv}, {**TEXT_MODELS, **tt}, RELEASES + tr


def _vision_matches(arch: Architecture, v: dict) -> bool:
    kind = "resnet" if v["patch_size"] is None else "vit"
    layers = tuple(v["layers"]) if isinstance(v["layers"], (list, tuple)) else v["layers"]
    return (kind, v["width"], layers, v["patch_size"], v["image_size"], v["embed_dim"]) == (
        arch.vision_kind,
        arch.vision_width,
        arch.vision_layers,
        arch.patch_size,
        arch.image_size,
        arch.projection_dim,
    )


def _text_matches(arch: Architecture, t: dict) -> bool:
    vocab_ok = t.get("vocab_size") is None or t["vocab_size"] == arch.vocab_size
    return vocab_ok and (t["width"], t["layers"], t["intermediate"]) == (
        arch.text_width,
        arch.text_layers,
        arch.text_intermediate,
    )


@dataclass
class Identification:
    """The architecture read from a checkpoint, the model it matches (if any), and why."""

    architecture: Architecture
    release: dict | None
    vision_model: str | None  # the vision tower it matches, even when the pair was never released
    text_model: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The matched model's name, or a clear "matches no known model"."""
        return self.release["name"] if self.release else "matches no known Chinese-CLIP model"

    def summary(self) -> str:
        """A few lines for a learner: what it is, how to load it, and any caveat."""
        a = self.architecture
        lines = [
            f"vision: {a.vision_kind}, width {a.vision_width}, layers {a.vision_layers}, patch {a.patch_size}, "
            f"image {a.image_size} px | text: width {a.text_width}, layers {a.text_layers}, "
            f"vocabulary {a.vocab_size} | projection {a.projection_dim}",
            f"-> {self.name}",
        ]
        if self.release and self.release.get("hub_id"):
            lines.append(f"   transformers: ChineseCLIPModel.from_pretrained({self.release['hub_id']!r})")
        if self.release and self.release.get("file"):
            lines.append(
                f"   original code: --vision-model {self.release['vision']} --text-model {self.release['text']}"
            )
        return "\n".join(lines + [f"   note: {n}" for n in self.notes])

    __str__ = summary


def identify(
    source: str | Path | Mapping | Architecture, include_tiny: bool = True, strict: bool = False
) -> Identification:
    """Name the published model whose architecture the checkpoint has.

    Compares vision kind, width, depth, patch and image size, the projection width, and the text
    tower's width, depth, feed-forward width and vocabulary with :data:`RELEASES` (plus peftlab's
    tiny pair when ``include_tiny``). With no match the result says so, names the towers that do
    match on their own, and (``strict=True``) raises :class:`UnknownCheckpointError`.
    """
    arch = source if isinstance(source, Architecture) else infer_architecture(source)
    vision, text, releases = _tables(include_tiny)
    release = next(
        (
            r
            for r in releases
            if _vision_matches(arch, vision[r["vision"]]) and _text_matches(arch, text[r["text"]])
        ),
        None,
    )
    if release:
        return Identification(arch, release, release["vision"], release["text"])
    v_name = next((n for n, v in vision.items() if _vision_matches(arch, v)), None)
    t_name = next((n for n, t in text.items() if _text_matches(arch, t)), None)
    note = f"vision tower: {v_name or 'none known'}; text tower: {t_name or 'none known'}"
    if v_name and t_name:
        note += "; each tower is known, but this pair was never released"
    if not (v_name and t_name):
        note += (
            ". The config built from the shapes assumes heads of width 64 where the tower is unknown: "
            "the head count is not visible in any shape, so check it against the checkpoint's config.json"
        )
    if strict:
        raise UnknownCheckpointError(f"This checkpoint matches no known Chinese-CLIP model ({note}).")
    notes = [note + "."]
    return Identification(arch, release, v_name, t_name, notes)


def build_config(ident: Identification | Architecture):  # noqa: ANN201  (a ChineseCLIPConfig)
    """The ``ChineseCLIPConfig`` that fits the checkpoint, heads taken from the identified model."""
    from transformers import ChineseCLIPConfig

    ident = ident if isinstance(ident, Identification) else identify(ident)
    a = ident.architecture
    if a.vision_kind != "vit":
        raise ValueError(
            f"{ident.name}: transformers' ChineseCLIPModel has no ResNet vision tower; load this "
            "checkpoint with the original code (cn_clip)."
        )
    vision, text, _ = _tables()
    head_width = vision[ident.vision_model]["head_width"] if ident.vision_model else 64
    text_heads = text[ident.text_model]["heads"] if ident.text_model else max(1, a.text_width // 64)
    return ChineseCLIPConfig(
        text_config={
            "vocab_size": a.vocab_size,
            "hidden_size": a.text_width,
            "num_hidden_layers": a.text_layers,
            "num_attention_heads": text_heads,
            "intermediate_size": a.text_intermediate,
            "max_position_embeddings": a.text_positions,
            "type_vocab_size": a.type_vocab_size,
        },
        vision_config={
            "hidden_size": a.vision_width,
            "num_hidden_layers": a.vision_layers,
            "num_attention_heads": max(1, a.vision_width // head_width),
            "intermediate_size": a.vision_intermediate,
            "image_size": a.image_size,
            "patch_size": a.patch_size,
        },
        projection_dim=a.projection_dim,
    )


def config_from_checkpoint(source: str | Path | Mapping):  # noqa: ANN201  (a ChineseCLIPConfig)
    """Shortcut: :func:`identify` the checkpoint, then :func:`build_config`."""
    return build_config(identify(source))


def release_config(release: dict):  # noqa: ANN201  (a ChineseCLIPConfig)
    """The full-size ``ChineseCLIPConfig`` of a row of :data:`RELEASES` (as its Hub port has it)."""
    from transformers import ChineseCLIPConfig

    v, t = VISION_MODELS[release["vision"]], TEXT_MODELS[release["text"]]
    if v["patch_size"] is None:
        raise ValueError(f"{release['name']} has a ResNet vision tower, which transformers does not port.")
    return ChineseCLIPConfig(
        text_config={
            "vocab_size": t["vocab_size"],
            "hidden_size": t["width"],
            "num_hidden_layers": t["layers"],
            "num_attention_heads": t["heads"],
            "intermediate_size": t["intermediate"],
        },
        vision_config={
            "hidden_size": v["width"],
            "num_hidden_layers": v["layers"],
            "num_attention_heads": v["width"] // v["head_width"],
            "intermediate_size": 4 * v["width"],
            "image_size": v["image_size"],
            "patch_size": v["patch_size"],
        },
        projection_dim=v["embed_dim"],
    )
