"""Python values as plain JSON data: the one rule shared by results, examples and knobs."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any


def as_data(value: Any) -> Any:
    """A pydantic model or a dataclass instance as a dict; anything else unchanged."""
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)``: models, dataclasses, sets and tuples as JSON data;
    anything else is a TypeError."""
    data = as_data(value)
    if data is not value:
        return data
    if isinstance(value, MappingProxyType):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters, for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
