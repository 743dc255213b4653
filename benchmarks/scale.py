"""5. Scale: reading a large log, and how the cost grows with it.

Logs of 10k, 100k and 1M calls (1k, 10k and 100k runs in 10, 100 and 1,000
experiments; 10 calls and 3 metrics per run) are written in bulk straight into
the real schema by ``benchmarks.reading.build_log`` (``store.writer`` creates and
migrates the file first; this is the documented bulk path for test data). On
each: the file size per call, and the time to list the experiments, show one
run, load one experiment's runs into pandas and diff a prompt, each the median of
several warm calls. Every SQL statement those reads run is checked with
``EXPLAIN QUERY PLAN`` for full scans of the large tables.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, worker

SIZES = {"10k": (10, 100), "100k": (100, 100), "1M": (1000, 100)}  # experiments, runs each
CALLS_PER_RUN = 10
BIG_TABLES = ("calls", "runs", "metrics", "call_prompt_versions", "run_prompt_versions")
# "SCAN <table or alias>" in a plan is a pass over the whole table (or index).
_SCAN = re.compile(r"\bSCAN (\w+)")


def build(path: str, experiments: int, runs_per_experiment: int) -> dict[str, Any]:
    from .reading import build_log

    started = time.perf_counter()
    build_log(Path(path), experiments, runs_per_experiment, CALLS_PER_RUN)
    return {"seconds": time.perf_counter() - started}


def measure(path: str, reps: int) -> dict[str, Any]:
    os.environ["PROMPTLOG_DB"] = path
    import promptlog
    from promptlog import store

    statements: list[str] = []
    connect = store.connect_readonly

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        # Every read connection promptlog opens reports its statements here.
        opened = connect(*args, **kwargs)
        opened.set_trace_callback(statements.append)
        return opened

    store.connect_readonly = traced
    log = promptlog.open(path)
    conn = sqlite3.connect(path)
    calls, runs, experiments = conn.execute(
        "SELECT (SELECT COUNT(*) FROM calls), (SELECT COUNT(*) FROM runs), "
        "(SELECT COUNT(*) FROM experiments)"
    ).fetchone()
    (run_id,) = conn.execute("SELECT id FROM runs LIMIT 1 OFFSET ?", [runs // 2]).fetchone()
    (experiment_id,) = conn.execute(
        "SELECT id FROM experiments LIMIT 1 OFFSET ?", [experiments // 2]
    ).fetchone()
    size = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
    operations = {
        "list experiments (`log.experiment_records(limit=20)`, as `promptlog experiments`)":
            lambda: log.experiment_records(limit=20),
        "show one run (`log.run(id)`, as `promptlog show`)": lambda: log.run(run_id),
        "one experiment's runs into pandas (`log.runs(id)`)": lambda: log.runs(experiment_id),
        "diff a prompt (`str(promptlog.diff(name, 1, 2))`)":
            lambda: str(promptlog.diff("bench.namer_user", 1, 2)),
    }
    times: dict[str, list[float]] = {}
    scans: dict[str, list[str]] = {}
    for name, operation in operations.items():
        statements.clear()
        operation()  # warm: the page cache, the connection, pandas
        scans[name] = _full_scans(conn, statements)
        values = []
        for _ in range(reps):
            started = time.perf_counter()
            operation()
            values.append(time.perf_counter() - started)
        times[name] = values
    return {"calls": calls, "runs": runs, "experiments": experiments, "bytes": size,
            "times": times, "scans": scans}


def _full_scans(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    """The large tables that some statement reads from end to end."""
    found = set()
    for statement in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        aliases = _aliases(statement)
        for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}"):
            for name in _SCAN.findall(row[-1]):
                table = aliases.get(name, name)
                if table in BIG_TABLES:
                    found.add(table)
    return sorted(found)


def _aliases(statement: str) -> dict[str, str]:
    return {alias: table for table, alias in re.findall(r"\b(\w+)\s+(?:AS\s+)?(\w+)\b",
                                                       statement) if table in BIG_TABLES}


def bench(reps: int, folder: Path, sizes: list[str]) -> tuple[Section, Path]:
    section = Section(
        "5. Scale",
        f"Logs of {', '.join(sizes)} calls ({CALLS_PER_RUN} calls and 3 metrics per run, 100 "
        f"runs per experiment), written in bulk into the real schema; each read is the median "
        f"of {reps} warm calls in one process (min–max beside it).",
    )
    results: dict[str, dict[str, Any]] = {}
    for size in sizes:
        experiments, runs_each = SIZES[size]
        path = folder / f"scale-{size}.db"
        if not path.exists():
            print(f"  building the {size}-call log", flush=True)
            built = worker("scale.build", str(path), experiments, runs_each)
            section.notes.append(f"The {size}-call log took {built['seconds']:.0f} s to write.")
        print(f"  reading the {size}-call log", flush=True)
        results[size] = worker("scale.measure", str(path), reps)
    largest = sizes[-1]
    big = results[largest]
    section.rows.append(Row(
        f"file size per call, {largest}-call log ({big['bytes'] / 1e6:,.0f} MB; runs, metrics "
        f"and prompt links included)", Figure([big["bytes"] / big["calls"]]), "bytes"))
    for name in big["times"]:
        figure = Figure([t * 1000 for t in big["times"][name]])
        growth = " → ".join(
            f"{size}: {Figure(results[size]['times'][name]).median * 1000:.1f} ms"
            for size in sizes
        )
        scans = big["scans"][name]
        row = Row(f"{name}, {largest}-call log", figure, "ms", goal="< 200 ms",
                  met=figure.median < 200,
                  note=f"{growth}; full scans of: {', '.join(scans) if scans else 'none'}")
        section.rows.append(row)
    return section, folder / f"scale-{largest}.db"
