"""``kill -9`` in the middle of an experiment, at several points: the runs that
finished are intact, the others are shown as interrupted once the file is
reopened, and SQLite finds nothing wrong with the file."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults_support import child_env, integrity, query, write_script

from promptlog import store

CHILD = """
import sys, threading, time
import promptlog
from promptlog import Experiment, SimpleBot, experiment, metric

mode = sys.argv[1]
api_base = sys.argv[2] if len(sys.argv) > 2 else None
killed = False  # set once the experiment that will be killed starts

@metric
def score(value):
    return value

@metric
def passed(value):
    return value

@metric
def size(value):
    return value

@promptlog.prompt("user")
def ask(index):
    'Question {{ index }}.'

@experiment
def work():
    index = promptlog.current_run().execution_index
    if not killed:
        pass
    elif mode == "calls":
        bot = SimpleBot("You answer.", model_name="openai/fake-model", api_base=api_base,
                        api_key="sk-fake", num_retries=0)
        bot(f"question {index}")
    elif mode == "half" and index >= 10:
        time.sleep(600)  # still running when the process is killed
    elif mode == "none":
        time.sleep(600)
    elif mode == "linked":
        ask(index)  # each run uses a prompt version: its end links them
    score(index / 2)
    passed(index % 2 == 0)
    size(index)
    return {"index": index}

# A first experiment that finishes before the one that is killed.
Experiment("finished-first", num_executions=20, max_workers=4, quiet=True).run(work)
print("finished-first done", flush=True)
runs = {"half": 20, "none": 8, "busy": 200_000, "calls": 2_000, "linked": 200_000}[mode]
killed = True
Experiment("killed", num_executions=runs, max_workers=8, quiet=True).run(work)
"""


def _start(script: Path, db_path: Path, *args: str) -> subprocess.Popen:
    errors = (script.parent / "stderr.txt").open("w")
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=child_env(db_path),
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )


def _wait_until(db_path: Path, sql: str, predicate, child: subprocess.Popen, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, "the child exited before the kill"
        try:
            value = query(db_path, sql)[0][0]
        except sqlite3.OperationalError:  # not created yet
            value = None
        if value is not None and predicate(value):
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {sql}")


def _kill_and_reopen(db_path: Path, child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    store.connect_readonly(db_path).close()  # what any reader does on opening


# mode -> how many runs of "killed" have succeeded when the kill comes
KILL_POINTS = {
    "none": 0,  # the runs have started, none has finished
    "half": 10,  # ten finished, ten still running
    "busy": 3_000,  # thousands of tiny runs a second: killed mid-commit
}


@pytest.mark.parametrize("mode", list(KILL_POINTS))
def test_sigkill_mid_experiment_keeps_finished_runs(mode, db_path, tmp_path):
    script = write_script(tmp_path, CHILD)
    child = _start(script, db_path, mode)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "finished-first done"
        wanted = KILL_POINTS[mode]
        counting = (
            "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
            "WHERE e.name = 'killed' AND r.status = '{}'"
        )
        if mode == "none":
            _wait_until(db_path, counting.format("running"), lambda n: n == 8, child)
        elif mode == "half":  # the eight sleeping runs written as running, too
            _wait_until(db_path, counting.format("succeeded"), lambda n: n == wanted, child)
            _wait_until(db_path, counting.format("running"), lambda n: n == 8, child)
        else:
            _wait_until(db_path, counting.format("succeeded"), lambda n: n >= wanted, child)
        _kill_and_reopen(db_path, child)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert integrity(db_path) == "ok"
    _assert_finished_runs_intact(db_path)
    statuses = dict(
        query(
            db_path,
            "SELECT r.status, COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
            "WHERE e.name = 'killed' GROUP BY r.status",
        )
    )
    assert "running" not in statuses
    assert statuses.get("failed", 0) == 0
    if mode == "none":
        assert statuses == {"interrupted": 8}
    elif mode == "half":
        # Eight workers: ten runs finished, eight were sleeping, two never started.
        assert statuses == {"succeeded": 10, "interrupted": 8}
    else:
        assert statuses["succeeded"] >= wanted
    assert query(db_path, "SELECT status FROM experiments WHERE name = 'killed'") == [
        ("interrupted",)
    ]


def test_sigkill_in_the_middle_of_bot_calls(db_path, tmp_path, fake_openai):
    fake_openai.latency = 0.05
    script = write_script(tmp_path, CHILD)
    child = _start(script, db_path, "calls", fake_openai.base_url)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "finished-first done"
        _wait_until(
            db_path,
            "SELECT COUNT(*) FROM calls c JOIN runs r ON r.id = c.run_id "
            "JOIN experiments e ON e.id = r.experiment_id WHERE e.name = 'killed'",
            lambda n: n >= 40,
            child,
        )
        _kill_and_reopen(db_path, child)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert integrity(db_path) == "ok"
    _assert_finished_runs_intact(db_path)
    # Every succeeded run of the killed experiment has its call; every logged call
    # belongs to a run that is in the file, and answered.
    assert query(
        db_path,
        "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        "WHERE e.name = 'killed' AND r.status = 'succeeded' "
        "AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.run_id = r.id)",
    ) == [(0,)]
    assert query(
        db_path,
        "SELECT COUNT(*) FROM calls c WHERE c.status != 'succeeded' OR c.response_text IS NULL "
        "OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = c.run_id)",
    ) == [(0,)]
    assert query(db_path, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == [(0,)]


def test_a_run_ends_whole_status_and_prompt_links_together(db_path, tmp_path):
    """Thousands of tiny runs a second, each using a prompt: at no moment does the
    file hold a succeeded run without its prompt version links, so a kill at any
    moment cannot leave one."""
    script = write_script(tmp_path, CHILD)
    child = _start(script, db_path, "linked")
    unlinked = (
        "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        "WHERE e.name = 'killed' AND r.status = 'succeeded' "
        "AND NOT EXISTS (SELECT 1 FROM run_prompt_versions u WHERE u.run_id = r.id)"
    )
    seen = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "finished-first done"
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not seen:
            try:
                count = query(db_path, unlinked)[0][0]
            except sqlite3.OperationalError:  # a moment of contention: look again
                continue
            if count:
                seen.append(count)
                break  # kill at once: the file keeps what a reader just saw
        assert child.poll() is None, "the child exited before the kill"
        _kill_and_reopen(db_path, child)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert seen == []
    assert query(db_path, unlinked) == [(0,)]
    succeeded = query(
        db_path,
        "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        "WHERE e.name = 'killed' AND r.status = 'succeeded'",
    )[0][0]
    assert succeeded > 100
    assert integrity(db_path) == "ok"
    _assert_finished_runs_intact(db_path)


def _assert_finished_runs_intact(db_path: Path) -> None:
    """The experiment that finished before the kill has every run, result and
    metric; in the killed one, each succeeded run is complete too."""
    first = query(
        db_path,
        "SELECT e.status, COUNT(*), SUM(r.status = 'succeeded') FROM runs r "
        "JOIN experiments e ON e.id = r.experiment_id WHERE e.name = 'finished-first'",
    )
    assert first == [("succeeded", 20, 20)]
    incomplete = query(
        db_path,
        "SELECT r.id, r.execution_index, r.result, r.ended_at, "
        "(SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.id) AS n "
        "FROM runs r WHERE r.status = 'succeeded' AND (n != 3 OR r.result IS NULL "
        "OR r.ended_at IS NULL OR json_extract(r.result, '$.index') != r.execution_index)",
    )
    assert incomplete == []
    # Metrics hold the values the run computed, whatever batch they were written in.
    assert query(
        db_path,
        "SELECT COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
        "WHERE m.name = 'size' AND m.value != r.execution_index",
    ) == [(0,)]
