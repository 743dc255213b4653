"""The log file: where it lives, how it opens, and its schema."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

import promptlog
from promptlog import store
from promptlog.errors import DatabaseError, NotAPromptlogDatabase


def schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


def run_python(code: str, env: dict[str, str] | None = None, **kwargs) -> Any:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_a_fresh_and_a_reopened_database_have_the_same_schema(db_path, tmp_path):
    store.writer(db_path).flush()
    fresh = schema(db_path)
    assert {"prompt_versions", "calls", "experiments", "runs", "metrics"} <= {
        name for kind, name, _ in fresh if kind == "table"
    }
    # Reopen in another process: nothing is applied twice, nothing changes.
    done = run_python(
        "from promptlog import store; store.writer().flush()", env={"PROMPTLOG_DB": str(db_path)}
    )
    assert done.returncode == 0, done.stderr
    assert schema(db_path) == fresh
    migrations = sqlite3.connect(db_path).execute(
        "SELECT migration_set, name FROM _sqlite_migrations ORDER BY rowid"
    ).fetchall()
    assert migrations == [
        ("promptlog", "m001_prompt_versions_and_calls"),
        ("promptlog", "m002_experiments_runs_metrics"),
        *[("promptlog", name) for name in store.migrations.names()[2:]],
    ]


def test_pragmas(db_path):
    store.writer(db_path).flush()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_path_comes_from_env_then_configure_then_project_root(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname='x'\n")
    monkeypatch.chdir(project / "src" / "deep")
    monkeypatch.delenv("PROMPTLOG_DB")
    assert store.db_path() == project / "message_log.db"

    store.configure(db_path=tmp_path / "configured.db")
    try:
        assert store.db_path() == tmp_path / "configured.db"
        monkeypatch.setenv("PROMPTLOG_DB", str(tmp_path / "env.db"))
        assert store.db_path() == tmp_path / "env.db"
    finally:
        store.configure(None)


def test_without_a_project_the_log_goes_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTLOG_DB")
    if any((p / ".git").exists() or (p / "pyproject.toml").exists() for p in tmp_path.parents):
        pytest.skip("the temporary directory is inside a project")
    assert store.db_path() == tmp_path / "message_log.db"


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    content = b"these are my notes, not a database\n" * 100
    path.write_bytes(content)
    with pytest.raises(NotAPromptlogDatabase, match="not a SQLite database"):
        store.writer(path)
    with pytest.raises(NotAPromptlogDatabase):
        promptlog.open(path).runs()
    assert path.read_bytes() == content
    assert not Path(f"{path}-wal").exists()


def test_a_sqlite_file_of_another_application_is_left_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotAPromptlogDatabase, match="another application"):
        store.writer(path)
    assert path.read_bytes() == before


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        store.writer(tmp_path / "nowhere" / "message_log.db")


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="needs POSIX users")
def test_a_read_only_directory_is_a_clear_error():
    # pytest's tmp_path is private to root; this folder must be reachable by nobody.
    with tempfile.TemporaryDirectory() as parent:
        Path(parent).chmod(0o755)
        folder = Path(parent) / "locked"
        folder.mkdir(mode=0o555)
        _check_read_only_directory(folder)


def _check_read_only_directory(folder: Path) -> None:
    code = f"""
        import os
        from pathlib import Path
        from promptlog import store
        from promptlog.errors import DatabaseError
        if os.getuid() == 0:
            os.setgid(65534); os.setuid(65534)  # root may write anywhere: act as nobody
        try:
            store.writer(Path({str(folder / "message_log.db")!r}))
        except DatabaseError as e:
            print("ERROR:", e)
        """
    done = run_python(code, cwd="/")
    assert done.returncode == 0, done.stderr
    assert "ERROR: Cannot write the log at" in done.stdout
    assert "read-only" in done.stdout
    assert not (folder / "message_log.db").exists()


def test_import_promptlog_does_not_import_litellm_or_pandas():
    done = run_python(
        """
        import sys, promptlog
        from promptlog import prompt, SimpleBot, Experiment, metric, experiment
        print(sorted(m for m in ("litellm", "pandas") if m in sys.modules))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_two_processes_logging_to_one_file_lose_nothing(db_path):
    code = """
        import sys
        from promptlog import SimpleBot
        bot = SimpleBot("You count.", model_name="gpt-4o-mini", mock_response="ok",
                        name=sys.argv[1])
        for i in range(150):
            bot(f"number {i}")
        """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), f"bot{i}"],
            env={**os.environ, "PROMPTLOG_DB": str(db_path)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    counts = dict(
        sqlite3.connect(db_path).execute("SELECT bot_name, COUNT(*) FROM calls GROUP BY bot_name")
    )
    assert counts == {"bot0": 150, "bot1": 150}


# --- text SQLite cannot store as it is, and copies of the file ------------------


def test_lone_surrogates_are_stored_escaped_and_later_records_are_kept(db_path):
    bot = promptlog.SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok")
    bot("a \ud800")
    bot("an unrelated question")  # raised WriteError, and was lost with it
    exp = promptlog.Experiment("x\udcff", num_executions=2, metadata={"k": "\ud800"}, quiet=True)
    exp.run(lambda: "\udcff result")
    promptlog.flush()

    conn = sqlite3.connect(db_path)
    contents = [
        row[0]
        for row in conn.execute(
            "SELECT json_extract(messages, '$[1].content') FROM calls ORDER BY id"
        )
    ]
    assert contents == ["a \\ud800", "an unrelated question"]
    assert conn.execute("SELECT name, metadata FROM experiments").fetchall() == [
        ("x\\udcff", '{"k": "\\\\ud800"}')  # in JSON, the backslash is escaped
    ]
    metadata = conn.execute("SELECT json_extract(metadata, '$.k') FROM experiments").fetchone()
    assert metadata == ("\\ud800",)
    results = conn.execute("SELECT status, result FROM runs").fetchall()
    assert results == [("succeeded", '"\\\\udcff result"')] * 2


def test_a_copy_of_the_file_alone_holds_an_experiment_that_has_ended(db_path, tmp_path):
    exp = promptlog.Experiment("copied", num_executions=5, quiet=True)
    exp.run(lambda: 1)
    copy = tmp_path / "copy.db"
    copy.write_bytes(db_path.read_bytes())  # the file without its write-ahead log
    conn = sqlite3.connect(copy)
    assert conn.execute("SELECT name, status FROM experiments").fetchall() == [
        ("copied", "succeeded")
    ]
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'").fetchone() == (5,)

    bot = promptlog.SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="ok")
    bot("hi")
    promptlog.flush()
    copy.write_bytes(db_path.read_bytes())
    assert sqlite3.connect(copy).execute("SELECT COUNT(*) FROM calls").fetchone() == (1,)
