"""Run inside llamabot's own virtual environment: per-call latency of a bare litellm
call and of llamabot's SimpleBot (which logs each call to its message_log.db), then
32 threads x 50 calls. Prints one JSON object. Standard library and llamabot only.

    python llamabot_calls.py CALLS THREADS CALLS_PER_THREAD
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

# llamabot logs to <project root>/.llamabot/message_log.db; pyprojroot finds the
# root by a ".here" file, so give it a fresh project of its own.
project = Path(tempfile.mkdtemp(prefix="llamabot-bench-"))
(project / ".here").touch()
os.chdir(project)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from llamabot import SimpleBot  # noqa: E402
from loguru import logger  # noqa: E402

logger.remove()  # llamabot logs every call at DEBUG through loguru: keep the terminal quiet
litellm.suppress_debug_info = True

MODEL = "gpt-4o-mini"
SYSTEM = "You are terse."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]


def bare() -> None:
    litellm.completion(model=MODEL, messages=MESSAGES, temperature=0.0, mock_response="ok")


def main() -> None:
    calls, threads, per_thread = (int(a) for a in sys.argv[1:4])
    bot = SimpleBot(SYSTEM, model_name=MODEL, mock_response="ok", stream_target="none")

    def logged() -> None:
        bot("hi")

    for _ in range(20):  # warm up both paths
        bare()
        logged()
    samples: dict[str, list[float]] = {"bare": [], "logged": []}
    for _ in range(calls):  # interleaved, so that noise hits both alike
        for name, fn in (("bare", bare), ("logged", logged)):
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)

    db = project / ".llamabot" / "message_log.db"
    before = _rows(db)
    errors: list[str] = []
    start = threading.Barrier(threads)

    def work() -> None:
        own = SimpleBot(SYSTEM, model_name=MODEL, mock_response="ok", stream_target="none")
        start.wait()
        for _ in range(per_thread):
            try:
                own("hi")
            except Exception as e:  # noqa: BLE001 - counted, whatever it is
                errors.append(f"{type(e).__name__}: {e}"[:200])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    logged_rows = _rows(db) - before
    print(json.dumps({
        "bare": samples["bare"],
        "logged": samples["logged"],
        "threads": {
            "calls": threads * per_thread,
            "errors": len(errors),
            "error_kinds": sorted({e.split(":")[0] for e in errors}),
            "first_error": errors[0] if errors else None,
            "rows": logged_rows,
            "lost": threads * per_thread - logged_rows,
            "seconds": seconds,
        },
    }))


def _rows(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=60)
    try:
        return conn.execute("SELECT COUNT(*) FROM message_log").fetchone()[0]
    finally:
        conn.close()


if __name__ == "__main__":
    main()
