"""The current run and the knob overrides in force, carried in context variables.

Every bot call, rendered prompt and metric looks here to find the run it
belongs to (and every prompt, for an override of its template). Work handed to
another thread keeps both only if it is submitted through :func:`with_current_run`
(or ``contextvars.copy_context().run``).
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class RunContext:
    """What the log needs to know about the run in progress.

    Bots and prompts add themselves here as they are used, so each run's
    hyperparameters are captured without the user writing them down. Slotted:
    an experiment of 100,000 executions keeps one of these per run.
    """

    __slots__ = (
        "id",
        "experiment_id",
        "execution_index",
        "db",
        "bots",
        "prompt_version_ids",
        "metrics",
        "declared",
        "overrides",
        "result",
        "has_result",
        "cache",
        "input",
        "example_id",
        "repeat_index",
        "_lock",
    )

    def __init__(self, id: str, experiment_id: str, execution_index: int, db: Any):
        self.id = id
        self.experiment_id = experiment_id
        self.execution_index = execution_index
        self.db = db  # the store.Writer this run logs to
        self.bots: dict[str, dict[str, Any]] = {}
        self.prompt_version_ids: dict[int, str] = {}
        self.metrics: dict[str, float] = {}
        self.declared: dict[str, Any] = {}  # declared hyperparameter -> value used
        self.overrides: dict[str, dict[str, Any]] = {}  # prompt or function -> knob -> value
        self.result: Any = None
        self.has_result = False
        self.cache: bool | Literal["refresh"] | None = None  # the experiment's, if set
        self.input: Any = None  # the example, in an experiment over inputs
        self.example_id: str | None = None
        self.repeat_index: int | None = None
        self._lock = threading.Lock()

    def note_bot(self, key: str, description: Callable[[], dict[str, Any]]) -> None:
        """Record a bot used in this run (once per bot)."""
        if key not in self.bots:
            with self._lock:
                self.bots.setdefault(key, description())

    def note_prompt_version(self, prompt_version_id: int, name: str) -> None:
        """Record a prompt version rendered or sent in this run (once per version)."""
        if prompt_version_id not in self.prompt_version_ids:
            with self._lock:
                self.prompt_version_ids.setdefault(prompt_version_id, name)

    def note_hyperparameter(self, name: str, value: Any) -> None:
        """Record the value a declared hyperparameter took in this run (the last wins)."""
        with self._lock:
            self.declared[name] = value

    def note_overrides(self, name: str, knobs: Mapping[str, Any]) -> None:
        """Record knob overrides applied to prompt or function ``name`` in this run
        (merged with those noted before; for one knob the last wins)."""
        noted = self.overrides.get(name)
        if noted is not None and all(noted.get(k, noted) is v for k, v in knobs.items()):
            return  # the common case: the same overrides, applied call after call
        with self._lock:
            self.overrides.setdefault(name, {}).update(knobs)

    def claim_metric(self, name: str, value: float) -> bool:
        """Keep ``value`` as this run's ``name``; False if the run already has one."""
        with self._lock:
            if name in self.metrics:
                return False
            self.metrics[name] = value
            return True

    def set_result(self, value: Any) -> None:
        self.result = value
        self.has_result = True


_current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "promptlog_current_run", default=None
)


def current_run() -> RunContext | None:
    """The run this code executes in, or ``None`` outside an experiment."""
    return _current_run.get()


def current_input() -> Any:
    """The example the current run works on, in an experiment over inputs
    (``Experiment(inputs=...)``); ``None`` elsewhere."""
    run = _current_run.get()
    return None if run is None else run.input


def set_current_run(run: RunContext | None) -> contextvars.Token[RunContext | None]:
    return _current_run.set(run)


def reset_current_run(token: contextvars.Token[RunContext | None]) -> None:
    _current_run.reset(token)


# name -> knob -> value: the overrides entered with ``promptlog.overrides`` (merged,
# the innermost winning); None when there are none, so the common case is one lookup.
_overrides: contextvars.ContextVar[Mapping[str, Mapping[str, Any]] | None] = (
    contextvars.ContextVar("promptlog_overrides", default=None)
)


# The knob overrides entered in this context (name -> knob -> value), or None. The
# variable's own bound method: every prompt call asks, and a wrapper would double it.
current_overrides: Callable[[], Mapping[str, Mapping[str, Any]] | None] = _overrides.get


def set_overrides(
    layer: Mapping[str, Mapping[str, Any]] | None,
) -> contextvars.Token[Mapping[str, Mapping[str, Any]] | None]:
    return _overrides.set(layer)


def reset_overrides(token: contextvars.Token[Mapping[str, Mapping[str, Any]] | None]) -> None:
    _overrides.reset(token)


def with_current_run(fn: Callable[P, T]) -> Callable[P, T]:
    """Wrap ``fn`` so that, called on any thread, it runs in the current run.

    Use it when an execution starts threads of its own::

        pool.map(promptlog.with_current_run(bot), questions)
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        # A Context cannot be entered by two threads at once: give each call a copy.
        return context.copy().run(fn, *args, **kwargs)

    return wrapper
