"""Datasets: the examples an experiment runs over, stored content-addressed.

    with Experiment("qa", inputs=[{"question": "What is 2+2?", "answer": "4"}],
                    repeats=3) as exp:
        reply = ask(exp.input["question"])

An example is a dict, a pydantic model, a dataclass or any JSON-able value (a
pandas DataFrame gives one example per row). Its id is ``sha256:`` of its
canonical JSON (sorted keys, no spaces), so the same example in two experiments
is one row of ``examples``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._plain import as_data, shown
from .errors import ExperimentError

_canonical = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


@dataclass(frozen=True, slots=True)
class Example:
    """One example: the value the user gave (``exp.input``), its JSON text and id."""

    value: Any
    data: str
    id: str


def example(value: Any, position: int = 0) -> Example:
    """The stored form of one example, or :class:`ExperimentError` if it has none."""
    try:
        data = _canonical(as_data(value))
    except (TypeError, ValueError) as e:
        raise ExperimentError(
            f"Example {position} ({type(value).__name__} {shown(value)}) cannot be stored as JSON "
            f"({e}); give examples as dicts of strings, numbers, lists and dicts, or as "
            f"pydantic models."
        ) from None
    return Example(value, data, "sha256:" + hashlib.sha256(data.encode()).hexdigest())


def examples(inputs: Any) -> list[Example]:
    """Every example of ``inputs`` (a list of examples or a pandas DataFrame), in order."""
    if type(inputs).__module__.startswith("pandas") and hasattr(inputs, "to_json"):
        # Through JSON, so that numpy values become plain Python ones.
        inputs = json.loads(inputs.to_json(orient="records", date_format="iso"))
    if isinstance(inputs, str | bytes | dict) or not isinstance(inputs, Iterable):
        raise ExperimentError(
            f"inputs must be a list of examples (dicts, pydantic models) or a pandas "
            f"DataFrame, not {type(inputs).__name__}."
        )
    found = [example(value, position) for position, value in enumerate(inputs)]
    if not found:
        raise ExperimentError(
            "inputs is empty: an experiment over inputs needs at least one example."
        )
    return found


def _keywords(fn: Callable[..., Any], value: Any, given: int) -> dict[str, Any] | None:
    """The example's keys ``fn`` takes as keyword arguments, or None when it takes
    the example whole (its parameters are not among the keys)."""
    if not isinstance(value, dict):
        return None
    try:
        parameters = list(inspect.signature(fn).parameters.values())[given:]
    except (TypeError, ValueError):
        return None
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind is p.VAR_KEYWORD for p in parameters) and not named:
        return dict(value)
    required = [p.name for p in named if p.default is p.empty]
    if not named or not all(name in value for name in required):
        return None
    if not any(p.name in value for p in named):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return dict(value)
    return {p.name: value[p.name] for p in named if p.name in value}


def call_with(fn: Callable[..., Any], value: Any, args: Any, kwargs: Any) -> Any:
    """Call ``fn`` on an example: ``fn(**example)`` when its parameters are keys of
    the example (keys it does not take are left out, so a program taking
    ``question`` runs on ``{"question": …, "answer": …}``), else ``fn(example)``;
    ``args`` and ``kwargs`` follow."""
    keywords = _keywords(fn, value, len(args))
    if keywords is not None:
        return fn(*args, **keywords, **kwargs)
    return fn(value, *args, **kwargs)
