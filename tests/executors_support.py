"""Programs the executor tests run in other processes (imported there by name), and
a watch on the worker processes: every file a worker opens whose name looks like
a log, and every SQLite connection it makes, written to a file of its own."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

import promptlog
from promptlog import SimpleBot, metric, prompt

WATCHED_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


@prompt("system")
def terse():
    """You answer in one sentence."""


@prompt("user")
def ask(question):
    """Answer this: {{ question }}"""


@metric
def words(text) -> int:
    return len(text.split())


@metric
def long_enough(text) -> bool:
    return len(text) > 10


def two_models(question: str, fake: dict[str, str]) -> str:
    """One call to the offline model, one to the fake server, two metrics."""
    offline = SimpleBot(terse(), model_name="promptlog/offline", name="offline")
    first = offline(ask(question)).content
    served = SimpleBot(terse(), name="served", **fake)
    second = served(ask(first[:40])).content
    words(first)
    long_enough(second)
    return first


def seeded(question: str) -> str:
    """The offline model, sampling, seeded by the run's repeat: one reply per repeat."""
    run = promptlog.current_run()
    seed = run.repeat_index if run is not None else 0
    bot = SimpleBot(terse(), model_name="promptlog/offline", temperature=0.9, seed=seed)
    return bot(ask(question)).content


def correct(example: dict[str, Any], prediction: str) -> bool:
    return example["question"].split()[-1] in prediction


def served_once(question: str, fake: dict[str, str]) -> str:
    return SimpleBot(terse(), name="served", **fake)(ask(question)).content


@metric
def squared(value: int) -> int:
    return value


def square(n: int) -> int:
    return squared(n * n)


def slow(seconds: float) -> int:
    time.sleep(seconds)
    return squared(1)


def threads_of_its_own(question: str) -> list[str]:
    """Call the offline model from two threads of the execution: one started through
    promptlog.with_current_run (attributed to the run), one not (outside any run)."""
    import threading

    said: list[str] = []

    def call() -> None:
        try:
            said.append(SimpleBot(terse(), model_name="promptlog/offline")(ask(question)).content)
        except Exception as error:
            said.append(f"{type(error).__name__}: {error}")

    for target in (promptlog.with_current_run(call), call):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    return said


def pid(_: object = None) -> int:
    """The id of the process this runs in."""
    return os.getpid()


def token() -> str:
    """Something no two calls return alike."""
    return os.urandom(8).hex()


def die_once(index: int, flag: str) -> int:
    """Kill this process if it is the first to claim ``flag`` (a file), else return."""
    run = promptlog.current_run()
    if run is not None and run.execution_index == index:
        try:
            os.rename(flag, flag + ".claimed")
        except FileNotFoundError:
            return index
        os.kill(os.getpid(), signal.SIGKILL)
    return run.execution_index if run is not None else -1


def die_always(index: int) -> int:
    run = promptlog.current_run()
    if run is not None and run.execution_index == index:
        os.kill(os.getpid(), signal.SIGKILL)
    return run.execution_index if run is not None else -1


class Unpicklable(Exception):
    def __init__(self, message: str, detail: object):  # two arguments: no pickling back
        super().__init__(message)
        self.detail = detail


def fails_oddly() -> None:
    raise Unpicklable("it went wrong", object())


# --- the watch on worker processes --------------------------------------------------


def watch(report: str) -> None:
    """In this process, append to ``report`` every SQLite connection made and every
    file opened whose name looks like a log (once per process)."""
    if getattr(sys, "_promptlog_watched", None) == report:
        return
    fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    busy = [False]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if busy[0] or event not in ("open", "sqlite3.connect"):
            return
        target = str(args[0]) if args else ""
        if event == "sqlite3.connect" or target.endswith(WATCHED_SUFFIXES):
            busy[0] = True
            try:
                os.write(fd, f"{os.getpid()} {event} {target}\n".encode())
            finally:
                busy[0] = False

    sys.addaudithook(hook)
    sys._promptlog_watched = report  # type: ignore[attr-defined]


class Watch(WorkerPlugin):
    """The watch in every Dask worker process, restarted ones included."""

    def __init__(self, report: str):
        self.report = report

    def setup(self, worker: Any) -> None:
        watch(self.report)


def opened(report: Path) -> list[str]:
    return report.read_text().splitlines() if report.exists() else []


def warm(_: object = None) -> None:
    """Import the heavy parts in this process, before the first test times out on it."""
    import litellm  # noqa: F401

    import promptlog.offline  # noqa: F401


def open_files() -> list[str]:
    """The files this process holds open whose names look like a log."""
    import psutil

    return [f.path for f in psutil.Process().open_files() if f.path.endswith(WATCHED_SUFFIXES)]


def touch_log(path: str) -> None:
    """Open a log the way promptlog would not on a worker: to show the watch sees it."""
    import sqlite3

    sqlite3.connect(path).close()


# --- optimisers on other processes ---------------------------------------------------


def served_qa(env: dict[str, str], question: str) -> str:
    """The optimiser tests' program, pointed at the stand-in server in ``env`` first:
    a worker started before the server does not have it in its environment."""
    import optimizer_support

    os.environ.update(env)
    return optimizer_support.qa(question)


def line_loss(x: str) -> float:
    """How far the line ``x`` ("[w, b]") is from [15, 14]: a search's f."""
    import json

    w, b = json.loads(x)
    return float((w - 15) ** 2 + (b - 14) ** 2)
