"""Shared fixtures: every test logs to a fresh file of its own, the fake
OpenAI-compatible server is available as ``fake_openai`` and a real tiny model
as ``local_model``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["fake_server_plugin", "local_model_plugin"]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["PROMPTLOG_PROGRESS"] = "0"


@pytest.fixture(autouse=True)
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the log at a temporary file for the duration of one test."""
    path = tmp_path / "message_log.db"
    monkeypatch.setenv("PROMPTLOG_DB", str(path))
    return path
