"""Docs generated from the code (command help, the schema) must be current."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATED = sorted(p for p in (ROOT / "docs").glob("*.md") if "[[[cog" in p.read_text())


@pytest.mark.parametrize("path", GENERATED, ids=[p.name for p in GENERATED])
def test_generated_docs_are_current(path: Path) -> None:
    """Regenerate with `cog -r docs/NAME.md` after changing the CLI or the schema."""
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", str(path.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _tour() -> str:
    """The first python block after the README's "## A tour" heading."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme[readme.index("## A tour") :]
    start = tour.index("```python\n") + len("```python\n")
    return tour[start : tour.index("```", start)]


def test_the_readme_tour_runs_as_written_with_no_keys(tmp_path: Path) -> None:
    script = tmp_path / "tour.py"
    script.write_text(_tour(), encoding="utf-8")
    # A fresh machine: no provider keys or endpoints, nothing promptlog sets for itself.
    secret = re.compile(r"API_KEY|API_BASE|BASE_URL|TOKEN|^(OPENAI|ANTHROPIC|AZURE)_")
    env = {k: v for k, v in os.environ.items() if not secret.search(k)}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    env["PROMPTLOG_DB"] = str(tmp_path / "tour.db")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # print(exp.summary()): the metric's row with its statistics.
    assert "name_length" in done.stdout and "mean" in done.stdout
    assert "10 runs, 10 succeeded, 0 failed" in done.stderr
    runs = sqlite3.connect(tmp_path / "tour.db").execute(
        "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'"
    )
    assert runs.fetchone() == (10,)
