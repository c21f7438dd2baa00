"""The GitHub Actions workflows parse, and keep their roles: CI tests both stacks, drift is scheduled
and outside CI, the GPU run is by hand only; and ``ci.yml`` runs what ``.ci/run`` runs.

``.ci/run`` (CI on one machine) and ``ci.yml`` (the same, split into jobs) differ in how they build
environments (venvs and apt-get there, setup-python and pip here) but must run the same commands:
the static checks through the one script both call (``.ci/checks``), the test command on each CI
stack, the docs build and its browser test. The comparison below reads both files; it is shown
failing on a workflow that skips a step and on a ``.ci/run`` that runs a check of its own.
"""

import re
from pathlib import Path

import yaml  # in the test extra: the workflows are always checked

from peftlab.versions import CI_STACKS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI_RUN = ROOT / ".ci" / "run"
CHECKS = ROOT / ".ci" / "checks"
#: The first words of a command that CI runs to check something (building an environment, echoing
#: and shell control are not compared: pip, python3 -m venv, apt-get, rm, for, if, echo...).
CHECK_WORDS = ("bash", "jupytext", "peftlab", "pytest", "python", "ruff")
_INLINE_ENV = re.compile(r"^(\w+)=(\S+)\s+")
_TOOL_PATH = re.compile(r'"?\.venvs/[^/"]+/bin/([\w.-]+)"?')  # .ci/run's venv tools; ci.yml has them on PATH

Command = tuple[str, frozenset[str]]


def load(name):
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.get("on", workflow.pop(True, None))  # YAML 1.1 reads a bare `on` as True
    return workflow


def commands(workflow):
    return [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]


def test_ci_tests_both_stacks_and_never_runs_drift():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert ci["jobs"]["tests"]["strategy"]["matrix"]["stack"] == list(CI_STACKS)
    assert "python -m pytest" in commands(ci)
    assert not any("drift" in c for c in commands(ci))


def test_drift_is_weekly_and_by_hand():
    drift = load("drift.yml")
    assert set(drift["on"]) == {"schedule", "workflow_dispatch"}
    assert len(drift["on"]["schedule"][0]["cron"].split()) == 5
    assert any(c.startswith("peftlab drift") for c in commands(drift))


def test_gpu_run_is_by_hand_on_a_self_hosted_gpu_runner():
    gpu = load("gpu.yml")
    assert set(gpu["on"]) == {"workflow_dispatch"}
    assert gpu["jobs"]["notebooks"]["runs-on"] == ["self-hosted", "gpu"]
    assert any(c.startswith("peftlab run") for c in commands(gpu))


def test_ci_builds_the_docs_and_opens_them_in_chromium():
    docs = load("ci.yml")["jobs"]["docs"]
    runs = [step.get("run", "") for step in docs["steps"]]
    assert any("chromium-driver" in r for r in runs)
    assert runs.index("peftlab docs --out build/docs") < runs.index(
        "python -m pytest tests/test_docs_site.py"
    )


def test_ci_runs_the_notebooks_in_jupyterlab_with_the_browser_required():
    steps = load("ci.yml")["jobs"]["docs"]["steps"]
    lab = next(s for s in steps if "tests/test_jupyterlab.py" in s.get("run", ""))
    assert lab["env"]["PEFTLAB_BROWSER_REQUIRED"] == "1" and ".[docs,dev]" in lab["run"]
    ci_run = (WORKFLOWS.parents[1] / ".ci" / "run").read_text()
    assert "PEFTLAB_BROWSER_REQUIRED=1 .venvs/current/bin/python -m pytest tests/test_jupyterlab.py" in ci_run


def test_weekly_matrix_runs_one_job_per_stack_file_then_collects():
    from peftlab.versions import stack_names

    jobs = load("drift.yml")["jobs"]
    assert jobs["matrix"]["strategy"]["matrix"]["stack"] == list(stack_names())
    assert jobs["matrix-table"]["needs"] == "matrix"
    runs = [step.get("run", "") for step in jobs["matrix-table"]["steps"]]
    assert any("peftlab matrix --collect" in r for r in runs)


# --- ci.yml runs what .ci/run runs ------------------------------------------------------------


def command(line: str, env: frozenset[str] = frozenset()) -> Command | None:
    """A shell line as (command, the names of the variables set for it), tool paths dropped; None
    for a line that builds an environment, echoes or controls the shell. ``PATH=...`` (where the
    tools live) is not compared."""
    line, names = line.strip(), set(env)
    while found := _INLINE_ENV.match(line):
        names |= {found.group(1)} - {"PATH"}
        line = line[found.end() :]
    line = _TOOL_PATH.sub(r"\1", line)
    return (line, frozenset(names)) if line.split(" ", 1)[0] in CHECK_WORDS else None


def script_commands(text: str) -> set[Command]:
    """The commands of a shell script."""
    return {c for line in text.splitlines() if (c := command(line))}


def workflow_commands(workflow: dict) -> set[Command]:
    """The commands of every ``run`` step of a workflow, each with the variables its step sets."""
    return {
        c
        for job in workflow["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if (c := command(line, frozenset(step.get("env", {}))))
    }


def exported(text: str) -> set[str]:
    """The variables a shell script exports."""
    return set(re.findall(r"^export (\w+)=", text, re.MULTILINE))


def test_ci_yml_runs_the_commands_of_ci_run():
    run, ci = script_commands(CI_RUN.read_text()), workflow_commands(load("ci.yml"))
    assert run == ci, f"only in .ci/run: {run - ci}; only in ci.yml: {ci - run}"
    assert ("bash .ci/checks", frozenset()) in run  # the static checks, through the one script


def test_the_static_checks_live_in_one_script_only():
    checks = script_commands(CHECKS.read_text())
    assert {c for c, _ in checks} >= {"ruff check .", "peftlab readme --check"}
    assert not checks & script_commands(CI_RUN.read_text())
    assert not checks & workflow_commands(load("ci.yml"))


def test_both_test_the_ci_stacks_with_the_same_environment():
    text = CI_RUN.read_text()
    assert tuple(re.search(r'STACKS="\$\{STACKS:-([^}]*)\}"', text).group(1).split()) == CI_STACKS
    ci = load("ci.yml")
    assert tuple(ci["jobs"]["tests"]["strategy"]["matrix"]["stack"]) == CI_STACKS
    job_env = set().union(*(job.get("env", {}) for job in ci["jobs"].values()))
    assert exported(text) == set(ci["env"]) | job_env


def test_the_comparison_fails_on_a_skipped_step_or_a_check_of_its_own():
    ci = load("ci.yml")
    lint = ci["jobs"]["lint"]["steps"]
    lint[:] = [step for step in lint if step.get("run") != "bash .ci/checks"]  # ci.yml skips the checks
    assert script_commands(CI_RUN.read_text()) - workflow_commands(ci) == {("bash .ci/checks", frozenset())}
    own = CI_RUN.read_text() + "\n.venvs/current/bin/peftlab readme --check\n"  # .ci/run checks on its own
    assert script_commands(own) - workflow_commands(load("ci.yml")) == {
        ("peftlab readme --check", frozenset())
    }
    assert command("PEFTLAB_DOCS_REQUIRED=1 .venvs/current/bin/python -m pytest x") == (
        "python -m pytest x",
        frozenset({"PEFTLAB_DOCS_REQUIRED"}),
    )
