"""The exercise checker: verdicts for a learner, and a solutions mode that can fail."""

import pytest

from peftlab import exercises


@pytest.fixture
def learner(monkeypatch):
    monkeypatch.delenv(exercises.SOLUTIONS_ENV, raising=False)


def test_verdicts_for_a_learner(learner, capsys):
    exercises.check("99.1", None, expected="Dropout", hint="look at the types")
    assert exercises.VERDICTS["99.1"] != "correct"
    assert "not answered yet" in capsys.readouterr().out
    exercises.check("99.1", "Linear", expected="Dropout", hint="look at the types")
    assert exercises.VERDICTS["99.1"] != "correct"
    assert "not yet. Hint: look at the types" in capsys.readouterr().out
    exercises.check("99.1", " `dropout` ", expected="Dropout", hint="h", explain="Why.")
    assert exercises.VERDICTS["99.1"] == "correct"
    assert capsys.readouterr().out.strip() == "Exercise 99.1: correct. Why."


def test_a_raising_answer_is_not_yet_and_never_stops_the_notebook(learner, capsys):
    exercises.check("99.2", "x", test=lambda a: 1 / 0, hint="h")
    assert exercises.VERDICTS["99.2"] != "correct"
    assert "your answer raised ZeroDivisionError" in capsys.readouterr().out


def test_check_needs_a_criterion(learner):
    with pytest.raises(TypeError):
        exercises.check("99.1", 1, hint="h")


def test_solutions_mode_uses_the_stored_solution_and_fails_a_wrong_one(tmp_path, monkeypatch):
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "1")
    monkeypatch.setattr(exercises, "SOLUTIONS_DIR", tmp_path)
    (tmp_path / "99_toy.py").write_text("def exercise_1(ns):\n    return ns['x'] * 2\n")
    exercises.check("99.1", None, expected=4, hint="h", ns={"x": 2})
    assert exercises.VERDICTS["99.1"] == "correct"
    with pytest.raises(exercises.SolutionError):
        exercises.check("99.1", 4, expected=4, hint="h", ns={"x": 3})  # the learner's 4 is ignored
    with pytest.raises(AttributeError):
        exercises.check("99.2", None, expected=4, hint="h", ns={})
    with pytest.raises(FileNotFoundError):
        exercises.check("98.1", None, expected=4, hint="h", ns={})


def test_solutions_mode_reads_the_callers_namespace(tmp_path, monkeypatch):
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "1")
    monkeypatch.setattr(exercises, "SOLUTIONS_DIR", tmp_path)
    (tmp_path / "99_toy.py").write_text("def exercise_1(ns):\n    return ns['THE_ANSWER']\n")
    globals()["THE_ANSWER"] = 42
    try:
        exercises.check("99.1", None, test=lambda a: a == 42, hint="h")
        assert exercises.VERDICTS["99.1"] == "correct"
    finally:
        del globals()["THE_ANSWER"]


def test_the_check_cell_shows_no_stray_value(learner):
    assert exercises.check("99.1", "Linear", expected="Dropout", hint="h") is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Q-Former", "qformer"),
        ("q_former", "QFormer"),
        ("nn.Identity", "Identity"),
        ("torch.nn.Identity", "identity"),
        ("8,192", 8192),
        ("8192", 8192),
        (" 4 ", 4),
        ("`inputs_embeds`", "inputs_embeds"),
        (["Q_Proj"], ["q_proj"]),
    ],
)
def test_wording_does_not_decide(learner, answer, expected):
    exercises.check("99.3", answer, expected=expected, hint="h")
    assert exercises.VERDICTS["99.3"] == "correct"


@pytest.mark.parametrize(
    ("answer", "expected"), [("Dropout", "Identity"), ("8,193", 8192), (8.5, 8), ("4", 5)]
)
def test_a_wrong_answer_stays_wrong_whatever_its_wording(learner, answer, expected):
    exercises.check("99.4", answer, expected=expected, hint="h")
    assert exercises.VERDICTS["99.4"] == "not yet"
