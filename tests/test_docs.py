"""Docs generated from the code (command help, the schema) must be current."""

from __future__ import annotations

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
