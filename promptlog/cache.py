"""The response cache: a reply kept under the hash of what determined it, so that
asking the same thing again costs no provider request.

Off unless asked for: ``Experiment(..., cache=True)``, ``SimpleBot(..., cache=True)``
(StructuredBot and typed functions take it among their bot options) or
``promptlog.configure(cache=True)``. ``cache="refresh"`` calls the provider and
replaces the entry.

The key is a ``sha256:`` hash of the model, the messages, the parameters that shape
the reply (the logged allow-list, so never an api key, header or credential in a
URL), the response format's schema, and the **sample index**: the run's repeat
index, else its execution index, else 0 outside experiments. So the repeats of an
experiment are distinct samples, and running the experiment again reuses them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from . import settings, store
from .context import current_run

CacheMode = bool | Literal["refresh"]
KEY_ALGORITHM = "sha256"
# Logged parameters that do not change the reply, left out of the key.
UNKEYED_PARAMETERS = frozenset({"timeout"})

_schemas: dict[Any, Any] = {}
_schemas_lock = threading.Lock()
_encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=repr).encode


def mode(own: CacheMode | None) -> CacheMode:
    """The cache mode of a call: the bot's own setting, else its experiment's, else
    :func:`promptlog.configure`'s (default off)."""
    if own is not None:
        return own
    run = current_run()
    if run is not None and run.cache is not None:
        return run.cache
    return settings.cache_mode()


def _sample_index() -> int:
    """Which sample of a request a call is: the run's repeat index when the run has
    one, else its execution index, else 0 outside experiments."""
    run = current_run()
    if run is None:
        return 0
    repeat = getattr(run, "repeat_index", None)
    return run.execution_index if repeat is None else int(repeat)


def _schema(value: Any) -> Any:
    """A parameter's value as the key sees it: a pydantic model class as its schema."""
    if not isinstance(value, type):
        return value
    schema = _schemas.get(value)
    if schema is None:
        make = getattr(value, "model_json_schema", None)
        schema = make() if make is not None else f"{value.__module__}.{value.__qualname__}"
        with _schemas_lock:
            _schemas[value] = schema
    return schema


def request_key(
    model: str,
    messages: Iterable[tuple[str, str]],
    parameters: Mapping[str, Any],
    sample: int,
) -> str:
    """The cache key of a request: ``sha256:`` of the model, the (role, content) of
    each message, the parameters that shape the reply, and the sample index."""
    shaping = {
        name: _schema(value) for name, value in parameters.items()
        if name not in UNKEYED_PARAMETERS
    }
    text = _encode([model, [list(m) for m in messages], shaping, sample])
    return f"{KEY_ALGORITHM}:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


def _time_stamp(when: str | datetime) -> str:
    """A date or time (naive: UTC) as the log's time stamps are written."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{when!r} is not a date: give one as 2025-01-31 or 2025-01-31T12:00."
            ) from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clear_cache(
    *, older_than: str | datetime | None = None, model: str | None = None
) -> int:
    """Delete response cache entries from the log and return how many: all of them,
    or those made before ``older_than`` (a date or time, UTC unless it says) and/or
    of ``model``. The calls logged stay as they are."""
    return store.cache.clear(
        older_than=None if older_than is None else _time_stamp(older_than), model=model
    )
