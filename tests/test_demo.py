"""``promptlog demo`` runs the whole flow offline and says where the log is."""

from __future__ import annotations

import sqlite3

import promptlog
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
        "FROM experiments e WHERE name LIKE 'demo-job-names-%' ORDER BY name"
    ).fetchall()
    assert experiments == [
        ("demo-job-names-v1", "succeeded", 4),
        ("demo-job-names-v2", "succeeded", 4),
    ]
    assert conn.execute(
        "SELECT COUNT(*) FROM calls c JOIN runs r ON r.id = c.run_id "
        "JOIN experiments e ON e.id = r.experiment_id WHERE e.name LIKE 'demo-job-names-%'"
    ).fetchone() == (16,)


def test_the_demo_ends_with_an_optimiser_finding_a_better_instruction(db_path, capsys):
    demo.main(num_executions=2)
    out = capsys.readouterr().out
    (row,) = promptlog.open().optimizations().itertuples()
    assert row.optimiser == "InstructionSearch"
    assert row.best_score == 1.0 > row.outcome["baseline_score"]
    # The winning version's diff, and its paired gain with its interval.
    assert "+++ promptlog.demo.name_job v4" in out
    assert "Make it catchy." in out
    assert "short_name gains +50% (95% CI +17% to +83%" in out.replace("\n", " ")
    assert "significant" in out
    assert "promptlog optimizations" in out
