"""The database: the only code that speaks SQL.

- :mod:`.ids`: time stamps, ids, the token naming this process;
- :mod:`.connection`: where the log lives, opening it (checked, migrated), reading
  it, and the one transaction helper;
- :mod:`.migrations`: the schema, as named steps recorded in the file;
- :mod:`.writers`: the one writer thread per file (group commit, back-pressure,
  errors that reach the user);
- :mod:`.records`: one typed function per kind of record (``log_call``,
  ``start_run``, ``finish_run`` …), where each table's columns are known;
- :mod:`.cache`: looking up and clearing the response cache;
- :mod:`.recorder`: the writer's stand-in on a worker of an executor, which keeps
  an execution's records to be sent back.
"""

from __future__ import annotations

from . import cache, migrations
from .connection import (
    BUSY_TIMEOUT_MS,
    DB_FILENAME,
    ENV_VAR,
    configure,
    connect_readonly,
    db_path,
    forbid_opening,
    open_for_writing,
    transaction,
)
from .ids import new_id, now, process_alive, process_token
from .prompt_versions import prompt_versions, register_prompt_version
from .recorder import Recorder, ShippedVersion
from .records import (
    finish_experiment,
    finish_run,
    log_call,
    put_cache_entry,
    put_together,
    record_cache_hit,
    record_example,
    record_metric,
    start_experiment,
    start_run,
)
from .resume import Resumed, resume
from .writers import BATCH_LIMIT, QUEUE_BYTES, QUEUE_LIMIT, Writer, flush, writer

__all__ = [
    "BATCH_LIMIT",
    "BUSY_TIMEOUT_MS",
    "DB_FILENAME",
    "ENV_VAR",
    "QUEUE_BYTES",
    "QUEUE_LIMIT",
    "Writer",
    "configure",
    "connect_readonly",
    "db_path",
    "finish_experiment",
    "finish_run",
    "flush",
    "forbid_opening",
    "cache",
    "log_call",
    "migrations",
    "new_id",
    "now",
    "open_for_writing",
    "process_alive",
    "process_token",
    "prompt_versions",
    "put_cache_entry",
    "put_together",
    "Recorder",
    "record_cache_hit",
    "record_example",
    "Resumed",
    "resume",
    "record_metric",
    "register_prompt_version",
    "ShippedVersion",
    "start_experiment",
    "start_run",
    "transaction",
    "writer",
]
