"""$PEFTLAB_PRETRAIN_SEED gives every tiny checkpoint another pre-training (and its own cache key).

``peftlab sweep --pretrain-seeds`` relies on it: a family that ignored the variable would sweep the
same checkpoint three times and report a spread it never measured.
"""

import pytest

from peftlab.models import blip2, chinese_clip, clip, opt, vit


class Recorded(Exception):
    """Stops a loader once it has asked for its tiny checkpoint."""


@pytest.mark.parametrize(
    "module, load",
    [(clip, clip.load_clip), (blip2, blip2.load_blip2), (opt, opt.load_opt), (vit, vit.load_vit),
     (chinese_clip, lambda: chinese_clip.tiny_folder("large"))],
    ids=["clip", "blip2", "opt", "vit", "chinese_clip"],
)  # fmt: skip
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
