"""Helpers for the fault suite (tests/test_faults_*.py): child processes that log,
and checks of what a log file holds afterwards."""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def write_script(folder: Path, code: str, name: str = "child.py") -> Path:
    script = folder / name
    script.write_text(textwrap.dedent(code))
    return script


def child_env(db_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PROMPTLOG_DB": str(db_path),
        "PROMPTLOG_PROGRESS": "0",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **extra,
    }


def run_script(
    script: Path, db_path: Path, *args: str, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=child_env(db_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _without_root_file_powers() -> None:
    """In the child, before exec: root keeps uid 0 but loses the capabilities that
    let it write files whose mode says read-only (so chmod means what it says)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_as_ordinary_user(
    script: Path, db_path: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` so that file permissions apply to it, even when the tests
    run as root."""
    return run_script(
        script,
        db_path,
        timeout=timeout,
        preexec_fn=_without_root_file_powers if os.geteuid() == 0 else None,
    )


def query(db_path: Path, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Read the file as any other program would (no promptlog involved)."""
    conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def calls(db_path: Path) -> list[dict[str, Any]]:
    """Every ``calls`` row, oldest first, its JSON columns decoded (after a flush)."""
    import json

    import promptlog

    promptlog.flush()
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")]
    finally:
        conn.close()
    for row in rows:
        for column in ("parameters", "messages", "response_parsed"):
            if row[column] is not None:
                row[column] = json.loads(row[column])
    return rows


def integrity(db_path: Path) -> str:
    return query(db_path, "PRAGMA integrity_check")[0][0]


def file_bytes_with_wal(db_path: Path) -> bytes:
    """Everything promptlog may have written: the file, its WAL and shared memory."""
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = Path(f"{db_path}{suffix}")
        if part.exists():
            data += part.read_bytes()
    return data
