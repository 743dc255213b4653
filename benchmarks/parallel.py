"""3. Parallel efficiency: an experiment against a slow model.

64 executions, 16 workers, each one call to the fake OpenAI-compatible server
answering after 200 ms (litellm's real HTTP path): promptlog's experiment
against a plain thread pool calling litellm with no logging, one after the
other in the same process. Ideal wall time: 64 / 16 × 0.2 s = 0.8 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, ratios, worker

EXECUTIONS = 64
WORKERS = 16
LATENCY = 0.2


def pair(rounds: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import Experiment, SimpleBot, experiment
    from promptlog.bots import _get_litellm
    from promptlog.testing import FakeOpenAIServer

    litellm = _get_litellm()
    with FakeOpenAIServer(latency=LATENCY, max_requests=100_000, max_seconds=3600) as server:
        bot = SimpleBot("You answer.", model_name=server.model, api_base=server.base_url,
                        api_key="sk-fake")
        messages = [{"role": "system", "content": "You answer."},
                    {"role": "user", "content": "question"}]

        @experiment
        def ask() -> str:
            return bot("question").content

        def plain(_: int) -> str:
            response = litellm.completion(model=server.model, api_base=server.base_url,
                                          api_key="sk-fake", messages=messages,
                                          temperature=0.0)
            return response.choices[0].message.content

        def with_promptlog() -> None:
            Experiment("parallel", num_executions=EXECUTIONS, max_workers=WORKERS,
                       quiet=True).run(ask)

        def with_a_thread_pool() -> None:
            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(plain, range(EXECUTIONS)))

        with_a_thread_pool()  # warm up: connections, imports
        with_promptlog()
        times: dict[str, list[float]] = {"promptlog": [], "pool": []}
        for _ in range(rounds):
            for name, fn in (("pool", with_a_thread_pool), ("promptlog", with_promptlog)):
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
    return times


def bench(reps: int) -> Section:
    section = Section(
        "3. Parallel efficiency",
        f"{EXECUTIONS} executions on {WORKERS} workers, each one call to the fake server "
        f"answering in {LATENCY * 1000:.0f} ms (ideal: {EXECUTIONS / WORKERS * LATENCY:.1f} s); "
        f"promptlog's experiment and a plain `ThreadPoolExecutor` calling litellm with no "
        f"logging, alternating, {reps} rounds.",
    )
    print("  parallel", flush=True)
    times = worker("parallel.pair", reps)
    section.rows.append(Row("plain thread pool + litellm, no logging", Figure(times["pool"]),
                            "s wall"))
    section.rows.append(Row("promptlog `Experiment.run`, every call and run logged",
                            Figure(times["promptlog"]), "s wall",
                            ratios(times["promptlog"], times["pool"]), "× the plain pool",
                            "≤ 1.1×"))
    section.rows[-1].met = section.rows[-1].ratio.median <= 1.1
    return section
