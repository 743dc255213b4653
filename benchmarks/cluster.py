"""12. Beyond one machine: an experiment on a Dask cluster, one log.

64 executions, each one call to the fake OpenAI-compatible server answering after
200 ms: on a Dask ``LocalCluster`` of 2 worker processes × 8 threads (every run's
records shipped back and written by this process) and on promptlog's thread pool
of 16, alternating, in one process. Ideal wall time for both: 64 / 16 × 0.2 s =
0.8 s.

And the coordinator's cost of writing a shipped run (unpickling its outcome,
registering its prompt versions, writing its records in one transaction) against
the cost of logging the same run locally (start, two prompt renders, one call, one
metric, the end), both to the commit.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from concurrent.futures import Future
from contextvars import copy_context
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, ratios, worker

EXECUTIONS = 64
WORKERS = 16
LATENCY = 0.2
WRITES = 2_000


def ask(api_base: str, model: str) -> str:
    """One execution: one call to the fake server (run on a worker, imported by name)."""
    from promptlog import SimpleBot

    bot = SimpleBot("You answer.", model_name=model, api_base=api_base, api_key="sk-fake")
    return bot("question").content


def pair(rounds: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    import promptlog.executors
    from promptlog import Experiment
    from promptlog.testing import FakeOpenAIServer

    with FakeOpenAIServer(latency=LATENCY, max_requests=100_000, max_seconds=3600) as server, \
            LocalCluster(n_workers=2, threads_per_worker=WORKERS // 2, processes=True,
                         dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        executor = promptlog.executors.dask(client)

        def on_dask() -> None:
            Experiment("on-dask", num_executions=EXECUTIONS, executor=executor,
                       quiet=True).run(ask, server.base_url, server.model)

        def on_threads() -> None:
            Experiment("on-threads", num_executions=EXECUTIONS, max_workers=WORKERS,
                       quiet=True).run(ask, server.base_url, server.model)

        on_threads()  # warm up: imports, connections, the workers' litellm
        on_dask()
        times: dict[str, list[float]] = {"dask": [], "threads": []}
        for _ in range(rounds):
            for name, fn in (("threads", on_threads), ("dask", on_dask)):
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
    return times


def _logged_run() -> None:
    """What one run logs: two prompt renders, one call with their versions, a metric."""
    from promptlog import current_run, metric, prompt, store

    @prompt("system")
    def system():
        """You answer."""

    @prompt("user")
    def user(question):
        """Answer: {{ question }}"""

    @metric
    def length(text: str) -> int:
        return len(text)

    def body() -> None:
        run = current_run()
        assert run is not None
        messages = [system(), user("question")]
        for message in messages:
            assert message.prompt_version is not None
            run.note_prompt_version(message.prompt_version.id, message.prompt_version.name)
        store.log_call(
            run.db, id=store.new_id(), run_id=run.id, bot_name="bot", bot_class="SimpleBot",
            model="openai/gpt-4o-mini", parameters={"temperature": 0.0},
            messages=[{"role": m.role, "content": m.content,
                       "prompt_version_id": m.prompt_version.id if m.prompt_version else None}
                      for m in messages],
            response_text="An answer of a few words.", response_parsed=None,
            input_tokens=12, output_tokens=6, cost=0.00001, latency_s=0.2,
            status="succeeded", error=None, attempt=1, created_at=store.now(),
        )
        length("An answer of a few words.")
        run.set_result("An answer of a few words.")

    _logged_run.body = body  # type: ignore[attr-defined]


def write_cost(rounds: int) -> dict[str, list[float]]:
    """Per run, in seconds: logging a run locally (to the commit) and writing a run
    shipped back from a worker (to the commit), alternating rounds."""
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import Experiment, executors, store

    _logged_run()
    body = _logged_run.body  # type: ignore[attr-defined]
    packed_body = executors.pack(executors.Call(body), "the body")
    job = executors.pack(executors.Job(packed_body, None, None, {}), "the job")
    costs: dict[str, list[float]] = {"local": [], "shipped": []}
    for round_ in range(rounds + 1):  # the first round warms up
        local = Experiment(f"local-{round_}", num_executions=WRITES, quiet=True)
        local._open()
        started = time.perf_counter()
        for index in range(WRITES):
            copy_context().run(local._execute, index, body)
        store.flush()
        local_cost = (time.perf_counter() - started) / WRITES
        local._close()

        remote = Experiment(f"shipped-{round_}", num_executions=WRITES, quiet=True)
        remote._open()
        assert remote.id is not None
        runs, outcomes = [], []
        # Outcomes as a worker sends them (made here in a process of its own: the
        # coordinator token differs, so the body's prompt versions are provisional).
        token = executors.job_token(remote.id)
        for index in range(WRITES):
            run = remote._new_run(index)
            remote._unwritten.add(run.id)
            task = executors.Task(token, "elsewhere", remote.id, run.id, index, None, None, None)
            outcome: Future[bytes] = Future()
            outcome.set_result(_as_worker(task, job))
            runs.append(run)
            outcomes.append(outcome)
        started = time.perf_counter()
        for run, outcome in zip(runs, outcomes, strict=True):
            remote._receive(run, outcome, None)
        store.flush()
        shipped_cost = (time.perf_counter() - started) / WRITES
        remote._close()
        if round_:
            costs["local"].append(local_cost)
            costs["shipped"].append(shipped_cost)
    return costs


def _as_worker(task: Any, job: bytes) -> bytes:
    """``executors.execute`` as on a worker, but in this process: the log stays open
    here, and the recorder takes the records all the same."""
    from promptlog import executors, store

    forbidden = store.connection._forbidden
    try:
        return executors.execute(task, job)
    finally:
        store.connection._forbidden = forbidden


def bench(reps: int) -> Section:
    section = Section(
        "12. Beyond one machine",
        f"{EXECUTIONS} executions, each one call to the fake server answering in "
        f"{LATENCY * 1000:.0f} ms: on a Dask `LocalCluster` of 2 worker processes × "
        f"{WORKERS // 2} threads (records shipped back, written by this process) and on "
        f"promptlog's thread pool of {WORKERS}, alternating, {reps} rounds (ideal: "
        f"{EXECUTIONS / WORKERS * LATENCY:.1f} s). Then the coordinator's cost per run of "
        f"writing {WRITES:,} shipped runs against logging {WRITES:,} runs locally (two "
        f"prompt versions, one call, one metric each, to the commit).",
    )
    print("  cluster", flush=True)
    times = worker("cluster.pair", reps)
    section.rows.append(Row("thread pool of 16, every run logged", Figure(times["threads"]),
                            "s wall"))
    section.rows.append(Row("Dask LocalCluster 2 × 8, runs shipped back", Figure(times["dask"]),
                            "s wall", ratios(times["dask"], times["threads"]),
                            "× the thread pool", "≤ 1.2×"))
    section.rows[-1].met = section.rows[-1].ratio.median <= 1.2  # type: ignore[union-attr]
    print("  shipped-run writes", flush=True)
    costs = worker("cluster.write_cost", reps)
    local_us = [c * 1e6 for c in costs["local"]]
    shipped_us = [c * 1e6 for c in costs["shipped"]]
    section.rows.append(Row("logging a run locally", Figure(local_us), "µs/run"))
    section.rows.append(Row("writing a shipped run (coordinator)", Figure(shipped_us), "µs/run",
                            ratios(shipped_us, local_us), "× a local run", "≤ 2×"))
    section.rows[-1].met = section.rows[-1].ratio.median <= 2  # type: ignore[union-attr]
    return section
