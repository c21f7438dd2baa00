"""The exercise checker: verdicts for a learner, and a solutions mode that can fail."""

import pytest

from peftlab import exercises


@pytest.fixture
def learner(monkeypatch):
    monkeypatch.delenv(exercises.SOLUTIONS_ENV, raising=False)


def test_verdicts_for_a_learner(learner, capsys):
    assert exercises.check("99.1", None, expected="Dropout", hint="look at the types") is False
    assert "not answered yet" in capsys.readouterr().out
    assert exercises.check("99.1", "Linear", expected="Dropout", hint="look at the types") is False
    assert "not yet. Hint: look at the types" in capsys.readouterr().out
    assert exercises.check("99.1", " `dropout` ", expected="Dropout", hint="h", explain="Why.") is True
    assert capsys.readouterr().out.strip() == "Exercise 99.1: correct. Why."


def test_a_raising_answer_is_not_yet_and_never_stops_the_notebook(learner, capsys):
    assert exercises.check("99.2", "x", test=lambda a: 1 / 0, hint="h") is False
    assert "your answer raised ZeroDivisionError" in capsys.readouterr().out


def test_check_needs_a_criterion(learner):
    with pytest.raises(TypeError):
        exercises.check("99.1", 1, hint="h")


def test_solutions_mode_uses_the_stored_solution_and_fails_a_wrong_one(tmp_path, monkeypatch):
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "1")
    monkeypatch.setattr(exercises, "SOLUTIONS_DIR", tmp_path)
    (tmp_path / "99_toy.py").write_text("def exercise_1(ns):\n    return ns['x'] * 2\n")
    assert exercises.check("99.1", None, expected=4, hint="h", ns={"x": 2}) is True
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
        assert exercises.check("99.1", None, test=lambda a: a == 42, hint="h")
    finally:
        del globals()["THE_ANSWER"]
