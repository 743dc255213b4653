"""Where the log lives, and how it is opened: checked, migrated, for writing or
for reading; and the one helper that opens a transaction."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DatabaseError, ExecutorError, NotAPromptlogDatabase, SchemaTooNewError
from . import migrations
from .ids import now, process_alive

DB_FILENAME = "message_log.db"
ENV_VAR = "PROMPTLOG_DB"
BUSY_TIMEOUT_MS = 30_000
_SQLITE_HEADER = b"SQLite format 3\x00"

# --- where the database lives -----------------------------------------------

_configured_path: Path | None = None
# db_path() runs on every logged call: remember the path found for each
# PROMPTLOG_DB value and each working directory.
_env_paths: dict[str, Path] = {}
_cwd_paths: dict[str, Path] = {}


def configure(db_path: str | os.PathLike[str] | None = None) -> None:
    """Log to ``db_path`` from now on (``PROMPTLOG_DB`` still wins); ``None`` resets."""
    global _configured_path
    _configured_path = Path(db_path).expanduser().absolute() if db_path is not None else None


def _project_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / ".git").exists() or (folder / "pyproject.toml").exists():
            return folder
    return start


def db_path() -> Path:
    """The log file in use: ``PROMPTLOG_DB``, else :func:`configure`'s, else
    ``message_log.db`` at the project root (the nearest parent holding ``.git``
    or ``pyproject.toml``, else the working directory)."""
    env = os.environ.get(ENV_VAR)
    if env:
        found = _env_paths.get(env)
        if found is None:
            found = _env_paths[env] = Path(env).expanduser().absolute()
        return found
    if _configured_path is not None:
        return _configured_path
    cwd = os.getcwd()
    found = _cwd_paths.get(cwd)
    if found is None:
        found = _cwd_paths[cwd] = _project_root(Path(cwd)) / DB_FILENAME
    return found


# --- transactions -------------------------------------------------------------


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``with transaction(conn):`` commits the statements of the block, or rolls
    them back if it raises: the one place a transaction is opened.

    IMMEDIATE takes the write lock at once, so a transaction that reads before
    it writes never finds the file changed under it by another process.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT may have ended it already
            conn.execute("ROLLBACK")
        raise


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


# Set in a process that runs executions for an experiment of another process: that
# process alone writes the log, so this one must never open it (see forbid_opening).
_forbidden: str | None = None


def forbid_opening(reason: str) -> None:
    """From now on, opening any log in this process raises :class:`ExecutorError`
    saying ``reason``: a worker of an executor sends its records back instead."""
    global _forbidden
    _forbidden = reason


def _connect(
    path: Path, *, readonly: bool = False, immutable: bool = False
) -> sqlite3.Connection:
    if _forbidden is not None:
        raise ExecutorError(f"Cannot open the log at {path} here: {_forbidden}")
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


def open_for_writing(path: Path) -> sqlite3.Connection:
    """Open (creating if needed), check and migrate the log at ``path``."""
    conn = None
    try:
        conn, pending = _open_checked(path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if pending:
            # Re-read under the write lock, so two processes opening a new file at
            # once cannot both apply the same migration.
            with transaction(conn):
                if _check_schema(conn, path):
                    migrations.apply(conn)
        # A write that changes nothing: a read-only file or folder fails here,
        # with a clear error, rather than at the first record.
        with transaction(conn):
            conn.execute("DELETE FROM _sqlite_migrations WHERE 0")
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
    with transaction(conn):
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
    return [token for token in tokens if not process_alive(token)]


def _no_writer(path: Path) -> None:
    pass


# Set by the writers module: write what this process has queued for ``path`` so that
# a read sees it. A hook rather than an import, as the writers build on this module.
_before_read: Callable[[Path], None] = _no_writer


def connect_readonly(path: str | os.PathLike[str] | None = None) -> sqlite3.Connection:
    """A read connection to an existing log, upgraded first if an older release
    wrote it. Raises a clear error for a missing file or a file that is not a
    promptlog log.

    A log of an older schema that cannot be upgraded in place (a read-only file
    or folder) is read from a copy in memory, upgraded there; the file is left
    as it is.
    """
    target = Path(path).expanduser().absolute() if path is not None else db_path()
    if not target.exists():
        raise DatabaseError(
            f"No promptlog log at {target}. Run something that logs first "
            f"(promptlog demo), or pass the path of an existing log."
        )
    _before_read(target)
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
            open_for_writing(target).close()  # migrate and sweep dead runs
        except (NotAPromptlogDatabase, SchemaTooNewError):
            raise
        except DatabaseError:
            if pending:  # this version cannot read the old schema as it is
                return _upgraded_copy(_connect(target, readonly=True, immutable=immutable))
            # A read-only log: runs of dead processes stay shown as running.
        conn = _connect(target, readonly=True, immutable=immutable)
    conn.row_factory = sqlite3.Row
    return conn


def _upgraded_copy(source: sqlite3.Connection) -> sqlite3.Connection:
    """The log read through ``source`` (closed here), copied into memory with
    sqlite3's backup API and upgraded to this version's schema there."""
    copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        try:
            source.backup(copy)
        finally:
            source.close()
        copy.execute("PRAGMA foreign_keys = ON")
        with transaction(copy):
            migrations.apply(copy)
        _mark_dead_processes_interrupted(copy)
    except BaseException:
        copy.close()
        raise
    copy.row_factory = sqlite3.Row
    return copy
