"""Process-wide settings that are not about the log file: the default model of typed
functions and the response cache. :func:`configure` sets them, and the log's path,
in one call."""

from __future__ import annotations

import os
from typing import Any, Literal

from . import store

MODEL_ENV_VAR = "PROMPTLOG_MODEL"

_UNSET: Any = object()
_model_name: str | None = None
_cache: bool | Literal["refresh"] = False


def configure(db_path: Any = _UNSET, *, model_name: Any = _UNSET, cache: Any = _UNSET) -> None:
    """Set where the log is written and which model typed functions use by default.

    ``promptlog.configure(db_path="runs.db")`` logs there from now on (``PROMPTLOG_DB``
    still wins; ``None`` goes back to the default). ``promptlog.configure(
    model_name="gpt-4o-mini")`` is the model of every ``@llm_function`` given none
    (``PROMPTLOG_MODEL`` still wins). ``promptlog.configure(cache=True)`` answers
    repeated requests from the response cache (``"refresh"``: call the model and
    replace the entry); a bot's or experiment's own ``cache=`` wins. A setting left
    out is left as it is; ``configure()`` alone resets the log's path, as it always has.
    """
    global _model_name, _cache
    if cache is not _UNSET:
        _cache = check_cache_mode(cache, "promptlog.configure") or False
    if model_name is not _UNSET:
        if model_name is not None and (not isinstance(model_name, str) or not model_name):
            raise ValueError(f"model_name must be a model's name or None, not {model_name!r}.")
        _model_name = model_name
    if db_path is not _UNSET or (model_name is _UNSET and cache is _UNSET):
        store.configure(None if db_path is _UNSET else db_path)


def model_name() -> str | None:
    """The default model of typed functions: ``PROMPTLOG_MODEL``, else
    :func:`configure`'s, else None."""
    return os.environ.get(MODEL_ENV_VAR) or _model_name


def cache_mode() -> bool | Literal["refresh"]:
    """The response cache's mode where neither bot nor experiment sets one: off
    unless :func:`configure` turned it on."""
    return _cache


def check_cache_mode(value: Any, where: str, error: type[Exception] = ValueError) -> Any:
    """``value`` as a cache mode (None: not set here), or ``error`` naming ``where``
    it was passed."""
    if value is None or value is True or value is False or value == "refresh":
        return value
    raise error(
        f"{where}: cache={value!r} is not a cache mode: pass True (reuse replies), "
        f"False (call the model every time) or \"refresh\" (call it and replace the entry)."
    )
