"""Every notebook in notebooks/ runs from top to bottom, so none of them can rot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# What each notebook must show besides running without an error.
EXPECTED_HTML = {
    "experiments.ipynb": ["name_length", "short_name"],
    "reading.ipynb": ["diff_add", "McNemar exact"],  # the side-by-side diff, the comparison
    # The candidates table, the winning version's diff, the paired comparison.
    "optimize.ipynb": ["prompt_versions", "diff_add", "McNemar exact"],
}


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Kernel ``python3`` runs this interpreter, whatever kernelspecs the machine has:
    Jupyter looks in JUPYTER_PATH first."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
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
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for fragment in EXPECTED_HTML.get(path.name, []):
        assert fragment in html
    assert db_path.exists()
