"""Experiments: a block (or a function) executed N times on a thread pool, each
execution logged as a run with its result, metrics and hyperparameters.

    with Experiment("job-names", num_executions=10) as exp:
        response = name_generator()
        name_length(response)

The caller's own pass through the block is execution 0; executions 1…N-1 run
the same statements at the same time on a thread pool, each in a shallow copy of
the caller's namespace. Every execution runs in a context of its own whose
current run is its run, so bot calls, prompt versions and metrics made in it
are attributed to it.

Failures: a failing execution is recorded (exception, message, traceback) and
never stops the others. In a ``with`` block, execution 0 is the caller's own
code, so its exception propagates out of the block as plain Python would, but
only once every other execution has finished and been written. ``run()`` raises
:class:`~promptlog.errors.ExperimentFailedError` only when every execution failed.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import linecache
import os
import platform
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import datasets, executors, knobs, prompts, settings, store
from ._plain import as_data, json_default
from ._version import __version__
from .context import (
    RunContext,
    current_input,
    current_overrides,
    current_run,
    reset_current_run,
    set_current_run,
)
from .errors import ExecutorError, ExperimentError, ExperimentFailedError
from .redaction import _mask
from .settings import check_cache_mode

if TYPE_CHECKING:
    import pandas as pd

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_WORKERS = 8
KINDS = ("experiment", "optimisation")


class _NotLogged:
    """The writer of a run that is not logged: it drops every record."""

    def put(self, record: Any) -> None:
        pass


_NOT_LOGGED = _NotLogged()


def experiment(fn: F) -> F:
    """Mark the function whose return value is a run's result.

    Inside an experiment the value is recorded on the current run (pydantic
    models, dataclasses and JSON-able values as JSON, anything else as its
    repr); outside one this is just a call.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = fn(*args, **kwargs)
        run = current_run()
        if run is not None:
            run.set_result(value)
        return value

    return wrapper  # type: ignore[return-value]


_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def encode_result(value: Any) -> tuple[str, str]:
    """``(text, format)``: JSON where the value allows it, else its repr."""
    try:
        return _encode_json(as_data(value)), "json"
    except (TypeError, ValueError):
        return repr(value), "repr"


class Run(RunContext):
    """One execution of an experiment: its id, index, status, timing, result,
    error and metrics (and, while it runs, the bots and prompts it uses)."""

    __slots__ = ("status", "started_at", "duration_s", "error", "_clock")

    def __init__(self, id: str, experiment_id: str, execution_index: int, db: Any):
        super().__init__(id, experiment_id, execution_index, db)
        self.status = "running"
        self.started_at = store.now()
        self.duration_s: float | None = None
        self.error: BaseException | None = None
        self._clock = time.perf_counter()

    def __repr__(self) -> str:
        return f"<Run {self.execution_index} {self.id} {self.status}>"


# --- finding the block's source ------------------------------------------------


def _block_code(frame: FrameType) -> tuple[CodeType, str | None]:
    """Compile the body of the ``with`` statement executing in ``frame``.

    Returns the code and the ``as`` name bound to the experiment, if any.
    """
    filename = frame.f_code.co_filename
    lines = linecache.getlines(filename, frame.f_globals)
    where = f"{filename}, line {frame.f_lineno}"
    if not lines:
        raise ExperimentError(
            f"Cannot find the source of the with-block at {where}, so it cannot be run "
            f"more than once. Put the block in a function and use exp.run(fn) instead."
        )
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError as e:
        raise ExperimentError(
            f"Cannot parse the source of {filename} ({e.msg}); use exp.run(fn) instead."
        ) from None
    line = frame.f_lineno
    found: ast.With | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            header_end = node.items[-1].context_expr.end_lineno or node.lineno
            if node.lineno <= line <= header_end and (found is None or node.lineno > found.lineno):
                found = node
    if found is None:
        raise ExperimentError(
            f"Cannot find the with-statement at {where} in its source (was the file edited "
            f"while running?). Use exp.run(fn) instead."
        )
    if len(found.items) != 1:
        raise ExperimentError(
            f"The with-statement at {where} opens several context managers; give the "
            f"Experiment a with-statement of its own to run its block more than once."
        )
    module = ast.Module(body=found.body, type_ignores=[])
    try:
        code = compile(module, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise ExperimentError(
            f"The block at {where} cannot be run on its own ({e.msg}: return, yield, "
            f"break and continue cannot leave it). Put it in a function and use exp.run(fn)."
        ) from None
    target = found.items[0].optional_vars
    return code, target.id if isinstance(target, ast.Name) else None


def _namespace(frame: FrameType) -> dict[str, Any]:
    """A shallow copy of everything the block can see from ``frame``."""
    namespace = dict(frame.f_globals)
    if frame.f_locals is not frame.f_globals:
        namespace.update(frame.f_locals)
    return namespace


# --- the environment ------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _script_path() -> str | None:
    for variable in ("__vsc_ipynb_file__", "__session__"):
        value = getattr(sys.modules.get("__main__"), variable, None)
        if isinstance(value, str) and value:
            return value
    if os.environ.get("JPY_SESSION_NAME"):
        return os.environ["JPY_SESSION_NAME"]
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return str(Path(main_file).absolute()) if main_file else None


def environment() -> dict[str, Any]:
    """Where an experiment ran: versions, git commit and dirtiness, script or notebook."""
    cwd = Path.cwd()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "promptlog": __version__,
        "platform": platform.platform(terse=True),
        "script": _script_path(),
    }
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit:
        env["git_commit"] = commit
        status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
        env["git_dirty"] = bool(status)
    return env


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    if os.environ.get("PROMPTLOG_PROGRESS", "").lower() in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


# --- the experiment -------------------------------------------------------------


class Experiment:
    """Run a block or a function ``num_executions`` times and log every run.

    ``max_workers`` bounds how many executions run at once (default 8);
    ``metadata`` is any JSON-able dict stored with the experiment and each run's
    hyperparameters; ``overrides`` are knob overrides (as ``promptlog.overrides``
    takes) in force in every execution and recorded on each run; ``progress``
    shows a progress bar (default: in a terminal or notebook); ``quiet`` skips the
    one-line summary printed at the end; ``cache`` answers the bots' requests from
    the response cache (True), or calls the models and replaces the entries
    ("refresh"), unless a bot sets its own (see ``docs/cache.md``).

    ``executor`` (any ``concurrent.futures.Executor``: a ``ProcessPoolExecutor``,
    ``promptlog.executors.dask(client)`` …) runs the executions of ``exp.run`` and
    ``exp.map`` instead of the thread pool; other processes send their records back to this
    one, which alone writes the log (see :mod:`promptlog.executors`). With it,
    ``max_workers`` bounds the executions submitted at once.

    ``inputs`` (a list of examples or a DataFrame) runs each example ``repeats``
    times instead (``len(inputs) × repeats`` executions); ``exp.input`` is the
    current run's example. ``resume`` continues the latest experiment of this name
    on the same inputs and repeats (or ``num_executions``): its succeeded runs are
    kept and only the missing, failed (unless ``retry_failed=False``) or
    interrupted executions run, under its id.

    ``kind="optimisation"`` marks the experiment an optimiser keeps its work in,
    and ``parent`` (an Experiment or an experiment id) the optimisation a
    candidate's evaluation belongs to. An optimiser, whose number of steps is not
    known in advance, runs batches of executions in a session::

        with exp.session():
            runs = exp.map(evaluate_one, candidates)   # one run per candidate
            exp.outcome = {"best_score": ...}          # written when it ends
    """

    name: str

    def __init__(
        self,
        name: str,
        num_executions: int | None = None,
        max_workers: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        inputs: Any = None,
        repeats: int = 1,
        resume: bool = False,
        retry_failed: bool = True,
        overrides: dict[Any, Any] | None = None,
        progress: bool | None = None,
        quiet: bool = False,
        cache: bool | Literal["refresh"] | None = None,
        kind: str = "experiment",
        parent: Experiment | str | None = None,
        executor: Executor | None = None,
    ):
        executors.check(executor, "Experiment")
        if not isinstance(name, str) or not name.strip():
            raise ExperimentError("An experiment needs a name: Experiment(\"job-names\", ...).")
        self.examples: list[datasets.Example] | None = None
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ExperimentError(f"repeats must be a whole number of at least 1, not {repeats!r}.")
        if inputs is not None:
            if num_executions is not None:
                raise ExperimentError(
                    "Give either num_executions or inputs, not both: with inputs an experiment "
                    "runs each example `repeats` times (len(inputs) × repeats executions)."
                )
            self.examples = datasets.examples(inputs)
            num_executions = len(self.examples) * repeats
        elif repeats != 1:
            raise ExperimentError(
                "repeats counts the runs per example of inputs; without inputs use "
                "num_executions."
            )
        if num_executions is None:
            num_executions = 1
        if isinstance(num_executions, bool) or not isinstance(num_executions, int) or (
            num_executions < 1
        ):
            raise ExperimentError(
                f"num_executions must be a whole number of at least 1, not {num_executions!r}."
            )
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ExperimentError(f"max_workers must be at least 1, not {max_workers!r}.")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise ExperimentError(f"metadata must be a dict, not {type(metadata).__name__}.")
            try:
                json.dumps(metadata)
            except (TypeError, ValueError) as e:
                raise ExperimentError(f"metadata must be JSON-able: {e}.") from None
        if kind not in KINDS:
            raise ExperimentError(f"kind must be one of {KINDS}, not {kind!r}.")
        if isinstance(parent, Experiment):
            if parent.id is None:
                raise ExperimentError(
                    f"The parent experiment {parent.name!r} has not started: "
                    f"open it (run it, or enter its session) before starting experiments "
                    f"that belong to it."
                )
            parent = parent.id
        if parent is not None and not isinstance(parent, str):
            raise ExperimentError(
                f"parent must be an Experiment or an experiment id, not {type(parent).__name__}."
            )
        self.kind = kind
        self.parent_id: str | None = parent
        self.outcome: Any = None
        self.name = name
        self.num_executions = num_executions
        self.repeats = repeats
        self.resume = resume
        self.retry_failed = retry_failed
        self._pending: list[int] | None = None  # resumed: the executions left to run
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS
        self._max_workers_given = max_workers
        self.executor = executor
        self._executor: Executor | None = executor  # this run's (exp.run may change it)
        self._unwritten: set[str] = set()  # runs sent to other processes, not yet logged
        self._packed: bytes | None = None  # the body, pickled for other processes
        # Stored with the experiment and every run: values named like secrets are masked.
        self.metadata = _mask(dict(metadata or {}))
        self._overrides = knobs.resolve(overrides) if overrides else None
        self.progress = progress
        self.quiet = quiet
        self.cache = check_cache_mode(cache, "Experiment", ExperimentError)
        self.id: str | None = None
        self.status = "new"
        self.runs: list[Run] = []
        self._db: store.Writer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        self._bar: Any = None
        self._lock = threading.Lock()
        self._interrupted = False
        self._run0: Run | None = None
        self._token: Any = None
        self._knobs_token: Any = None
        self._open_ended = False  # in a session: executions come in batches from map()
        self._next_index = 0

    # public ------------------------------------------------------------------

    @property
    def results(self) -> list[Any]:
        """Each run's result, in execution order (None for a failed run)."""
        return [run.result for run in sorted(self.runs, key=lambda r: r.execution_index)]

    @property
    def failures(self) -> list[Run]:
        return [run for run in self.runs if run.status == "failed"]

    @property
    def input(self) -> Any:
        """The current run's example, in an experiment over inputs (None otherwise)."""
        return current_input()

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        executor: Executor | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Call ``fn(*args, **kwargs)`` ``num_executions`` times, concurrently, each
        call a run; return the results in execution order (None where one failed).

        Over inputs, each call gets its run's example: ``fn(**example)`` when ``fn``
        takes the example's keys as parameters, else ``fn(example)``. ``executor``
        runs them instead of the experiment's executor (see :class:`Experiment`)."""
        executors.check(executor, "Experiment.run")
        self._executor = executor or self.executor
        body = executors.Call(fn, args, kwargs, on_input=self.examples is not None)
        if not executors.is_local(self._executor):
            # Before anything is logged: what cannot travel is a clear error.
            self._packed = executors.pack(body, f"the function {_name(fn)!r}")
        self._open()
        try:
            self._launch(self._todo(), body)
            self._wait()
        except KeyboardInterrupt:
            self._interrupt()
            raise KeyboardInterrupt from None  # the caller's Ctrl-C, not our frames
        except BaseException:
            self._interrupt()
            raise
        finally:
            self._leave_overrides()
        self._close()
        if self.runs and all(run.status == "failed" for run in self.runs):
            first = min(self.runs, key=lambda r: r.execution_index).error
            raise ExperimentFailedError(
                f"Every execution of experiment {self.name!r} failed; the first with "
                f"{type(first).__name__}: {first}",
                [run.error for run in self.runs if run.error is not None],
            ) from first
        return self.results

    def __enter__(self) -> Experiment:
        frame = sys._getframe(1)
        code: CodeType | None = None
        namespace: dict[str, Any] = {}
        if self.num_executions > 1:
            code, as_name = _block_code(frame)
            namespace = _namespace(frame)
            if as_name:
                namespace[as_name] = self
        self._token = self._begin_block(code, namespace)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        reset_current_run(self._token)
        self._leave_overrides()
        if self._end_block(exc):
            raise KeyboardInterrupt from None  # the caller's Ctrl-C, not our frames
        return False  # execution 0's exception, if any, propagates

    def run_code(self, code: str | CodeType, namespace: dict[str, Any]) -> None:
        """Run ``code`` as the block of a ``with`` statement would be run: execution 0
        in ``namespace`` itself, the others at the same time in shallow copies of it.
        (The ``%%experiment`` notebook magic runs a cell this way.)"""
        if isinstance(code, str):
            code = compile(code, "<experiment>", "exec")
        # The copies start from the namespace as it is now, not as execution 0,
        # running in it at the same time, leaves it.
        token = self._begin_block(code, dict(namespace))
        error: BaseException | None = None
        try:
            exec(code, namespace)  # noqa: S102
        except BaseException as e:  # handed to _end_block, then raised
            error = e
        finally:
            reset_current_run(token)
            self._leave_overrides()
        if self._end_block(error):
            raise KeyboardInterrupt from None
        if error is not None:
            raise error

    @contextlib.contextmanager
    def session(self) -> Iterator[Experiment]:
        """Open the experiment for batches of executions run by :meth:`map` (an
        optimiser's steps), and end it on leaving: ``interrupted`` on Ctrl-C,
        ``failed`` when the block raised, else ``succeeded``; ``exp.outcome`` is
        written with it. With ``resume=True`` the latest experiment of this name
        and kind is reopened: its finished runs stay in ``exp.runs`` and new
        executions are numbered after them."""
        if self.examples is not None:
            raise ExperimentError(
                "A session runs batches of executions from exp.map; an experiment over "
                "inputs runs them with exp.run or promptlog.evaluate instead."
            )
        self._open_ended = True
        self._open()
        try:
            yield self
        except KeyboardInterrupt:
            self._interrupt()
            raise KeyboardInterrupt from None
        except BaseException:
            self._interrupt("failed")
            raise
        self._finish("succeeded")

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        executor: Executor | None = None,
    ) -> list[Run]:
        """Run ``fn(item)`` for each item as a new run of this experiment, at the
        same time on its workers; wait for them all and return their :class:`Run`
        objects in item order (``run.result``, ``run.status``, ``run.error``). A
        failing call is recorded on its run and does not stop the others.
        ``executor`` runs this batch instead of the experiment's executor (so a
        session can keep some batches on its threads and send others away)."""
        if not self._open_ended or self.status != "running":
            raise ExperimentError(
                "exp.map runs executions inside an open session: "
                "`with exp.session(): exp.map(fn, items)`."
            )
        executors.check(executor, "Experiment.map")
        items = list(items)
        indexes = list(range(self._next_index, self._next_index + len(items)))
        self._next_index += len(items)
        by_index = dict(zip(indexes, items, strict=True))

        def body() -> None:
            run = current_run()
            assert run is not None
            run.set_result(fn(by_index[run.execution_index]))

        self._executor = executor or self.executor
        try:
            self._launch(indexes, body)
            self._wait()
        finally:
            self._executor = self.executor
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            found = {run.execution_index: run for run in self.runs
                     if run.execution_index in by_index}
        return [found[index] for index in indexes]

    def _todo(self) -> Sequence[int]:
        """The execution indexes to run: all, or those a resumed experiment has left."""
        return range(self.num_executions) if self._pending is None else self._pending

    def _begin_block(self, code: CodeType | None, snapshot: dict[str, Any]) -> Any:
        """Start a block: executions 1 … N-1 of ``code`` on the workers, each in its
        own copy of ``snapshot``, and execution 0 as the caller's current run.
        Returns the token that resets the current run."""
        if not executors.is_local(self.executor):
            raise ExecutorError(
                f"Experiment {self.name!r} has a {type(self.executor).__name__}, which runs "
                f"executions in other processes, and a with-block's statements and namespace "
                f"cannot be sent there. Put the block in a function and call "
                f"exp.run(fn) instead."
            )
        self._open()
        if code is not None:
            self._launch(self._todo()[1:], lambda: exec(code, dict(snapshot)))  # noqa: S102
        if self._pending is None:
            self._run0 = self._start_run(0)
        elif self._pending:
            self._run0 = self._start_run(self._pending[0])
        else:
            # Resumed with nothing left to run: the caller's pass still runs the
            # block (Python gives no way to skip it), on execution 0's example, as a
            # run that is not logged.
            self._run0 = Run(store.new_id(), self.id or "", 0, _NOT_LOGGED)
            self._run0.status = "not logged"
            self._place(self._run0)
        return set_current_run(self._run0)

    def _end_block(self, exc: BaseException | None) -> bool:
        """After the caller's own pass (execution 0): record it, wait for the others.
        True when Ctrl-C interrupted the experiment, for the caller to raise."""
        run0 = self._run0
        assert run0 is not None
        if run0.db is not _NOT_LOGGED:
            self._end_run(run0, exc)
        if exc is not None and not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
            self._interrupt()
            return isinstance(exc, KeyboardInterrupt)
        try:
            self._wait()
        except KeyboardInterrupt:
            self._interrupt()
            return True
        except BaseException:
            self._interrupt()
            raise
        self._close()
        return False

    def to_pandas(self) -> pd.DataFrame:
        """One row per run: run id, execution index, status, duration, result, one
        column per metric."""
        from .read import open as open_log

        return open_log(self._path()).runs(self._require_id())

    def summary(self) -> pd.DataFrame:
        """Per metric: n, mean, std, standard error and 95% CI (for bool metrics the
        pass rate with a Wilson interval)."""
        from .read import open as open_log

        return open_log(self._path()).summary(self._require_id())

    def _repr_html_(self) -> str:
        if self.id is None:
            return f"<p>Experiment {self.name!r} (not run yet)</p>"
        header = (
            f"<p><b>Experiment {self.name}</b> <code>{self.id}</code>: {self._counts()}</p>"
        )
        return header + self.summary().to_html()

    def __repr__(self) -> str:
        return f"<Experiment {self.name!r} {self.id or 'not run'}: {self._counts()}>"

    # the life of an experiment -------------------------------------------------

    def _path(self) -> Path:
        return self._db.path if self._db is not None else store.db_path()

    def _require_id(self) -> str:
        if self.id is None:
            raise ExperimentError(f"Experiment {self.name!r} has not run yet.")
        return self.id

    def _open(self) -> None:
        if current_run() is not None:
            raise ExperimentError(
                f"Experiment {self.name!r} was started inside a run of another experiment. "
                f"Experiments cannot be nested: start it after the outer one finishes."
            )
        if self.id is not None:
            raise ExperimentError(
                f"Experiment {self.name!r} has already run; create a new Experiment to run "
                f"it again."
            )
        self._db = store.writer()
        inputs = self._inputs_key()
        resumed = self._take_up(inputs) if self.resume else None
        if self._overrides:
            # Entered in the caller's context before any worker copies it, so that
            # every execution (and the caller's own pass) runs under them.
            self._knobs_token = knobs.push(self._overrides)
        self.status = "running"
        if resumed is not None:
            self.id = resumed.id
        else:
            self.id = store.new_id()
            store.start_experiment(
                self._db,
                id=self.id,
                name=self.name,
                num_executions=self.num_executions,
                max_workers=self.max_workers,
                metadata=self.metadata,
                environment=environment(),
                process=store.process_token(),
                created_at=store.now(),
                inputs=inputs,
                repeats=self.repeats if self.examples is not None else None,
                kind=self.kind,
                parent_id=self.parent_id,
            )
        if self.examples is not None:
            stamp = store.now()
            for example in {example.id: example for example in self.examples}.values():
                store.record_example(self._db, id=example.id, data=example.data, created_at=stamp)
        if _show_progress(self.progress) and self.num_executions > 1 and not self._open_ended:
            with warnings.catch_warnings():
                # Without ipywidgets tqdm.auto warns, then falls back to a text bar: fine.
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm

            total = self.num_executions if self._pending is None else len(self._pending)
            self._bar = tqdm(total=total, desc=self.name, unit="run")

    def _inputs_key(self) -> str | None:
        """What identifies this experiment's inputs: the hash of its examples' ids,
        in order (None without inputs)."""
        if self.examples is None:
            return None
        ids = "\n".join(example.id for example in self.examples)
        return "sha256:" + hashlib.sha256(ids.encode()).hexdigest()

    def _take_up(self, inputs: str | None) -> store.Resumed | None:
        """Resume the latest experiment of this name on the same inputs and repeats:
        keep its runs that succeeded (and failed, unless ``retry_failed``), and set
        the executions left to run. Says which in one line."""
        assert self._db is not None
        found = self._db.call(functools.partial(
            store.resume, name=self.name, num_executions=self.num_executions, inputs=inputs,
            repeats=self.repeats if self.examples is not None else 1,
            retry_failed=self.retry_failed, process=store.process_token(), kind=self.kind,
            open_ended=self._open_ended,
        ))
        if found is None:
            if not self.quiet:
                print(
                    f"promptlog: no experiment {self.name!r} with these inputs to resume; "
                    f"starting a new one",
                    file=sys.stderr,
                )
            return None
        done = set()
        for run_id, index, status, result, result_format in found.kept:
            run = Run(run_id, found.id, index, self._db)
            run.status = status
            if result is not None:
                run.set_result(json.loads(result) if result_format == "json" else result)
            self._place(run)
            self.runs.append(run)
            done.add(index)
        if self._open_ended:
            self._next_index = max(done, default=-1) + 1
            if not self.quiet:
                print(
                    f"promptlog: resuming {self.kind} {self.name!r} {found.id}: "
                    f"{len(done)} runs kept",
                    file=sys.stderr,
                )
            return found
        self._pending = [i for i in range(self.num_executions) if i not in done]
        if not self.quiet:
            print(
                f"promptlog: resuming experiment {self.name!r} {found.id}: {len(done)} of "
                f"{self.num_executions} runs kept, {len(self._pending)} to run",
                file=sys.stderr,
            )
        return found

    def _leave_overrides(self) -> None:
        if self._knobs_token is not None:
            knobs.pop(self._knobs_token)
            self._knobs_token = None

    def _launch(self, todo: Sequence[int], body: Callable[[], Any]) -> None:
        """Start running ``body`` as the executions ``todo``: on threads of this
        process, or sent to the executor's workers."""
        if not executors.is_local(self._executor):
            self._launch_remote(list(todo), body)
        else:
            self._launch_local(todo, body)

    def _launch_local(self, todo: Sequence[int], body: Callable[[], Any]) -> None:
        """Start the workers that run ``body`` as the executions ``todo``.

        Each worker takes the next execution index until none is left (or Ctrl-C),
        so an experiment of 100,000 executions holds a handful of futures, not
        100,000. Workers start in a copy of the caller's context; each execution
        runs in a copy of that, in which :meth:`_execute` sets its run.
        """
        indexes = iter(todo)
        take = threading.Lock()

        def work() -> None:
            while not self._interrupted:
                with take:
                    index = next(indexes, None)
                if index is None:
                    return
                copy_context().run(self._execute, index, body)

        workers = min(self.max_workers, len(todo))
        if workers < 1:
            return
        if self._executor is not None:  # the caller's thread pool
            self._futures = [self._executor.submit(copy_context().run, work)
                             for _ in range(workers)]
            return
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"promptlog:{self.name}")
        self._futures = [self._pool.submit(copy_context().run, work) for _ in range(workers)]

    # executions in other processes ---------------------------------------------

    def _launch_remote(self, indexes: list[int], body: Callable[[], Any]) -> None:
        """Send executions ``indexes`` of ``body`` to the executor, a window at a
        time, from one thread of this process that writes each run as it comes
        back (see :mod:`promptlog.executors`)."""
        assert self._executor is not None and self.id is not None
        packed = self._packed or executors.pack(body, "the experiment's function")
        self._packed = None
        cache = self.cache if self.cache is not None else settings.cache_mode()
        layer = current_overrides()
        job = executors.Job(
            body=packed,
            overrides={name: dict(k) for name, k in layer.items()} if layer else None,
            cache=cache,
            cache_entries=store.cache.snapshot(self._path()) if cache is True else {},
        )
        shared = executors.pack(job, "the experiment")
        token = executors.job_token(self.id)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"promptlog:{self.name}")
        self._futures = [
            self._pool.submit(copy_context().run, self._feed, indexes, token, shared)
        ]

    def _feed(self, indexes: list[int], token: str, shared: Any) -> None:
        """Keep a window of executions submitted; write each as it comes back."""
        executor = self._executor
        assert executor is not None and self.id is not None
        window = executors.in_flight(executor, self._max_workers_given)
        todo = iter(indexes)
        sent: dict[Future[bytes], Run] = {}
        try:
            while not self._interrupted:
                while len(sent) < window:
                    index = next(todo, None)
                    if index is None:
                        break
                    run = self._new_run(index)
                    self._unwritten.add(run.id)
                    try:
                        task = executors.Task(
                            token, store.process_token(), self.id, run.id, index,
                            None if self.examples is None else executors.pack(
                                run.input, f"example {run.example_id}"
                            ),
                            run.example_id, run.repeat_index,
                        )
                        sent[executors.submit(executor, executors.execute, task, shared)] = run
                    except Exception as error:  # an example that cannot travel, a broken pool
                        self._receive(run, None, error)
                if not sent:
                    return
                done, _ = wait(sent, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    self._receive(sent.pop(future), future, None)
        finally:
            for future in sent:
                future.cancel()

    def _receive(
        self, run: Run, future: Future[bytes] | None, error: BaseException | None
    ) -> None:
        """Write a run that came back from another process (or never will: its worker
        died, or the executor refused it), all of it in one transaction."""
        shipped = None
        if future is not None:
            try:
                shipped = executors.unpack(future.result())
            except BaseException as e:  # the worker died, the task was cancelled …
                error = e
        if shipped is None and not isinstance(error, ExecutorError):  # ours says why
            reason = error or ExecutorError("no result")
            lost = ExecutorError(
                f"The execution was lost: {type(reason).__name__}: {reason}. Its worker "
                f"died or the executor gave up on it; run the experiment again with "
                f"resume=True to rerun it."
            )
            lost.__cause__ = reason
            error = lost
        elif shipped is not None:
            executors.settle_versions(shipped, prompts._register)
            run.started_at = shipped.started_at
            run.bots.update(shipped.bots)
            run.prompt_version_ids.update(shipped.prompt_version_ids)
            run.declared.update(shipped.declared)
            for name, knobs_used in shipped.overrides.items():
                run.overrides.setdefault(name, {}).update(knobs_used)
            run.metrics.update(shipped.metrics)
            if shipped.has_result:
                run.set_result(shipped.result)
            error = shipped.error
        sink = store.Recorder()
        self._write_start(run, sink)
        if shipped is not None:
            sink.records.extend(shipped.records)
        if self._end_run(run, error, sink=sink, shipped=shipped):
            store.put_together(self._db, sink.records)  # type: ignore[arg-type]
        self._unwritten.discard(run.id)

    def _execute(self, index: int, body: Callable[[], Any]) -> None:
        if self._interrupted:
            return
        run = self._start_run(index)
        set_current_run(run)
        try:
            body()
        except BaseException as error:  # recorded on the run, never lost
            if not isinstance(error, Exception):
                self._interrupted = True  # first, so that no worker starts another
            self._end_run(run, error)
        else:
            self._end_run(run, None)

    def _place(self, run: Run) -> None:
        """Set the run's example and repeat from its execution index. Example-major:
        executions 0 … repeats-1 are the first example's repeats."""
        if self.examples is not None:
            position, run.repeat_index = divmod(run.execution_index, self.repeats)
            example = self.examples[position]
            run.input, run.example_id = example.value, example.id

    def _start_run(self, index: int) -> Run:
        run = self._new_run(index)
        assert self._db is not None
        self._write_start(run, self._db)
        return run

    def _new_run(self, index: int) -> Run:
        """Execution ``index``'s run, not logged yet."""
        assert self._db is not None and self.id is not None
        run = Run(store.new_id(), self.id, index, self._db)
        run.cache = self.cache
        knobs.note(run)  # the overrides this execution starts under
        if self.examples is not None:
            self._place(run)
        with self._lock:
            self.runs.append(run)
        return run

    def _write_start(self, run: Run, db: Any) -> None:
        store.start_run(
            db,
            id=run.id,
            experiment_id=run.experiment_id,
            execution_index=run.execution_index,
            started_at=run.started_at,
            process=store.process_token(),
            example_id=run.example_id,
            repeat_index=run.repeat_index,
        )

    def _end_run(
        self,
        run: Run,
        error: BaseException | None,
        *,
        sink: Any = None,
        shipped: executors.Shipped | None = None,
    ) -> bool:
        """Record the end of ``run`` (into ``sink`` instead of the writer: a run that
        executed elsewhere, its ``shipped`` timing and error). False if Ctrl-C had
        already marked it interrupted."""
        assert self._db is not None
        with self._lock:
            if run.status != "running":
                return False  # marked interrupted by Ctrl-C before it finished
            run.duration_s = (
                shipped.duration_s if shipped is not None else time.perf_counter() - run._clock
            )
            run.error = error
            if error is None:
                run.status = "succeeded"
            else:
                run.status = "failed" if isinstance(error, Exception) else "interrupted"
        result = result_format = None
        if run.has_result:
            result, result_format = encode_result(run.result)
        described = (
            shipped.described if shipped is not None and shipped.described is not None
            else executors.describe(error) if error is not None
            else (None, None, None)
        )
        store.finish_run(
            sink if sink is not None else self._db,
            run.id,
            status=run.status,
            ended_at=shipped.ended_at if shipped is not None else store.now(),
            duration_s=run.duration_s,
            result=result,
            result_format=result_format,
            error_type=described[0],
            error_message=described[1],
            traceback=described[2],
            hyperparameters={
                "bots": list(run.bots.values()),
                "prompt_versions": [
                    {"id": pv_id, "name": name} for pv_id, name in run.prompt_version_ids.items()
                ],
                "metadata": self.metadata,
                **knobs.recorded(run),
            },
            prompt_version_ids=run.prompt_version_ids,
        )
        if self._bar is not None:
            self._bar.update(1)
        return True

    def _wait(self) -> None:
        pending = set(self._futures)
        while pending:
            # A timeout keeps the main thread responsive to Ctrl-C.
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            if self._interrupted:
                raise KeyboardInterrupt

    def _interrupt(self, status: str = "interrupted") -> None:
        """Ctrl-C (or an error that ends a session): cancel what has not started, mark
        the runs still running interrupted (those that finished keep their status),
        end the experiment with ``status``, write it all."""
        self._interrupted = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        assert self._db is not None and self.id is not None
        stamp = store.now()
        with self._lock:
            unfinished = [run for run in self.runs if run.status == "running"]
            for run in unfinished:
                run.status = "interrupted"
        for run in unfinished:
            if run.id in self._unwritten:  # sent to another process: logged now
                self._write_start(run, self._db)
            store.finish_run(self._db, run.id, status="interrupted", ended_at=stamp)
        self._finish(status)

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        failed = sum(run.status == "failed" for run in self.runs)
        self._finish("failed" if failed == len(self.runs) else "succeeded")

    def _finish(self, status: str) -> None:
        assert self._db is not None and self.id is not None
        self.status = status
        outcome = None
        if self.outcome is not None:
            try:
                outcome = json.dumps(as_data(self.outcome), default=json_default)
            except (TypeError, ValueError) as e:
                outcome = json.dumps({"unrecorded": f"the outcome is not JSON-able: {e}"})
                warnings.warn(
                    f"promptlog: experiment {self.name!r}'s outcome is not JSON-able ({e}); "
                    f"it was not recorded.",
                    stacklevel=3,
                )
        if self._open_ended:
            self.num_executions = len(self.runs)
        store.finish_experiment(
            self._db, self.id, status=status, finished_at=store.now(), outcome=outcome,
            num_executions=self.num_executions if self._open_ended else None,
        )
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._db.flush()
        if not self.quiet:
            print(f"promptlog: {self!r} -> {self._path()}", file=sys.stderr)

    def _counts(self) -> str:
        succeeded = sum(run.status == "succeeded" for run in self.runs)
        failed = sum(run.status == "failed" for run in self.runs)
        interrupted = sum(run.status == "interrupted" for run in self.runs)
        started = len(self.runs)
        partial = started < self.num_executions or self.status == "interrupted"
        of = f" of {self.num_executions}" if partial else ""
        text = f"{started}{of} runs, {succeeded} succeeded, {failed} failed"
        if interrupted:
            text += f", {interrupted} interrupted"
        return text
