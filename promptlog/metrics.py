"""``@metric``: functions whose return value is a validated scalar recorded on the run."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from . import store
from ._plain import shown
from .context import current_run
from .errors import MetricError

F = TypeVar("F", bound=Callable[..., Any])

_KINDS = {"b": "bool", "i": "int", "u": "int", "f": "float"}
_EXACT_INT = 2**53  # every integer up to this magnitude is exactly a double
# A metric's kinds, narrowest first: a metric logged as int in one run and float
# in another is a float metric.
KINDS = ("bool", "int", "float")


def widest_kind(kinds: Iterable[str]) -> str:
    """The kind of a metric logged with these kinds: the widest of them."""
    return max(kinds, key=KINDS.index)


def validate(name: str, value: Any) -> tuple[float, str]:
    """Return ``(number, kind)`` for a metric value, or raise :class:`MetricError`.

    bool → 0/1 (kind ``bool``), int, float and numpy scalars are accepted; str,
    bytes, None, NaN, infinities, containers, other objects and integers beyond
    ±2**53 (which a stored double would round) are not.
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
        raise MetricError(
            f"Metric {name!r} returned {type(value).__name__} {shown(value)}; a metric must return "
            f"a single bool, int or float (numpy scalars too). Return a number, e.g. "
            f"len(...) or a 0/1 score."
        )
    if kind == "int" and abs(int(value)) > _EXACT_INT:
        # Values are stored as REAL (a double): beyond 2**53 not every integer has
        # one, and 2**53 + 1 would silently come back as 2**53.
        digits = str(int(value))
        if len(digits) > 40:
            digits = f"{digits[:12]}...({len(digits)} digits)"
        raise MetricError(
            f"Metric {name!r} returned the {type(value).__name__} {digits}, which is "
            f"beyond ±2**53 ({_EXACT_INT}) and so not exactly representable as a stored "
            f"number: it would be silently rounded. Log it as a float (float(value)) if "
            f"rounding is acceptable, or scale it down (e.g. thousands, or a ratio)."
        )
    number = float(value)
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
    if run is not None and getattr(run, "status", None) == "interrupted":
        return value  # Ctrl-C ended its experiment before it finished: it stays unscored
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

    A metric may take the example its run works on, as ``promptlog.evaluate``
    calls it: ``@metric def exact(example, prediction) -> bool``. Outside an
    experiment it only validates and returns the value.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return record(fn.__name__, fn(*args, **kwargs))

    wrapper.__promptlog_metric__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
