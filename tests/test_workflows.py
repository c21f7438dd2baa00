"""The GitHub Actions workflows parse, and keep their roles: CI tests both stacks, drift is scheduled
and outside CI, the GPU run is by hand only."""

from pathlib import Path

import yaml  # in the test extra: the workflows are always checked

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def load(name):
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.get("on", workflow.pop(True, None))  # YAML 1.1 reads a bare `on` as True
    return workflow


def commands(workflow):
    return [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]


def test_ci_tests_both_stacks_and_never_runs_drift():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert ci["jobs"]["tests"]["strategy"]["matrix"]["stack"] == ["documented", "current"]
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
