"""Experiments: a block run N times on a thread pool, every run logged."""

from __future__ import annotations

import _thread
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from jobs import JobName, namer_system, namer_user

import promptlog
from promptlog import Experiment, SimpleBot, StructuredBot, experiment, metric
from promptlog.errors import ExperimentError, ExperimentFailedError, MetricError


@experiment
def name_generator():
    bot = StructuredBot(
        namer_system("data science manager"),
        model_name="promptlog/offline",
        pydantic_model=JobName,
        temperature=0.7,
    )
    return bot(namer_user("someone who builds full stack AI apps"))


@metric
def name_length(response):
    return len(response.name)


def query(db_path: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_the_design_example_logs_ten_runs_with_results_metrics_and_calls(db_path):
    with Experiment("job-names", num_executions=10, quiet=True) as exp:
        response = name_generator()
        name_length(response)

    # After the block, the caller's names hold execution 0's values.
    assert isinstance(response, JobName)
    assert exp.results[0] == response
    assert len(exp.runs) == 10 and len(exp.results) == 10
    assert all(isinstance(r, JobName) for r in exp.results)

    (experiment_row,) = query(db_path, "SELECT id, name, status, num_executions FROM experiments")
    assert experiment_row == (exp.id, "job-names", "succeeded", 10)
    runs = query(db_path, "SELECT id, execution_index, status, result FROM runs ORDER BY 2")
    assert [r[1] for r in runs] == list(range(10))
    assert {r[2] for r in runs} == {"succeeded"}
    assert all(json.loads(r[3]).keys() == {"name", "description"} for r in runs)
    metrics = query(db_path, "SELECT run_id, value, kind FROM metrics WHERE name='name_length'")
    assert len(metrics) == 10 and {m[2] for m in metrics} == {"int"}
    # Every run's bot call is linked to that run and to no other.
    linked = query(db_path, "SELECT run_id, COUNT(*) FROM calls GROUP BY run_id")
    assert sorted(linked) == sorted((r[0], 1) for r in runs)

    frame = exp.to_pandas()
    assert list(frame["execution_index"]) == list(range(10))
    assert {"run_id", "status", "duration_s", "result", "name_length"} <= set(frame.columns)
    summary = exp.summary()
    assert summary.loc["name_length", "n"] == 10
    assert summary.loc["name_length", "ci_low"] <= summary.loc["name_length", "mean"]


def test_hyperparameters_are_captured_per_run(db_path):
    with Experiment("hp", num_executions=3, metadata={"owner": "ada"}, quiet=True):
        name_generator()
    rows = query(db_path, "SELECT hyperparameters FROM runs")
    for (text,) in rows:
        hp = json.loads(text)
        (bot,) = hp["bots"]
        assert bot["class"] == "StructuredBot"
        assert bot["model"] == "promptlog/offline"
        assert bot["temperature"] == 0.7
        assert bot["system_prompt_version_id"] == namer_system("x").prompt_version.id
        assert {p["name"].rsplit(".", 1)[1] for p in hp["prompt_versions"]} == {
            "namer_system",
            "namer_user",
        }
        assert hp["metadata"] == {"owner": "ada"}
    assert query(db_path, "SELECT COUNT(*) FROM run_prompt_versions") == [(6,)]


def test_the_block_runs_concurrently(fake_openai):
    fake_openai.latency = 0.2
    bot = SimpleBot("s", **fake_openai.bot_kwargs)
    bot("warm up")  # litellm's first call sets up its HTTP client
    started = time.perf_counter()
    with Experiment("parallel", num_executions=32, max_workers=16, quiet=True) as exp:
        bot("hello")
    elapsed = time.perf_counter() - started
    assert [r.status for r in exp.runs] == ["succeeded"] * 32
    sequential = 32 * 0.2
    assert elapsed < 0.5 * sequential, f"{elapsed:.2f}s is not concurrent"


def test_a_with_block_in_a_function_reads_its_local_variables(db_path):
    def evaluate(prefix: str, repeats: int):
        suffix = "!"
        with Experiment("locals", num_executions=4, quiet=True) as exp:
            text = f"{prefix}-{repeats}{suffix}"
            record_length(text)
        return exp, text

    @metric
    def record_length(text):
        return len(text)

    exp, text = evaluate("abc", 7)
    assert text == "abc-7!"
    assert [run.metrics for run in exp.runs] == [{"record_length": 6.0}] * 4


def test_each_execution_has_its_own_namespace(db_path):
    seen = []
    counter = 0
    with Experiment("namespaces", num_executions=5, quiet=True) as exp:
        counter += 1
        seen.append(counter)
        assert exp.name == "namespaces"  # the `as` name is bound in every execution
    assert counter == 1
    assert seen == [1] * 5  # the list object is shared: copies are shallow


def test_execution_index_is_available_in_each_run(db_path):
    with Experiment("index", num_executions=6, quiet=True) as exp:
        run = promptlog.current_run()
        index_metric(run.execution_index)
    assert sorted(r.metrics["index_metric"] for r in exp.runs) == [0, 1, 2, 3, 4, 5]


@metric
def index_metric(value):
    return value


def test_a_failing_execution_is_recorded_and_the_others_go_on(db_path):
    def flaky():
        index = promptlog.current_run().execution_index
        if index == 3:
            raise ValueError("execution three broke")
        index_metric(index)
        return index * 10

    exp = Experiment("flaky", num_executions=6, quiet=True)
    results = exp.run(flaky)
    assert results == [0, 10, 20, None, 40, 50]
    assert [r.execution_index for r in exp.failures] == [3]
    (row,) = query(db_path, "SELECT error_type, error_message, traceback FROM runs "
                   "WHERE status = 'failed'")
    assert row[0] == "ValueError" and row[1] == "execution three broke"
    assert "in flaky" in row[2] and "raise ValueError" in row[2]
    assert query(db_path, "SELECT status FROM experiments") == [("succeeded",)]
    assert query(db_path, "SELECT COUNT(*) FROM metrics") == [(5,)]


def test_execution_zeros_exception_propagates_after_the_others_finish(db_path, capsys):
    with pytest.raises(RuntimeError, match="boom"):
        with Experiment("zero-fails", num_executions=4) as exp:
            if promptlog.current_run().execution_index == 0:
                raise RuntimeError("boom")
            index_metric(1)
    statuses = dict(query(db_path, "SELECT execution_index, status FROM runs"))
    assert statuses == {0: "failed", 1: "succeeded", 2: "succeeded", 3: "succeeded"}
    assert "4 runs, 3 succeeded, 1 failed" in capsys.readouterr().err
    assert len(exp.failures) == 1


def test_run_raises_when_every_execution_failed(db_path):
    def broken():
        raise KeyError("missing")

    with pytest.raises(ExperimentFailedError, match="Every execution") as caught:
        Experiment("broken", num_executions=3, quiet=True).run(broken)
    assert isinstance(caught.value.__cause__, KeyError)
    assert query(db_path, "SELECT status FROM experiments") == [("failed",)]


def test_ctrl_c_cancels_pending_executions_and_marks_the_rest_interrupted(db_path):
    timer = threading.Timer(0.45, _thread.interrupt_main)

    def slow():
        if promptlog.current_run().execution_index == 0:
            timer.start()  # once the experiment is under way, however slow its start
        time.sleep(0.3)
        index_metric(1)

    exp = Experiment("interrupted", num_executions=40, max_workers=2, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        exp.run(slow)
    timer.cancel()
    time.sleep(0.4)  # let the executions that were running finish
    promptlog.flush()
    assert query(db_path, "SELECT status FROM experiments") == [("interrupted",)]
    statuses = [s for (s,) in query(db_path, "SELECT status FROM runs")]
    assert "running" not in statuses
    assert statuses.count("interrupted") >= 1
    assert len(statuses) < 40  # executions that had not started never ran


def test_ctrl_c_in_an_execution_keeps_finished_runs_and_prints_the_summary(db_path, capsys):
    @metric
    def score(value):
        return value

    boom = threading.Event()

    def work():
        index = promptlog.current_run().execution_index
        if index == 12:
            boom.set()
            raise KeyboardInterrupt
        if index > 12:
            boom.wait(5)  # in flight on another worker when Ctrl-C arrives,
            time.sleep(0.05)  # and it ends after
        score(index)
        return index

    exp = Experiment("ctrl-c", num_executions=50, max_workers=4)
    with pytest.raises(KeyboardInterrupt) as caught:
        exp.run(work)
    time.sleep(0.3)  # let executions still in flight end
    promptlog.flush()

    # Re-raised fresh from the call the user made, not from promptlog's internals.
    frames = [f for f in caught.traceback if "promptlog" in str(f.path)]
    assert [f.name for f in frames] == ["run"]
    assert caught.value.__suppress_context__ and caught.value.__cause__ is None

    assert query(db_path, "SELECT status, num_executions FROM experiments") == [
        ("interrupted", 50)
    ]
    rows = query(
        db_path,
        "SELECT r.execution_index, r.status, r.result, r.duration_s, m.value FROM runs r "
        "LEFT JOIN metrics m ON m.run_id = r.id ORDER BY r.execution_index",
    )
    statuses = {index: status for index, status, *_ in rows}
    assert all(statuses[i] == "succeeded" for i in range(12))
    assert statuses[12] == "interrupted"
    for index, status, result, duration, value in rows:
        # A finished run is succeeded, with its result, duration and metric; an
        # interrupted one has none of them, so the summary never counts it.
        finished = (result, duration is not None, value) == (str(index), True, index)
        assert finished == (status == "succeeded"), (index, status, result, value)
    assert set(statuses.values()) == {"succeeded", "interrupted"}
    assert [run.status for run in sorted(exp.runs, key=lambda r: r.execution_index)] == [
        statuses[i] for i in sorted(statuses)
    ]
    summary = exp.summary()
    assert summary.loc["score", "n"] == list(statuses.values()).count("succeeded")

    succeeded = list(statuses.values()).count("succeeded")
    interrupted = len(statuses) - succeeded
    err = capsys.readouterr().err
    assert (
        f"{len(statuses)} of 50 runs, {succeeded} succeeded, 0 failed, "
        f"{interrupted} interrupted" in err
    )


CTRL_C_SCRIPT = """
import time
import promptlog
from promptlog import Experiment, metric

@metric
def score(value):
    return value

with Experiment("ctrl-c", num_executions=50, max_workers=4):
    index = promptlog.current_run().execution_index
    if index >= 12:
        time.sleep(5)  # still running when Ctrl-C arrives
    score(index)
print("not reached")
"""


def test_ctrl_c_in_a_script_prints_the_summary_and_a_short_traceback(tmp_path, db_path):
    script = tmp_path / "experiment.py"
    script.write_text(CTRL_C_SCRIPT)
    env = {**os.environ, "PROMPTLOG_DB": str(db_path)}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                done = query(db_path, "SELECT COUNT(*) FROM runs WHERE status='succeeded'")
            except sqlite3.OperationalError:
                continue
            if done[0][0] == 12:
                break
        else:
            pytest.fail("the experiment never finished its first twelve runs")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()

    assert proc.returncode != 0 and "not reached" not in out
    assert "16 of 50 runs, 12 succeeded, 0 failed, 4 interrupted" in err
    traceback = err[err.index("Traceback") :]
    assert traceback.rstrip().endswith("KeyboardInterrupt")
    assert f'File "{script}", line 10, in <module>' in traceback
    # One line of promptlog: the with-statement's exit re-raising the user's Ctrl-C.
    assert traceback.count("promptlog") == 1 and "in __exit__" in traceback
    assert "During handling" not in traceback

    rows = query(
        db_path,
        "SELECT r.status, COUNT(*), COUNT(m.value), COUNT(r.duration_s) FROM runs r "
        "LEFT JOIN metrics m ON m.run_id = r.id GROUP BY r.status ORDER BY r.status",
    )
    # The four that were running stay interrupted, unscored, although they ended later.
    assert rows == [("interrupted", 4, 0, 0), ("succeeded", 12, 12, 12)]
    assert query(db_path, "SELECT status, num_executions FROM experiments") == [
        ("interrupted", 50)
    ]


def test_a_block_without_source_points_to_run(db_path):
    code = textwrap.dedent(
        """
        with Experiment("no-source", num_executions=3, quiet=True):
            pass
        """
    )
    with pytest.raises(ExperimentError, match=r"exp\.run\(fn\)"):
        exec(compile(code, "<generated>", "exec"), {"Experiment": Experiment})
    # A single execution needs no source at all.
    single = textwrap.dedent(
        """
        with Experiment("one", num_executions=1, quiet=True) as exp:
            value = 42
        """
    )
    namespace = {"Experiment": Experiment}
    exec(compile(single, "<generated>", "exec"), namespace)
    assert namespace["value"] == 42 and namespace["exp"].runs[0].status == "succeeded"


def test_experiments_cannot_be_nested(db_path):
    def inner():
        Experiment("inner", num_executions=2, quiet=True).run(lambda: None)

    exp = Experiment("outer", num_executions=2, quiet=True)
    with pytest.raises(ExperimentFailedError):
        exp.run(inner)
    assert len(exp.failures) == 2
    assert all(isinstance(r.error, ExperimentError) for r in exp.failures)
    assert "cannot be nested" in str(exp.failures[0].error)


def test_metrics_are_recorded_once_per_run(db_path):
    @metric
    def score():
        return 1.0

    def twice():
        score()
        score()

    exp = Experiment("twice", num_executions=1, quiet=True)
    with pytest.raises(ExperimentFailedError):
        exp.run(twice)
    assert isinstance(exp.runs[0].error, MetricError)
    assert "already recorded" in str(exp.runs[0].error)
    assert query(db_path, "SELECT value FROM metrics") == [(1.0,)]


def test_helper_threads_started_through_with_current_run_are_attributed(db_path):
    from concurrent.futures import ThreadPoolExecutor

    bot = SimpleBot("s", model_name="gpt-4o-mini", mock_response="ok")

    def fan_out():
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(promptlog.with_current_run(bot), ["a", "b", "c", "d"]))

    exp = Experiment("fan-out", num_executions=3, quiet=True)
    exp.run(fan_out)
    counts = query(db_path, "SELECT run_id, COUNT(*) FROM calls GROUP BY run_id")
    assert sorted(counts) == sorted((r.id, 4) for r in exp.runs)


def test_results_are_stored_as_json_or_repr(db_path):
    class Opaque:
        def __repr__(self):
            return "<opaque>"

    values = {0: {"a": [1, 2]}, 1: Opaque(), 2: JobName(name="n", description="d")}
    exp = Experiment("results", num_executions=3, quiet=True)
    exp.run(lambda: values[promptlog.current_run().execution_index])
    rows = dict(
        (index, (fmt, text))
        for index, fmt, text in query(
            db_path, "SELECT execution_index, result_format, result FROM runs"
        )
    )
    assert rows[0] == ("json", '{"a": [1, 2]}')
    assert rows[1] == ("repr", "<opaque>")
    assert json.loads(rows[2][1]) == {"name": "n", "description": "d"}


def test_environment_is_captured(db_path):
    Experiment("env", quiet=True).run(lambda: None)
    (env,) = query(db_path, "SELECT environment FROM experiments")
    environment = json.loads(env[0])
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert environment["promptlog"] == promptlog.__version__
    if "git_commit" in environment:
        assert isinstance(environment["git_dirty"], bool)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ExperimentError, match="num_executions"):
        Experiment("x", num_executions=0)
    with pytest.raises(ExperimentError, match="needs a name"):
        Experiment("")
    with pytest.raises(ExperimentError, match="JSON-able"):
        Experiment("x", metadata={"f": object()})


def test_a_killed_process_keeps_finished_runs_and_marks_the_rest_interrupted(tmp_path, db_path):
    script = tmp_path / "experiment.py"
    script.write_text(
        textwrap.dedent(
            """
            import time, sys
            import promptlog
            from promptlog import Experiment, metric

            @metric
            def score(value):
                return value

            def work():
                index = promptlog.current_run().execution_index
                score(index)
                if index >= 5:
                    time.sleep(60)  # still running when the process is killed

            exp = Experiment("killed", num_executions=10, max_workers=10, quiet=True)
            exp.run(work)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], env={**os.environ, "PROMPTLOG_DB": str(db_path)}
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if db_path.exists():
                try:
                    done = query(db_path, "SELECT COUNT(*) FROM runs WHERE status='succeeded'")
                except sqlite3.OperationalError:
                    continue
                if done[0][0] == 5:
                    break
        else:
            pytest.fail("the experiment never finished its first five runs")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()

    frame = promptlog.open(db_path).runs("killed")  # reopening marks the dead runs
    statuses = dict(zip(frame["execution_index"], frame["status"], strict=True))
    assert {i: statuses[i] for i in range(5)} == {i: "succeeded" for i in range(5)}
    assert {statuses[i] for i in statuses if i >= 5} == {"interrupted"}
    assert list(frame.loc[frame["status"] == "succeeded", "score"]) == [0, 1, 2, 3, 4]
    assert query(db_path, "SELECT status FROM experiments") == [("interrupted",)]
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]
