"""Execute every notebook in notebooks/ with VM_PPL_NOTEBOOK_SMALL=1; no cell may error.

The executed copies are discarded (the saved notebooks keep their full-settings outputs).
The whole file takes about 1.5-2 minutes on a 2-core CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import ipykernel  # noqa: F401  (the notebooks' kernel; a test dependency)
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 240


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    if "import bambi" in path.read_text():
        pytest.importorskip("bambi")  # the optional [bambi] extra
    monkeypatch.setenv("VM_PPL_NOTEBOOK_SMALL", "1")
    # the kernel imports vm_ppl from this checkout even without an install
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *extra]))
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # each notebook sets its own device count
    nb = nbformat.read(path, as_version=4)
    # "python3" is ipykernel's native kernel: the interpreter running the tests
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
