"""The shipped tiny checkpoints: made by today's recipe, loaded unchanged on this stack, and a fresh
pre-training still gives what the notebooks need.

* the recipe hash recorded in peftlab/models/tiny/manifest.json is the one the code gives now
  (else ``peftlab ship-tiny`` must run: the shipped files would no longer be used);
* on this stack the loaders take the shipped folder (nothing is pre-trained), every tensor of it
  arrives bit for bit, and its premises measure what ship-tiny measured on the stack that wrote it;
* the recipe still works: a fresh pre-training (seed 0, on this stack) meets every premise band of
  :mod:`peftlab.models.premises`; on the stack, versions and thread count that made the shipped
  files, it gives them bit for bit. This one pre-trains all seven tiny checkpoints (about 4 CPU
  minutes on 2 cores, see the manifest's ``pretraining_cpu_seconds``).
"""

import pytest
import torch
from safetensors.torch import load_file

from peftlab.checkpoints import assert_loaded
from peftlab.models import TINY_RECIPES, premises, stale_shipped, tiny_recipe, todays_recipe_hash
from peftlab.models.cache import SHIPPED, build_into, recipe_hash, shipped_manifest, tiny_checkpoint
from peftlab.versions import installed

NAMES = list(TINY_RECIPES)
#: How far a premise measured here may be from the one recorded by ship-tiny: the same weights on
#: another stack differ only by float rounding, which may flip one near-tie (one image of 48).
SAME = 0.025


@pytest.fixture
def seed_zero(monkeypatch):
    monkeypatch.delenv("PEFTLAB_PRETRAIN_SEED", raising=False)
    monkeypatch.delenv("PEFTLAB_SHIPPED", raising=False)


def entry(name: str) -> dict:
    return shipped_manifest()["checkpoints"][name]


def test_every_tiny_checkpoint_ships():
    assert sorted(shipped_manifest()["checkpoints"]) == sorted(NAMES)
    for name in NAMES:
        files = {p.name for p in (SHIPPED / name).iterdir()}
        assert {"config.json", "model.safetensors"} <= files, name


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_files_were_made_by_todays_recipe(name, seed_zero):
    spec = tiny_recipe(name)
    now = recipe_hash(spec.family, spec.recipe, (spec.build, *spec.sources))  # what a notebook computes
    assert todays_recipe_hash(name) == now
    assert name not in stale_shipped()
    assert entry(name)["recipe"] == now, (
        f"the recipe of the tiny {name} changed since its files were shipped: run `peftlab ship-tiny "
        f"--only {name}` on the documented stack and commit peftlab/models/tiny/"
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_checkpoint_loads_here_unchanged(name, seed_zero):
    folder = tiny_checkpoint(*tiny_recipe(name))
    assert folder == SHIPPED / name  # taken from the package: nothing pre-trained
    model, processor = premises.load(name)
    assert assert_loaded(model, folder / "model.safetensors") > 0
    measured = premises.measure(name, model, processor)
    recorded = entry(name)["premises"]
    assert measured == pytest.approx(recorded, abs=SAME)
    assert premises.broken(name, measured) == []


def test_another_pretraining_seed_is_not_the_shipped_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTLAB_CACHE", str(tmp_path))
    built = []
    spec = tiny_recipe("opt")
    monkeypatch.setenv("PEFTLAB_PRETRAIN_SEED", "1")
    other = tiny_recipe("opt")
    assert other.recipe["seed"] == 1
    folder = tiny_checkpoint(
        other.family, other.recipe, lambda f: built.append((f / "config.json").write_text("{}"))
    )
    assert built and folder.parent == tmp_path  # pre-trained into the cache
    monkeypatch.setenv("PEFTLAB_PRETRAIN_SEED", "0")
    monkeypatch.setenv("PEFTLAB_SHIPPED", "0")  # the escape hatch: build even seed 0 here
    assert tiny_checkpoint(*spec).parent == tmp_path


def test_an_edited_recipe_is_built_here_with_a_warning(monkeypatch, tmp_path, seed_zero):
    monkeypatch.setenv("PEFTLAB_CACHE", str(tmp_path))
    spec = tiny_recipe("opt")
    edited = {**spec.recipe, "steps": spec.recipe["steps"] + 1}
    with pytest.warns(UserWarning, match="shipped tiny opt checkpoint was made by another recipe"):
        folder = tiny_checkpoint(spec.family, edited, lambda f: (f / "config.json").write_text("{}"))
    assert folder.parent == tmp_path


@pytest.mark.parametrize("name", NAMES)
def test_a_fresh_pretraining_meets_the_premises(name, seed_zero, tmp_path):
    spec = tiny_recipe(name)
    build_into(tmp_path / name, spec.build)
    measured = premises.measure(name, *premises.load(name, str(tmp_path / name)))
    assert premises.broken(name, measured) == [], measured
    made = entry(name)["made_with"]
    here = {**installed(("torch", "transformers", "tokenizers")), "threads": torch.get_num_threads()}
    if here == made:  # the stack that wrote the shipped files: the recipe gives them bit for bit
        fresh, shipped = (
            load_file(tmp_path / name / "model.safetensors"),
            load_file(SHIPPED / name / "model.safetensors"),
        )
        assert fresh.keys() == shipped.keys()
        assert all(torch.equal(fresh[k], shipped[k]) for k in fresh)


def test_ship_tiny_writes_the_folder_and_its_manifest_entry(monkeypatch, tmp_path, seed_zero):
    import argparse

    from peftlab.models import cache
    from peftlab.tools import ship_tiny

    recorded = entry("opt")["premises"]
    monkeypatch.setattr(cache, "SHIPPED", tmp_path)
    monkeypatch.setattr(ship_tiny, "wrong_stack", lambda: None)
    monkeypatch.setenv("PEFTLAB_PRETRAIN_SEED", "0")  # main() sets it; monkeypatch restores it after
    assert ship_tiny.main(argparse.Namespace(only=["opt"])) == 0
    written = cache.shipped_manifest()["checkpoints"]["opt"]
    spec = tiny_recipe("opt")
    assert written["recipe"] == recipe_hash(spec.family, spec.recipe, (spec.build, *spec.sources))
    assert written["premises"] == pytest.approx(recorded, abs=SAME)
    assert (tmp_path / "opt" / "model.safetensors").exists() and not (tmp_path / "opt.new").exists()


def test_ship_tiny_runs_on_the_documented_stack_only(monkeypatch):
    from peftlab.tools import ship_tiny

    monkeypatch.setattr(ship_tiny, "installed", lambda libraries: dict.fromkeys(libraries, "0.0"))
    assert "runs on the documented stack" in ship_tiny.wrong_stack()
