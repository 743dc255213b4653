"""The database: where it lives, how it is opened, and the one writer thread per file.

This is the only module that writes SQL. Producers (bots, prompts, experiments)
hand records to :class:`Writer`, which commits everything waiting in one
transaction (group commit), so logging costs the caller only a queue put.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ulid import ULID

from . import migrations
from .errors import DatabaseError, NotAPromptlogDatabase, SchemaTooNewError, WriteError

T = TypeVar("T")

DB_FILENAME = "message_log.db"
ENV_VAR = "PROMPTLOG_DB"
BUSY_TIMEOUT_MS = 30_000
# Records waiting for the writer; a full queue makes producers wait (back-pressure)
# instead of letting memory grow without limit.
QUEUE_LIMIT = 20_000
# The most records one transaction takes; larger backlogs commit in several.
BATCH_LIMIT = 5_000
_SQLITE_HEADER = b"SQLite format 3\x00"
# Parents before children, so a batch satisfies its foreign keys whatever order
# the producing threads enqueued in.
_TABLE_ORDER = {
    "experiments": 0,
    "runs": 1,
    "prompt_versions": 2,
    "calls": 3,
    "call_prompt_versions": 4,
    "run_prompt_versions": 5,
    "metrics": 6,
}
_JSON_COLUMNS = {
    "parameters",
    "messages",
    "response_parsed",
    "metadata",
    "environment",
    "result",
    "hyperparameters",
}


# --- time, ids, processes ---------------------------------------------------


def now() -> str:
    """The current time as UTC ISO 8601, the one timestamp format in the log."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A new ULID: unique, and sorts by creation time."""
    return str(ULID())


def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # Field 22 (start time in clock ticks) follows the parenthesised name.
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "?"


_PROCESS: str | None = None


def process_token() -> str:
    """Names this process (host, pid, start time) so that a later process can tell
    whether the one that left a run ``running`` is still alive."""
    global _PROCESS
    if _PROCESS is None:
        pid = os.getpid()
        _PROCESS = f"{socket.gethostname()}/{pid}/{_process_start(pid)}"
    return _PROCESS


def _process_alive(token: str) -> bool:
    try:
        host, pid_text, started = token.rsplit("/", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True  # another machine's process: we cannot tell, so assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started == "?" or _process_start(pid) == started


# --- where the database lives -----------------------------------------------

_configured_path: Path | None = None
_root_cache: dict[Path, Path] = {}


def configure(db_path: str | os.PathLike[str] | None = None) -> None:
    """Log to ``db_path`` from now on (``PROMPTLOG_DB`` still wins); ``None`` resets."""
    global _configured_path
    _configured_path = Path(db_path).expanduser().absolute() if db_path is not None else None


def _project_root(start: Path) -> Path:
    if start not in _root_cache:
        root = start
        for folder in (start, *start.parents):
            if (folder / ".git").exists() or (folder / "pyproject.toml").exists():
                root = folder
                break
        _root_cache[start] = root
    return _root_cache[start]


def db_path() -> Path:
    """The log file in use: ``PROMPTLOG_DB``, else :func:`configure`'s, else
    ``message_log.db`` at the project root (the nearest parent holding ``.git``
    or ``pyproject.toml``, else the working directory)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().absolute()
    if _configured_path is not None:
        return _configured_path
    return _project_root(Path.cwd()) / DB_FILENAME


# --- opening ----------------------------------------------------------------


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as e:
        raise DatabaseError(f"Cannot read {path}: {e.strerror}.") from e
    if header and header != _SQLITE_HEADER:
        raise NotAPromptlogDatabase(
            f"{path} is not a SQLite database, so promptlog left it untouched. "
            f"Point {ENV_VAR} or promptlog.configure(db_path=...) at another file."
        )


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    _check_header(path)
    if readonly:
        uri = f"{path.as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        if not path.exists():
            folder = path.parent
            if not folder.is_dir():
                raise DatabaseError(
                    f"Cannot create the log at {path}: the folder {folder} does not exist. "
                    f"Create it, or set {ENV_VAR} to a path in an existing folder."
                )
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _raise_open_error(path: Path, error: sqlite3.Error) -> None:
    text = str(error)
    if "not a database" in text:
        raise NotAPromptlogDatabase(
            f"{path} is not a SQLite database, so promptlog left it untouched. "
            f"Point {ENV_VAR} or promptlog.configure(db_path=...) at another file."
        ) from error
    if "readonly" in text or "unable to open" in text or "read-only" in text:
        raise DatabaseError(
            f"Cannot write the log at {path}: the file or its folder is read-only ({text}). "
            f"Make it writable, or set {ENV_VAR} to a writable path."
        ) from error
    raise DatabaseError(f"Cannot open the log at {path}: {text}.") from error


def _check_schema(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Raise unless the file is empty or a promptlog log this version can read;
    return the names of the migrations still to apply."""
    tables = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    applied: list[str] = []
    if "_sqlite_migrations" in tables:
        applied = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                [migrations.MIGRATION_SET],
            )
        ]
    if tables and not applied:
        raise NotAPromptlogDatabase(
            f"{path} is a SQLite database of another application (tables: "
            f"{', '.join(sorted(tables)[:5])}), so promptlog left it untouched. "
            f"Point {ENV_VAR} or promptlog.configure(db_path=...) at another file."
        )
    known = migrations.names()
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise SchemaTooNewError(
            f"{path} was written by a newer promptlog (schema step {unknown[-1]!r} is "
            f"unknown here). Upgrade promptlog (pip install -U promptlog) to open it; "
            f"promptlog never downgrades a log."
        )
    return [name for name in known if name not in applied]


def _open_for_writing(path: Path) -> sqlite3.Connection:
    """Open (creating if needed), check and migrate the log at ``path``."""
    try:
        conn = _connect(path)
        pending = _check_schema(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if pending:
            # IMMEDIATE takes the write lock before re-reading, so two processes
            # opening a new file at once cannot both apply the same migration.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _check_schema(conn, path):
                    migrations.apply(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        _mark_dead_processes_interrupted(conn)
        return conn
    except sqlite3.Error as e:
        _raise_open_error(path, e)
        raise  # unreachable: _raise_open_error always raises


def _mark_dead_processes_interrupted(conn: sqlite3.Connection) -> None:
    """Show runs and experiments left ``running`` by a process that has died as
    interrupted."""
    tokens = {
        row[0]
        for table in ("runs", "experiments")
        for row in conn.execute(
            f"SELECT DISTINCT process FROM {table} WHERE status = 'running'"
        )
        if row[0]
    }
    dead = [token for token in tokens if not _process_alive(token)]
    if not dead:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        stamp = now()
        for token in dead:
            conn.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?) "
                "WHERE status = 'running' AND process = ?",
                [stamp, token],
            )
            conn.execute(
                "UPDATE experiments SET status = 'interrupted', "
                "finished_at = COALESCE(finished_at, ?) "
                "WHERE status = 'running' AND process = ?",
                [stamp, token],
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def connect_readonly(path: str | os.PathLike[str] | None = None) -> sqlite3.Connection:
    """A read connection to an existing log, upgraded first if an older release
    wrote it. Raises a clear error for a missing file or a file that is not a
    promptlog log."""
    target = Path(path).expanduser().absolute() if path is not None else db_path()
    if not target.exists():
        raise DatabaseError(
            f"No promptlog log at {target}. Run something that logs first "
            f"(promptlog demo), or pass the path of an existing log."
        )
    writer = _writers.get(target)
    if writer is not None:
        writer.flush()
    try:
        conn = _connect(target, readonly=True)
        pending = _check_schema(conn, target)
    except sqlite3.Error as e:
        _raise_open_error(target, e)
        raise
    if pending or _has_running(conn):
        conn.close()
        _open_for_writing(target).close()  # migrate and sweep dead runs
        conn = _connect(target, readonly=True)
    conn.row_factory = sqlite3.Row
    return conn


def _has_running(conn: sqlite3.Connection) -> bool:
    try:
        return (
            conn.execute("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1").fetchone()
            is not None
        )
    except sqlite3.OperationalError:
        return False


# --- the writer -------------------------------------------------------------

# A record is one of:
#   ("insert", table, row)           row: dict of column -> value
#   ("update", table, key, values)   UPDATE table SET values WHERE id = key
#   ("call", fn, future)             fn(conn) runs in its own transaction
Record = tuple[Any, ...]


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and value is not None and not isinstance(value, str):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


class Writer:
    """Owns the one write connection to a file in this process.

    Producers call :meth:`insert`, :meth:`update` or :meth:`call`; a daemon
    thread commits everything waiting in one transaction. A write error is kept
    and raised by the next :meth:`flush` or logging call until a later commit
    succeeds; the records of the failed batch are kept and written again.
    """

    def __init__(self, path: Path):
        self.path = path
        self._queue: queue.Queue[Record] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._lock = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._loop, name=f"promptlog-writer:{path.name}", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    # producers ---------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any]) -> None:
        self._put(("insert", table, row))

    def insert_many(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._put(("insert", table, row))

    def update(self, table: str, key: str, values: dict[str, Any]) -> None:
        self._put(("update", table, key, values))

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread in a transaction of its own and
        return its result: for the rare writes that must read first."""
        future: Future[T] = Future()
        self._put(("call", fn, future))
        return future.result()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is committed to disk."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            while self._committed < target:
                self._raise_error()
                if not self._thread.is_alive():
                    raise WriteError(f"The writer for {self.path} has stopped.")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WriteError(
                        f"Timed out waiting for {target - self._committed} records to be "
                        f"written to {self.path}."
                    )
                self._lock.wait(0.05 if remaining is None else min(0.05, remaining))

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            raise WriteError(
                f"Could not write to the log at {self.path}: {error}. Records logged "
                f"before this are kept and written again once the cause is fixed."
            ) from error

    def _put(self, record: Record) -> None:
        self._raise_error()
        while True:
            try:
                self._queue.put(record, timeout=0.1)
                break
            except queue.Full:
                self._raise_error()
        with self._lock:
            self._submitted += 1

    # the writer thread -----------------------------------------------------

    def _loop(self) -> None:
        try:
            self._conn = _open_for_writing(self.path)
        except BaseException as e:  # reported to the thread that created us
            self._open_error = e
            self._ready.set()
            return
        self._ready.set()
        retry: list[Record] = []
        while True:
            batch = retry or [self._queue.get()]
            retry = []
            while len(batch) < BATCH_LIMIT:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except sqlite3.Error as e:
                retry = self._failed(batch, e)
                continue
            with self._lock:
                self._error = None
                self._committed += len(batch)
                self._lock.notify_all()

    def _failed(self, batch: list[Record], error: sqlite3.Error) -> list[Record]:
        """Decide what to do with a batch that could not be committed."""
        with self._lock:
            self._error = error
            self._lock.notify_all()
        if isinstance(error, sqlite3.IntegrityError):
            # A record that breaks a constraint would fail forever: write the
            # others one by one and count the bad ones as handled.
            for record in batch:
                try:
                    self._write([record])
                except sqlite3.Error:
                    pass
            with self._lock:
                self._committed += len(batch)
                self._lock.notify_all()
            return []
        time.sleep(0.2)  # disk full, read-only, locked: try again with the same records
        return batch

    def _write(self, batch: list[Record]) -> None:
        calls = [r for r in batch if r[0] == "call"]
        for _, fn, future in calls:
            self._run_call(fn, future)
        inserts: dict[tuple[str, str], dict[str, Any]] = {}
        grouped: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        updates: list[Record] = []
        for record in batch:
            if record[0] == "insert":
                _, table, row = record
                if "id" in row:
                    inserts[(table, row["id"])] = row
            elif record[0] == "update":
                _, table, key, values = record
                pending_insert = inserts.get((table, key))
                if pending_insert is not None:
                    # The row is inserted in this same batch: fold the update into it.
                    pending_insert.update(values)
                else:
                    updates.append(record)
        for record in batch:
            if record[0] == "insert":
                _, table, row = record
                columns = tuple(row)
                grouped.setdefault((table, columns), []).append(
                    tuple(_encode(c, row[c]) for c in columns)
                )
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (table, columns), rows in sorted(
                grouped.items(), key=lambda item: _TABLE_ORDER.get(item[0][0], 99)
            ):
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    rows,
                )
            for _, table, key, values in updates:
                conn.execute(
                    f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                    [*(_encode(c, v) for c, v in values.items()), key],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _run_call(self, fn: Callable[[sqlite3.Connection], Any], future: Future[Any]) -> None:
        if future.done():
            return  # already run in an earlier attempt of this batch
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError:
            raise  # retried with the batch
        except BaseException as e:
            future.set_exception(e)
        else:
            future.set_result(result)


_writers: dict[Path, Writer] = {}
_writers_lock = threading.Lock()


def writer(path: Path | None = None) -> Writer:
    """The writer for ``path`` (default: :func:`db_path`), started on first use."""
    target = path or db_path()
    found = _writers.get(target)
    if found is not None:
        return found
    with _writers_lock:
        found = _writers.get(target)
        if found is None:
            found = _writers[target] = Writer(target)
        return found


def flush(path: str | os.PathLike[str] | None = None) -> None:
    """Wait until every record logged so far (to ``path``, or to every file) is on disk."""
    if path is not None:
        found = _writers.get(Path(path).expanduser().absolute())
        targets = [found] if found else []
    else:
        targets = list(_writers.values())
    for target in targets:
        target.flush()


def _flush_at_exit() -> None:
    for target in list(_writers.values()):
        try:
            target.flush(timeout=30)
        except Exception as e:  # the interpreter is exiting: say so, do not hide it
            print(f"promptlog: {e}", file=__import__("sys").stderr)


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    # A forked child has no writer threads: let it start its own.
    os.register_at_fork(after_in_child=_writers.clear)


# --- reads and writes that need SQL of their own ------------------------------


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
            "SELECT id, name, role, template, hash, version, created_at "
            "FROM prompt_versions WHERE name = ? AND hash = ?",
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
            "SELECT id, name, role, template, hash, version, created_at "
            "FROM prompt_versions WHERE name = ? ORDER BY version",
            [name],
        ).fetchall()
        return [dict(row) for row in rows]
    finally:
        conn.close()
