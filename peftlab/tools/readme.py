"""``peftlab readme``: the README's generated tables, written from the stack files and the registry.

The README holds four tables between HTML-comment markers (``<!-- stacks-table -->`` ...
``<!-- /stacks-table -->``, and likewise ``notebooks-table``, ``failures-table`` and ``changes-table``). This module
renders them from :mod:`peftlab.versions` (the pin files) and :mod:`peftlab.registry` (failures,
version boundaries, what each was measured on), so no version is typed into the README by hand.
``peftlab readme`` rewrites them, and CONTRIBUTING.md's module map (:mod:`peftlab.tools.module_map`);
``peftlab readme --check`` exits 1 when either is out of date (CI runs it, as it regenerates the notebook
pairs).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from packaging.version import Version

from peftlab.registry import CHANGES, LESSONS, REGISTRY, Failure
from peftlab.tools import ROOT
from peftlab.tools.instructors import readme_agenda, readme_faq, readme_room
from peftlab.tools.markdown import markdown_table
from peftlab.tools.module_map import module_map
from peftlab.tools.notebooks import title
from peftlab.versions import CI_STACKS, pinned_versions, real_runtime, stack_description, stack_names

COLAB = "https://colab.research.google.com"
REPO = "peftlab/peftlab"


def stacks_table() -> str:
    """One row per pinned stack: its file, what it is and its key versions."""
    rows = []
    for name in stack_names():
        pins = pinned_versions(name)
        where = "CI, every push" if name in CI_STACKS else "`peftlab matrix`"
        link = f"[`peftlab/stacks/{name}.txt`](peftlab/stacks/{name}.txt)"
        rows.append(
            [f"**{name}**", stack_description(name), real_runtime(name) or "-", link, where]
            + [pins[lib] or "-" for lib in ("transformers", "peft", "accelerate", "bitsandbytes")]
        )
    header = [
        "stack",
        "what it is",
        "the real runtime",
        "file",
        "run by",
        "transformers",
        "peft",
        "accelerate",
        "bitsandbytes",
    ]
    return markdown_table(header, rows)


def notebooks_table() -> str:
    """One row per notebook: its title (its first heading) with a Colab link, the failures it shows, the fix."""
    rows = []
    for name, lesson in LESSONS.items():
        path = f"notebooks/{name}.ipynb"
        badge = f"[![Colab]({COLAB}/assets/colab-badge.svg)]({COLAB}/github/{REPO}/blob/main/{path})"
        failures = ", ".join(f"`{f.id}`" for f in REGISTRY.values() if f.notebook == name)
        failures = failures or ("none (a primer)" if lesson.primer else "")
        rows.append([name.split("_", 1)[0], f"[{title(name)}]({path}) {badge}", failures, lesson.fix])
    return markdown_table(["#", "notebook", "failures shown (see below)", "the fix it proves"], rows)


def _measured(measured: tuple[str, ...]) -> str:
    """Stack names stay as they are; single releases (``peft <release>``) are grouped per library."""
    stacks = [m for m in measured if " " not in m]
    releases: dict[str, list[str]] = {}
    for m in measured:
        if " " in m:
            lib, version = m.split(" ", 1)
            releases.setdefault(lib, []).append(version)
    parts = [f"{lib} {', '.join(v)}" for lib, v in releases.items()] + stacks
    return "; ".join(parts) or "not measured"


def failure_rows(failure: Failure) -> list[list[str]]:
    """One row per version range of ``failure``."""
    rows = []
    for e in failure.expectations:
        what = f"`{e.raises}`" if e.raises else "no error"
        if e.detector:
            what += " (peftlab's check; the libraries say nothing)"
        rows.append(
            [f"`{failure.id}`", failure.notebook[:2], e.versions_phrase(), what, _measured(e.measured)]
        )
    return rows


def failures_table() -> str:
    """Every failure, per version range: what happens there and the stacks/releases it was run on."""
    rows = [row for failure in REGISTRY.values() for row in failure_rows(failure)]
    return markdown_table(["failure", "#", "versions", "what happens", "measured on"], rows)


def changes_table() -> str:
    """Every release boundary: the library, what changed, where runs place it, the releases run."""
    rows = [
        [f"`{key}`", c.what, c.phrase(), ", ".join(sorted(c.measured, key=Version))]
        for key, c in CHANGES.items()
    ]
    return markdown_table(["change", "what changed", "where (from runs)", "releases run"], rows)


#: The facts file ``peftlab run --real-size --record`` writes: measured peak RSS per notebook.
REAL_SIZE_FACTS = ROOT / "docs" / "real_size.json"


def real_size_table(facts_file: Path = REAL_SIZE_FACTS) -> str:
    """The memory table: each notebook's published checkpoint, the CPU peak RSS and s/step measured by
    ``peftlab run --real-size`` (random weights, few steps), or why it does not run here."""
    import json

    from peftlab.tools.real_size import PLANS

    facts = json.loads(facts_file.read_text())["notebooks"] if facts_file.exists() else {}
    rows = []
    for name in LESSONS:
        plan, fact = PLANS.get(name[:2]), facts.get(name)
        if fact:
            p = fact["parameters"]
            run = ", ".join(f"{k.lower()} {v}" for k, v in p.items())
            per_step = f"{fact['seconds_per_step']:.1f} s" if fact.get("seconds_per_step") else "-"
            rows.append(
                [
                    name[:2],
                    ", ".join(f"`{c}`" for c in fact["checkpoints"]),
                    run,
                    f"{fact['peak_rss_mb'] / 1024:.1f} GB",
                    per_step,
                    f"{fact['stack']}, {fact.get('measured', '?')}",
                ]
            )
        else:
            why = (plan.summary or plan.left_out) if plan and plan.left_out else "not measured yet"
            rows.append([name[:2], "-", why, "not measured", "-", "-"])
    header = [
        "#",
        "published checkpoint (random weights)",
        "run with",
        "CPU peak RSS",
        "per training step",
        "stack, measured",
    ]
    return markdown_table(header, rows)


def doctor_table() -> str:
    """The doctor's classes: what each finds and what it decides from (``peftlab.doctor.findings``)."""
    from peftlab.doctor.findings import CLASSES, DETAILS

    rows = [[label, *DETAILS[key]] for key, label in CLASSES.items()]
    return markdown_table(["class", "finds", "decided from"], rows)


def doctor_heading() -> str:
    """The README's doctor heading, with the class count read from the doctor's own list."""
    from peftlab.doctor.findings import class_count

    return f"## `peftlab doctor`: {class_count()} failure classes, predicted before training"


TABLES = {
    "doctor-heading": doctor_heading,
    "doctor-table": doctor_table,
    "stacks-table": stacks_table,
    "real-size-table": real_size_table,
    "notebooks-table": notebooks_table,
    "failures-table": failures_table,
    "changes-table": changes_table,
    "instructors-agenda": readme_agenda,
    "instructors-room": readme_room,
    "instructors-faq": readme_faq,
}


#: CONTRIBUTING.md's generated section.
CONTRIBUTING_TABLES = {"module-map": module_map}


def render(text: str, tables: dict = TABLES) -> str:
    """``text`` (a README) with every generated table replaced by its current rendering."""
    for marker, make in tables.items():
        pattern = re.compile(rf"(<!-- {marker} -->\n)[\s\S]*?(<!-- /{marker} -->)")
        if not pattern.search(text):
            raise ValueError(f"The file has no <!-- {marker} --> ... <!-- /{marker} --> section.")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab readme``."""
    parser.add_argument("--file", type=Path, default=Path("README.md"), help="the README to update")
    parser.add_argument("--contributing", type=Path, default=Path("CONTRIBUTING.md"), help="its module map")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")


def update(path: Path, tables: dict, check: bool) -> int:
    """Rewrite (or with ``check`` only compare) one file's generated sections: 0 fine, 1 stale, 2 missing."""
    if not path.exists():
        print(f"error: no file at {path}", file=sys.stderr)
        return 2
    old = path.read_text(encoding="utf-8")
    new = render(old, tables)
    if check:
        if new != old:
            print(f"{path} is out of date: run `peftlab readme`", file=sys.stderr)
            return 1
        print(f"{path}: generated tables up to date")
        return 0
    path.write_text(new, encoding="utf-8")
    print(f"{path}: generated tables {'rewritten' if new != old else 'already up to date'}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Rewrite (or ``--check``) the README's generated tables and CONTRIBUTING.md's module map."""
    codes = [
        update(args.file, TABLES, args.check),
        update(args.contributing, CONTRIBUTING_TABLES, args.check),
    ]
    return max(codes)
