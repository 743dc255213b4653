"""The schema, as an ordered list of named migrations recorded in the file.

Never edit or rename a migration once it has shipped: add a new one instead.
A database written by any earlier release opens and upgrades in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

MIGRATION_SET = "promptlog"
_steps: list[Callable[[Database], None]] = []


def _migration(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    _steps.append(fn)
    return fn


def names() -> list[str]:
    """Every migration this version knows, in order."""
    return [fn.__name__ for fn in _steps]


def apply(conn: sqlite3.Connection) -> None:
    """Apply the pending migrations through sqlite-utils' ``Migrations``, which
    records each one in ``_sqlite_migrations``."""
    # sqlite-utils imports pandas when it is installed (~0.5 s): only pay for it
    # when there is a migration to apply.
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(MIGRATION_SET)
    for fn in _steps:
        migrations()(fn)
    migrations.apply(Database(conn))


def _run(db: Database, statements: str) -> None:
    # executescript() would commit the migration's transaction, so run each
    # statement on its own.
    for statement in statements.split(";\n"):
        if statement.strip():
            db.execute(statement)


@_migration
def m001_prompt_versions_and_calls(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE prompt_versions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            template TEXT NOT NULL,
            hash TEXT NOT NULL,
            version INTEGER NOT NULL,
            previous_version_id INTEGER REFERENCES prompt_versions(id),
            created_at TEXT NOT NULL,
            UNIQUE (name, hash),
            UNIQUE (name, version)
        );
        CREATE TABLE calls (
            id TEXT PRIMARY KEY,
            run_id TEXT REFERENCES runs(id),
            bot_name TEXT NOT NULL,
            bot_class TEXT NOT NULL,
            model TEXT NOT NULL,
            parameters TEXT NOT NULL DEFAULT '{}',
            messages TEXT NOT NULL DEFAULT '[]',
            response_text TEXT,
            response_parsed TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost REAL,
            latency_s REAL,
            status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'invalid')),
            error TEXT,
            attempt INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        CREATE INDEX calls_run_id ON calls(run_id);
        CREATE INDEX calls_model ON calls(model);
        CREATE TABLE call_prompt_versions (
            call_id TEXT NOT NULL REFERENCES calls(id),
            position INTEGER NOT NULL,
            prompt_version_id INTEGER NOT NULL REFERENCES prompt_versions(id),
            PRIMARY KEY (call_id, position)
        );
        CREATE INDEX call_prompt_versions_prompt_version_id
            ON call_prompt_versions(prompt_version_id)
        """,
    )


@_migration
def m002_experiments_runs_metrics(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE experiments (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
            num_executions INTEGER NOT NULL,
            max_workers INTEGER,
            metadata TEXT NOT NULL DEFAULT '{}',
            environment TEXT NOT NULL DEFAULT '{}',
            process TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX experiments_name ON experiments(name, created_at);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            experiment_id TEXT NOT NULL REFERENCES experiments(id),
            execution_index INTEGER NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            duration_s REAL,
            result TEXT,
            result_format TEXT CHECK (result_format IN ('json', 'repr')),
            error_type TEXT,
            error_message TEXT,
            traceback TEXT,
            hyperparameters TEXT NOT NULL DEFAULT '{}',
            process TEXT,
            UNIQUE (experiment_id, execution_index)
        );
        CREATE INDEX runs_running ON runs(process) WHERE status = 'running';
        CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            value REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('bool', 'int', 'float')),
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID;
        CREATE INDEX metrics_name ON metrics(name);
        CREATE TABLE run_prompt_versions (
            run_id TEXT NOT NULL REFERENCES runs(id),
            prompt_version_id INTEGER NOT NULL REFERENCES prompt_versions(id),
            PRIMARY KEY (run_id, prompt_version_id)
        ) WITHOUT ROWID;
        CREATE INDEX run_prompt_versions_prompt_version_id
            ON run_prompt_versions(prompt_version_id)
        """,
    )


@_migration
def m003_reading_views(db: Database) -> None:
    """Views a person reading the log wants (in datasette, the sqlite3 shell or
    pandas), and an index for reading metrics by name and kind.

    ``experiment_metrics`` and ``prompt_history`` are long form (one row per
    metric) because a view cannot pivot metric names it does not know;
    ``promptlog.open().runs()`` pivots them in SQL. A metric logged with several
    kinds takes the widest (float, then int, then bool).
    """
    kind = (
        "CASE MAX(CASE m.kind WHEN 'float' THEN 2 WHEN 'int' THEN 1 ELSE 0 END) "
        "WHEN 2 THEN 'float' WHEN 1 THEN 'int' WHEN 0 THEN 'bool' END"
    )
    _run(
        db,
        f"""
        DROP INDEX metrics_name;
        CREATE INDEX metrics_name_kind ON metrics(name, kind);
        CREATE VIEW experiment_metrics AS
        SELECT e.id AS experiment_id, e.name AS experiment, e.created_at,
            m.name AS metric, {kind} AS kind, COUNT(*) AS n, AVG(m.value) AS mean,
            MIN(m.value) AS min, MAX(m.value) AS max
        FROM experiments e
        JOIN runs r ON r.experiment_id = e.id
        JOIN metrics m ON m.run_id = r.id
        GROUP BY e.id, m.name;
        CREATE VIEW run_metrics AS
        SELECT r.id AS run_id, r.experiment_id, e.name AS experiment, r.execution_index,
            r.status, r.started_at, r.duration_s,
            json_extract(r.hyperparameters, '$.bots[0].model') AS model,
            (SELECT json_group_object(m.name, m.value) FROM metrics m WHERE m.run_id = r.id)
                AS metrics
        FROM runs r JOIN experiments e ON e.id = r.experiment_id;
        CREATE VIEW prompt_history AS
        SELECT pv.name AS prompt, pv.version, pv.hash, pv.created_at AS version_created_at,
            pv.id AS prompt_version_id, e.id AS experiment_id, e.name AS experiment,
            e.created_at AS experiment_created_at, m.name AS metric, {kind} AS kind,
            COUNT(m.value) AS n, AVG(m.value) AS mean
        FROM prompt_versions pv
        LEFT JOIN run_prompt_versions u ON u.prompt_version_id = pv.id
        LEFT JOIN runs r ON r.id = u.run_id
        LEFT JOIN experiments e ON e.id = r.experiment_id
        LEFT JOIN metrics m ON m.run_id = r.id
        GROUP BY pv.id, e.id, m.name
        """,
    )


@_migration
def m004_examples(db: Database) -> None:
    """Experiments over inputs: examples stored once each, keyed by the hash of
    their canonical JSON (``sha256:…``), and each run's example and repeat."""
    _run(
        db,
        """
        CREATE TABLE examples (
            id TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        ALTER TABLE runs ADD COLUMN example_id TEXT REFERENCES examples(id);
        ALTER TABLE runs ADD COLUMN repeat_index INTEGER;
        CREATE INDEX runs_example_id ON runs(example_id) WHERE example_id IS NOT NULL
        """,
    )


@_migration
def m005_experiment_inputs(db: Database) -> None:
    """What an experiment runs on, so that a later one can resume it: the hash of
    its examples' ids in order (NULL without inputs) and its repeats."""
    _run(
        db,
        """
        ALTER TABLE experiments ADD COLUMN inputs TEXT;
        ALTER TABLE experiments ADD COLUMN repeats INTEGER
        """,
    )


@_migration
def m006_cache(db: Database) -> None:
    """The response cache: one row per request and sample index, keyed by a
    ``sha256:`` hash of what determines the reply (never a credential). A call
    answered from it is logged with ``cached`` set and the cost it saved."""
    _run(
        db,
        """
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            response_text TEXT,
            response_parsed TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost REAL,
            created_at TEXT NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0,
            last_hit_at TEXT
        );
        CREATE INDEX cache_model ON cache(model);
        CREATE INDEX cache_created_at ON cache(created_at);
        ALTER TABLE calls ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE calls ADD COLUMN saved_cost REAL
        """,
    )


@_migration
def m007_optimisations(db: Database) -> None:
    """Optimisations: an experiment's ``kind`` (``experiment`` or ``optimisation``),
    the optimisation a candidate's evaluation belongs to (``parent_id``), and the
    ``outcome`` an optimisation records when it ends (JSON: best score, best
    candidate, budget used, why it stopped)."""
    _run(
        db,
        """
        ALTER TABLE experiments ADD COLUMN kind TEXT NOT NULL DEFAULT 'experiment';
        ALTER TABLE experiments ADD COLUMN parent_id TEXT REFERENCES experiments(id);
        ALTER TABLE experiments ADD COLUMN outcome TEXT;
        CREATE INDEX experiments_parent_id ON experiments(parent_id) WHERE parent_id IS NOT NULL;
        CREATE INDEX experiments_kind ON experiments(kind) WHERE kind != 'experiment'
        """,
    )
