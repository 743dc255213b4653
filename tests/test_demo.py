"""``promptlog demo`` runs the whole flow offline and says where the log is."""

from __future__ import annotations

import sqlite3

from promptlog import demo


def test_demo_logs_two_prompt_versions_and_two_experiments(db_path, capsys):
    demo.main(num_executions=4)
    out = capsys.readouterr().out
    assert str(db_path) in out.replace("\n", "")
    assert "name_length" in out and "short_name" in out
    conn = sqlite3.connect(db_path)
    versions = conn.execute(
        "SELECT version FROM prompt_versions WHERE name = 'promptlog.demo.namer_user'"
    ).fetchall()
    assert versions == [(1,), (2,)]
    experiments = conn.execute(
        "SELECT name, status, (SELECT COUNT(*) FROM runs WHERE experiment_id = e.id) "
        "FROM experiments e ORDER BY name"
    ).fetchall()
    assert experiments == [
        ("demo-job-names-v1", "succeeded", 4),
        ("demo-job-names-v2", "succeeded", 4),
    ]
    assert conn.execute("SELECT COUNT(*) FROM calls WHERE run_id IS NOT NULL").fetchone() == (16,)
