import warnings

import pytest
import torch
from packaging.version import Version
from peft import LoraConfig, get_peft_model
from peft.tuners.tuners_utils import check_target_module_exists

from peftlab import tables, targets
from peftlab.registry import change

#: The PEFT rule that skips modules inside adapter layers (PR #2539), from the registry.
SKIP = change("peft_skips_adapter_layers")


class Toy(torch.nn.Module):
    """Two linear layers around a Dropout: enough to show every rule."""

    def __init__(self):
        super().__init__()
        self.lin0 = torch.nn.Linear(4, 4)
        self.drop = torch.nn.Dropout(0.1)
        self.lin1 = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.lin1(self.drop(self.lin0(x)))


def lora(target_modules):
    return LoraConfig(r=2, lora_alpha=4, lora_dropout=0.05, target_modules=target_modules)


def with_lora(target_modules):
    torch.manual_seed(0)
    return get_peft_model(Toy(), lora(target_modules))


def recipe(model):
    """find_all_linear_names from the QLoRA script."""
    names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    return sorted(names - {"lm_head"})


KEYS = [
    "lin0",
    "model.lin0",
    "model.lin0.base_layer",
    "model.lin0.lora_dropout.default",
    "xlin0",
    "lin0x",
    "a.b.c",
]


@pytest.mark.parametrize("target", [["lin0"], ["default", "base_layer"], ["b.c"], r".*lin0", r"model\.lin\d"])
def test_target_entry_agrees_with_peft(target):
    config = lora(target)
    for key in KEYS:
        assert bool(targets.target_entry(key, target)) == bool(check_target_module_exists(config, key)), key


def test_suffix_must_follow_a_dot():
    assert targets.target_entry("model.q_proj", ["proj"]) is None
    assert targets.target_entry("model.lora_dropout.default", ["default"]) == "default"


def test_preview_of_a_plain_model_is_what_peft_wraps():
    model = Toy()
    preview = targets.preview_targets(model, ["lin0", "lin1", "drop"])
    assert preview.unsupported == ["drop (Dropout)"] and preview.predicted_error == "ValueError"
    preview = targets.preview_targets(model, ["lin0", "lin1"])
    assert preview.predicted_error is None
    wrapped = targets.adapter_layers(get_peft_model(model, lora(["lin0", "lin1"])).get_base_model())
    assert preview.wrapped == wrapped == ["lin0", "lin1"]


def test_recipe_on_a_lora_model_is_predicted_on_the_installed_peft():
    model = with_lora(["lin0", "lin1"])
    names = recipe(model)
    assert names == ["base_layer", "default"]
    preview = targets.preview_targets(model, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as raised:  # NoMatchingPeftModuleError is a ValueError too
            get_peft_model(model, lora(names))
    assert type(raised.value).__name__ == preview.predicted_error
    dropout_row = next(r for r in preview.rows if r[0].endswith("lin0.lora_dropout.default"))
    assert dropout_row[1:4] == ("Dropout", "default", "yes")


def test_old_and_new_peft_rules_for_a_partial_stage_one():
    model = with_lora(["lin0"])
    names = recipe(model)
    assert names == ["base_layer", "default", "lin1"]
    before, since = SKIP.bracket()[0], SKIP.release  # the releases measured either side of the rule
    old = targets.preview_targets(model, names, peft_version=Version(before))
    new = targets.preview_targets(model, names, peft_version=Version(since))
    assert old.predicted_error == "ValueError" and "lin0.lora_dropout.default" in old.unsupported[0]
    assert new.predicted_error is None and new.wrapped == ["base_model.model.lin1"]
    assert new.skipped == 4 and "second time" in new.notes[1]  # base_layer, dropout, lora_A, lora_B


def test_skip_rule_boundary_and_all_linear():
    assert not targets.skips_adapter_internals(Version(SKIP.bracket()[0]))
    assert targets.skips_adapter_internals(Version(SKIP.release))
    with pytest.raises(ValueError, match="all-linear"):
        targets.preview_targets(Toy(), "all-linear")


def test_module_table_shows_why_default_matches_a_dropout():
    model = with_lora(["lin0"])
    table = targets.module_table(model, "base_model.model.lin0", ["base_layer", "default"])
    rows = {r[0]: r[1:] for r in table.rows}
    assert rows["lin0"] == ["lora.Linear", ""]
    assert rows["lin0.lora_dropout.default"] == ["Dropout", "default"]
    assert rows["lin0.base_layer"] == ["Linear", "base_layer"]
    text, page = str(table), table._repr_html_()
    assert "lin0.lora_dropout.default" in text and "Dropout" in text
    assert "<table>" in page and "lora_dropout.default" in page


def test_table_renders_text_and_html():
    table = tables.Table(["a", "bb"], [(1, "<x>"), ("long value", 2)], title="t", notes=["n"])
    lines = str(table).splitlines()
    assert lines[0] == "t" and lines[1].split() == ["a", "bb"] and lines[-1] == "n"
    assert "&lt;x&gt;" in table._repr_html_()


def test_staged_loss_curves_draws_each_run_from_its_start():  # plots.staged_loss_curves, notebook 03's figure
    import matplotlib

    matplotlib.use("Agg")
    from peftlab import plots

    fig = plots.staged_loss_curves({"one": (0, [1.0, 0.5]), "two": (2, [0.4, 0.1])}, stages={"stage two": 2})
    lines = [line for line in fig.axes[0].lines if line.get_label() in ("one", "two")]
    assert [list(line.get_xdata()) for line in lines] == [[0, 1], [2, 3]]
    assert fig.axes[0].get_yscale() == "log"
