"""Traces: what a program's typed functions were called with and replied, per run.

An optimiser reads them two ways. Runs it makes itself are traced as they happen
(a :class:`TraceBook` set as the typed functions' tracer in the context its runs
start from); calls already in the log are read back from their messages
(:func:`from_log`), so a passing run logged by anyone is a source of demos.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .. import functions, knobs
from ..context import current_run
from ..functions import LLMFunction


@dataclass(frozen=True)
class Trace:
    """One call of a typed function: its full name, inputs and output as JSON data
    (and its reasoning, for a function with ``reasoning=True``)."""

    function: str
    inputs: dict[str, Any]
    output: Any
    reasoning: str | None = None

    def demo(self) -> dict[str, Any]:
        """The call as a demo, ``{"inputs": …, "output": …}``, for the ``demos`` knob."""
        found: dict[str, Any] = {"inputs": dict(self.inputs), "output": self.output}
        if self.reasoning is not None:
            found["reasoning"] = self.reasoning
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, **self.demo()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        return cls(data["function"], data["inputs"], data["output"], data.get("reasoning"))


class TraceBook:
    """Collects the typed-function calls of the runs started in its context, by run id,
    and the functions seen (``functions``: full name -> function)."""

    def __init__(self) -> None:
        self.functions: dict[str, LLMFunction] = {}
        self._by_run: dict[str | None, list[Trace]] = {}
        self._lock = threading.Lock()

    def __call__(self, function: LLMFunction, inputs: dict[str, Any], value: Any) -> None:
        reasoning = None
        if function.reasoning:
            reasoning = getattr(value, "reasoning", None)
            value = getattr(value, "return_value", value)
        trace = Trace(
            function.name,
            knobs.jsonable(inputs, strict=False),
            knobs.jsonable(value, strict=False),
            reasoning,
        )
        run = current_run()
        with self._lock:
            self.functions.setdefault(function.name, function)
            self._by_run.setdefault(run.id if run is not None else None, []).append(trace)

    def take(self, run_id: str | None) -> list[Trace]:
        """The traces of one run, in call order, forgotten here."""
        with self._lock:
            return self._by_run.pop(run_id, [])

    @contextmanager
    def tracing(self) -> Iterator[TraceBook]:
        """Trace the typed functions called in this ``with`` block (and the runs and
        threads started from it)."""
        token = functions.set_tracer(self)
        try:
            yield self
        finally:
            functions.reset_tracer(token)


def from_log(
    log: Any, function: LLMFunction, metric: str, passes: Any
) -> list[tuple[str, dict[str, Any]]]:
    """``(example id or run id, demo)`` for each call of ``function`` in the log whose
    run's ``metric`` value ``passes`` (a predicate), oldest first: the inputs read
    back from the message it sent (checked by rendering them again), the reply as the
    output. Calls whose inputs cannot be recovered are left out."""
    found = []
    for row in log.function_call_records(function.name, metric).dicts():
        if not passes(row["score"]):
            continue
        messages = row["messages"] or []
        users = [m for m in messages if m.get("role") == "user"]
        if not users:
            continue
        example = json.loads(row["example"]) if row["example"] else None
        demo = function.demo_from_call(
            row["version_text"],
            users[-1].get("content") or "",
            row["response_text"],
            row["response_parsed"],
            example,
        )
        if demo is not None:
            found.append((row["run_id"], demo))
    return found
