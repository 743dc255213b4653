"""Prompt versions: content-addressed rows, registered by a write that reads first."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .connection import connect_readonly, db_path
from .ids import now
from .writers import writer

_PROMPT_VERSION_COLUMNS = "id, name, role, template, hash, version, created_at"


def register_prompt_version(
    name: str, role: str, template: str, hash_: str, path: Path | None = None
) -> dict[str, Any]:
    """Return the ``prompt_versions`` row for (name, hash), inserting it with the
    next version number for ``name`` if it is new."""
    def register(conn: sqlite3.Connection) -> dict[str, Any]:
        conn.execute(
            "INSERT INTO prompt_versions "
            "(name, role, template, hash, version, previous_version_id, created_at) "
            "SELECT :name, :role, :template, :hash, COALESCE(MAX(version), 0) + 1, "
            "  (SELECT id FROM prompt_versions WHERE name = :name "
            "   ORDER BY version DESC LIMIT 1), :created_at "
            "FROM prompt_versions WHERE name = :name "
            "ON CONFLICT (name, hash) DO NOTHING",
            {"name": name, "role": role, "template": template, "hash": hash_, "created_at": now()},
        )
        cursor = conn.execute(
            f"SELECT {_PROMPT_VERSION_COLUMNS} FROM prompt_versions WHERE name = ? AND hash = ?",
            [name, hash_],
        )
        columns = [d[0] for d in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))

    return writer(path).call(register)


def prompt_versions(name: str, path: Path | None = None) -> list[dict[str, Any]]:
    """Every logged version of the prompt ``name``, oldest first."""
    target = path or db_path()
    if not target.exists():
        return []
    conn = connect_readonly(target)
    try:
        rows = conn.execute(
            f"SELECT {_PROMPT_VERSION_COLUMNS} FROM prompt_versions WHERE name = ? "
            f"ORDER BY version",
            [name],
        ).fetchall()
        return [dict(row) for row in rows]
    finally:
        conn.close()
