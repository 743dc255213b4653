"""The database: where it lives, how it is opened, and the one writer thread per file.

This is the only module that writes SQL. Producers (bots, prompts, experiments)
hand records to :class:`Writer`, which commits everything waiting in one
transaction (group commit), so logging costs the caller only a queue put.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

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


_second: tuple[int, str] = (-1, "")  # (a second since the epoch, its ISO 8601 text)


def now() -> str:
    """The current time as UTC ISO 8601 (``2025-01-31T12:00:00.123456Z``), the one
    timestamp format in the log."""
    global _second
    micros = time.time_ns() // 1_000
    seconds, fraction = divmod(micros, 1_000_000)
    cached = _second
    if cached[0] != seconds:  # formatting a date costs more than the rest: once a second
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{cached[1]}.{fraction:06d}Z"


# ULIDs: 48 bits of milliseconds, then 80 bits that a ULID library fills with random
# bytes under a lock (~5 us an id, python-ulid). Here they are 40 random bits drawn once per
# process and a 40-bit count: still unique (the count within a process, the
# random bits between processes), sorted by time, and in creation order within
# a millisecond, for a tenth of the cost, and no lock (next() on a count is atomic).
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_id_millisecond: tuple[int, str] = (-1, "")
_id_process = ""
_id_count = itertools.count()


def _base32(value: int, characters: int) -> str:
    return "".join(_PAIRS[(value >> shift) & 1023] for shift in range(5 * characters - 10, -1, -10))


def _new_process_ids() -> None:
    global _id_process, _id_count
    _id_process = _base32(int.from_bytes(os.urandom(5), "big"), 8)
    _id_count = itertools.count()


_new_process_ids()


def new_id() -> str:
    """A new ULID: unique, and sorts by creation time."""
    global _id_millisecond
    millisecond = time.time_ns() // 1_000_000
    count = next(_id_count)
    cached = _id_millisecond
    if cached[0] != millisecond:
        cached = _id_millisecond = (millisecond, _base32(millisecond, 10))
    return (
        f"{cached[1]}{_id_process}{_PAIRS[(count >> 30) & 1023]}{_PAIRS[(count >> 20) & 1023]}"
        f"{_PAIRS[(count >> 10) & 1023]}{_PAIRS[count & 1023]}"
    )


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


def _connect(
    path: Path, *, readonly: bool = False, immutable: bool = False
) -> sqlite3.Connection:
    _check_header(path)
    if readonly:
        uri = f"{path.as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"
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


def _open_checked(path: Path, **options: bool) -> tuple[sqlite3.Connection, list[str]]:
    """Connect and check the schema (see :func:`_check_schema`); a file we must
    not use is closed again at once."""
    conn = _connect(path, **options)
    try:
        return conn, _check_schema(conn, path)
    except BaseException:
        conn.close()
        raise


def _open_for_writing(path: Path) -> sqlite3.Connection:
    """Open (creating if needed), check and migrate the log at ``path``."""
    conn = None
    try:
        conn, pending = _open_checked(path)
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
        # A write that changes nothing: a read-only file or folder fails here,
        # with a clear error, rather than at the first record.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM _sqlite_migrations WHERE 0")
        finally:
            conn.execute("ROLLBACK")
        _mark_dead_processes_interrupted(conn)
        return conn
    except BaseException as e:
        if conn is not None:
            conn.close()  # SQLite then removes the WAL files it made beside the file
        if isinstance(e, sqlite3.Error):
            _raise_open_error(path, e)
        raise


def _mark_dead_processes_interrupted(conn: sqlite3.Connection) -> None:
    """Show runs and experiments left ``running`` by a process that has died as
    interrupted."""
    dead = _dead_processes(conn)
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


def _dead_processes(conn: sqlite3.Connection) -> list[str]:
    """The processes that left runs or experiments ``running`` and have died."""
    tokens = {
        row[0]
        for table in ("runs", "experiments")
        for row in conn.execute(
            f"SELECT DISTINCT process FROM {table} WHERE status = 'running'"
        )
        if row[0]
    }
    return [token for token in tokens if not _process_alive(token)]


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
    immutable = False
    try:
        try:
            conn, pending = _open_checked(target, readonly=True)
        except sqlite3.OperationalError as e:
            # A log in a folder we cannot write: SQLite cannot make the shared-memory
            # file a WAL reader needs. With no write-ahead log beside it, nobody is
            # writing it, so it can be read as an immutable file.
            if getattr(e, "sqlite_errorname", "") != "SQLITE_READONLY_DIRECTORY" or Path(
                f"{target}-wal"
            ).exists():
                raise
            immutable = True
            conn, pending = _open_checked(target, readonly=True, immutable=True)
    except sqlite3.Error as e:
        _raise_open_error(target, e)
        raise
    if pending or _dead_processes(conn):
        conn.close()
        try:
            _open_for_writing(target).close()  # migrate and sweep dead runs
        except DatabaseError:
            if pending:
                raise  # this version cannot read the old schema
            # A read-only log: runs of dead processes stay shown as running.
        conn = _connect(target, readonly=True, immutable=immutable)
    conn.row_factory = sqlite3.Row
    return conn


# --- the writer -------------------------------------------------------------

# A record is one of:
#   ("insert", table, row)           row: dict of column -> value
#   ("update", table, key, values)   UPDATE table SET values WHERE id = key
#   ("call", fn, future)             fn(conn) runs in its own transaction
#   ("flush", event)                 event is set once everything before it is written
#   ("close", event)                 close the connection and stop the writer thread
Record = tuple[Any, ...]

_encode_json = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _hint(error: BaseException) -> str:
    """What a person can do about a write error."""
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_FULL":
        return "The disk is full: free some space"
    if name.startswith("SQLITE_IOERR"):
        return "The file system refused a write (a full disk, a quota, a file-size limit?)"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
        return "Make the file and its folder writable"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"Another program held a write lock on it for over {BUSY_TIMEOUT_MS // 1000} s"
    return "Fix the cause"


class Writer:
    """Owns the one write connection to a file in this process.

    Producers call :meth:`insert`, :meth:`update` or :meth:`call`; a daemon
    thread commits everything waiting in one transaction (group commit).

    Errors: while a batch cannot be committed (disk full, read-only file, lock
    held too long), the writer keeps it and tries again, and every logging call
    and :meth:`flush` raises :class:`WriteError`; once a commit succeeds,
    logging resumes with nothing accepted before lost. A record that can never
    be written (it breaks a constraint, or names a table or column that does not
    exist) is dropped on its own, and the error is raised once, by the next
    logging call or flush.
    """

    def __init__(self, path: Path):
        self.path = path
        # SimpleQueue: a put is one C call, with no lock shared with the writer.
        # Back-pressure comes from counting instead: next() on a count is atomic.
        self._queue: queue.SimpleQueue[Record] = queue.SimpleQueue()
        self._accepted = itertools.count(1)
        self._written = 0  # records handled; only the writer thread changes it
        self._room = threading.Condition(threading.Lock())
        self._error: BaseException | None = None  # the batch that keeps failing
        self._dropped: BaseException | None = None  # a record that was given up
        self._closed = False
        self._sql: dict[tuple[str, tuple[str, ...]], tuple[str, list[int]]] = {}
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
        done = threading.Event()
        self._put(("flush", done))
        while not done.wait(0.05):
            self._raise_error()
            if not self._thread.is_alive():
                raise WriteError(f"The writer for {self.path} has stopped.")
            if deadline is not None and time.monotonic() > deadline:
                raise WriteError(f"Timed out waiting for records to be written to {self.path}.")
        self._raise_error()

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then close the connection, which folds the
        write-ahead log back into the file (done at exit)."""
        self.flush(timeout)
        with _writers_lock:
            if _writers.get(self.path) is self:
                del _writers[self.path]  # the next writer() for this file opens a new one
        done = threading.Event()
        self._put(("close", done))
        done.wait(timeout)

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            raise WriteError(
                f"Could not write to the log at {self.path}: {error}. {_hint(error)}; "
                f"what was logged before is kept and written as soon as it can be, but "
                f"nothing more is logged until then."
            ) from error
        dropped = self._dropped
        if dropped is not None:
            self._dropped = None  # reported once
            raise WriteError(
                f"A record could not be written to the log at {self.path} and was dropped: "
                f"{type(dropped).__name__}: {dropped}. The other records were written."
            ) from dropped

    def _put(self, record: Record) -> None:
        if self._error is not None or self._dropped is not None:
            self._raise_error()
        number = next(self._accepted)
        if number - self._written > QUEUE_LIMIT:
            self._wait_for_room(number)
        self._queue.put(record)

    def _wait_for_room(self, number: int) -> None:
        """Back-pressure: hold a producer that is far ahead of the writer."""
        with self._room:
            while number - self._written > QUEUE_LIMIT:
                self._raise_error()
                if not self._thread.is_alive():
                    raise WriteError(f"The writer for {self.path} has stopped.")
                self._room.wait(0.1)

    # the writer thread -----------------------------------------------------

    def _loop(self) -> None:
        try:
            self._conn = _open_for_writing(self.path)
        except BaseException as e:  # reported to the thread that created us
            self._open_error = e
            self._ready.set()
            return
        self._ready.set()
        get, get_nowait = self._queue.get, self._queue.get_nowait
        batch: list[Record] = []
        failures = 0
        while True:
            if not batch:
                batch.append(get())
            while len(batch) < BATCH_LIMIT:
                try:
                    batch.append(get_nowait())
                except queue.Empty:
                    break
            batch = self._commit(batch)
            if self._closed:
                return
            if batch:
                failures += 1
                time.sleep(min(0.01 * 2**failures, 1.0))
            else:
                failures = 0

    def _commit(self, batch: list[Record]) -> list[Record]:
        """Write ``batch``; return the records still to write after a passing
        failure (disk full, read-only, locked), to be tried again."""
        try:
            self._write(batch)
        except Exception as e:
            if _passing(e):
                self._error = e
                return batch
            # A record that can never be written (it breaks a constraint, names a
            # column that does not exist, holds a value SQLite cannot store):
            # write the others one by one, and drop it.
            for index, record in enumerate(batch):
                try:
                    self._write([record])
                except Exception as e:
                    if _passing(e):
                        self._error = e
                        self._handled(batch[:index])
                        return batch[index:]
                    self._dropped = e
                    if record[0] == "call" and not record[2].done():
                        record[2].set_exception(e)
        self._error = None
        self._handled(batch)
        return []

    def _handled(self, batch: list[Record]) -> None:
        for record in batch:
            if record[0] == "flush":
                record[1].set()
            elif record[0] == "close":
                try:
                    # Fold the WAL into the file even while a reader in this process
                    # keeps it open (then SQLite would not on close): the file is whole.
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass  # another process is reading: its last close will fold it
                self._conn.close()
                self._closed = True
                self._error = sqlite3.ProgrammingError("the log was closed")
                record[1].set()
        self._written += len(batch)
        with self._room:
            self._room.notify_all()

    def _write(self, batch: list[Record]) -> None:
        """Commit a batch in one transaction: inserts grouped by table and columns
        into ``executemany`` calls, parents first; an update of a row inserted in
        the same batch folded into its insert."""
        inserts: list[tuple[str, dict[str, Any]]] = []
        by_id: dict[tuple[str, Any], dict[str, Any]] = {}
        updates: list[Record] = []
        for record in batch:
            kind = record[0]
            if kind == "insert":
                table, row = record[1], record[2]
                inserts.append((table, row))
                if "id" in row:
                    by_id[table, row["id"]] = row
            elif kind == "update":
                pending = by_id.get((record[1], record[2]))
                if pending is not None:
                    pending.update(record[3])
                else:
                    updates.append(record)
            elif kind == "call":
                self._run_call(record[1], record[2])
        groups: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        for table, row in inserts:
            key = (table, tuple(row))
            rows = groups.get(key)
            if rows is None:
                rows = groups[key] = []
            rows.append(row)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key in sorted(groups, key=lambda k: _TABLE_ORDER.get(k[0], 99)):
                sql, json_columns = self._insert_sql(key)
                rows = groups[key]
                if json_columns:
                    conn.executemany(sql, [_encoded(row, json_columns) for row in rows])
                else:
                    conn.executemany(sql, [tuple(row.values()) for row in rows])
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

    def _insert_sql(self, key: tuple[str, tuple[str, ...]]) -> tuple[str, list[int]]:
        found = self._sql.get(key)
        if found is None:
            table, columns = key
            found = self._sql[key] = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                [i for i, column in enumerate(columns) if column in _JSON_COLUMNS],
            )
        return found

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
        except BaseException as e:
            if _passing(e):
                raise  # tried again with the batch
            future.set_exception(e)
        else:
            future.set_result(result)


def _passing(error: BaseException) -> bool:
    """Whether a write error may go away by itself (a full disk, a read-only file,
    a lock held by another program) rather than come back for the same records
    (SQLITE_ERROR: no such table or column)."""
    return (
        isinstance(error, sqlite3.OperationalError)
        and getattr(error, "sqlite_errorname", "") != "SQLITE_ERROR"
    )


def _as_json(value: Any) -> Any:
    """A JSON column's value as text (None and text pass as they are)."""
    return value if value is None or isinstance(value, str) else _encode_json(value)


def _encode(column: str, value: Any) -> Any:
    return _as_json(value) if column in _JSON_COLUMNS else value


def _encoded(row: dict[str, Any], json_columns: list[int]) -> list[Any]:
    values = list(row.values())
    for i in json_columns:
        values[i] = _as_json(values[i])
    return values


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


def _close_at_exit() -> None:
    for target in list(_writers.values()):
        try:
            target.close(timeout=30)
        except Exception as e:  # the interpreter is exiting: say so, do not hide it
            print(f"promptlog: {e}", file=__import__("sys").stderr)


atexit.register(_close_at_exit)


def _after_fork_in_child() -> None:
    # A forked child has no writer threads: let it start its own. It is another
    # process, so it needs its own process token and id bits too.
    global _PROCESS
    _writers.clear()
    _PROCESS = None
    _new_process_ids()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
