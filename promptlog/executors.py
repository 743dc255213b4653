"""Executors: where an experiment's executions run, and how runs executed in
other processes come back to the one process that writes the log.

    from distributed import Client
    import promptlog.executors

    client = Client("tcp://scheduler:8786")
    exp = Experiment("qa", inputs=dataset, executor=promptlog.executors.dask(client))
    exp.run(answer)

Any :class:`concurrent.futures.Executor` works. A ``ThreadPoolExecutor`` runs
executions on threads of this process, as the default pool does. Any other
(``ProcessPoolExecutor``, Dask's, Ray's, loky's …) is sent, once per experiment,
the function and its arguments pickled with cloudpickle, and per execution its
run's id, index and example. On the worker the execution runs in a context whose
current run logs into a :class:`~promptlog.store.Recorder` (never the file); its
records, result and error come back with the task's result and are written by
this process's writer, one transaction per run. Prompt versions travel as (name,
role, template, hash) and are registered here, so version numbers are what they
would be had everything run locally.

The response cache on workers: when the experiment answers from the cache
(``cache=True``), the cache's entries are read here once and shipped with the
experiment's job; lookups on a worker never touch the file. Entries and hits
made on a worker come back like other records. The job (the function, its
arguments and those entries) travels with every task, so that a task needs
nothing a dead worker held.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import os
import pickle
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import datasets, store
from .context import (
    RunContext,
    current_input,
    current_run,
    set_current_run,
    set_overrides,
)
from .errors import ExecutorError, RemoteError
from .redaction import _redact
from .store.records import CachedReply

__all__ = ["dask"]

# Tasks in flight per thread of capacity when max_workers is not given: enough to
# keep every worker busy while results come back, few enough to cancel on Ctrl-C.
IN_FLIGHT_PER_THREAD = 2
DEFAULT_IN_FLIGHT = 32


def dask(client: Any, **options: Any) -> Executor:
    """Dask's executor for ``client`` (a ``distributed.Client``), with ``pure=False``
    so that identical repeats stay distinct tasks. (promptlog gives every execution
    a task of its own anyway, as each carries its run's id.)"""
    executor: Executor = client.get_executor(**{"pure": False, **options})
    return executor


def is_local(executor: Executor | None) -> bool:
    """Whether ``executor`` runs tasks on threads of this process, where a run's
    context travels with the task and records go straight to the writer."""
    return executor is None or isinstance(executor, ThreadPoolExecutor)


def check(executor: Any, where: str) -> None:
    if executor is not None and not isinstance(executor, Executor):
        raise ExecutorError(
            f"{where}: executor must be a concurrent.futures.Executor (a ProcessPoolExecutor, "
            f"promptlog.executors.dask(client), …), not {type(executor).__name__}."
        )


def in_flight(executor: Executor, max_workers: int | None) -> int:
    """How many executions to keep submitted at once: ``max_workers`` when given,
    else twice the executor's threads (Dask: all its workers'), else 32."""
    if max_workers is not None:
        return max_workers
    threads: int | None = None
    client = getattr(executor, "_client", None)  # Dask's ClientExecutor
    if client is not None and hasattr(client, "nthreads"):
        try:
            threads = sum(client.nthreads().values())
        except Exception:  # a client that cannot say: the default
            threads = None
    else:
        workers = getattr(executor, "_max_workers", None)
        threads = workers if isinstance(workers, int) else None
    return threads * IN_FLIGHT_PER_THREAD if threads else DEFAULT_IN_FLIGHT


# --- what is shipped -------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """An execution's body: ``fn(*args, **kwargs)`` (or, ``on_input``, ``fn`` on the
    run's example), its value the run's result."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    on_input: bool = False

    def __call__(self) -> None:
        if self.on_input:
            value = datasets.call_with(self.fn, current_input(), self.args, self.kwargs)
        else:
            value = self.fn(*self.args, **self.kwargs)
        run = current_run()
        if run is not None:
            run.set_result(value)


@dataclass
class Job:
    """What every execution of one experiment shares, pickled once (and unpickled
    once per worker process). ``body`` is the pickled function to run (see
    :class:`Call`)."""

    body: bytes
    overrides: dict[str, dict[str, Any]] | None
    cache: Any
    cache_entries: dict[str, CachedReply]


@dataclass
class Task:
    """One execution, as submitted (with the pickled :class:`Job`): ``example`` is
    the pickled example, in an experiment over inputs."""

    token: str
    coordinator: str
    experiment_id: str
    run_id: str
    index: int
    example: bytes | None
    example_id: str | None
    repeat_index: int | None


@dataclass
class Shipped:
    """What an execution sends back: its outcome and every record it logged."""

    run_id: str
    started_at: str
    ended_at: str
    duration_s: float
    error: BaseException | None
    described: tuple[str, str | None, str | None] | None  # type, message, traceback
    has_result: bool
    result: Any
    records: list[Any]
    versions: dict[int, store.ShippedVersion]
    bots: dict[str, dict[str, Any]]
    prompt_version_ids: dict[int, str]
    declared: dict[str, Any]
    overrides: dict[str, dict[str, Any]]
    metrics: dict[str, float]


class Shown:
    """A result that could not be pickled back: logged (and returned) as its repr."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def describe(error: BaseException) -> tuple[str, str | None, str | None]:
    """An exception as a run records it: its type's name, message and traceback,
    without secrets."""
    return (
        type(error).__name__,
        _redact(str(error)),
        _redact("".join(traceback.format_exception(error))),
    )


def pack(value: Any, what: str) -> bytes:
    """``value`` pickled with cloudpickle, or :class:`ExecutorError` naming the part
    of it that cannot be (``what`` says what ``value`` is)."""
    import cloudpickle

    try:
        packed: bytes = cloudpickle.dumps(value)
        return packed
    except Exception as error:
        label, culprit, cause = _culprit(value, what, error)
        raise ExecutorError(
            f"Cannot send {label} ({type(culprit).__name__}) to the executor's workers: it "
            f"cannot be pickled ({type(cause).__name__}: {cause}). Create it inside the "
            f"function, so that each process makes its own, or run on threads (leave "
            f"executor= unset)."
        ) from None


def _parts(value: Any, label: str) -> Iterator[tuple[str, Any]]:
    """The parts of ``value`` that pickling it pickles, each with a name for a person."""
    if isinstance(value, Job):
        yield from _parts(value.body, label)
    elif isinstance(value, Call):
        yield f"the function {getattr(value.fn, '__qualname__', value.fn)!r}", value.fn
        for position, arg in enumerate(value.args):
            yield f"argument {position}", arg
        for name, arg in value.kwargs.items():
            yield f"argument {name}=", arg
    elif isinstance(value, functools.partial):
        yield from _parts(Call(value.func, value.args, value.keywords), label)
    elif inspect.ismethod(value):
        yield f"{label}'s object", value.__self__
    elif inspect.isfunction(value):
        try:
            found = inspect.getclosurevars(value)
        except (TypeError, ValueError):
            return
        for name, variable in {**found.globals, **found.nonlocals}.items():
            yield f"{label}'s variable {name!r}", variable
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield f"{label}[{key!r}]", item
    elif isinstance(value, list | tuple | set | frozenset):
        for position, item in enumerate(value):
            yield f"{label}[{position}]", item
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for name, item in vars(value).items():
            yield f"{label}.{name}", item


def _culprit(
    value: Any, label: str, error: BaseException, depth: int = 0
) -> tuple[str, Any, BaseException]:
    """The innermost part of ``value`` that cannot be pickled, its name and error."""
    import cloudpickle

    if depth < 6:
        for part_label, part in _parts(value, label):
            try:
                cloudpickle.dumps(part)
            except Exception as part_error:
                return _culprit(part, part_label, part_error, depth + 1)
    return label, value, error


def submit(executor: Executor, fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """``executor.submit(fn, *args)``. Dask's executor is asked through its client
    (``pure=False``), and its futures are followed here: distributed's own wrapper
    never settles a future whose result was lost with its worker."""
    client = getattr(executor, "_client", None)
    if client is None or not type(executor).__module__.startswith("distributed"):
        return executor.submit(fn, *args)
    remote = client.submit(fn, *args, pure=False)
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()

    def settle(done: Any) -> None:
        try:
            future.set_result(done.result())
        except BaseException as error:  # the task's error, cancellation, a lost worker
            future.set_exception(error)

    # Dask calls back on one thread; each result() is a round trip, so fetch on several.
    remote.add_done_callback(lambda done: _fetchers().submit(settle, done))
    future.add_done_callback(lambda f: remote.cancel() if f.cancelled() else None)
    return future


_fetcher: ThreadPoolExecutor | None = None
_fetcher_lock = threading.Lock()


def _fetchers() -> ThreadPoolExecutor:
    global _fetcher
    with _fetcher_lock:
        if _fetcher is None:
            _fetcher = ThreadPoolExecutor(8, thread_name_prefix="promptlog-dask-results")
        return _fetcher


_tokens = itertools.count()


def job_token(experiment_id: str) -> str:
    return f"{experiment_id}/{next(_tokens)}"


# --- on the worker ---------------------------------------------------------------

# By token: a job and its body, unpickled once per process; the latest few.
_jobs: dict[str, tuple[Job, Callable[[], Any]]] = {}
_jobs_lock = threading.Lock()
_JOBS_KEPT = 4


def _job(token: str, packed: bytes) -> tuple[Job, Callable[[], Any]]:
    found = _jobs.get(token)
    if found is None:
        job: Job = pickle.loads(packed)
        found = (job, pickle.loads(job.body))
        with _jobs_lock:
            while len(_jobs) >= _JOBS_KEPT:
                del _jobs[next(iter(_jobs))]
            _jobs[token] = found
    return found


def execute(task: Task, packed: bytes) -> bytes:
    """Run one execution on a worker (the function submitted to the executor) and
    return its :class:`Shipped` outcome, pickled. Never raises for the execution's
    own errors: they are its run's."""
    if not _is_coordinator(task.coordinator):
        store.forbid_opening(
            "this process runs executions for an experiment started in another process "
            f"({task.coordinator}), which alone writes the log. Code that logs here must "
            "run inside the execution (threads it starts: through "
            "promptlog.with_current_run)."
        )
    recorder = store.Recorder()
    run = RunContext(task.run_id, task.experiment_id, task.index, recorder)
    run.example_id, run.repeat_index = task.example_id, task.repeat_index
    return contextvars.Context().run(_execute, task, packed, run)


def _is_coordinator(token: str) -> bool:
    """Whether this is the process named by ``token`` (host/pid/…), checked afresh:
    a forked worker inherits its parent's cached token."""
    host, _, rest = token.partition("/")
    return host == socket.gethostname() and rest.partition("/")[0] == str(os.getpid())


def _execute(task: Task, packed: bytes, run: RunContext) -> bytes:
    set_current_run(run)
    recorder: store.Recorder = run.db
    started_at = store.now()
    clock = time.perf_counter()
    error: BaseException | None = None
    try:
        # Unpickled inside the run, so that what its import logs (a prompt rendered
        # at import) is recorded here, never written.
        job, body = _job(task.token, packed)
        run.cache = job.cache
        recorder.shipped_cache = job.cache_entries
        if task.example is not None:
            run.input = pickle.loads(task.example)
        if job.overrides:
            set_overrides({name: MappingProxyType(k) for name, k in job.overrides.items()})
        body()
    except BaseException as e:  # the run's, recorded and sent back
        error = e
    duration = time.perf_counter() - clock
    shipped = Shipped(
        run_id=run.id,
        started_at=started_at,
        ended_at=store.now(),
        duration_s=duration,
        error=_sendable(error),
        described=describe(error) if error is not None else None,
        has_result=run.has_result,
        result=run.result,
        records=recorder.records,
        versions=recorder.shipped_versions(run.prompt_version_ids),
        bots=run.bots,
        prompt_version_ids=run.prompt_version_ids,
        declared=run.declared,
        overrides=run.overrides,
        metrics=run.metrics,
    )
    try:
        return pickle.dumps(shipped, pickle.HIGHEST_PROTOCOL)  # plain records: the fast way
    except Exception:
        pass
    try:
        return pack(shipped, "the execution's result")
    except ExecutorError:
        shipped.result = Shown(repr(run.result))
        return pack(shipped, "the execution's outcome")


def _sendable(error: BaseException | None) -> BaseException | None:
    """``error`` if it survives pickling both ways (many exceptions with required
    arguments do not), else a :class:`RemoteError` with its type, message and
    traceback as text."""
    if error is None:
        return None
    import cloudpickle

    try:
        pickle.loads(cloudpickle.dumps(error))
        return error
    except Exception:
        _, message, text = describe(error)
        return RemoteError(type(error).__name__, message or "", text or "")


# --- back on the coordinator -------------------------------------------------------


def unpack(result: bytes) -> Shipped:
    shipped: Shipped = pickle.loads(result)
    return shipped


def settle_versions(shipped: Shipped, register: Callable[..., Any]) -> None:
    """Register the prompt versions ``shipped`` used (``register(name, role,
    template, hash)`` returns a version with its ``id``), and put their ids in
    place of the provisional ones in its records and run."""
    if not shipped.versions:
        return
    ids = {
        provisional: register(v.name, v.role, v.template, v.hash).id
        for provisional, v in shipped.versions.items()
    }
    shipped.prompt_version_ids = {
        ids.get(version, version): name for version, name in shipped.prompt_version_ids.items()
    }
    for record in shipped.records:
        messages = getattr(record, "messages", None)
        if messages:
            for message in messages:
                version = message.get("prompt_version_id")
                if version is not None and version in ids:
                    message["prompt_version_id"] = ids[version]
