"""6. Memory: the growth of a process's peak RSS while it logs.

Each case in a fresh process: the peak resident memory (VmHWM) is reset once
promptlog, the writer and a first small experiment are warm, then the case runs,
then the peak is read again.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, peak_rss_mb, reset_peak_rss, rss_mb, worker

LIMIT_MB = 100


def _warm() -> Any:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    import promptlog
    from promptlog import Experiment, metric

    @metric
    def accuracy(value: float) -> float:
        return value

    def execution() -> int:
        accuracy(0.5)
        return 1

    Experiment("warm-up", num_executions=100, quiet=True).run(execution)
    return promptlog, execution


def log_runs(total: int, per_experiment: int) -> dict[str, Any]:
    """Log ``total`` runs in experiments of ``per_experiment`` runs each."""
    promptlog, execution = _warm()
    base = rss_mb()
    reset_peak_rss()
    started = time.perf_counter()
    for index in range(total // per_experiment):
        promptlog.Experiment(f"memory-{index}", num_executions=per_experiment,
                             quiet=True).run(execution)
    return {"growth_mb": peak_rss_mb() - base, "seconds": time.perf_counter() - started}


def flood(records: int, threads: int) -> dict[str, Any]:
    """Producers that outrun the writer: ``records`` call rows of ~1 KB, queued as
    fast as ``threads`` threads can. An unbounded queue would hold most of them."""
    promptlog, _ = _warm()
    from promptlog import store

    writer = store.writer()
    text = "x" * 800
    base = rss_mb()
    reset_peak_rss()
    started = time.perf_counter()

    def produce(offset: int) -> None:
        for n in range(offset, records, threads):
            store.log_call(
                writer, id=f"{n:026d}", run_id=None, bot_name="flood", bot_class="SimpleBot",
                model="m", parameters={"temperature": 0.0},
                messages=[{"role": "user", "content": text}], response_text=text[:100],
                response_parsed=None, input_tokens=None, output_tokens=None, cost=None,
                latency_s=None, status="succeeded", error=None, attempt=1,
                created_at=store.now(),
            )

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(threads)]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join()
    queued = time.perf_counter() - started
    store.flush()
    return {"growth_mb": peak_rss_mb() - base, "seconds": time.perf_counter() - started,
            "queued_s": queued}


def bench(runs: int) -> Section:
    section = Section(
        "6. Memory",
        f"Growth of the process's peak RSS (VmHWM, reset once warm) while logging; the "
        f"writer queue holds at most {_queue_limit():,} records (and {_queue_mb()} MB of text) "
        f"and then makes producers wait.",
    )
    cases = [
        (f"{runs:,} runs in {runs // 1000} experiments of 1,000", "memory.log_runs",
         (runs, 1000)),
        (f"{runs:,} runs in one experiment", "memory.log_runs", (runs, runs)),
        ("1,000,000 call rows of ~1 KB queued by 4 threads (faster than the disk)",
         "memory.flood", (1_000_000, 4)),
    ]
    for label, function, args in cases:
        print(f"  memory: {label}", flush=True)
        result = worker(function, *args)
        section.rows.append(Row(label, Figure([result["growth_mb"]]), "MB peak RSS growth",
                                goal=f"< {LIMIT_MB} MB", met=result["growth_mb"] < LIMIT_MB,
                                note=f"{result['seconds']:.1f} s"))
    return section


def _queue_limit() -> int:
    from promptlog import store

    return store.QUEUE_LIMIT


def _queue_mb() -> int:
    from promptlog import store

    return store.QUEUE_BYTES // 2**20
