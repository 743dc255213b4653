"""Every notebook in notebooks/ runs from top to bottom, so none of them can rot."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """A kernel that runs this interpreter, whatever kernelspecs the machine has."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().get_all_specs()
    python3 = specs.get("python3", {}).get("spec", {}).get("argv", [""])[0]
    if python3 != sys.executable:
        from ipykernel.kernelspec import install

        install(user=True, kernel_name="python3")
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_name: str, tmp_path: Path, db_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name=kernel_name, resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert db_path.exists()
