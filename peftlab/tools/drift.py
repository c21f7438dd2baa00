"""``peftlab drift``: run every notebook on the newest releases and compare with the failure registry.

CI tests the two pinned stacks (``peftlab/stacks/*.txt``). The drift watch runs the notebooks on a third,
unpinned stack (whatever the package index serves today) and gives one verdict per registered failure:

* ``as documented``: what happened is what the registry records for these versions or, when it
  records nothing for them, for the highest pinned stack (``current``; marked ``*``);
* ``changed (new message: ...)``: the expected error came with another type or message;
* ``no longer fails (since ...)``: an error was expected and none came; "since" names the libraries
  that differ from the highest pinned stack;
* ``new failure: ...``: an error came where none was expected; a notebook that stops gets a row of its
  own, and the blocks it did not reach say so.

The notebooks run in observe mode (``$PEFTLAB_OBSERVE``, see :mod:`peftlab.capture`): a block whose
outcome differs from the registry is recorded and the notebook goes on. The command exits 0 whatever
drifted; only a broken tool exits non-zero. It writes ``drift.md`` (the table), ``drift.json`` and
``observations.jsonl`` to its build folder (``build/drift``), next to the executed notebooks.

``peftlab drift --venv .venvs/newest`` first builds (or refreshes) that virtual environment with the
newest releases, torch held at the CPU wheel pinned in ``peftlab/stacks/current.txt`` unless ``--torch`` says
otherwise, then runs the drift watch in it. ``peftlab drift --record ID`` prints, from the last run's
observations, the ``Expectation`` to paste into the failure's registry file
(``peftlab/registry/nbNN_<notebook>.py``) once a person has confirmed it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from packaging.version import Version

from peftlab.capture import OBSERVE_ENV, trim_message
from peftlab.registry import REGISTRY, Expectation, Failure, UnexpectedOutcome, get
from peftlab.tools import ROOT
from peftlab.tools.runner import add_notebook_arguments
from peftlab.versions import CI_STACKS, LIBRARIES, describe, installed, pinned_versions

#: The ``failure`` column of a row about a notebook that stopped.
NOTEBOOK_ROW = "(notebook)"
HEADER = ["failure", "notebook", "expected", "verdict"]
KINDS = ("as documented", "changed", "no longer fails", "new failure")

Versions = dict[str, str | None]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in a kernel's traceback


@dataclass(frozen=True)
class Verdict:
    """One row of the drift table."""

    failure: str  # a failure id, or NOTEBOOK_ROW
    notebook: str
    expected: str  # "TypeError", "no error", ...; ends with "*" when it is the reference stack's
    verdict: str  # the text printed
    kind: str  # one of KINDS

    def row(self) -> list[str]:
        """The table row (``|`` escaped, so the table stays valid Markdown)."""
        return [
            cell.replace("|", "\\|") for cell in (self.failure, self.notebook, self.expected, self.verdict)
        ]


# ---------------------------------------------------------------------------------------------
# The reference: the highest pinned stack.
# ---------------------------------------------------------------------------------------------


def reference_stack() -> str:
    """The name of the highest CI stack (by transformers, then peft): ``current``."""
    return max(
        CI_STACKS,
        key=lambda name: tuple(
            Version(pinned_versions(name)[lib] or "0") for lib in ("transformers", "peft")
        ),
    )


def expectation_for(failure: Failure, versions: Versions) -> Expectation | None:
    """The registry's expectation for ``versions``, or None when none is recorded."""
    try:
        return failure.expected(versions)
    except UnexpectedOutcome:
        return None


def release(version: str) -> str:
    """``1.2.3+cpu`` -> ``1.2.3``: the release, without a local label (what a specifier can name)."""
    return Version(version).public


def changed_libraries(failure: Failure, versions: Versions, reference: Versions) -> list[str]:
    """The libraries whose release differs from ``reference``; those the failure's entries name, if any."""
    differ = [
        lib
        for lib in LIBRARIES
        if versions.get(lib) and reference.get(lib) and release(versions[lib]) != release(reference[lib])
    ]
    named = {lib for expectation in failure.expectations for lib in expectation.when}
    return [lib for lib in differ if lib in named] or differ


def since(failure: Failure, versions: Versions, reference: Versions, reference_name: str) -> str:
    """Where the behaviour changed: ``since transformers <newer>; current stack: <its pin>``."""
    libs = changed_libraries(failure, versions, reference)
    if not libs:
        return f"since: same {', '.join(LIBRARIES)} as the {reference_name} stack; another dependency changed"
    new = ", ".join(f"{lib} {release(versions[lib])}" for lib in libs)
    return f"since {new}; {reference_name} stack: {', '.join(str(reference[lib]) for lib in libs)}"


# ---------------------------------------------------------------------------------------------
# Classification.
# ---------------------------------------------------------------------------------------------


def first_line(message: str, width: int = 160) -> str:
    """The first line of an error message (module reprs collapsed), at most ``width`` characters."""
    line = (trim_message(message).strip().splitlines() or [""])[0]
    return line if len(line) <= width else line[: width - 3] + "..."


def classify(
    failure: Failure, observation: dict, reference: Versions, reference_name: str = "current"
) -> Verdict:
    """Compare what one ``expect_failure`` block saw (a record of observe mode) with the registry."""
    versions = observation["versions"]
    expectation, mark = expectation_for(failure, versions), ""
    if expectation is None:  # nothing recorded for these versions: compare with the reference stack
        expectation = expectation_for(failure, reference)
        mark = "*" if expectation else ""
    raised, message = observation["raised"], observation["message"]
    seen = f"{raised}: {first_line(message)}"

    def verdict(text: str, kind: str) -> Verdict:
        expected = "nothing recorded" if expectation is None else (expectation.raises or "no error")
        return Verdict(failure.id, failure.notebook, expected + mark, text, kind)

    if expectation is None or expectation.raises is None:
        if raised is None:
            return verdict("as documented", "as documented")
        return verdict(f"new failure: {seen}", "new failure")
    if raised is None:
        return verdict(
            f"no longer fails ({since(failure, versions, reference, reference_name)})", "no longer fails"
        )
    if expectation.raises in observation["types"] and re.search(expectation.match, message):
        return verdict("as documented", "as documented")
    return verdict(f"changed (new message: {seen})", "changed")


def classify_run(
    errors: dict[str, str],
    observations: dict[str, dict],
    versions: Versions,
    reference: Versions,
    reference_name: str = "current",
) -> list[Verdict]:
    """Verdicts for every registered failure of the notebooks that ran (``errors``: notebook -> its
    error, empty when it ran to the end), plus a row for each notebook that stopped."""
    rows = []
    for notebook, error in errors.items():
        for failure in (f for f in REGISTRY.values() if f.notebook == notebook):
            if failure.id in observations:
                rows.append(classify(failure, observations[failure.id], reference, reference_name))
                continue
            why = f"the notebook stopped earlier: {error}" if error else "no expect_failure block for it ran"
            expectation = expectation_for(failure, versions) or expectation_for(failure, reference)
            expected = (expectation.raises or "no error") if expectation else "nothing recorded"
            rows.append(
                Verdict(failure.id, notebook, expected, f"new failure: not reached ({why})", "new failure")
            )
        if error:
            rows.append(
                Verdict(NOTEBOOK_ROW, notebook, "runs to the end", f"new failure: {error}", "new failure")
            )
    return rows


def render(rows: list[Verdict], versions: Versions, reference_name: str, held: str = "") -> str:
    """The drift table (Markdown), with the versions it was measured on (and what was ``held`` back)."""
    from peftlab.tools.runner import table

    counts = ", ".join(f"{sum(r.kind == kind for r in rows)} {kind}" for kind in KINDS)
    lines = [
        f"Drift watch, {date.today().isoformat()}, on the {describe(versions)}",
        *([f"held back: {held}"] if held else []),
        "",
        table([r.row() for r in rows], HEADER),
        "",
        f"{counts}.",
    ]
    if any(r.expected.endswith("*") for r in rows):
        lines.append(
            f"* nothing is recorded for these versions: compared with the {reference_name} stack's expectation."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Running the notebooks in observe mode.
# ---------------------------------------------------------------------------------------------


def load_observations(path: Path) -> dict[str, dict]:
    """The records of ``observations.jsonl`` by failure id (the last one when a block ran twice)."""
    if not path.exists():
        return {}
    records = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {record["id"]: record for record in records}


def observe_notebooks(
    folder: Path, build: Path, only: list[str] | None = None, timeout: int = 600
) -> tuple[dict[str, str], dict[str, dict]]:
    """Run the notebooks in observe mode; return each notebook's error ('' if none) and the observations."""
    from peftlab.tools.runner import run_all

    build.mkdir(parents=True, exist_ok=True)
    path = (build / "observations.jsonl").resolve()
    path.unlink(missing_ok=True)
    before = os.environ.get(OBSERVE_ENV)
    os.environ[OBSERVE_ENV] = str(path)  # the kernels inherit it
    try:
        outcomes = run_all(folder, build, only, timeout)
    finally:
        if before is None:
            del os.environ[OBSERVE_ENV]
        else:
            os.environ[OBSERVE_ENV] = before
    errors = {
        o.notebook: _ANSI.sub("", o.error) or ("" if o.card else "no scorecard saved") for o in outcomes
    }
    return errors, load_observations(path)


def watch(
    folder: Path, build: Path, only: list[str] | None = None, timeout: int = 600, held: str = ""
) -> int:
    """Run the drift watch on the installed versions: print the table, write it; 0 whatever drifted."""
    start, versions = time.perf_counter(), installed()
    name = reference_stack()
    reference = pinned_versions(name)
    print(f"peftlab drift on the {describe(versions)}")
    print(f"reference: the {describe(reference)}", flush=True)
    try:
        errors, observations = observe_notebooks(folder, build, only, timeout)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = classify_run(errors, observations, versions, reference, name)
    text = render(rows, versions, name, held)
    print(f"\n{text}\n")
    (build / "drift.md").write_text(text + "\n", encoding="utf-8")
    summary = {"date": date.today().isoformat(), "versions": versions, "held": held, "reference": reference}
    summary["rows"] = [asdict(r) for r in rows]
    (build / "drift.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"written: {build / 'drift.md'}, {build / 'drift.json'}, {build / 'observations.jsonl'}")
    if any(r.kind != "as documented" for r in rows):
        print(
            "to record a confirmed observation: peftlab drift --record FAILURE_ID (README, 'Recording a new observation')"
        )
    print(f"drift watch done in {time.perf_counter() - start:.0f} s (exit 0 whatever drifted)")
    return 0


# ---------------------------------------------------------------------------------------------
# Recording a confirmed observation.
# ---------------------------------------------------------------------------------------------


def _raw(pattern: str) -> str:
    """``pattern`` as a Python raw-string literal."""
    for quote in ('"', "'"):
        if quote not in pattern:
            return f"r{quote}{pattern}{quote}"
    return repr(pattern)


def message_pattern(message: str, width: int = 200) -> str:
    """A regular expression for the first line of ``message`` as :func:`first_line` shows it; a module
    repr collapsed to ``Name(...)`` matches the whole repr."""
    parts = re.split(r"(\w+)\(\.\.\.\)", first_line(message, width=len(message) + 3))
    pattern = "".join(_escape(p) if i % 2 == 0 else rf"{p}\([\s\S]*?\)" for i, p in enumerate(parts))
    if re.search(pattern, message):
        return pattern
    return _escape(next((line for line in message.splitlines() if line.strip()), "")[:width])


def _escape(text: str) -> str:
    """``re.escape`` with spaces left readable (the patterns are not compiled in verbose mode)."""
    return re.escape(text).replace("\\ ", " ")


def expectation_snippet(failure: Failure, observation: dict, reference: Versions, reference_name: str) -> str:
    """The ``Expectation(...)`` for what ``observation`` saw, ready to paste, with what else to edit."""
    versions = observation["versions"]
    libs = changed_libraries(failure, versions, reference)
    named = sorted({lib for e in failure.expectations for lib in e.when}) or ["transformers", "peft"]
    when = {lib: f">={release(versions[lib])}" for lib in libs}
    when = when or {lib: f"=={release(versions[lib])}" for lib in named if versions.get(lib)}
    measured = ", ".join(f"{lib} {versions[lib]}" for lib in LIBRARIES if versions.get(lib))
    lines = ["        Expectation(", f"            when={json.dumps(when)},"]
    if observation["raised"]:
        message = observation["message"]
        lines += [
            f'            raises="{observation["raised"]}",',
            f"            match={_raw(message_pattern(message))},",
        ]
        why = "TODO: why it fails so"
    else:
        lines.append("            raises=None,")
        why = "TODO: why it no longer fails"
    lines += [
        f'            reason="{why} (observed by peftlab drift on {measured}, {date.today().isoformat()}).",',
        f"            measured=({', '.join(json.dumps(f'{lib} {release(versions[lib])}') for lib in libs or named if versions.get(lib))},),",
        "        ),",
    ]
    notes = [
        f"# {failure.id}: add to its expectations in {failure.source()}, once a person has confirmed it",
        "# (rerun the notebook on these versions; loosen the pattern so it matches on every version in `when`):",
    ]
    today = expectation_for(failure, versions)
    if today is not None and libs:
        narrowed = {
            **today.when,
            **{
                lib: ",".join(filter(None, [today.when.get(lib), f"<{release(versions[lib])}"]))
                for lib in libs
            },
        }
        notes.append(
            f"# and end the one that applies today: when={json.dumps(today.when)} -> when={json.dumps(narrowed)}"
        )
    elif not libs:
        notes.append(
            f"# no library of {', '.join(LIBRARIES)} differs from the {reference_name} stack: find the one that changed."
        )
    return "\n".join(notes + lines)


def record(failure_id: str, build: Path) -> int:
    """Print the expectation to record for ``failure_id`` from the last drift run in ``build``."""
    failure = get(failure_id)
    observation = load_observations(build / "observations.jsonl").get(failure_id)
    if observation is None:
        print(
            f"error: no observation of {failure_id!r} in {build}: run `peftlab drift` first", file=sys.stderr
        )
        return 2
    name = reference_stack()
    reference = pinned_versions(name)
    verdict = classify(failure, observation, reference, name)
    print(f"# {failure_id} on the {describe(observation['versions'])}: {verdict.verdict}")
    if verdict.kind == "as documented" and not verdict.expected.endswith("*"):
        print("# nothing to record: the registry already says so for these versions.")
        return 0
    print(expectation_snippet(failure, observation, reference, name))
    return 0


# ---------------------------------------------------------------------------------------------
# The newest stack in a virtual environment, and the command line.
# ---------------------------------------------------------------------------------------------


def torch_pin() -> str:
    """The torch specifier of ``peftlab/stacks/current.txt`` (``==<its pin>``: the CPU wheel), or '' if none."""
    version = pinned_versions("current")["torch"]
    return f"=={version}" if version else ""


def build_venv(venv: Path, torch: str) -> Path:
    """Create or refresh ``venv`` with the newest releases of every dependency; return its python.

    ``torch`` is a specifier (:func:`torch_pin`) that holds torch back, or '' for the newest one.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text(f"torch{torch}\n" if torch else "")
        print(
            f"building {venv}: the newest releases on the package index, torch {torch or 'newest'}",
            flush=True,
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--upgrade",
                "--upgrade-strategy",
                "eager",
                "-c",
                str(constraints),
                "-e",
                f"{ROOT}[test]",
            ],
            check=True,
        )
    return python


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab drift``."""
    add_notebook_arguments(parser, "--build", Path("build/drift"), "output folder")
    parser.add_argument(
        "--venv", type=Path, help="first build this venv with the newest releases, then run in it"
    )
    parser.add_argument(
        "--torch",
        default=None,
        help="torch specifier for --venv (default: the pin of peftlab/stacks/current.txt, the CPU wheel; '' for the newest)",
    )
    parser.add_argument(
        "--held", default="", help="what was held back, printed with the table (--venv sets it)"
    )
    parser.add_argument(
        "--record", metavar="FAILURE_ID", help="print the Expectation to record from the last run"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``peftlab drift`` with parsed ``args``."""
    if args.record:
        return record(args.record, args.build)
    if args.venv:
        torch = torch_pin() if args.torch is None else args.torch
        python = build_venv(args.venv, torch)
        command = [
            str(python),
            "-m",
            "peftlab",
            "drift",
            "--notebooks",
            str(args.notebooks),
            "--build",
            str(args.build),
            "--timeout",
            str(args.timeout),
        ]
        if args.only:
            command += ["--only", *args.only]
        if torch:
            command += ["--held", f"torch{torch}, the CPU wheel (the index's newest torch is a CUDA build)"]
        return subprocess.run(command).returncode
    return watch(args.notebooks, args.build, args.only, args.timeout, args.held)
