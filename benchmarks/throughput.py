"""1. Logging throughput: runs with three hyperparameters and three metrics each.

promptlog (``Experiment.run(fn)`` and a ``with`` block) against raw ``sqlite3``
group commit inserting the same rows into the same schema, and MLflow's tracking
on a SQLite backend, each in a fresh process per repetition.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, peer_python, ratios, run_json, worker

HYPERPARAMETERS = {"lr": 0.01, "layers": 4, "optimizer": "adam"}
RAW_BATCH = 1000  # runs per transaction in the raw baseline


def _fresh_log() -> Path:
    return Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"


def promptlog_runs(runs: int, style: str) -> dict[str, Any]:
    """Log ``runs`` runs through the public API; the time covers the experiment,
    from its start to the moment ``run()`` (or the block) returns, flushed."""
    import os

    path = _fresh_log()
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import Experiment, metric, store

    @metric
    def accuracy(value: float) -> float:
        return value

    @metric
    def passed(value: bool) -> bool:
        return value

    @metric
    def tokens(value: int) -> int:
        return value

    def execution() -> int:
        accuracy(0.5)
        passed(True)
        tokens(42)
        return 1

    store.writer().flush()  # create and migrate the file first: not timed
    started = time.perf_counter()
    if style == "run":
        Experiment("bench", num_executions=runs, metadata=HYPERPARAMETERS, quiet=True).run(
            execution
        )
    else:
        with Experiment("bench", num_executions=runs, metadata=HYPERPARAMETERS, quiet=True):
            accuracy(0.5)
            passed(True)
            tokens(42)
    seconds = time.perf_counter() - started
    _check(path, runs)
    return {"runs": runs, "seconds": seconds, "runs_per_s": runs / seconds}


def writer_runs(runs: int) -> dict[str, Any]:
    """The records an experiment writes for each run (its start, its end, three
    metrics), handed straight to promptlog's writer from one thread: the storage
    layer alone, without the experiment's thread pool and bookkeeping."""
    import os

    path = _fresh_log()
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import store

    writer = store.writer()
    writer.flush()
    started = time.perf_counter()
    experiment_id = store.new_id()
    store.start_experiment(writer, id=experiment_id, name="bench", num_executions=runs,
                           max_workers=None, metadata=HYPERPARAMETERS, environment={},
                           process=store.process_token(), created_at=store.now())
    hyperparameters = {"bots": [], "prompt_versions": [], "metadata": HYPERPARAMETERS}
    for index in range(runs):
        run_id = store.new_id()
        clock = time.perf_counter()
        store.start_run(writer, id=run_id, experiment_id=experiment_id, execution_index=index,
                        started_at=store.now(), process=store.process_token())
        store.record_metric(writer, run_id, "accuracy", 0.5, "float")
        store.record_metric(writer, run_id, "passed", 1.0, "bool")
        store.record_metric(writer, run_id, "tokens", 42.0, "int")
        store.finish_run(writer, run_id, status="succeeded", ended_at=store.now(),
                         duration_s=time.perf_counter() - clock, result="1", result_format="json",
                         hyperparameters=hyperparameters)
    store.finish_experiment(writer, experiment_id, status="succeeded", finished_at=store.now())
    writer.flush()
    seconds = time.perf_counter() - started
    _check(path, runs)
    return {"runs": runs, "seconds": seconds, "runs_per_s": runs / seconds}


def raw_sqlite_runs(runs: int) -> dict[str, Any]:
    """The same rows as promptlog writes, into the same schema, by hand: one thread,
    WAL, ``synchronous=NORMAL``, a transaction per 1,000 runs."""
    path = _fresh_log()
    from promptlog import store

    store.writer(path).close()  # the schema, created by promptlog: not timed
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")

    def now() -> str:
        return datetime.now(timezone.utc).isoformat()

    started = time.perf_counter()
    experiment_id = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO experiments (id, name, status, num_executions, metadata, created_at) "
        "VALUES (?, 'bench', 'running', ?, ?, ?)",
        [experiment_id, runs, json.dumps(HYPERPARAMETERS), now()],
    )
    hyperparameters = json.dumps({"metadata": HYPERPARAMETERS})
    for first in range(0, runs, RAW_BATCH):
        run_rows, metric_rows = [], []
        for index in range(first, min(runs, first + RAW_BATCH)):
            run_id = uuid.uuid4().hex
            begun = now()
            run_rows.append((run_id, experiment_id, index, "succeeded", begun, now(), 0.001,
                             "1", "json", hyperparameters, "bench"))
            metric_rows += [(run_id, "accuracy", 0.5, "float"), (run_id, "passed", 1.0, "bool"),
                            (run_id, "tokens", 42.0, "int")]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (id, experiment_id, execution_index, status, started_at, "
            "ended_at, duration_s, result, result_format, hyperparameters, process) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_rows,
        )
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", metric_rows)
        conn.execute("COMMIT")
    conn.execute("UPDATE experiments SET status = 'succeeded', finished_at = ?", [now()])
    seconds = time.perf_counter() - started
    conn.close()
    _check(path, runs)
    return {"runs": runs, "seconds": seconds, "runs_per_s": runs / seconds}


def _check(path: Path, runs: int) -> None:
    conn = sqlite3.connect(path)
    counted = conn.execute(
        "SELECT (SELECT COUNT(*) FROM runs WHERE status = 'succeeded'), "
        "(SELECT COUNT(*) FROM metrics)"
    ).fetchone()
    conn.close()
    assert counted == (runs, 3 * runs), counted


def mlflow_runs(runs: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="mlflow-bench-"))
    script = Path(__file__).parent / "peers" / "mlflow_runs.py"
    return run_json([str(peer_python("mlflow")), str(script), str(folder / "mlflow.db"),
                     str(runs)])


def bench(reps: int, runs: int, mlflow_runs_n: int) -> Section:
    section = Section(
        "1. Logging throughput",
        f"{runs:,} runs, each with 3 hyperparameters and 3 metrics (MLflow: {mlflow_runs_n} "
        f"runs, its rate is per run), a fresh process per measurement, {reps} repetitions "
        f"side by side.",
    )
    measured: dict[str, list[float]] = {
        k: [] for k in ("run", "with", "writer", "raw", "mlflow")
    }
    mlflow_error = None
    for rep in range(reps):
        print(f"  throughput repetition {rep + 1}/{reps}", flush=True)
        measured["run"].append(worker("throughput.promptlog_runs", runs, "run")["runs_per_s"])
        measured["with"].append(worker("throughput.promptlog_runs", runs, "with")["runs_per_s"])
        measured["writer"].append(worker("throughput.writer_runs", runs)["runs_per_s"])
        measured["raw"].append(worker("throughput.raw_sqlite_runs", runs)["runs_per_s"])
        if mlflow_error is None:
            try:
                measured["mlflow"].append(mlflow_runs(mlflow_runs_n)["runs_per_s"])
            except Exception as e:  # noqa: BLE001 - the table says why the peer is missing
                mlflow_error = str(e).splitlines()[0]
    raw = measured["raw"]
    for style, label in (("run", "promptlog, `Experiment(...).run(fn)`"),
                         ("with", "promptlog, `with Experiment(...)` block")):
        section.rows.append(Row(label, Figure(measured[style]), "runs/s",
                                ratios(measured[style], raw), "× raw SQLite",
                                "≥ 0.5× raw SQLite"))
        section.rows[-1].met = section.rows[-1].ratio.median >= 0.5
    section.rows.append(Row("promptlog's writer alone: the same records from one thread, "
                            "no experiment", Figure(measured["writer"]), "runs/s",
                            ratios(measured["writer"], raw), "× raw SQLite"))
    section.rows.append(Row("raw `sqlite3`, group commit of 1,000 runs", Figure(raw), "runs/s",
                            note="the baseline"))
    if measured["mlflow"]:
        mlflow = measured["mlflow"]
        section.rows.append(Row("MLflow tracking, `sqlite:///` backend", Figure(mlflow),
                                "runs/s", ratios(mlflow, raw), "× raw SQLite"))
        section.rows.append(Row("promptlog `run(fn)` ÷ MLflow", None, "",
                                ratios(measured["run"], mlflow), "× MLflow", "≥ 100× MLflow"))
        section.rows[-1].met = section.rows[-1].ratio.median >= 100
    else:
        section.notes.append(f"MLflow could not be measured: {mlflow_error}")
    return section
