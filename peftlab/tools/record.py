"""``peftlab record``: run the notebooks of the recorded failures on the documented stack, and store
what each recorded block raised there as ``peftlab/recordings/<failure id>.json``.

The notebooks run headless (as ``peftlab run`` runs them) with ``$PEFTLAB_RECORD`` naming a fresh
folder; each block of :data:`peftlab.recordings.RECORDED` writes its recording there (and what the
notebook hands to ``seen.keep``). Only when every notebook ran to the end and every recorded failure
of those notebooks wrote its file are the files copied into the package: a half run changes nothing.
Run it on the documented stack (its pins, torch included); anywhere else it refuses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from peftlab import recordings
from peftlab.registry import get
from peftlab.tools.runner import add_notebook_arguments, find_notebooks, run_one
from peftlab.versions import describe


def recorded_notebooks(only: list[str] | None = None) -> dict[str, list[str]]:
    """``{notebook: [recorded failure ids]}`` for the recorded failures (of the notebooks ``only`` names)."""
    found: dict[str, list[str]] = {}
    for failure_id in recordings.RECORDED:
        notebook = get(failure_id).notebook
        if not only or any(notebook.startswith(o) for o in only):
            found.setdefault(notebook, []).append(failure_id)
    return found


def compare_folders(new: Path, ids: list[str], target: Path | None = None) -> dict[str, str]:
    """For each id: "new", "unchanged" or "changed: N lines" (the written file against the stored one)."""
    status = {}
    for failure_id in ids:
        written, stored = recordings.load(failure_id, new), recordings.load(failure_id, target)
        if stored is None:
            status[failure_id] = "new"
        elif written.to_json() == stored.to_json():
            status[failure_id] = "unchanged"
        else:
            diff = recordings.differences(stored, written)
            data = "" if written.data == stored.data else ", data changed"
            status[failure_id] = f"changed: {len(diff)} diff lines{data}"
    return status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``peftlab record``."""
    add_notebook_arguments(
        parser, "--build", Path("build") / "record", "output folder for the executed copies"
    )


def main(args: argparse.Namespace) -> int:
    """Record (0), refuse off the documented stack (2), or keep the stored files when a run fell short (1)."""
    if not recordings.on_recording_stack():
        print(
            f"error: recordings are made on the {recordings.STACK} stack (peftlab/stacks/{recordings.STACK}.txt, "
            f"torch included); this is the {describe()}",
            file=sys.stderr,
        )
        return 2
    plan = recorded_notebooks(args.only)
    if not plan:
        print(f"error: no recorded failure is taught in {args.only}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="peftlab-record-") as folder:
        os.environ[recordings.RECORD_ENV] = folder  # the kernels inherit it
        try:
            paths = find_notebooks(args.notebooks, [name[:2] for name in plan])
            outcomes = [run_one(p, args.build, args.timeout) for p in paths if p.stem in plan]
        finally:
            os.environ.pop(recordings.RECORD_ENV, None)
        failed = [f"{o.notebook}: {o.error}" for o in outcomes if o.error]
        ids = [i for ids in plan.values() for i in ids]
        missing = [i for i in ids if not recordings.path(i, Path(folder)).exists()]
        if failed or missing:
            print("error: nothing stored;", "; ".join(failed + [f"{i} wrote no recording" for i in missing]))
            return 1
        status = compare_folders(Path(folder), ids)
        for failure_id in ids:
            shutil.copyfile(recordings.path(failure_id, Path(folder)), recordings.path(failure_id))
    print(json.dumps(status, indent=1))
    print(f"recorded on the {describe()}: {', '.join(ids)} in {recordings.FOLDER}")
    return 0
