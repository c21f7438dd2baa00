"""The machinery of tests/test_proofs.py: thresholds, verdicts on recorded facts, shown checks vs SHOWN."""

import pytest

from peftlab.tools import proofs
from peftlab.tools.proofs import Proof, Shown, above, at_least, at_most, below, equals


def test_thresholds_compare_numbers_only():
    assert at_least(0.25)(0.25) and not at_least(0.25)(0.24)
    assert below(0.25)(0.2) and not below(0.25)(0.25)
    assert at_most(0)(0) and above(2.5)(3) and equals(0)(0.0)
    assert not at_least(0)("0.5") and not at_least(0)(None), "a fact that is not a number never passes"
    assert str(below(0.25)) == "< 0.25" and at_least(0.3).as_pair() == (">=", 0.3)


def _judge_first_line(value):
    """the value is even"""
    return value % 2 == 0


@pytest.mark.parametrize(
    ("proof", "facts", "passed"),
    [
        (Proof("c", "f", at_least(0.25)), {"f": 0.3}, True),
        (Proof("c", "f", at_least(0.25)), {"f": 0.2}, False),
        (Proof("c", "f"), {"f": True}, True),
        (Proof("c", "f"), {"f": 1}, False),  # a yes/no fact must be True itself
        (Proof("c", "f", _judge_first_line), {"f": 4}, True),
        (Proof("c", "f", _judge_first_line), {"f": 3}, False),
        (Proof("c", "f", at_least(0)), {}, None),  # not recorded: never a pass
    ],
)
def test_a_proof_can_fail(proof, facts, passed):
    verdict = proof.judge(facts)
    assert verdict["passed"] is passed and verdict["claim"] == "c"


def test_a_judge_is_described_by_its_docstring():
    assert Proof("c", "f", _judge_first_line).judge({"f": 4})["rule"] == "the value is even"


def _card(*checks):
    return {"checks": [{"claim": c, "threshold": t, "passed": True} for c, t in checks], "facts": {}}


def test_the_shown_checks_must_be_the_listed_ones_with_the_same_threshold():
    shown = [Shown("loss falls", below(0.25)), Shown("reload exact", at_most(0))]
    assert (
        proofs.shown_differences(_card(("loss falls", ("<", 0.25)), ("reload exact", ("<=", 0))), shown) == []
    )
    moved = proofs.shown_differences(_card(("loss falls", ("<", 0.3)), ("reload exact", ("<=", 0))), shown)
    assert moved and "compares" in moved[0], "a threshold changed in the notebook alone is caught"
    assert proofs.shown_differences(_card(("loss falls", ("<", 0.25))), shown) == [
        "listed in SHOWN but not shown: 'reload exact'"
    ]
    extra = _card(("loss falls", ("<", 0.25)), ("reload exact", ("<=", 0)), ("new", None))
    assert proofs.shown_differences(extra, shown) == ["shown but not listed in SHOWN: 'new'"]


def test_every_proofs_file_names_a_notebook_and_lists_both():
    for path in proofs.PROOFS_DIR.glob("nb*.py"):
        notebook = path.stem[2:]
        assert (proofs.ROOT / "notebooks" / f"{notebook}.py").exists(), f"{path.name}: no notebook {notebook}"
        module = proofs.load(notebook)
        assert isinstance(module.SHOWN, list) and isinstance(module.PROOFS, list)
        assert len({p.claim for p in module.PROOFS}) == len(module.PROOFS), (
            "one proof per claim"
        )  # a fact may hold several
