"""Class 7, batch/model input mismatch: what the model will refuse in the batch it is about to train on.

* **image tokens vs image features**: an image-text generator swaps each image placeholder token of
  ``input_ids`` for one image feature; when ``max_length`` truncation cut some, or the text lacks the
  token, the counts differ and the forward raises ``ValueError: Image features and image tokens do not
  match``. The tokens are counted in the batch (the placeholder id is the config's); the features are
  what the model's own ``get_image_features`` returns for the batch's pixels, run on the ``meta`` device
  when the model is there (shapes only) and under ``no_grad`` otherwise.
* **inputs required in training mode**: the installed code of the model's modules is read for a
  ``raise`` under ``if <training> and <input> is None`` (some transformers 5 releases did so for
  ``token_type_ids`` in some image-text models, by public reports); a batch without that input fails at
  the first step.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from collections.abc import Mapping

import torch

from peftlab.doctor import image_path
from peftlab.doctor.findings import Finding
from peftlab.module_names import base_model

#: Config keys that hold the image placeholder token id, in the spellings transformers uses.
IMAGE_TOKEN_KEYS = ("image_token_id", "image_token_index")


def _training_test(test: ast.expr) -> str | None:
    """``X`` when ``test`` reads ``<something training> and X is None``, else None."""
    if not (isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And)):
        return None
    training = any("training" in ast.unparse(v) and not isinstance(v, ast.Compare) for v in test.values)
    for value in test.values:
        if (
            isinstance(value, ast.Compare)
            and isinstance(value.left, ast.Name)
            and len(value.ops) == 1
            and isinstance(value.ops[0], ast.Is)
            and isinstance(value.comparators[0], ast.Constant)
            and value.comparators[0].value is None
            and training
        ):
            return value.left.id
    return None


@functools.cache
def _required_in_file(module_name: str) -> frozenset[str]:
    """Inputs that the source file of ``module_name`` raises about when training without them."""
    module = sys.modules.get(module_name)
    try:
        tree = ast.parse(inspect.getsource(module)) if module else None
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    found = set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.If) and any(isinstance(n, ast.Raise) for n in node.body):
            name = _training_test(node.test)
            if name:
                found.add(name)
    return frozenset(found)


def required_in_training(model: torch.nn.Module) -> dict[str, str]:
    """``{input name: module class}`` for each input the installed code raises about in training mode."""
    found: dict[str, str] = {}
    for module in base_model(model).modules():
        cls = type(module)
        for name in _required_in_file(cls.__module__):
            found.setdefault(name, cls.__module__.rsplit(".", 1)[-1])
    return found


def required_input_findings(model: torch.nn.Module, batch: Mapping | None) -> list[Finding]:
    """Inputs required in training mode that the batch lacks (or, with no batch, that it must carry)."""
    findings = []
    forward = set(inspect.signature(type(base_model(model)).forward).parameters)
    for name, where in sorted(required_in_training(model).items()):
        if name not in forward or (batch is not None and batch.get(name) is not None):
            continue
        findings.append(
            Finding(
                "inputs",
                "inputs.required_in_training",
                "error" if batch is not None else "warning",
                f"ValueError: `{name}` is required as a model input when training"
                + (
                    ", at the first training step."
                    if batch is not None
                    else ", unless every batch carries it."
                ),
                f"The installed {where}.py raises when the model is in training mode and {name} is None"
                + ("; the batch has " + ", ".join(sorted(batch)) + "." if batch is not None else "."),
                f"Have the processor return {name} (for token_type_ids: return_token_type_ids=True, or a "
                f"collator that keeps it), and pass it to the model in every training batch.",
                raises="ValueError" if batch is not None else None,
                when="first training step",
            )
        )
    return findings


def image_token_id(model: torch.nn.Module) -> int | None:
    """The image placeholder token id of an image-text model's config, or None: one of
    ``IMAGE_TOKEN_KEYS``, else the ``"<image>"`` entry of a token map the config holds (a dict of token
    strings to ids, as Chameleon's ``vocabulary_map`` on transformers 4.x)."""
    config = getattr(base_model(model), "config", None)
    for key in IMAGE_TOKEN_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    for value in vars(config).values() if config is not None else ():
        if isinstance(value, dict) and isinstance(value.get("<image>"), int):
            return value["<image>"]
    return None


def merge_checked(model: torch.nn.Module) -> tuple[str | None, bool]:
    """How the installed code puts image features into the token embeddings: ``(the message of its
    count check, or None; uses masked_scatter)``. Read from the source files of the model's classes (and
    of the model inside it): a count check's message names image tokens and a (mis)match; without one,
    ``masked_scatter`` fills the placeholders with the first features and drops the rest, and an indexed
    assignment raises a shape mismatch."""
    base = base_model(model)
    inner = getattr(base, getattr(base, "base_model_prefix", "") or "model", None)
    message, scatter = None, False
    for name in {type(m).__module__ for m in (base, inner) if isinstance(m, torch.nn.Module)}:
        try:
            tree = ast.parse(inspect.getsource(sys.modules[name]))
        except (KeyError, OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "masked_scatter":
                scatter = True
            if isinstance(node, (ast.JoinedStr, ast.Constant)) and message is None:
                text = _template(node)
                if text and "match" in text.lower() and "image" in text.lower() and "token" in text.lower():
                    message = text
    return message, scatter


def _template(node: ast.expr) -> str:
    """A string literal's text, an f-string's with each value shown as ``…``."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)


def image_token_findings(model: torch.nn.Module, batch: Mapping | None) -> list[Finding]:
    """Image placeholder tokens in the batch vs the image features the model will produce."""
    token = image_token_id(model)
    ids = batch.get("input_ids") if batch is not None else None
    if token is None or not isinstance(ids, torch.Tensor):
        return []
    tokens = int((ids == token).sum())
    path = image_path.run(model, batch)
    features = path.features if path is not None else None
    if features is None or features == tokens:
        return []
    per_row = [int(n) for n in (ids == token).sum(dim=-1)]
    checked, scatter = merge_checked(model)
    checked = checked.strip() if checked else None
    evidence = (
        f"The batch's input_ids hold {tokens} image placeholder tokens (id {token}; per row {per_row}, "
        f"sequence length {ids.shape[-1]}); {path.getter} makes {features} features for its pixel_values."
        + (" Fewer tokens than features: truncation (max_length) cut some." if tokens < features else "")
    )
    fix = (
        "Do not truncate through the image tokens: raise max_length (or truncate the text before the "
        "processor inserts the image tokens), and let the processor insert one placeholder per image."
    )
    if checked:
        what, severity, raises = (
            f"ValueError: {checked} (the installed code's count check; here {tokens} tokens, {features} "
            "features).",
            "error",
            "ValueError",
        )
    elif scatter and tokens < features:
        what, severity, raises = (
            f"No error: the installed code fills the {tokens} placeholders with the first {tokens} of {features} "
            "image features (masked_scatter, no count check): the rest of the images is dropped, and a row "
            "can receive another row's image features.",
            "silent loss",
            None,
        )
    else:
        what, severity, raises = (
            f"RuntimeError: the installed code writes {features} image features into {tokens} placeholder "
            "positions without checking the counts (a shape mismatch).",
            "error",
            "RuntimeError",
        )
    return [
        Finding(
            "inputs",
            "inputs.image_tokens_vs_features",
            severity,
            what,
            evidence + (" The installed code does not compare the two counts." if not checked else ""),
            fix,
            raises=raises,
            when="first forward",
        )
    ]
