"""``promptlog.evaluate``: run a program on every example of a dataset and score
each prediction with metrics, as one experiment.

    exp = promptlog.evaluate(answer, dataset, metrics=[exact], repeats=3)

Like DSPy's ``Evaluate``, but each run is logged and the summary gives every
metric's mean with a confidence interval rather than one percentage.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, Literal

from . import datasets
from .context import current_input
from .errors import ExperimentError
from .experiments import Experiment
from .metrics import metric as as_metric


def _scorer(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """``fn`` called as ``fn(example, prediction)`` or, if it takes one argument,
    ``fn(prediction)``, its value recorded as a metric."""
    recorded = fn if getattr(fn, "__promptlog_metric__", False) else as_metric(fn)
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return lambda example, prediction: recorded(prediction)
    except ValueError:  # no signature (a builtin): give it both
        pass
    return recorded


def evaluate(
    program: Callable[..., Any],
    dataset: Any,
    metrics: Iterable[Callable[..., Any]] = (),
    repeats: int = 1,
    name: str | None = None,
    max_workers: int | None = None,
    *,
    metadata: dict[str, Any] | None = None,
    progress: bool | None = None,
    quiet: bool = False,
    resume: bool = False,
    retry_failed: bool = True,
    cache: bool | Literal["refresh"] | None = None,
    parent: Experiment | str | None = None,
    executor: Executor | None = None,
) -> Experiment:
    """Run ``program`` on each example of ``dataset`` ``repeats`` times, then each
    metric on ``(example, prediction)`` (or on the prediction alone, for a
    metric of one argument); return the :class:`Experiment` and print its summary.

    ``program`` is called as ``program(**example)`` when it takes the example's
    keys as parameters, else ``program(example)``. ``name`` defaults to the
    program's name. ``resume`` continues the latest evaluation of that name on
    the same dataset and repeats, running only what is missing or failed (see
    :class:`Experiment`). ``cache`` answers the program's model requests from the
    response cache, one sample per repeat (see :class:`Experiment`). ``parent``
    is the optimisation this evaluation belongs to, when an optimiser runs it.
    ``executor`` runs the executions (a ``ProcessPoolExecutor``,
    ``promptlog.executors.dask(client)`` …) instead of the thread pool; the program,
    metrics and dataset are then pickled and sent to its workers (see
    :mod:`promptlog.executors`).
    """
    scorers = [_scorer(fn) for fn in metrics]
    title = name or getattr(program, "__name__", None)
    if not title or title == "<lambda>":
        raise ExperimentError(
            "evaluate needs a name for its experiment: pass name=... (a lambda has none)."
        )
    exp = Experiment(
        title, inputs=dataset, repeats=repeats, max_workers=max_workers, metadata=metadata,
        progress=progress, quiet=quiet, resume=resume, retry_failed=retry_failed,
        cache=cache, parent=parent, executor=executor,
    )

    def one(*_: Any, **__: Any) -> Any:  # exp.run hands it the example; taken from the run
        example = current_input()
        prediction = datasets.call_with(program, example, (), {})
        for score in scorers:
            score(example, prediction)
        return prediction

    exp.run(one)
    if not quiet:
        summary = exp.summary()
        shown = summary.to_string() if len(summary) else "(no metrics)"
        print(f"{title}: {exp._counts()}\n{shown}", file=sys.stdout)
    return exp
