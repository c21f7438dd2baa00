"""$PEFTLAB_PRETRAIN_SEED gives every tiny checkpoint another pre-training (and its own cache key).

``peftlab sweep --pretrain-seeds`` relies on it: a family that ignored the variable would sweep the
same checkpoint three times and report a spread it never measured.
"""

import pytest

from peftlab.models import blip2, chinese_clip, clip, llava, opt, vit


class Recorded(Exception):
    """Stops a loader once it has asked for its tiny checkpoint."""


@pytest.mark.parametrize(
    "module, load",
    [
        (clip, clip.load_clip),
        (blip2, blip2.load_blip2),
        (opt, opt.load_opt),
        (vit, vit.load_vit),
        (chinese_clip, lambda: chinese_clip.tiny_folder("large")),
        (llava, llava.load_llava),
    ],
    ids=["clip", "blip2", "opt", "vit", "chinese_clip", "llava"],
)
def test_every_tiny_family_reads_the_pretrain_seed(module, load, monkeypatch):
    seeds = []

    def record(family, recipe, build, sources=()):
        seeds.append(recipe["seed"])
        raise Recorded

    monkeypatch.setattr(module, "tiny_checkpoint", record)
    for value in (None, "2"):
        if value is None:
            monkeypatch.delenv("PEFTLAB_PRETRAIN_SEED", raising=False)
        else:
            monkeypatch.setenv("PEFTLAB_PRETRAIN_SEED", value)
        with pytest.raises(Recorded):
            load()
    assert seeds == [0, 2]


def test_a_cold_cache_leaves_the_random_state_as_a_warm_one(tmp_path, monkeypatch):
    """Building a tiny checkpoint (it seeds torch itself) must not change what the caller draws next."""
    import random

    import numpy as np
    import torch

    from peftlab.models import cache

    monkeypatch.setenv("PEFTLAB_CACHE", str(tmp_path))

    def build(folder):
        torch.manual_seed(1234)
        random.seed(1234)
        np.random.seed(1234)
        torch.rand(3)
        (folder / "config.json").write_text("{}")

    def draws():
        return torch.rand(2).tolist(), random.random(), float(np.random.rand())

    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    cache.tiny_checkpoint("rngtest", {"a": 1}, build)  # cold: builds
    cold = draws()
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    cache.tiny_checkpoint("rngtest", {"a": 1}, build)  # warm: cached
    assert draws() == cold
