"""When the file cannot take what is logged: a full disk, a file-size limit, a
read-only file or folder, a file that is not ours, a schema from the future or
the past. Each case: a clear exception reaches the user, what was logged before
is intact, nothing of anybody else's is touched, and logging resumes once the
cause is gone."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from faults_support import (
    integrity,
    query,
    run_as_ordinary_user,
    run_script,
    write_script,
)

from promptlog import Experiment, SimpleBot, experiment, metric, store
from promptlog.errors import (
    DatabaseError,
    NotAPromptlogDatabase,
    SchemaTooNewError,
    WriteError,
)
from promptlog.store import migrations

FIXTURES = Path(__file__).parent / "fixtures"


@experiment
def _answer(size: int = 10) -> str:
    return "x" * size


@metric
def _length(text: str) -> int:
    return len(text)


def _log_experiment(name: str, runs: int = 10, size: int = 10) -> Experiment:
    exp = Experiment(name, num_executions=runs, max_workers=4, quiet=True)
    exp.run(lambda: _length(_answer(size)))
    return exp


def _runs(db_path: Path, name: str) -> list[tuple]:
    return query(
        db_path,
        "SELECT r.status, COUNT(*), COUNT(m.run_id) FROM runs r "
        "JOIN experiments e ON e.id = r.experiment_id LEFT JOIN metrics m ON m.run_id = r.id "
        "WHERE e.name = ? GROUP BY r.status",
        [name],
    )


def _wait_for_logging_to_resume(timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.flush()
            return
        except WriteError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- a full disk ----------------------------------------------------------------


def _fill_the_disk(db_path) -> sqlite3.Connection:
    """Another program fills the disk: a table of its own takes pages, and the log may
    not grow past the pages it has now (SQLite's max_page_count). Dropping the
    returned connection's ``filler`` table makes room again."""
    other = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    other.execute("CREATE TABLE filler (data BLOB)")
    other.execute("INSERT INTO filler VALUES (zeroblob(400000))")

    def fill_the_disk(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    store.writer().call(fill_the_disk)
    return other


def test_a_full_disk_is_a_clear_error_and_logging_resumes_once_there_is_room(db_path):
    _log_experiment("before")
    other = _fill_the_disk(db_path)

    with pytest.raises(WriteError, match="disk is full: free some space"):
        _log_experiment("during", runs=20, size=20_000)
    with pytest.raises(WriteError, match="disk is full"):  # and again, until there is room
        _log_experiment("refused")

    assert _runs(db_path, "before") == [("succeeded", 10, 10)]
    assert integrity(db_path) == "ok"

    other.execute("DROP TABLE filler")  # room again: its pages are free for the log
    other.close()
    _wait_for_logging_to_resume()
    _log_experiment("after")
    assert _runs(db_path, "before") == [("succeeded", 10, 10)]
    assert _runs(db_path, "after") == [("succeeded", 10, 10)]
    assert _runs(db_path, "refused") == []
    # What "during" logged before the disk filled was kept and written once it could be.
    assert query(db_path, "SELECT COUNT(*) FROM experiments WHERE name = 'during'") == [(1,)]
    assert integrity(db_path) == "ok"


def test_a_file_size_limit_mid_calls_is_a_clear_error_and_nothing_is_lost(db_path, tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse writes past a size, as a full disk or a
    # quota does; it applies to a whole process, so the logging happens in a child.
    script = write_script(
        tmp_path,
        """
        import os, resource, signal, sys, time
        from promptlog import SimpleBot, store
        from promptlog.errors import WriteError

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        bot = SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok " * 500)
        for i in range(20):
            bot(f"before {i}")
        store.flush()
        path = os.environ["PROMPTLOG_DB"]
        size = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
        unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 8192, unlimited[1]))
        refused = calls = 0
        # At least 200 calls, and on until the writer has met the limit: on a busy
        # machine its thread may not have run a batch during the first 200.
        give_up = time.monotonic() + 60
        while (calls < 200 or not refused) and time.monotonic() < give_up:
            try:
                bot(f"during {calls}")
            except WriteError as e:
                refused += 1
                message = str(e)
            calls += 1
        print("refused", refused)
        print("message", message)
        resource.setrlimit(resource.RLIMIT_FSIZE, unlimited)
        deadline = time.monotonic() + 15
        while True:
            try:
                store.flush()
                break
            except WriteError:
                assert time.monotonic() < deadline, "logging never resumed"
                time.sleep(0.05)
        for i in range(20):
            bot(f"after {i}")
        store.flush()
        print("accepted", calls - refused)
        """,
    )
    done = run_script(script, db_path)
    assert done.returncode == 0, done.stderr
    report = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert int(report["refused"]) > 0
    assert "file system refused a write" in report["message"]
    counts = dict(
        query(
            db_path,
            "SELECT substr(json_extract(messages, '$[1].content'), 1, 5), COUNT(*) FROM calls "
            "GROUP BY 1",
        )
    )
    # Calls that raised were not logged; every call that did not raise was.
    assert counts == {"befor": 20, "durin": int(report["accepted"]), "after": 20}
    assert integrity(db_path) == "ok"


# --- read-only -------------------------------------------------------------------

_READ_AND_TRY_TO_LOG = """
import promptlog
from promptlog import Experiment, store
from promptlog.errors import DatabaseError

conn = store.connect_readonly()
print("read", conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'").fetchone()[0])
conn.close()
try:
    Experiment("more", num_executions=2, quiet=True).run(lambda: 1)
    print("logged")
except DatabaseError as e:
    print("error", type(e).__name__, e)
"""


def _closed_log(db_path: Path) -> bytes:
    """A log with one experiment, closed (no WAL beside it), and its bytes."""
    _log_experiment("before")
    store.writer(db_path).close()
    assert not Path(f"{db_path}-wal").exists()
    return db_path.read_bytes()


def test_a_read_only_file_can_be_read_but_logging_to_it_is_a_clear_error(db_path, tmp_path):
    before = _closed_log(db_path)
    db_path.chmod(0o444)
    done = run_as_ordinary_user(write_script(tmp_path, _READ_AND_TRY_TO_LOG), db_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "read 10"
    assert lines[1].startswith(f"error DatabaseError Cannot write the log at {db_path}")
    assert "read-only" in lines[1]
    assert db_path.read_bytes() == before


def test_a_read_only_folder_can_be_read_but_logging_to_it_is_a_clear_error(db_path, tmp_path):
    before = _closed_log(db_path)
    folder = db_path.parent
    script = write_script(tmp_path.parent, _READ_AND_TRY_TO_LOG, name=f"{tmp_path.name}.py")
    files = sorted(folder.iterdir())
    folder.chmod(0o555)
    try:
        done = run_as_ordinary_user(script, db_path)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "read 10"
    assert lines[1].startswith(f"error DatabaseError Cannot write the log at {db_path}")
    assert "read-only" in lines[1]
    assert sorted(folder.iterdir()) == files
    assert db_path.read_bytes() == before


# --- files that are not ours ------------------------------------------------------


def _log_through_every_door() -> list[BaseException]:
    """What a user does first: a bot call, an experiment, a read."""
    errors: list[BaseException] = []
    bot = SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok")
    for attempt in (lambda: bot("hi"), lambda: _log_experiment("mine"), store.connect_readonly):
        with pytest.raises(DatabaseError) as caught:
            attempt()
        errors.append(caught.value)
    return errors


def test_a_file_that_is_not_sqlite_is_left_untouched(db_path):
    content = b"name,score\nada,1\n" * 500
    db_path.write_bytes(content)
    for error in _log_through_every_door():
        assert isinstance(error, NotAPromptlogDatabase)
        assert "not a SQLite database" in str(error) and "PROMPTLOG_DB" in str(error)
    assert db_path.read_bytes() == content
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_a_sqlite_file_of_another_application_is_left_untouched(db_path):
    other = sqlite3.connect(db_path)
    other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    other.executemany("INSERT INTO invoices (total) VALUES (?)", [(9.5,), (12.0,)])
    other.commit()
    other.close()
    before = db_path.read_bytes()
    for error in _log_through_every_door():
        assert isinstance(error, NotAPromptlogDatabase)
        assert "another application" in str(error) and "invoices" in str(error)
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_a_log_from_a_newer_promptlog_is_refused_and_never_downgraded(db_path):
    _log_experiment("before")
    newer = sqlite3.connect(db_path)
    newer.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES (?, 'm999_from_the_future', '2030-01-01')",
        [migrations.MIGRATION_SET],
    )
    newer.execute("CREATE TABLE future_things (id INTEGER PRIMARY KEY)")
    newer.commit()
    newer.close()
    store.writer(db_path).close()
    before = db_path.read_bytes()
    for error in _log_through_every_door():
        assert isinstance(error, SchemaTooNewError)
        assert "m999_from_the_future" in str(error) and "never downgrades" in str(error)
    assert db_path.read_bytes() == before
    # A reader's connection may leave SQLite's empty WAL files beside it; nothing in them.
    wal = Path(f"{db_path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# --- logs written by released versions --------------------------------------------

_RELEASED = sorted(FIXTURES.glob("schema_*.db"))


def _all_rows(path: Path, tables: list[str]) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        rows = {}
        for table in tables:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            rows[table] = conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(columns)}"
            ).fetchall()
        return rows
    finally:
        conn.close()


def test_there_is_a_fixture_of_the_first_released_schema():
    assert FIXTURES / "schema_m001_m002.db" in _RELEASED


@pytest.mark.parametrize("fixture", _RELEASED, ids=[p.stem for p in _RELEASED])
def test_a_log_of_a_released_schema_opens_and_upgrades_keeping_every_row(fixture, db_path):
    shutil.copyfile(fixture, db_path)
    conn = sqlite3.connect(db_path)
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != '_sqlite_migrations'"
        )
    ]
    conn.close()
    before = _all_rows(db_path, tables)
    assert sum(map(len, before.values())) > 0

    _log_experiment("after-upgrade")  # logging opens it, and upgrades it first
    store.connect_readonly(db_path).close()

    assert [
        name
        for (name,) in query(
            db_path,
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
            [migrations.MIGRATION_SET],
        )
    ] == migrations.names()
    after = _all_rows(db_path, tables)
    for table in tables:  # every old row is still there, unchanged
        old = set(before[table])
        kept = {row[: len(before[table][0])] for row in after[table]} if old else set()
        assert old <= kept, table
    assert _runs(db_path, "after-upgrade") == [("succeeded", 10, 10)]
    assert integrity(db_path) == "ok"
    assert query(db_path, "PRAGMA foreign_key_check") == []


def test_a_read_only_log_of_a_released_schema_can_be_read(db_path, tmp_path):
    shutil.copyfile(FIXTURES / "schema_m001_m002.db", db_path)
    db_path.chmod(0o444)
    before = db_path.read_bytes()
    script = write_script(
        tmp_path,
        """
        import promptlog
        log = promptlog.open()
        print("experiments", len(log.experiments()))
        print("runs", len(log.runs()))
        """,
    )
    done = run_as_ordinary_user(script, db_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["experiments 3", "runs 8"]
    assert db_path.read_bytes() == before  # read, never upgraded
    conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    assert [name for (name,) in conn.execute("SELECT name FROM _sqlite_migrations")] == (
        migrations.names()[:2]
    )


# --- the file changes under the process -----------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_log_deleted_or_replaced_while_open_is_a_clear_error(how, db_path):
    _log_experiment("before")
    db_path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    if how == "replaced":
        other = sqlite3.connect(db_path)
        other.execute("CREATE TABLE notes (text TEXT)")
        other.commit()
        other.close()
    with pytest.raises(WriteError, match=f"{db_path}: the file was {how}"):
        _log_experiment("after")
    if how == "replaced":  # the other program's file is left as it was
        with pytest.raises(NotAPromptlogDatabase):
            _log_experiment("later")
        assert query(db_path, "SELECT name FROM sqlite_master") == [("notes",)]
    else:  # logging again starts a new log at the path
        _log_experiment("later")
        assert query(db_path, "SELECT name FROM experiments") == [("later",)]


# --- memory while the file is locked ----------------------------------------------


def test_queued_records_are_bounded_in_bytes_while_the_file_is_locked(db_path):
    bot = SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok")
    bot("warm up")
    store.flush()
    megabyte = "x" * 1_000_000
    done: list[int] = []

    def log_calls() -> None:
        for i in range(150):
            bot(megabyte)
            done.append(i)

    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    producer = threading.Thread(target=log_calls)
    try:
        producer.start()
        stalled_at, last = time.monotonic(), -1
        while time.monotonic() - stalled_at < 3 and producer.is_alive():
            if len(done) != last:
                stalled_at, last = time.monotonic(), len(done)
            time.sleep(0.05)
        # 64 MB of queued text: the producer waits for the writer from then on.
        assert 60 <= len(done) <= 70
    finally:
        other.execute("ROLLBACK")
        other.close()
        producer.join(timeout=60)
    store.flush()
    assert len(done) == 150
    assert query(db_path, "SELECT COUNT(*) FROM calls") == [(151,)]


# --- no provider call while the log cannot be written -----------------------------


def test_a_full_disk_stops_a_bot_before_it_calls_the_provider(db_path, monkeypatch):
    from promptlog.bots import _get_litellm

    litellm = _get_litellm()
    bot = SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok")
    bot("before")
    store.flush()
    other = _fill_the_disk(db_path)
    big = SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok " * 20_000)
    with pytest.raises(WriteError, match="disk is full"):
        for _ in range(50):
            big("fill it")
            time.sleep(0.01)
        store.flush()

    completion = litellm.completion
    replies = []

    def counting(*args, **kwargs):
        replies.append(1)
        return completion(*args, **kwargs)

    monkeypatch.setattr(litellm, "completion", counting)
    for _ in range(100):
        with pytest.raises(WriteError, match="disk is full"):
            bot("a question")
    assert replies == []  # no reply paid for and thrown away

    other.execute("DROP TABLE filler")
    other.close()
    _wait_for_logging_to_resume()
    bot("after")
    store.flush()
    assert len(replies) == 1
