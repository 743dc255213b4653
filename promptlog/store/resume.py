"""Resuming an experiment: find the latest one of a name on the same inputs,
keep its succeeded runs and clear the others, in one transaction on the writer.

    found = writer.call(functools.partial(store.resume, name="qa", inputs=..., ...))
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ..errors import ExperimentError
from .ids import process_alive


@dataclass(frozen=True)
class Resumed:
    """The experiment taken up again and the runs it keeps (one per execution index):
    ``(run id, execution index, status, result, result format)``."""

    id: str
    kept: list[tuple[str, int, str, str | None, str | None]]


def resume(
    conn: sqlite3.Connection,
    *,
    name: str,
    num_executions: int,
    inputs: str | None,
    repeats: int,
    retry_failed: bool,
    process: str,
    kind: str = "experiment",
    open_ended: bool = False,
) -> Resumed | None:
    """Take up the latest experiment of ``kind`` named ``name`` with these inputs
    and repeats: keep its succeeded runs (and failed ones unless ``retry_failed``),
    delete the others (their calls stay in the log, unattached), mark it running
    again. An ``open_ended`` one (a session of batches) matches by name and kind
    alone and keeps every finished run. None when there is no such experiment."""
    if open_ended:
        row = conn.execute(
            "SELECT id, status, process FROM experiments WHERE name = ? AND kind = ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            [name, kind],
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT id, status, process FROM experiments WHERE name = ? AND kind = ? "
            "AND num_executions = ? AND inputs IS ? AND COALESCE(repeats, 1) = ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            [name, kind, num_executions, inputs, repeats],
        ).fetchone()
    if row is None:
        return None
    experiment_id, status, owner = row
    if status == "running" and owner and owner != process and process_alive(owner):
        raise ExperimentError(
            f"Experiment {name!r} ({experiment_id}) is still running in another process "
            f"({owner}); wait for it to finish, or stop it, before resuming it."
        )
    keep = ("succeeded",) if retry_failed and not open_ended else ("succeeded", "failed")
    runs = conn.execute(
        "SELECT id, execution_index, status, result, result_format FROM runs "
        "WHERE experiment_id = ? ORDER BY execution_index",
        [experiment_id],
    ).fetchall()
    kept = [run for run in runs if run[2] in keep and (open_ended or run[1] < num_executions)]
    dropped: list[Any] = [(run[0],) for run in runs if run not in kept]
    if dropped:
        conn.executemany("UPDATE calls SET run_id = NULL WHERE run_id = ?", dropped)
        conn.executemany("DELETE FROM metrics WHERE run_id = ?", dropped)
        conn.executemany("DELETE FROM run_prompt_versions WHERE run_id = ?", dropped)
        conn.executemany("DELETE FROM runs WHERE id = ?", dropped)
    conn.execute(
        "UPDATE experiments SET status = 'running', finished_at = NULL, process = ? "
        "WHERE id = ?",
        [process, experiment_id],
    )
    return Resumed(experiment_id, kept)
