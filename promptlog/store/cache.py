"""Reading and clearing the response cache: the lookup a cached call makes before
it would call a model, and the deletes of ``promptlog cache clear``.

Entries are written like every other record (:func:`.records.put_cache_entry`,
through the writer thread). A lookup first asks the writer for entries it holds
and has not committed yet, then reads the file on a connection kept per thread,
so that a hit costs a dict read or one indexed SELECT.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .connection import _connect
from .records import CachedReply, as_json
from .writers import Writer, writer

if TYPE_CHECKING:
    from .recorder import Recorder

_SELECT = (
    "SELECT response_text, response_parsed, input_tokens, output_tokens, cost "
    "FROM cache WHERE key = ?"
)
_local = threading.local()
_CONNECTIONS_PER_THREAD = 4


def _reader(db: Writer) -> sqlite3.Connection:
    """A read connection to ``db``'s file for this thread, opened once."""
    connections: dict[int, tuple[Writer, sqlite3.Connection]] | None = getattr(
        _local, "connections", None
    )
    if connections is None:
        connections = _local.connections = {}
    held = connections.get(id(db))
    if held is not None and held[0] is db:
        return held[1]
    if len(connections) >= _CONNECTIONS_PER_THREAD:
        _, (_, oldest) = next(iter(connections.items()))
        oldest.close()
        del connections[next(iter(connections))]
    conn = _connect(db.path, readonly=True)
    connections[id(db)] = (db, conn)
    return conn


def lookup(db: Writer | Recorder, key: str) -> CachedReply | None:
    """The reply kept under ``key`` in ``db``'s file (or queued for it), or None.
    On a worker of an executor ``db`` is a :class:`~.recorder.Recorder`, which
    answers from the entries shipped to it and never opens the file."""
    if not isinstance(db, Writer):
        return db.lookup(key)
    pending = db.pending_cache.get(key)
    if pending is not None:
        return CachedReply(
            pending.response_text, as_json(pending.response_parsed), pending.input_tokens,
            pending.output_tokens, pending.cost,
        )
    row = _reader(db).execute(_SELECT, (key,)).fetchone()
    return None if row is None else CachedReply(*row)


def snapshot(path: Path) -> dict[str, CachedReply]:
    """Every entry of the response cache in the log at ``path``, by key: what is
    shipped to the workers of an executor, which never open the file."""
    db = writer(path)
    db.flush()  # entries queued so far are in it
    conn = _connect(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT key, response_text, response_parsed, input_tokens, output_tokens, cost "
            "FROM cache"
        ).fetchall()
    finally:
        conn.close()
    return {key: CachedReply(*values) for key, *values in rows}


def clear(
    path: Path | None = None, *, older_than: str | None = None, model: str | None = None
) -> int:
    """Delete cache entries (those created before ``older_than``, an ISO time stamp,
    and of ``model``, when given; all of them otherwise) and return how many."""
    db = writer(path)
    db.flush()  # entries queued before the clear are cleared too
    where, params = [], []
    if older_than is not None:
        where.append("created_at < ?")
        params.append(older_than)
    if model is not None:
        where.append("model = ?")
        params.append(model)
    sql = "DELETE FROM cache" + (f" WHERE {' AND '.join(where)}" if where else "")

    def delete(conn: sqlite3.Connection) -> Any:
        return conn.execute(sql, params).rowcount

    return int(db.call(delete))
