"""2. What logging adds to each LLM call, against llamabot.

Calls on litellm's ``mock_response`` (no network, no model): a bare
``litellm.completion`` and the same call through a logging bot, interleaved one
for one in the same process. The difference of their medians (and of their
99th percentiles) is what logging adds. llamabot is measured the same way in its
own virtual environment, against the litellm it installs. Then 32 threads make
50 calls each through one log: errors, and rows lost.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, peer_python, peer_version, quantile, run_json, worker

MODEL = "gpt-4o-mini"
SYSTEM = "You are terse."


def promptlog_calls(calls: int, threads: int, per_thread: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import SimpleBot, store
    from promptlog.bots import _get_litellm

    litellm = _get_litellm()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]
    bot = SimpleBot(SYSTEM, model_name=MODEL, mock_response="ok")

    def bare() -> None:
        # The arguments the bot passes, so that only the logging differs.
        litellm.completion(model=MODEL, messages=messages, temperature=0.0, num_retries=0,
                           max_retries=0, mock_response="ok")

    def logged() -> None:
        bot("hi")

    for _ in range(20):
        bare()
        logged()
    samples: dict[str, list[float]] = {"bare": [], "logged": []}
    for _ in range(calls):
        for name, fn in (("bare", bare), ("logged", logged)):
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    store.flush()

    before = _rows(path)
    errors: list[str] = []
    start = threading.Barrier(threads)

    def work() -> None:
        own = SimpleBot(SYSTEM, model_name=MODEL, mock_response="ok")
        start.wait()
        for _ in range(per_thread):
            try:
                own("hi")
            except Exception as e:  # noqa: BLE001 - counted, whatever it is
                errors.append(f"{type(e).__name__}: {e}"[:200])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    store.flush()
    seconds = time.perf_counter() - started
    rows = _rows(path) - before
    return {
        **samples,
        "threads": {
            "calls": threads * per_thread,
            "errors": len(errors),
            "error_kinds": sorted({e.split(":")[0] for e in errors}),
            "first_error": errors[0] if errors else None,
            "rows": rows,
            "lost": threads * per_thread - rows,
            "seconds": seconds,
        },
    }


def _rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()


def llamabot_calls(calls: int, threads: int, per_thread: int) -> dict[str, Any]:
    script = Path(__file__).parent / "peers" / "llamabot_calls.py"
    return run_json([str(peer_python("llamabot")), str(script), str(calls), str(threads),
                     str(per_thread)], timeout=3600)


def _added(result: dict[str, Any], q: float | None) -> float:
    """Added latency in ms: the difference of the medians (q None) or of a quantile."""
    if q is None:
        return (statistics.median(result["logged"]) - statistics.median(result["bare"])) * 1e3
    return (quantile(result["logged"], q) - quantile(result["bare"], q)) * 1e3


def _slowdown(results: list[dict[str, Any]]) -> Figure:
    return Figure([statistics.median(r["logged"]) / statistics.median(r["bare"])
                   for r in results])


def bench(reps: int, calls: int, threads: int, per_thread: int) -> Section:
    section = Section(
        "2. Per-call logging overhead",
        f"{calls:,} bot calls on litellm's `mock_response`, interleaved one for one with a "
        f"bare `litellm.completion` with the same arguments; added latency = logged − bare "
        f"(median, and 99th percentile), {reps} repetitions, a fresh process each. Then "
        f"{threads} threads × {per_thread} calls into one log (one run).",
    )
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    peer_error = None
    for rep in range(reps):
        print(f"  overhead repetition {rep + 1}/{reps}", flush=True)
        last = rep == reps - 1  # the thread storm once, in the last repetition
        ours.append(worker("overhead.promptlog_calls", calls, threads if last else 1,
                           per_thread if last else 1))
        if peer_error is None:
            try:
                # llamabot's calls take ~50 ms: fewer of them give as steady a median.
                theirs.append(llamabot_calls(max(50, calls // 10), threads if last else 1,
                                             per_thread if last else 1))
            except Exception as e:  # noqa: BLE001 - the table says why the peer is missing
                peer_error = str(e).splitlines()[0]
    ours_median = Figure([_added(r, None) for r in ours])
    ours_p99 = Figure([_added(r, 0.99) for r in ours])
    bare = Figure([statistics.median(r["bare"]) * 1e3 for r in ours])
    section.rows.append(Row("bare `litellm.completion` (mock), our litellm", bare, "ms"))
    section.rows.append(Row("promptlog `SimpleBot` added latency, median", ours_median, "ms",
                            goal="≤ 0.5 ms", met=ours_median.median <= 0.5))
    section.rows.append(Row("promptlog `SimpleBot` added latency, p99", ours_p99, "ms"))
    section.rows.append(Row("promptlog `SimpleBot` call ÷ bare call (medians)", None, "",
                            _slowdown(ours), "×"))
    if theirs:
        theirs_median = Figure([_added(r, None) for r in theirs])
        theirs_p99 = Figure([_added(r, 0.99) for r in theirs])
        section.rows.append(Row(
            "bare `litellm.completion` (mock), llamabot's litellm",
            Figure([statistics.median(r["bare"]) * 1e3 for r in theirs]), "ms"))
        section.rows.append(Row(f"llamabot {peer_version('llamabot')} `SimpleBot` added "
                                f"latency, median", theirs_median, "ms"))
        section.rows.append(Row("llamabot `SimpleBot` added latency, p99", theirs_p99, "ms"))
        section.rows.append(Row("llamabot `SimpleBot` call ÷ bare call (medians)", None, "",
                                _slowdown(theirs), "×"))
        paired = min(len(ours), len(theirs))
        ratio = Figure([t / o for t, o in zip(theirs_median.values[:paired],
                                              ours_median.values[:paired], strict=True)])
        section.rows.append(Row("llamabot's added latency ÷ promptlog's (medians)", None, "",
                                ratio, "×", "≥ 50×", met=ratio.median >= 50))
    else:
        section.notes.append(f"llamabot could not be measured: {peer_error}")
    for name, results in (("promptlog", ours), ("llamabot", theirs)):
        if not results:
            continue
        storm = results[-1]["threads"]
        note = f"errors: {', '.join(storm['error_kinds'])}" if storm["errors"] else ""
        if storm["first_error"]:
            note += f" (first: `{storm['first_error'][:120]}`)"
        section.rows.append(Row(
            f"{name}: {storm['calls']:,} calls from {threads} threads — errors / rows lost",
            None, "", goal="0 errors, 0 lost" if name == "promptlog" else "",
            met=(storm["errors"] == 0 and storm["lost"] == 0) if name == "promptlog" else None,
            note=f"{storm['errors']} errors, {storm['lost']} lost, {storm['seconds']:.1f} s"
                 + (f"; {note}" if note else ""),
        ))
    return section
