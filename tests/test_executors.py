"""Experiments and evaluations on other processes — a Dask LocalCluster of two
worker processes and a ProcessPoolExecutor — with one log, written only by the
process that started the experiment."""

from __future__ import annotations

import _thread
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import executors_support as support
import pytest
from faults_support import query

import promptlog
import promptlog.executors
from promptlog import Experiment
from promptlog.errors import ExecutorError, RemoteError

DATASET = [{"question": f"What comes after {n}?", "n": n} for n in range(20)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("watch") / "opened.txt"


@pytest.fixture(scope="module")
def cluster(report: Path) -> Iterator[Any]:
    """Two worker processes of four threads; a task whose workers died twice is
    given up (KilledWorker) rather than tried a third time."""
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=4, processes=True, dashboard_address=":0",
        scheduler_kwargs={"allowed_failures": 1}, silence_logs=logging.CRITICAL,
    ) as local, Client(local) as client:
        client.register_plugin(support.Watch(str(report)), name="promptlog-watch")
        client.run(support.warm)  # both workers at once, before any test
        yield client


@pytest.fixture(scope="module")
def pool(report: Path) -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn"),
        initializer=support.watch, initargs=(str(report),),
    ) as executor:
        list(executor.map(support.warm, range(2)))
        yield executor


@pytest.fixture(params=["dask", "process"])
def executor(request: pytest.FixtureRequest) -> Any:
    if request.param == "dask":
        return promptlog.executors.dask(request.getfixturevalue("cluster"))
    return request.getfixturevalue("pool")


def _opened(report: Path) -> list[str]:
    """What the workers opened that looks like a log, but the control's file."""
    return [line for line in support.opened(report) if "control" not in line]


def _count(db_path: Path, sql: str, *params: Any) -> int:
    promptlog.flush()
    return int(query(db_path, sql, params)[0][0])


def _versions(db_path: Path) -> list[tuple[Any, ...]]:
    promptlog.flush()
    return query(db_path, "SELECT name, version, hash, role FROM prompt_versions ORDER BY id")


def _forty(executor: Any, fake: dict[str, str]) -> tuple[Experiment, Experiment]:
    """40 executions, then 4 with the user prompt's template overridden (a new version)."""
    first = Experiment("forty", num_executions=40, executor=executor, quiet=True)
    first.run(support.two_models, "What is a prompt?", fake)
    edited = Experiment(
        "forty-edited", num_executions=4, executor=executor, quiet=True,
        overrides={support.ask: {"template": "Reply to this: {{ question }}"}},
    )
    edited.run(support.two_models, "What is a prompt?", fake)
    return first, edited


def test_forty_executions_log_every_record_once_with_the_version_numbers_of_threads(
    executor, db_path, tmp_path, fake_openai, monkeypatch, report
):
    first, edited = _forty(executor, fake_openai.bot_kwargs)

    assert [run.status for run in first.runs] == ["succeeded"] * 40
    assert sorted(run.execution_index for run in first.runs) == list(range(40))
    assert _count(db_path, "SELECT count(*) FROM runs WHERE experiment_id = ? "
                  "AND status = 'succeeded' AND result IS NOT NULL", first.id) == 40
    assert _count(db_path, "SELECT count(*) FROM calls c JOIN runs r ON r.id = c.run_id "
                  "WHERE r.experiment_id = ?", first.id) == 80
    assert _count(db_path, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                  "WHERE r.experiment_id = ?", first.id) == 80
    # Each run used the system and the user prompt; each call sent both.
    assert _count(db_path, "SELECT count(*) FROM run_prompt_versions l JOIN runs r "
                  "ON r.id = l.run_id WHERE r.experiment_id = ?", first.id) == 80
    assert _count(db_path, "SELECT count(*) FROM call_prompt_versions l JOIN calls c "
                  "ON c.id = l.call_id JOIN runs r ON r.id = c.run_id "
                  "WHERE r.experiment_id = ?", first.id) == 160
    assert _count(db_path, "SELECT count(*) FROM calls WHERE run_id IS NULL") == 0
    # The edited template is version 2 of the user prompt, linked to the edited runs.
    assert _count(db_path, "SELECT count(*) FROM run_prompt_versions l JOIN runs r "
                  "ON r.id = l.run_id JOIN prompt_versions v ON v.id = l.prompt_version_id "
                  "WHERE r.experiment_id = ? AND v.version = 2", edited.id) == 4
    remote = _versions(db_path)
    assert [(name, version) for name, version, _, _ in remote] == [
        ("executors_support.terse", 1), ("executors_support.ask", 1),
        ("executors_support.ask", 2),
    ]

    monkeypatch.setenv("PROMPTLOG_DB", str(tmp_path / "threads.db"))
    _forty(None, fake_openai.bot_kwargs)
    assert _versions(tmp_path / "threads.db") == remote

    assert _opened(report) == []


def test_no_worker_ever_opens_the_log_and_the_watch_would_see_it(
    cluster, pool, db_path, tmp_path, report
):
    exp = Experiment("watched", num_executions=8, executor=promptlog.executors.dask(cluster),
                     quiet=True)
    exp.run(support.seeded, "What is a log?")
    assert all(run.status == "succeeded" for run in exp.runs)
    held = cluster.run(support.open_files)
    assert held and all(files == [] for files in held.values())
    assert _opened(report) == []
    # The watch works: a worker that does open a log is seen.
    control = tmp_path / "control.db"
    cluster.run(support.touch_log, str(control))
    pool.submit(support.touch_log, str(control)).result()
    seen = [line for line in support.opened(report) if str(control) in line]
    assert len({line.split()[0] for line in seen}) == 3  # two Dask workers, one pool process


def test_logging_outside_the_run_on_a_worker_is_refused_not_written_elsewhere(
    executor, db_path, report
):
    exp = Experiment("threads-of-its-own", num_executions=2, executor=executor, quiet=True)
    for inside, outside in exp.run(support.threads_of_its_own, "What is a thread?"):
        assert not inside.startswith("ExecutorError")
        assert outside.startswith("ExecutorError") and "alone writes the log" in outside
        assert "with_current_run" in outside
    assert _count(db_path, "SELECT count(*) FROM calls WHERE run_id IS NOT NULL") == 2
    assert _count(db_path, "SELECT count(*) FROM calls WHERE run_id IS NULL") == 0
    assert _opened(report) == []


def test_evaluate_on_other_processes_gives_what_threads_give(executor, db_path):
    def evaluated(**options: Any) -> list[tuple[Any, ...]]:
        exp = promptlog.evaluate(
            support.seeded, DATASET, metrics=[support.correct], repeats=2, quiet=True,
            name="seeded", **options,
        )
        assert len(exp.runs) == 40
        promptlog.flush()
        return query(
            db_path,
            "SELECT r.execution_index, r.example_id, r.repeat_index, r.result, m.value "
            "FROM runs r JOIN metrics m ON m.run_id = r.id WHERE r.experiment_id = ? "
            "ORDER BY r.execution_index",
            (exp.id,),
        )

    remote = evaluated(executor=executor)
    threads = evaluated()
    assert remote == threads
    assert len({row[1] for row in remote}) == 20 and {row[2] for row in remote} == {0, 1}
    # Repeats are distinct samples: the seed is the repeat.
    assert remote[0][3] != remote[1][3]


def test_a_session_maps_its_batches_onto_the_executor(executor, db_path):
    exp = Experiment("search", kind="optimisation", executor=executor, quiet=True)
    with exp.session():
        first = exp.map(support.square, [1, 2, 3])
        second = exp.map(support.square, [4, 5])
        exp.outcome = {"best_score": max(run.result for run in first + second)}
    assert [run.result for run in first + second] == [1, 4, 9, 16, 25]
    assert [run.execution_index for run in first + second] == [0, 1, 2, 3, 4]
    assert _count(db_path, "SELECT num_executions FROM experiments WHERE id = ?", exp.id) == 5
    assert _count(db_path, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                  "WHERE r.experiment_id = ? AND m.name = 'squared'", exp.id) == 5


def test_a_session_sends_one_batch_to_an_executor_and_keeps_the_next_on_threads(
    executor, db_path
):
    import os

    exp = Experiment("mixed", kind="optimisation", quiet=True)
    with exp.session():
        away = exp.map(support.pid, [0, 1, 2], executor=executor)
        here = exp.map(support.pid, [3])
    assert [run.status for run in away + here] == ["succeeded"] * 4
    assert os.getpid() not in {run.result for run in away}
    assert [run.result for run in here] == [os.getpid()]
    assert _count(db_path, "SELECT count(*) FROM runs WHERE experiment_id = ? "
                  "AND status = 'succeeded'", exp.id) == 4


def test_ctrl_c_cancels_what_was_sent_and_marks_what_ran_interrupted(pool, db_path):
    timer = threading.Timer(1.0, _thread.interrupt_main)
    exp = Experiment("stopped", num_executions=40, max_workers=2, executor=pool, quiet=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        exp.run(support.slow, 0.3)
    timer.cancel()
    time.sleep(0.8)  # what was running on the workers ends; nothing more is written
    assert query(db_path, "SELECT status FROM experiments") == [("interrupted",)]
    statuses = [status for (status,) in query(db_path, "SELECT status FROM runs")]
    assert "running" not in statuses and statuses.count("interrupted") >= 1
    assert len(statuses) < 40  # most were never sent
    assert len(statuses) == len(exp.runs)


def test_dask_default_executor_keeps_identical_repeats_distinct(cluster, db_path):
    exp = Experiment("tokens", num_executions=12, executor=cluster.get_executor(), quiet=True)
    results = exp.run(support.token)
    assert len(set(results)) == 12
    assert _count(db_path, "SELECT count(DISTINCT result) FROM runs WHERE experiment_id = ?",
                  exp.id) == 12


def test_the_cache_answers_on_the_workers_from_the_coordinators_log(
    cluster, db_path, fake_openai
):
    executor = promptlog.executors.dask(cluster)
    questions = [{"question": f"Question {n}"} for n in range(6)]
    for _ in range(2):
        exp = Experiment("cached", inputs=questions, cache=True, executor=executor, quiet=True)
        exp.run(support.served_once, fake=fake_openai.bot_kwargs)
    assert fake_openai.request_count == 6  # the second pass asked nothing
    assert _count(db_path, "SELECT count(*) FROM calls WHERE cached = 1") == 6
    assert _count(db_path, "SELECT sum(hits) FROM cache") == 6


def test_a_worker_killed_mid_experiment_leaves_every_execution_accounted_for(
    cluster, db_path, tmp_path
):
    flag = tmp_path / "kill-once"
    flag.touch()
    exp = Experiment("killed", num_executions=16, quiet=True,
                     executor=promptlog.executors.dask(cluster))
    exp.run(support.die_once, 3, str(flag))
    assert (tmp_path / "kill-once.claimed").exists()  # the worker did die
    runs = query(db_path, "SELECT execution_index, status, error_message FROM runs "
                 "WHERE experiment_id = ? ORDER BY execution_index", (exp.id,))
    assert [index for index, _, _ in runs] == list(range(16))
    for _, status, message in runs:
        assert status == "succeeded" or "execution was lost" in message
    assert dict((i, s) for i, s, _ in runs)[3] == "succeeded"  # rescheduled, then ran

    # A task that kills every worker it runs on is given up, with the reason.
    again = Experiment("killer", num_executions=6, quiet=True,
                       executor=promptlog.executors.dask(cluster))
    again.run(support.die_always, 2)
    runs = query(db_path, "SELECT execution_index, status, error_type, error_message "
                 "FROM runs WHERE experiment_id = ? ORDER BY execution_index", (again.id,))
    assert [index for index, *_ in runs] == list(range(6))
    index, status, kind, message = runs[2]
    assert (status, kind) == ("failed", "ExecutorError") and "KilledWorker" in message
    assert "resume=True" in message
    assert all(status == "succeeded" or "execution was lost" in message
               for _, status, _, message in runs)


def test_a_broken_process_pool_fails_the_rest_with_the_reason_and_resume_reruns_them(
    db_path, tmp_path
):
    flag = tmp_path / "kill-once"
    flag.touch()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as doomed:
        exp = Experiment("broken", num_executions=10, executor=doomed, quiet=True,
                         max_workers=2)
        exp.run(support.die_once, 3, str(flag))
    statuses = {run.execution_index: run.status for run in exp.runs}
    assert sorted(statuses) == list(range(10))
    assert statuses[3] == "failed"
    lost = [run for run in exp.runs if run.status == "failed"]
    assert all("BrokenProcessPool" in str(run.error) for run in lost)

    with ProcessPoolExecutor(2, mp_context=context) as fresh:
        resumed = Experiment("broken", num_executions=10, executor=fresh, quiet=True,
                             resume=True)
        resumed.run(support.die_once, 3, str(flag))
    assert resumed.id == exp.id
    assert sorted(run.execution_index for run in resumed.runs if run.status == "succeeded") == (
        list(range(10))
    )
    assert _count(db_path, "SELECT count(*) FROM runs WHERE experiment_id = ? AND "
                  "status = 'succeeded'", exp.id) == 10


def test_a_with_block_on_another_process_is_a_clear_error(executor, db_path):
    with pytest.raises(ExecutorError, match=r"exp\.run\(fn\)"):
        with Experiment("block", num_executions=3, executor=executor, quiet=True):
            pass
    assert not db_path.exists() or _count(db_path, "SELECT count(*) FROM experiments") == 0


def test_what_cannot_be_pickled_is_a_clear_error_naming_it(executor, db_path):
    lock = threading.Lock()
    with pytest.raises(ExecutorError, match=r"variable 'lock'.*lock"):
        Experiment("locked", num_executions=3, executor=executor, quiet=True).run(
            lambda: lock.locked()
        )
    with pytest.raises(ExecutorError, match=r"argument 1 \(RLock\)"):
        Experiment("locked", num_executions=3, executor=executor, quiet=True).run(
            support.served_once, "q", threading.RLock()
        )
    assert not db_path.exists() or _count(db_path, "SELECT count(*) FROM experiments") == 0


def test_an_error_that_cannot_travel_back_comes_back_as_text(pool, db_path):
    exp = Experiment("odd", num_executions=2, executor=pool, quiet=True)
    with pytest.raises(promptlog.ExperimentFailedError) as raised:
        exp.run(support.fails_oddly)
    error = raised.value.failures[0]
    assert isinstance(error, RemoteError) and error.type_name == "Unpicklable"
    assert "fails_oddly" in error.traceback
    rows = query(db_path, "SELECT error_type, error_message, traceback FROM runs")
    assert [row[:2] for row in rows] == [("Unpicklable", "it went wrong")] * 2
    assert all("fails_oddly" in row[2] for row in rows)


def test_a_thread_pool_of_ones_own_runs_blocks_and_functions_in_this_process(db_path):
    with ThreadPoolExecutor(3, thread_name_prefix="mine") as threads:
        exp = Experiment("own-threads", num_executions=6, executor=threads, quiet=True)
        names = exp.run(lambda: threading.current_thread().name)
        with Experiment("own-block", num_executions=4, executor=threads, quiet=True) as block:
            support.words("three little words")
    assert all(name.startswith("mine") for name in names)
    assert [run.status for run in exp.runs + block.runs] == ["succeeded"] * 10
    assert _count(db_path, "SELECT count(*) FROM metrics WHERE name = 'words'") == 4


def test_an_executor_that_is_not_one_is_refused():
    with pytest.raises(ExecutorError, match="concurrent.futures.Executor"):
        Experiment("x", executor="dask")  # type: ignore[arg-type]


# --- optimisers ---------------------------------------------------------------------


@pytest.fixture
def stand_in(monkeypatch) -> Iterator[dict[str, str]]:
    """The "follows examples" stand-in behind the fake server; the environment the
    program needs to reach it (set here, and by the program on the workers)."""
    from optimizer_support import EVERYTHING

    from promptlog.testing import FakeOpenAIServer, FollowsExamples

    with FakeOpenAIServer(responder=FollowsExamples(EVERYTHING), max_seconds=120) as server:
        env = {"PROMPTLOG_MODEL": server.model, "OPENAI_API_BASE": server.base_url,
               "OPENAI_API_KEY": "sk-fake"}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


def _few_shot(env: dict[str, str], name: str, executor: Any) -> Any:
    from functools import partial

    from optimizer_support import DEV, TRAIN, exact

    from promptlog import optimizers

    return optimizers.LabeledFewShot(k=len(TRAIN), metric=exact).compile(
        partial(support.served_qa, env), trainset=TRAIN, valset=DEV, name=name,
        executor=executor, cache=False, quiet=True,
    )  # fmt: skip


def _seen(result: Any) -> tuple[Any, ...]:
    frame = result.candidates
    return (
        list(frame["label"]), list(frame["score"]), list(frame["demos"]),
        result.best, result.best_score, result.baseline_score,
        result.scores.drop(columns="candidate").to_dict("records"),
    )  # fmt: skip


def test_compile_on_other_processes_gives_what_threads_give(
    executor, stand_in, db_path, report
):
    threads = _few_shot(stand_in, "few-shot on threads", None)
    remote = _few_shot(stand_in, "few-shot remote", executor)

    assert _seen(remote) == _seen(threads)
    assert (remote.baseline_score, remote.best_score) == (0.0, 1.0)
    assert remote.best_candidate.index == 1 and remote.significant
    for result in (threads, remote):
        ids = list(result.candidates["experiment_id"])
        assert promptlog.open().children(result.experiment_id) == ids
        for child in ids:  # 8 valset examples each: one run, one call, one score
            for table in ("runs r", "calls c JOIN runs r ON r.id = c.run_id",
                          "metrics m JOIN runs r ON r.id = m.run_id"):
                assert _count(db_path, f"SELECT count(*) FROM {table} WHERE "
                              "r.experiment_id = ? AND r.status = 'succeeded'", child) == 8
        # The compilation's own runs: none, a labelled few-shot calls nothing itself.
        assert _count(db_path, "SELECT count(*) FROM runs WHERE experiment_id = ?",
                      result.experiment_id) == 0
    assert _count(db_path, "SELECT count(*) FROM calls WHERE run_id IS NULL") == 0
    assert _opened(report) == []


def _line_search(server: Any, executor: Any, name: str) -> Any:
    from promptlog import SimpleBot
    from promptlog.testing import NumericProposer

    server.responder = NumericProposer(seed=1)  # afresh: the same replies to the same asks
    return promptlog.optimize(
        support.line_loss, ["[10, 10]", "[20, 5]", "[12, 19]", "[18, 17]"],
        task="Find the line [w, b] that fits best. x is a list of two integers.",
        bot=SimpleBot("", **server.bot_kwargs, max_tokens=64), max_steps=4, minimize=True,
        executor=executor, name=name, quiet=True,
    )  # fmt: skip


def test_optimize_evaluates_on_other_processes_and_proposes_here(
    executor, fake_openai, db_path, report, monkeypatch
):
    from promptlog import SimpleBot

    asked_here: list[str] = []  # the bots called in this process (a worker's are not seen)
    call = SimpleBot.__call__

    def seen(bot: Any, *args: Any, **kwargs: Any) -> Any:
        asked_here.append(bot.name)
        return call(bot, *args, **kwargs)

    monkeypatch.setattr(SimpleBot, "__call__", seen)
    threads = _line_search(fake_openai, None, "line on threads")
    remote = _line_search(fake_openai, executor, "line remote")
    assert asked_here == ["proposer"] * 8  # four steps of each search

    columns = ["step", "candidate", "x", "score", "feedback", "error"]
    assert remote.history[columns].to_dict("records") == threads.history[columns].to_dict(
        "records"
    )
    assert (remote.best_x, remote.best_score, remote.steps) == (
        threads.best_x, threads.best_score, 4,
    )  # fmt: skip
    assert len(remote.history) == 8  # every proposal was new
    for result in (threads, remote):
        exp = result.experiment.id
        # 4 starts, then one proposal (one call, here) and one evaluation per step.
        assert _count(db_path, "SELECT count(*) FROM runs WHERE experiment_id = ? "
                      "AND status = 'succeeded'", exp) == 4 + 2 * 4
        assert _count(db_path, "SELECT count(*) FROM metrics m JOIN runs r ON "
                      "r.id = m.run_id WHERE r.experiment_id = ? AND m.name = 'score'", exp) == 8
        assert _count(db_path, "SELECT count(*) FROM calls c JOIN runs r ON "
                      "r.id = c.run_id WHERE r.experiment_id = ?", exp) == 4
    assert _opened(report) == []
