"""The one way peftlab executes a notebook: papermill, in a kernel of its own.

Why papermill: it is the ecosystem's tool for parameterised notebooks (every notebook's parameters
cell is tagged ``parameters`` for it), it keeps the executed notebook with its outputs when a cell
fails, and it runs on nbclient, Jupyter's own executor. ``peftlab run``, ``docs``, ``sweep``,
``matrix``, ``drift`` and the tests all call :func:`execute`.

The kernel is told explicitly which notebook it runs and where its scorecard goes
(``PEFTLAB_NOTEBOOK``, ``PEFTLAB_RESULTS_DIR``), plus whatever mode the caller asks for (``env``);
this process's environment is restored afterwards. The kernel runs on IPC sockets in a private
folder: no TCP port, so no "running over TCP without encryption" warning.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftlab.registry import for_notebook
from peftlab.scorecard import NOTEBOOK_ENV, RESULTS_ENV

#: Figures as PNG outputs in the executed notebook, as in Jupyter (whatever MPLBACKEND the shell has).
INLINE = "module://matplotlib_inline.backend_inline"


def failures_missing(notebook: str, card: dict) -> list[str]:
    """The failures the registry says ``notebook`` teaches that its scorecard does not show."""
    shown = {f["id"] for f in card.get("failures", [])}
    return [f.id for f in for_notebook(notebook) if f.id not in shown]


@dataclass
class Execution:
    """One executed notebook: its outputs, its scorecard, the seconds and the first error ('' if none)."""

    path: Path
    notebook: Any  # nbformat.NotebookNode, with outputs
    seconds: float
    error: str
    card: dict | None

    @property
    def name(self) -> str:
        """The notebook's name: its file stem."""
        return self.path.stem


@contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) ``changes`` in ``os.environ`` for the body; restore it afterwards."""
    saved = {key: os.environ.get(key) for key in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def ipc_kernel() -> Iterator[object]:
    """A kernel manager on IPC sockets in a private folder (shut down on exit)."""
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="peftlab-kernel-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets, "kernel")))
        try:
            yield km
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=False)


def first_error(exc: BaseException) -> str:
    """One line for a failed execution: papermill's ``ename: evalue``, else the exception."""
    name, value = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{name}: {value}" if name else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


def execute(
    path: Path,
    results: Path | None = None,
    parameters: Mapping[str, object] | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: int = 600,
) -> Execution:
    """Execute the notebook at ``path`` with papermill; return the executed notebook and its scorecard.

    ``results``: where the scorecard goes (a temporary folder if None); ``parameters``: values for the
    parameters cell (papermill injects them after it); ``env``: more variables for the kernel (None
    removes one). A cell that raises ends the run: ``error`` says what, and the notebook keeps the
    outputs up to there.
    """
    import nbformat
    import papermill

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="peftlab-results-") as scratch:
        folder = Path(results or scratch).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        card_path = folder / f"{path.stem}.json"
        card_path.unlink(missing_ok=True)
        kernel_env = {NOTEBOOK_ENV: path.stem, RESULTS_ENV: str(folder), "MPLBACKEND": INLINE, **(env or {})}
        executed = Path(scratch, path.name)  # papermill writes it on success and, before raising, on failure
        start, error = time.perf_counter(), ""
        with environment(kernel_env), ipc_kernel() as km:
            try:
                papermill.execute_notebook(
                    str(path),
                    str(executed),
                    parameters=dict(parameters or {}),
                    km=km,
                    cwd=str(path.parent),
                    execution_timeout=timeout,
                    request_save_on_cell_execute=False,
                    progress_bar=False,
                    log_output=False,
                )
            except Exception as exc:  # noqa: BLE001  (a failed cell is a result: the caller judges it)
                error = first_error(exc)
        seconds = time.perf_counter() - start
        notebook = nbformat.read(executed if executed.exists() else path, as_version=4)
        card = json.loads(card_path.read_text()) if card_path.exists() else None
    return Execution(path, notebook, seconds, error, card)
