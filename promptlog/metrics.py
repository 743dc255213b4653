"""``@metric``: functions whose return value is a validated scalar recorded on the run."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

from . import store
from .context import current_run
from .errors import MetricError

F = TypeVar("F", bound=Callable[..., Any])

_KINDS = {"b": "bool", "i": "int", "u": "int", "f": "float"}


def validate(name: str, value: Any) -> tuple[float, str]:
    """Return ``(number, kind)`` for a metric value, or raise :class:`MetricError`.

    bool → 0/1 (kind ``bool``), int, float and numpy scalars are accepted; str,
    bytes, None, NaN, infinities, containers and other objects are not.
    """
    kind: str | None = None
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int"
    elif isinstance(value, float):
        kind = "float"
    elif type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        kind = _KINDS.get(getattr(getattr(value, "dtype", None), "kind", ""))
    if kind is None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise MetricError(
            f"Metric {name!r} returned {type(value).__name__} {shown}; a metric must return "
            f"a single bool, int or float (numpy scalars too). Return a number, e.g. "
            f"len(...) or a 0/1 score."
        )
    try:
        number = float(value)
    except OverflowError:
        raise MetricError(
            f"Metric {name!r} returned an {type(value).__name__} too large to store as a "
            f"number (over 1e308); scale it down, e.g. return a ratio or a logarithm."
        ) from None
    if not math.isfinite(number):
        raise MetricError(
            f"Metric {name!r} returned {number!r} ({type(value).__name__}); a metric must be "
            f"a finite number. Check for a division by zero or a missing value."
        )
    if kind != "float":
        number = float(int(value))
    return number, kind


def record(name: str, value: Any) -> Any:
    """Validate ``value`` and record it as metric ``name`` on the current run, if any."""
    number, kind = validate(name, value)
    run = current_run()
    if run is not None:
        if not run.claim_metric(name, number):
            raise MetricError(
                f"Metric {name!r} was already recorded in this run "
                f"(value {run.metrics[name]!r}); a run keeps one value per metric. Record "
                f"it once per execution, or give the second measurement another name."
            )
        store.record_metric(run.db, run.id, name, number, kind)
    return value


def metric(fn: F) -> F:
    """Record the function's return value as a metric named after the function.

    Outside an experiment it only validates and returns the value.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return record(fn.__name__, fn(*args, **kwargs))

    return wrapper  # type: ignore[return-value]
