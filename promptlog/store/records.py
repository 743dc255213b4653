"""What is written to the log: one small record per event, and one typed
function per record, so that each table's columns are known here and nowhere
else.

The functions hand a record to the :class:`~promptlog.store.writers.Writer`; it
commits everything waiting in one transaction. Values are turned into SQL
parameters (and JSON) on the writer's thread, not on the caller's::

    store.log_call(writer, id=store.new_id(), run_id=None, bot_name="namer", ...)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol


class Writer(Protocol):
    """Where the typed functions put their records: the file's writer thread
    (:class:`~promptlog.store.writers.Writer`)."""

    def put(self, record: Record) -> None: ...


_encode_json = json.JSONEncoder(default=str, ensure_ascii=False).encode


def as_json(value: Any) -> str | None:
    """A JSON column's value as text (None and text pass as they are)."""
    return value if value is None or isinstance(value, str) else _encode_json(value)


def _length(text: Any) -> int:
    return len(text) if isinstance(text, str) else 0


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(value: Any, json_text: bool = False) -> Any:
    """``value`` with every lone surrogate (text that UTF-8, so SQLite, cannot hold)
    written as the characters ``\\udXXX``, in its strings, keys and items.
    ``json_text``: the string is JSON, where that backslash is escaped in turn."""
    if isinstance(value, str):
        slash = "\\\\" if json_text else "\\"
        return _SURROGATE.sub(lambda found: f"{slash}u{ord(found.group()):04x}", value)
    if isinstance(value, dict):
        return {_escape(key): _escape(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escape(item) for item in value]
    return value


def escaped(record: Record) -> Record:
    """A copy of ``record`` that SQLite can store: lone surrogates escaped (see
    :func:`_escape`). Used only for a batch that failed on one."""
    if isinstance(record, Together):
        return Together(tuple(escaped(item) for item in record.records), record.size)
    values = []
    for field in fields(record):
        value = getattr(record, field.name)
        json_text = field.name in record.JSON_FIELDS and (
            field.name != "result" or getattr(record, "result_format", None) == "json"
        )
        values.append(_escape(value, json_text and isinstance(value, str)))
    return type(record)(*values)


# Every record keeps ``size``: an estimate of the memory it holds while queued
# (the lengths of its larger texts), for the writer's bound in bytes.


@dataclass(slots=True)
class ExperimentStart:
    id: str
    name: str
    num_executions: int
    max_workers: int | None
    metadata: Any
    environment: Any
    process: str
    created_at: str
    inputs: str | None = None
    repeats: int | None = None
    kind: str = "experiment"
    parent_id: str | None = None
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ("metadata", "environment")
    SQL: ClassVar[str] = (
        "INSERT INTO experiments (id, name, status, num_executions, max_workers, metadata, "
        "environment, process, created_at, finished_at, inputs, repeats, kind, parent_id, "
        "outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def params(self, end: ExperimentEnd | None) -> tuple[Any, ...]:
        """The row, with the experiment's end when it came in the same batch."""
        num_executions = self.num_executions
        if end is not None and end.num_executions is not None:
            num_executions = end.num_executions
        return (
            self.id, self.name, end.status if end else "running", num_executions,
            self.max_workers, as_json(self.metadata), as_json(self.environment), self.process,
            self.created_at, end.finished_at if end else None, self.inputs, self.repeats,
            self.kind, self.parent_id, as_json(end.outcome) if end else None,
        )


@dataclass(slots=True)
class ExperimentEnd:
    id: str
    status: str
    finished_at: str
    outcome: Any = None
    num_executions: int | None = None
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ("outcome",)
    SQL: ClassVar[str] = (
        "UPDATE experiments SET status = ?, finished_at = ?, outcome = COALESCE(?, outcome), "
        "num_executions = COALESCE(?, num_executions) WHERE id = ?"
    )

    def params(self) -> tuple[Any, ...]:
        return (self.status, self.finished_at, as_json(self.outcome), self.num_executions,
                self.id)


@dataclass(slots=True)
class Example:
    id: str
    data: Any
    created_at: str
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ("data",)
    # Content-addressed: the same example in two experiments is one row.
    SQL: ClassVar[str] = (
        "INSERT INTO examples (id, data, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO NOTHING"
    )

    def params(self) -> tuple[Any, ...]:
        return (self.id, as_json(self.data), self.created_at)


@dataclass(slots=True)
class RunStart:
    id: str
    experiment_id: str
    execution_index: int
    started_at: str
    process: str
    example_id: str | None = None
    repeat_index: int | None = None
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ()
    SQL: ClassVar[str] = (
        "INSERT INTO runs (id, experiment_id, execution_index, example_id, repeat_index, "
        "status, started_at, process, ended_at, duration_s, result, result_format, "
        "error_type, error_message, traceback, hyperparameters) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def params(self, end: RunEnd | None) -> tuple[Any, ...]:
        """The row, with the run's end when it came in the same batch."""
        start = (self.id, self.experiment_id, self.execution_index, self.example_id,
                 self.repeat_index)
        if end is None:
            return (*start, "running", self.started_at, self.process,
                    None, None, None, None, None, None, None, "{}")
        return (*start, end.status, self.started_at, self.process, *end.values())


@dataclass(slots=True)
class RunEnd:
    """A run's final state: its status, result, error, hyperparameters and the
    prompt versions it used, written in one transaction (a crash keeps all of it
    or none)."""

    id: str
    status: str
    ended_at: str
    duration_s: float | None
    result: str | None
    result_format: str | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    hyperparameters: Any
    prompt_version_ids: tuple[int, ...]
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ("result", "hyperparameters")  # result: if JSON
    SQL: ClassVar[str] = (
        "UPDATE runs SET ended_at = ?, duration_s = ?, result = ?, result_format = ?, "
        "error_type = ?, error_message = ?, traceback = ?, hyperparameters = ?, status = ? "
        "WHERE id = ?"
    )
    # A run's end may come twice (Ctrl-C marks it, then its thread finishes it).
    LINK_SQL: ClassVar[str] = (
        "INSERT INTO run_prompt_versions (run_id, prompt_version_id) VALUES (?, ?) "
        "ON CONFLICT DO NOTHING"
    )

    def values(self) -> tuple[Any, ...]:
        return (
            self.ended_at, self.duration_s, self.result, self.result_format, self.error_type,
            self.error_message, self.traceback, as_json(self.hyperparameters) or "{}",
        )

    def params(self) -> tuple[Any, ...]:
        return (*self.values(), self.status, self.id)

    def links(self) -> list[tuple[Any, ...]]:
        return [(self.id, version) for version in self.prompt_version_ids]


@dataclass(slots=True)
class Call:
    """One attempt of an LLM call, and the prompt versions of its messages."""

    id: str
    run_id: str | None
    bot_name: str
    bot_class: str
    model: str
    parameters: Any
    messages: list[dict[str, Any]]
    response_text: str | None
    response_parsed: Any
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    latency_s: float | None
    status: str
    error: str | None
    attempt: int
    created_at: str
    cached: bool
    saved_cost: float | None
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ("parameters", "messages", "response_parsed")
    SQL: ClassVar[str] = (
        "INSERT INTO calls (id, run_id, bot_name, bot_class, model, parameters, messages, "
        "response_text, response_parsed, input_tokens, output_tokens, cost, latency_s, "
        "status, error, attempt, created_at, cached, saved_cost) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    LINK_SQL: ClassVar[str] = (
        "INSERT INTO call_prompt_versions (call_id, position, prompt_version_id) "
        "VALUES (?, ?, ?)"
    )

    def params(self) -> tuple[Any, ...]:
        return (
            self.id, self.run_id, self.bot_name, self.bot_class, self.model,
            as_json(self.parameters), as_json(self.messages), self.response_text,
            as_json(self.response_parsed), self.input_tokens, self.output_tokens, self.cost,
            self.latency_s, self.status, self.error, self.attempt, self.created_at,
            int(self.cached), self.saved_cost,
        )

    def links(self) -> list[tuple[Any, ...]]:
        return [
            (self.id, position, message["prompt_version_id"])
            for position, message in enumerate(self.messages)
            if message.get("prompt_version_id") is not None
        ]


@dataclass(slots=True)
class Metric:
    run_id: str
    name: str
    value: float
    kind: str
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ()
    SQL: ClassVar[str] = "INSERT INTO metrics (run_id, name, value, kind) VALUES (?, ?, ?, ?)"

    def params(self) -> tuple[Any, ...]:
        return (self.run_id, self.name, self.value, self.kind)


@dataclass(slots=True)
class CacheEntry:
    """A reply kept in the response cache under the hash of its request; a new
    reply for the same key (``cache="refresh"``) replaces the old one."""

    key: str
    model: str
    response_text: str | None
    response_parsed: Any
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    created_at: str
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ("response_parsed",)
    SQL: ClassVar[str] = (
        "INSERT INTO cache (key, model, response_text, response_parsed, input_tokens, "
        "output_tokens, cost, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET model = excluded.model, "
        "response_text = excluded.response_text, response_parsed = excluded.response_parsed, "
        "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
        "cost = excluded.cost, created_at = excluded.created_at, hits = 0, last_hit_at = NULL"
    )

    def params(self) -> tuple[Any, ...]:
        return (
            self.key, self.model, self.response_text, as_json(self.response_parsed),
            self.input_tokens, self.output_tokens, self.cost, self.created_at,
        )


@dataclass(frozen=True, slots=True)
class CachedReply:
    """What a cache entry keeps of a reply. ``response_parsed`` is JSON text."""

    response_text: str | None
    response_parsed: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None


@dataclass(slots=True)
class CacheHit:
    """A call answered from the cache entry ``key``."""

    key: str
    at: str
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ()
    SQL: ClassVar[str] = (
        "UPDATE cache SET hits = hits + 1, last_hit_at = max(coalesce(last_hit_at, ''), ?) "
        "WHERE key = ?"
    )

    def params(self) -> tuple[Any, ...]:
        return (self.at, self.key)


@dataclass(slots=True)
class Together:
    """Records written in one transaction, whatever else is waiting: a run that
    executed in another process, shipped back whole (see :func:`put_together`)."""

    records: tuple[Record, ...]
    size: int = 0

    JSON_FIELDS: ClassVar[tuple[str, ...]] = ()


Record = (
    ExperimentStart
    | ExperimentEnd
    | Example
    | RunStart
    | RunEnd
    | Call
    | Metric
    | CacheEntry
    | CacheHit
    | Together
)


# --- the typed write functions -------------------------------------------------


def start_experiment(
    writer: Writer,
    *,
    id: str,
    name: str,
    num_executions: int,
    max_workers: int | None,
    metadata: Any,
    environment: Any,
    process: str,
    created_at: str,
    inputs: str | None = None,
    repeats: int | None = None,
    kind: str = "experiment",
    parent_id: str | None = None,
) -> None:
    """An experiment begins (status ``running``); ``inputs`` is the hash of its
    examples' ids in order, for an experiment over inputs; ``kind`` is
    ``experiment`` or ``optimisation``; ``parent_id`` the optimisation it belongs to."""
    writer.put(ExperimentStart(id, name, num_executions, max_workers, metadata, environment,
                               process, created_at, inputs, repeats, kind, parent_id,
                               100 + len(name)))


def finish_experiment(
    writer: Writer, id: str, *, status: str, finished_at: str, outcome: Any = None,
    num_executions: int | None = None,
) -> None:
    """An experiment ends; an optimisation records its ``outcome`` (JSON), an
    open-ended experiment the ``num_executions`` it ran."""
    text = as_json(outcome)
    writer.put(ExperimentEnd(id, status, finished_at, text, num_executions, _length(text)))


def record_example(writer: Writer, *, id: str, data: Any, created_at: str) -> None:
    """An example an experiment runs on, keyed by the hash of its canonical JSON
    (``data``: that JSON text); written once however many experiments use it."""
    writer.put(Example(id, data, created_at, _length(data)))


def start_run(
    writer: Writer, *, id: str, experiment_id: str, execution_index: int, started_at: str,
    process: str, example_id: str | None = None, repeat_index: int | None = None,
) -> None:
    """A run begins (status ``running``), on its example and repeat when the
    experiment has inputs."""
    writer.put(RunStart(id, experiment_id, execution_index, started_at, process, example_id,
                        repeat_index))


def finish_run(
    writer: Writer,
    id: str,
    *,
    status: str,
    ended_at: str,
    duration_s: float | None = None,
    result: str | None = None,
    result_format: str | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    traceback: str | None = None,
    hyperparameters: Any = None,
    prompt_version_ids: Iterable[int] = (),
) -> None:
    """A run ends: its final state and the prompt versions it used, one record."""
    writer.put(RunEnd(
        id, status, ended_at, duration_s, result, result_format, error_type, error_message,
        traceback, hyperparameters, tuple(prompt_version_ids),
        _length(result) + _length(error_message) + _length(traceback),
    ))


def log_call(
    writer: Writer,
    *,
    id: str,
    run_id: str | None,
    bot_name: str,
    bot_class: str,
    model: str,
    parameters: Any,
    messages: list[dict[str, Any]],
    response_text: str | None,
    response_parsed: Any,
    input_tokens: int | None,
    output_tokens: int | None,
    cost: float | None,
    latency_s: float | None,
    status: str,
    error: str | None,
    attempt: int,
    created_at: str,
    cached: bool = False,
    saved_cost: float | None = None,
) -> None:
    """One attempt of an LLM call. ``messages`` are dicts of ``role``, ``content``
    and ``prompt_version_id``; each message's prompt version is linked. A call
    answered from the response cache is ``cached``, with the ``saved_cost`` of the
    reply it reused (its own ``cost`` is 0)."""
    size = 200 + 2 * _length(response_text) + _length(error)  # parsed: about the text again
    for message in messages:
        size += _length(message.get("content"))
    writer.put(Call(
        id, run_id, bot_name, bot_class, model, parameters, messages, response_text,
        response_parsed, input_tokens, output_tokens, cost, latency_s, status, error, attempt,
        created_at, cached, saved_cost, size,
    ))


def record_metric(writer: Writer, run_id: str, name: str, value: float, kind: str) -> None:
    """A run's value of the metric ``name`` (``kind``: bool, int or float)."""
    writer.put(Metric(run_id, name, value, kind))


def put_cache_entry(
    writer: Writer,
    *,
    key: str,
    model: str,
    response_text: str | None,
    response_parsed: Any,
    input_tokens: int | None,
    output_tokens: int | None,
    cost: float | None,
    created_at: str,
) -> None:
    """Keep a reply in the response cache under ``key`` (replacing an older one)."""
    entry = CacheEntry(
        key, model, response_text, response_parsed, input_tokens, output_tokens, cost,
        created_at, 100 + 2 * _length(response_text),
    )
    # Seen by a lookup at once, before the writer commits it (see store.cache).
    pending = getattr(writer, "pending_cache", None)
    if pending is not None:
        pending[key] = entry
    writer.put(entry)


def record_cache_hit(writer: Writer, key: str, at: str) -> None:
    """Count a call answered from the cache entry ``key``."""
    writer.put(CacheHit(key, at))


def put_together(writer: Writer, records: Iterable[Record]) -> None:
    """Write ``records`` in one transaction: all of them or, after a crash, none."""
    kept = tuple(records)
    writer.put(Together(kept, sum(record.size for record in kept)))
