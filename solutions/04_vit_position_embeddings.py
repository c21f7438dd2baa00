"""Solutions to the exercises of notebook 04 (ViT position embeddings); ``ns`` is the notebook's namespace."""


def exercise_1(ns: dict) -> str:
    """Predict first: the table read through the reloaded model is the **trained** one.

    ``modules_to_save=["vit.embeddings"]`` wraps the whole ``ViTEmbeddings`` in a
    ``ModulesToSaveWrapper``: the original module stays frozen, a copy trains, and
    ``save_pretrained`` writes that copy (table, class token, patch convolution).
    ``PeftModel.from_pretrained`` loads it back into the wrapper's active copy, and since PEFT PR
    #2117 reading an attribute through the wrapper reads the active copy. (Contrast trap 3: a table
    unfrozen by hand is never saved, and the reload brings back the base one.) The notebook judges
    the answer against what the installed stack really did: should a PEFT release stop passing
    attribute reads through, this solution turns CI red and the notebook's fix 2 needs a new look.
    """
    return "trained"


def exercise_2(ns: dict) -> str:
    """Predict first: **error**. The saved copy of ``vit.embeddings`` carries a 65-row table (64 px);
    the unresized 32 px model has 17 rows, so ``PeftModel.from_pretrained`` stops with a size-mismatch
    error (a ``RuntimeError`` from ``load_state_dict``) instead of loading. Loud, at least: resize
    the base exactly as before saving (``fresh_base``), then load.
    """
    return "error"


def exercise_3(ns: dict) -> int:
    """1,025 rows: (512 / 16)² = 32 x 32 = 1,024 patches, plus one row for the class token.

    At 224 px the table has (224 / 16)² + 1 = 197 rows; interpolation turns the 14 x 14 grid of
    patch rows into a 32 x 32 one and keeps the class token's row as it is.
    """
    return 1 + (512 // 16) ** 2


def exercise_4(ns: dict) -> str:
    """``"vit.embeddings"``: the full path matches exactly one module.

    ``modules_to_save`` entries match module names by suffix, so ``"embeddings"`` also matches
    ``vit.embeddings.patch_embeddings`` and puts a wrapper inside a wrapper (trap 4: the adapter
    saves but does not reload). The full path wraps ``ViTEmbeddings`` alone, which holds the table.
    """
    return "vit.embeddings"
