"""The stand-in for the writer in a process that executes runs for an experiment
started elsewhere: it keeps every record in memory, to be sent back with the
execution's result and written by the one writer of the process that started it.

    recorder = Recorder(shipped_cache=entries)
    run = RunContext(run_id, experiment_id, index, recorder)   # records land here

It never opens the log. Prompt versions are kept as (name, role, template, hash)
under provisional ids (negative, so that they can never pass for a row's id); the
process that writes the log registers them and puts the real ids in their place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ExecutorError
from .records import CachedReply, CacheEntry, Record, as_json


@dataclass(frozen=True, slots=True)
class ShippedVersion:
    """A prompt version used by a run on another process, to be registered by the
    process that writes the log."""

    name: str
    role: str
    template: str
    hash: str


# Provisional ids, per process: a message rendered once (at import, say) keeps its
# version's id across the executions that send it.
_provisional: dict[tuple[str, str], int] = {}
_shipped: dict[int, ShippedVersion] = {}
_provisional_lock = threading.Lock()


@dataclass
class Recorder:
    """Collects the records of one execution (see the module's docstring).

    ``shipped_cache``: the response cache entries sent along by the process that
    owns the log, by key; the entries this execution keeps are seen too."""

    shipped_cache: Mapping[str, CachedReply] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    pending_cache: dict[str, CacheEntry] = field(default_factory=dict)

    def put(self, record: Record) -> None:
        self.records.append(record)

    def check(self) -> None:
        """Nothing can fail here: the records are written, or not, by the coordinator."""

    def flush(self, timeout: float | None = None) -> None:
        """Nothing to wait for: the records go back with the execution's result."""

    def call(self, fn: Callable[..., Any]) -> Any:
        raise ExecutorError(
            "A write that reads the log first cannot run on a worker of an executor; "
            "only the process that started the experiment opens the log."
        )

    def register_prompt_version(
        self, name: str, role: str, template: str, hash_: str
    ) -> dict[str, Any]:
        """A ``prompt_versions`` row for (name, hash) under a provisional id."""
        found = _provisional.get((name, hash_))
        if found is None:
            with _provisional_lock:
                found = _provisional.get((name, hash_))
                if found is None:
                    found = -1 - len(_provisional)
                    _shipped[found] = ShippedVersion(name, role, template, hash_)
                    _provisional[(name, hash_)] = found
        # The version number is the coordinator's to give; 0 until then.
        return {"id": found, "name": name, "role": role, "template": template,
                "hash": hash_, "version": 0, "created_at": ""}

    def shipped_versions(self, ids: Iterable[int]) -> dict[int, ShippedVersion]:
        """The prompt versions behind the provisional ids among ``ids``."""
        return {version: _shipped[version] for version in ids if version in _shipped}

    def lookup(self, key: str) -> CachedReply | None:
        """The reply kept under ``key``: in this execution, or among the shipped entries."""
        pending = self.pending_cache.get(key)
        if pending is not None:
            return CachedReply(
                pending.response_text, as_json(pending.response_parsed), pending.input_tokens,
                pending.output_tokens, pending.cost,
            )
        return self.shipped_cache.get(key)
