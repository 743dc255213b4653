"""The one writer thread per file: producers put records on a queue, the writer
commits everything waiting in one transaction (group commit), so logging costs
the caller only a queue put."""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import WriteError
from . import connection
from .connection import BUSY_TIMEOUT_MS, db_path, open_for_writing, transaction
from .records import (
    CacheEntry,
    CacheHit,
    Call,
    Example,
    ExperimentEnd,
    ExperimentStart,
    Metric,
    Record,
    RunEnd,
    RunStart,
    Together,
    escaped,
)

T = TypeVar("T")

# Records waiting for the writer; a full queue makes producers wait (back-pressure)
# instead of letting memory grow without limit: at most this many records, and
# about this many bytes of text (a record's estimated size, see records.py).
QUEUE_LIMIT = 20_000
QUEUE_BYTES = 64 * 2**20
# The most records one transaction takes; larger backlogs commit in several.
BATCH_LIMIT = 5_000


@dataclass(slots=True)
class _Task:
    """``fn(conn)`` to run in a transaction of its own, its result for ``future``."""

    fn: Callable[[sqlite3.Connection], Any]
    future: Future[Any]
    size: int = 0


@dataclass(slots=True)
class _Flush:
    """``done`` is set once everything queued before it is written."""

    done: threading.Event
    size: int = 0


@dataclass(slots=True)
class _Close:
    """Close the connection and stop the writer thread; then set ``done``."""

    done: threading.Event
    size: int = 0


_Item = Record | _Task | _Flush | _Close


class LogFileGone(OSError):
    """The file at the log's path is no longer the one the writer opened."""


def _hint(error: BaseException) -> str:
    """What a person can do about a write error."""
    if isinstance(error, LogFileGone):
        return (
            "What was logged to it since is not written anywhere; logging again (a new "
            "experiment, a bot call outside one) starts a new log at that path"
        )
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


def _passing(error: BaseException) -> bool:
    """Whether a write error may go away by itself (a full disk, a read-only file,
    a lock held by another program) rather than come back for the same records
    (SQLITE_ERROR: no such table or column)."""
    return (
        isinstance(error, sqlite3.OperationalError)
        and getattr(error, "sqlite_errorname", "") != "SQLITE_ERROR"
    )


class Writer:
    """Owns the one write connection to a file in this process.

    Producers call the typed functions of :mod:`promptlog.store.records` (which
    :meth:`put` a record) or :meth:`call`; a daemon thread commits everything
    waiting in one transaction (group commit).

    Errors: while a batch cannot be committed (disk full, read-only file, lock
    held too long, the file deleted or replaced), the writer keeps it and tries
    again, and every logging call, :meth:`check` and :meth:`flush` raises
    :class:`WriteError`; once a commit succeeds, logging resumes with nothing
    accepted before lost. A record that can never be written (it breaks a
    constraint) is dropped on its own, and the error is raised once, by the next
    logging call or flush (that call's own record is kept).
    """

    def __init__(self, path: Path):
        self.path = path
        # SimpleQueue: a put is one C call, with no lock shared with the writer.
        # Back-pressure comes from counting instead: next() on a count is atomic.
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._accepted = itertools.count(1)
        self._written = 0  # records handled; only the writer thread changes it
        self._bytes = 0  # estimated size of the records queued, under _bytes_lock
        self._bytes_lock = threading.Lock()
        self._room = threading.Condition(threading.Lock())
        self._error: BaseException | None = None  # the batch that keeps failing
        self._dropped: BaseException | None = None  # a record that was given up
        self._closed = False
        self._identity: tuple[int, int] = (0, 0)  # the file's (st_dev, st_ino)
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        # Cache entries queued and not yet committed, by key: a lookup finds them
        # here (a dict read, safe across threads) until the writer has written them.
        self.pending_cache: dict[str, CacheEntry] = {}
        self._thread = threading.Thread(
            target=self._loop, name=f"promptlog-writer:{path.name}", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    # producers ---------------------------------------------------------------

    def put(self, record: Record) -> None:
        """Queue ``record`` (use the typed functions of :mod:`.records`)."""
        if self._error is not None:
            self._raise_error()
        number = next(self._accepted)
        size = record.size
        if size:
            if self._bytes + size > QUEUE_BYTES and self._bytes > 0:
                self._wait_for_bytes(size)
            with self._bytes_lock:
                self._bytes += size
        if number - self._written > QUEUE_LIMIT:
            self._wait_for_room(number)
        self._queue.put(record)
        if self._dropped is not None:
            self._report_dropped()

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread in a transaction of its own and
        return its result: for the rare writes that must read first."""
        future: Future[T] = Future()
        self._put_control(_Task(fn, future))
        while True:
            try:
                return future.result(0.05)
            except FutureTimeout:
                self._raise_error()
                if not self._thread.is_alive():
                    raise WriteError(f"The writer for {self.path} has stopped.") from None

    def check(self) -> None:
        """Raise the :class:`WriteError` a record logged now would meet (a full disk,
        a read-only or vanished file): cheap, for use before work whose record
        could not be kept, such as a paid call to a model."""
        if self._error is not None:
            self._raise_error()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is committed, and copied from the
        write-ahead log into the file itself when no reader holds it back (so that
        a copy of the file alone has it all)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = threading.Event()
        self._put_control(_Flush(done))
        while not done.wait(0.05):
            self._raise_error()
            if not self._thread.is_alive():
                raise WriteError(f"The writer for {self.path} has stopped.")
            if deadline is not None and time.monotonic() > deadline:
                raise WriteError(f"Timed out waiting for records to be written to {self.path}.")
        self._raise_error()
        self._report_dropped()

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then close the connection, which folds the
        write-ahead log back into the file (done at exit)."""
        self.flush(timeout)
        with _writers_lock:
            if _writers.get(self.path) is self:
                del _writers[self.path]  # the next writer() for this file opens a new one
        done = threading.Event()
        self._put_control(_Close(done))
        done.wait(timeout)

    def _put_control(self, item: _Task | _Flush | _Close) -> None:
        if self._error is not None:
            self._raise_error()
        next(self._accepted)  # counted as the writer counts it when handled
        self._queue.put(item)

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            raise WriteError(
                f"Could not write to the log at {self.path}: {error}. {_hint(error)}; "
                f"what was logged before is kept and written as soon as it can be, but "
                f"nothing more is logged until then."
            ) from error

    def _report_dropped(self) -> None:
        dropped = self._dropped
        if dropped is not None:
            self._dropped = None  # reported once
            raise WriteError(
                f"A record could not be written to the log at {self.path} and was dropped: "
                f"{type(dropped).__name__}: {dropped}. The other records were written."
            ) from dropped

    def _wait_for_room(self, number: int) -> None:
        """Back-pressure: hold a producer that is far ahead of the writer."""
        with self._room:
            while number - self._written > QUEUE_LIMIT:
                self._raise_error()
                if not self._thread.is_alive():
                    raise WriteError(f"The writer for {self.path} has stopped.")
                self._room.wait(0.1)

    def _wait_for_bytes(self, size: int) -> None:
        """Back-pressure in bytes: hold a producer while its record does not fit
        (one record larger than the bound still goes, alone)."""
        with self._room:
            while self._bytes + size > QUEUE_BYTES and self._bytes > 0:
                self._raise_error()
                if not self._thread.is_alive():
                    raise WriteError(f"The writer for {self.path} has stopped.")
                self._room.wait(0.1)

    # the writer thread -----------------------------------------------------

    def _loop(self) -> None:
        try:
            self._conn = open_for_writing(self.path)
            stat = os.stat(self.path)
            self._identity = (stat.st_dev, stat.st_ino)
        except BaseException as e:  # reported to the thread that created us
            self._open_error = e
            self._ready.set()
            return
        self._ready.set()
        get, get_nowait = self._queue.get, self._queue.get_nowait
        batch: list[_Item] = []
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

    def _commit(self, batch: list[_Item]) -> list[_Item]:
        """Write ``batch``; return the records still to write after a passing
        failure (disk full, read-only, locked), to be tried again."""
        error = self._attempt(batch)
        if isinstance(error, LogFileGone):
            self._abandon(error, batch)
            return []
        if isinstance(error, UnicodeEncodeError):
            # Text SQLite cannot store as it is (a lone surrogate): escape it.
            error = self._attempt(batch, escape=True)
        if error is not None:
            if _passing(error):
                self._error = error
                return batch
            # A record that can never be written (it breaks a constraint): write
            # the others one by one, and drop it.
            batch = _spread(batch)
            for index, record in enumerate(batch):
                error = self._attempt([record], escape=True)
                if error is None:
                    continue
                if _passing(error):
                    self._error = error
                    self._handled(batch[:index])
                    return batch[index:]
                self._dropped = error
                if isinstance(record, _Task) and not record.future.done():
                    record.future.set_exception(error)
        self._error = None
        self._handled(batch)
        return []

    def _abandon(self, error: LogFileGone, batch: list[_Item]) -> None:
        """Stop for good: the file this writer opened is gone from its path. Every
        logging call to it raises from now on; the next :func:`writer` for the path
        opens a new file there. (Writing on into a deleted file would lose it all
        silently; writing the records of an experiment begun in the old file into
        a new one would leave them without their experiment.)"""
        self._error = error
        with _writers_lock:
            if _writers.get(self.path) is self:
                del _writers[self.path]
        for item in batch:
            if isinstance(item, _Task) and not item.future.done():
                item.future.set_exception(WriteError(f"{self.path}: {error}."))
            elif isinstance(item, _Close):
                item.done.set()
        self._conn.close()
        self._closed = True

    def _attempt(self, batch: list[_Item], escape: bool = False) -> Exception | None:
        try:
            self._write(batch, escape)
        except Exception as e:
            return e
        return None

    def _handled(self, batch: list[_Item]) -> None:
        size = 0
        flushed = []
        for record in _spread(batch):
            size += record.size
            if type(record) is CacheEntry:
                if self.pending_cache.get(record.key) is record:
                    self.pending_cache.pop(record.key, None)
            elif isinstance(record, _Flush):
                flushed.append(record.done)
            elif isinstance(record, _Close):
                try:
                    # Fold the WAL into the file even while a reader in this process
                    # keeps it open (then SQLite would not on close): the file is whole.
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass  # another process is reading: its last close will fold it
                self._conn.close()
                self._closed = True
                self._error = sqlite3.ProgrammingError("the log was closed")
                record.done.set()
        if flushed and not self._closed:
            try:
                # Copy what is committed from the WAL into the file, without waiting
                # for readers (PASSIVE): a copy of the file alone is then complete.
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # committed all the same; the next checkpoint copies it
        for done in flushed:
            done.set()
        self._written += len(batch)
        if size:
            with self._bytes_lock:
                self._bytes -= size
        with self._room:
            self._room.notify_all()

    def _check_file(self) -> None:
        """Raise :class:`LogFileGone` if the file at the path is not the one opened
        (deleted, or replaced by another): one ``stat``, before every batch."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise LogFileGone(
                "the file was deleted while this process had it open"
            ) from None
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise LogFileGone("the file was replaced by another while this process had it open")

    def _write(self, batch: list[_Item], escape: bool = False) -> None:
        """Commit a batch in one transaction: rows grouped by table into
        ``executemany`` calls, parents first; the end of a run or experiment
        started in the same batch folded into its row."""
        if not all(isinstance(item, _Flush | _Close) for item in batch):
            self._check_file()  # a flush or close alone loses nothing if the file is gone
        if escape:
            batch = [item if isinstance(item, _Task | _Flush | _Close) else escaped(item)
                     for item in batch]
        experiments: dict[str, list[Any]] = {}  # id -> [start, end or None]
        examples: list[Example] = []
        runs: dict[str, list[Any]] = {}
        calls: list[Call] = []
        metrics: list[Metric] = []
        run_ends: list[RunEnd] = []  # every run end, for its prompt version links
        run_updates: list[RunEnd] = []  # ends of runs started in an earlier batch
        experiment_updates: list[ExperimentEnd] = []
        cache_entries: list[CacheEntry] = []
        cache_hits: list[CacheHit] = []
        for record in _spread(batch):
            kind = type(record)
            if kind is Call:
                calls.append(record)  # type: ignore[arg-type]
            elif kind is Metric:
                metrics.append(record)  # type: ignore[arg-type]
            elif kind is RunStart:
                runs[record.id] = [record, None]  # type: ignore[union-attr]
            elif kind is RunEnd:
                run_ends.append(record)  # type: ignore[arg-type]
                started = runs.get(record.id)  # type: ignore[union-attr]
                if started is not None:
                    started[1] = record
                else:
                    run_updates.append(record)  # type: ignore[arg-type]
            elif kind is Example:
                examples.append(record)  # type: ignore[arg-type]
            elif kind is ExperimentStart:
                experiments[record.id] = [record, None]  # type: ignore[union-attr]
            elif kind is ExperimentEnd:
                started = experiments.get(record.id)  # type: ignore[union-attr]
                if started is not None:
                    started[1] = record
                else:
                    experiment_updates.append(record)  # type: ignore[arg-type]
            elif kind is CacheEntry:
                cache_entries.append(record)  # type: ignore[arg-type]
            elif kind is CacheHit:
                cache_hits.append(record)  # type: ignore[arg-type]
            elif kind is _Task:
                self._run_task(record)  # type: ignore[arg-type]
        conn = self._conn

        def write(sql: str, rows: list[tuple[Any, ...]]) -> None:
            if rows:
                conn.executemany(sql, rows)

        with transaction(conn):
            write(ExperimentStart.SQL, [start.params(end) for start, end in experiments.values()])
            write(Example.SQL, [example.params() for example in examples])
            write(RunStart.SQL, [start.params(end) for start, end in runs.values()])
            if calls:
                write(Call.SQL, [call.params() for call in calls])
                write(Call.LINK_SQL, [link for call in calls for link in call.links()])
            write(Metric.SQL, [metric.params() for metric in metrics])
            if run_ends:
                write(RunEnd.SQL, [end.params() for end in run_updates])
                write(RunEnd.LINK_SQL, [link for end in run_ends for link in end.links()])
            write(ExperimentEnd.SQL, [end.params() for end in experiment_updates])
            # Entries before hits, so that a hit on an entry of the same batch counts.
            write(CacheEntry.SQL, [entry.params() for entry in cache_entries])
            write(CacheHit.SQL, [hit.params() for hit in cache_hits])

    def _run_task(self, task: _Task) -> None:
        if task.future.done():
            return  # already run in an earlier attempt of this batch
        try:
            with transaction(self._conn) as conn:
                result = task.fn(conn)
        except BaseException as e:
            if _passing(e):
                raise  # tried again with the batch
            task.future.set_exception(e)
        else:
            task.future.set_result(result)


def _spread(batch: list[_Item]) -> list[_Item]:
    """``batch`` with the records of each :class:`Together` in its place (they are
    then in the batch's one transaction)."""
    if not any(type(item) is Together for item in batch):
        return batch
    spread: list[_Item] = []
    for item in batch:
        if isinstance(item, Together):
            spread.extend(item.records)
        else:
            spread.append(item)
    return spread


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


connection._before_read = flush  # a read in this process sees what it has logged


def _close_at_exit() -> None:
    for target in list(_writers.values()):
        try:
            target.close(timeout=30)
        except Exception as e:  # the interpreter is exiting: say so, do not hide it
            print(f"promptlog: {e}", file=sys.stderr)


atexit.register(_close_at_exit)


if hasattr(os, "register_at_fork"):
    # A forked child has no writer threads: let it start its own.
    os.register_at_fork(after_in_child=_writers.clear)
