"""Knobs: everything an optimiser may change, overridden in a context and recorded
on every run.

    with promptlog.overrides({namer_user: {"template": "Name this job: {{ job_description }}"}}):
        namer_user("…")          # renders the new template, logged as a new version

    with promptlog.overrides({"top_k": 5}):
        k = promptlog.hyperparameter("top_k", 3)      # 5, recorded on the current run

A knob belongs to a prompt (its ``template``), a typed function (its template,
demos, model and other bot options) or is a hyperparameter the user declares.
Prompts and functions :func:`register` themselves when they are defined, so an
override can name them by full name (``module.qualname``), by a shorter dotted
suffix of it where no other registered name shares it, or by the object itself.

Overrides come in layers: a process-wide base (:func:`load_overrides`, for a tuned
prompt in production) beneath those entered with :func:`overrides`, which nest, the
innermost winning knob by knob. They live in a context variable, so each thread or
execution sees its own, and work handed to another thread through
``contextvars.copy_context().run`` (as experiments do) keeps them.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from ._plain import json_default
from .context import (
    RunContext,
    current_overrides,
    current_run,
    reset_overrides,
    set_overrides,
)
from .errors import KnobError
from .redaction import _mask

T = TypeVar("T")

HYPERPARAMETER = "hyperparameter"
_VALUE = "value"  # a hyperparameter is an entry with this one knob
_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Checks (and may normalise) one entry's knob overrides before they take effect.
Check = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str
    knobs: frozenset[str]
    check: Check | None = None


_entries: dict[str, _Entry] = {}
_owners: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_strong_owners: dict[int, tuple[Any, str]] = {}  # owners that take no weak reference
_lock = threading.RLock()

# The process-wide base layer (load_overrides): name -> knob -> value. Keys loaded
# before their prompt or hyperparameter is defined wait in _pending until it is.
_base: dict[str, Mapping[str, Any]] = {}
_pending: dict[str, Any] = {}


def register(
    name: str,
    owner: object,
    *,
    kind: str,
    knobs: Collection[str],
    check: Check | None = None,
) -> None:
    """Make ``owner`` (a prompt, a typed function…) overridable as ``name``.

    ``kind`` names what it is in messages ("prompt", "function"); ``knobs`` are
    the knobs an override may set. ``check``, if given, is called with an
    override's knobs when it is entered and raises :class:`KnobError` for a value
    the owner cannot take; it may return the knobs normalised, to be used instead.
    Registering a name again (a cell run twice in a notebook) replaces it.
    """
    entry = _Entry(name, kind, frozenset(knobs), check)
    with _lock:
        _entries[name] = entry
        if owner is not None:
            try:
                _owners[owner] = name
            except TypeError:
                _strong_owners[id(owner)] = (owner, name)
        waiting = _pending.pop(name, None)
        if waiting is not None:
            _base[name] = MappingProxyType(_knobs_for(entry, waiting))


def active(name: str) -> Mapping[str, Any]:
    """The knob overrides in force for the prompt or function ``name`` here (an
    empty mapping when there are none), noted on the current run if any."""
    layer = current_overrides()
    found = layer.get(name) if layer is not None else None
    if _base:
        base = _base.get(name)
        if base is not None:
            found = base if found is None else {**base, **found}
    if found is None:
        return _EMPTY
    run = current_run()
    if run is not None:
        run.note_overrides(name, found)
    return found


def hyperparameter(name: str, default: T) -> T:
    """Declare a hyperparameter and return its value here: the override in force
    for ``name`` (see :func:`overrides`), else ``default``. The value is recorded
    on the current run and shown as a column of ``promptlog.open().runs()``.

        top_k = promptlog.hyperparameter("top_k", 3)
    """
    entry = _entries.get(name)
    if entry is None or entry.kind != HYPERPARAMETER:
        if not isinstance(name, str) or not name.strip():
            raise KnobError(f"A hyperparameter's name must be a non-empty string, not {name!r}.")
        if entry is not None:
            raise KnobError(
                f"{name!r} is already the name of a {entry.kind}; give the hyperparameter "
                f"another name."
            )
        register(name, None, kind=HYPERPARAMETER, knobs=(_VALUE,))
    layer = current_overrides()
    found = layer.get(name) if layer is not None else None
    if found is None and _base:
        found = _base.get(name)
    value = found[_VALUE] if found is not None else default
    run = current_run()
    if run is not None:
        run.note_hyperparameter(name, value)
    return value


# --- resolving keys --------------------------------------------------------------


def _known(kind: str | None = None) -> str:
    names = sorted(n for n, e in list(_entries.items()) if kind is None or e.kind == kind)
    if not names:
        return "nothing is registered yet (prompts and functions register when defined)"
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return f"known: {shown}"


def _resolve(key: object) -> _Entry:
    """The entry a key of an overrides mapping names: a full name, a dotted suffix of
    one that no other shares, or a registered object."""
    if isinstance(key, str):
        entry = _entries.get(key) or _by_suffix(key)
        if entry is not None:
            return entry
        raise KnobError(
            f"Override key {key!r} names no registered prompt, function or hyperparameter; "
            f"{_known()}. Declare a hyperparameter with promptlog.hyperparameter({key!r}, "
            f"default) before overriding it."
        )
    with _lock:
        try:
            name = _owners.get(key)
        except TypeError:
            name = None
        if name is None:
            held = _strong_owners.get(id(key))
            name = held[1] if held is not None and held[0] is key else None
    if name is None or name not in _entries:
        raise KnobError(f"Override key {key!r} is not a registered prompt or function; {_known()}.")
    return _entries[name]


def _by_suffix(key: str) -> _Entry | None:
    """The one entry whose full name ends with ``.key``; None if none does."""
    matches = sorted(name for name in list(_entries) if name.endswith("." + key))
    if len(matches) > 1:
        raise KnobError(
            f"Override key {key!r} is ambiguous: it could be {', '.join(matches)}. "
            f"Use the full name."
        )
    return _entries[matches[0]] if matches else None


def _knobs_for(entry: _Entry, value: Any) -> dict[str, Any]:
    """The checked knobs an override of ``entry`` sets: ``{"value": v}`` for a
    hyperparameter, else the dict given, its knobs known to the entry."""
    if entry.kind == HYPERPARAMETER:
        return {_VALUE: value}
    if not isinstance(value, Mapping):
        raise KnobError(
            f"Overrides of {entry.kind} {entry.name} must be a dict of its knobs "
            f"({', '.join(sorted(entry.knobs))}), not {type(value).__name__}: "
            f"{{{entry.name!r}: {{'{min(entry.knobs)}': …}}}}."
        )
    unknown = sorted(map(str, set(value) - entry.knobs))
    if unknown:
        raise KnobError(
            f"{entry.kind.capitalize()} {entry.name} has no knob {unknown[0]!r}; its knobs "
            f"are {', '.join(sorted(entry.knobs))}."
        )
    knobs = dict(value)
    if entry.check is not None:
        checked = entry.check(knobs)
        if checked is not None:
            knobs = dict(checked)
    return knobs


def resolve(mapping: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """``mapping`` checked, keyed by full name, each value a dict of knobs (a
    hyperparameter's ``{"value": v}``). Raises :class:`KnobError` for an unknown or
    ambiguous key, an unknown knob, or a value its owner cannot take."""
    if not isinstance(mapping, Mapping):
        raise KnobError(
            f"Overrides are a dict of prompt, function or hyperparameter -> knobs, not "
            f"{type(mapping).__name__}."
        )
    resolved: dict[str, dict[str, Any]] = {}
    for key, value in mapping.items():
        entry = _resolve(key)
        resolved.setdefault(entry.name, {}).update(_knobs_for(entry, value))
    return resolved


def _public(resolved: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Resolved overrides as a user writes them: a hyperparameter's value bare."""
    return {
        name: knobs[_VALUE] if _is_hyperparameter(name) else dict(knobs)
        for name, knobs in resolved.items()
    }


def _is_hyperparameter(name: str) -> bool:
    entry = _entries.get(name)
    return entry is not None and entry.kind == HYPERPARAMETER


# --- entering overrides ----------------------------------------------------------


def push(resolved: Mapping[str, Mapping[str, Any]]) -> Any:
    """Enter resolved overrides (see :func:`resolve`) in this context, over those
    already in force; return the token that :func:`pop` takes to leave them. They
    are noted on the current run, if there is one."""
    outer = current_overrides()
    layer: dict[str, Mapping[str, Any]] = dict(outer) if outer else {}
    for name, knobs in resolved.items():
        below = layer.get(name)
        layer[name] = MappingProxyType({**below, **knobs} if below else dict(knobs))
    run = current_run()
    if run is not None:
        note(run, resolved)
    return set_overrides(layer)


def pop(token: Any) -> None:
    """Leave the overrides entered by the :func:`push` that returned ``token``."""
    reset_overrides(token)


def note(run: RunContext, resolved: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Record overrides on ``run``: ``resolved``, or those entered in this context."""
    if resolved is None:
        resolved = current_overrides() or {}
    for name, knobs in resolved.items():
        if _is_hyperparameter(name):
            run.note_hyperparameter(name, knobs[_VALUE])
        else:
            run.note_overrides(name, knobs)


@contextmanager
def overrides(mapping: Mapping[Any, Any]) -> Iterator[dict[str, Any]]:
    """Override knobs for the code in the ``with`` block (and threads it starts
    through ``contextvars.copy_context().run``, as experiments do)::

        with promptlog.overrides({
            namer_user: {"template": "Name this job: {{ job_description }}"},
            "top_k": 5,                     # a declared hyperparameter
        }):
            ...

    Keys are prompts or functions (the object, its full ``module.qualname``, or a
    dotted suffix of that no other shares) mapped to a dict of their knobs, or a
    declared hyperparameter's name mapped to its value. Blocks nest, the inner one
    winning knob by knob. An unknown or ambiguous key, an unknown knob or a
    template whose variables the prompt does not take raises :class:`KnobError`
    on entry. The block gets the overrides keyed by full name.
    """
    resolved = resolve(mapping)
    token = push(resolved)
    try:
        yield _public(resolved)
    finally:
        pop(token)


# --- saving and loading ----------------------------------------------------------


def _to_jsonable_or_repr(value: Any) -> Any:
    try:
        return json_default(value)
    except TypeError:
        return repr(value)


def jsonable(value: Any, *, strict: bool = True) -> Any:
    """``value`` as plain JSON data (pydantic models and dataclasses as dicts);
    anything else raises TypeError, or with ``strict=False`` becomes its repr."""
    default = json_default if strict else _to_jsonable_or_repr
    return json.loads(json.dumps(value, default=default, ensure_ascii=False))


def save_overrides(mapping: Mapping[Any, Any], path: str | os.PathLike[str]) -> Path:
    """Write overrides to a JSON file, keyed by full name, for :func:`load_overrides`
    (e.g. the template an optimiser found, to use in production). Returns the path."""
    try:
        data = jsonable(_public(resolve(mapping)))
    except (TypeError, ValueError) as e:
        raise KnobError(f"Overrides cannot be saved as JSON: {e}.") from None
    target = Path(path).expanduser()
    target.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def load_overrides(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Apply the overrides saved in a JSON file for the rest of the process, beneath
    any entered with :func:`overrides`, and return them.

    Keys are full names (as :func:`save_overrides` writes them). A key may name a
    prompt, function or hyperparameter not defined yet (the file is often loaded
    before the modules that define them are imported): it takes effect, and is
    checked, when that is defined. Loading another file adds to these, the later
    file winning.
    """
    source = Path(path).expanduser()
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as e:
        raise KnobError(f"Cannot read overrides from {source}: {e.strerror or e}.") from None
    except ValueError as e:
        raise KnobError(f"{source} is not a JSON file of overrides: {e}.") from None
    if not isinstance(data, dict):
        raise KnobError(f"{source} holds {type(data).__name__}, not a JSON object of overrides.")
    return apply_overrides(data)


def apply_overrides(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Apply overrides keyed by full name for the rest of the process, beneath any
    entered with :func:`overrides` (as :func:`load_overrides` does with a file's), and
    return them. A key naming nothing defined yet waits until it is."""
    with _lock:
        for key, value in mapping.items():
            entry = _entries.get(key) or _by_suffix(key)
            if entry is None:
                _pending[key] = value
            else:
                _base[entry.name] = MappingProxyType(_knobs_for(entry, value))
    return dict(mapping)


def recorded(run: RunContext) -> dict[str, Any]:
    """What a finished run records of its knobs, for its hyperparameters: the declared
    hyperparameters' values (``declared``) and the overrides applied (``overrides``),
    each present only when there are some."""
    found: dict[str, Any] = {}
    # Values named like secrets (an api_key among a function's options) are masked,
    # as an experiment's metadata is.
    if run.declared:
        found["declared"] = _mask(jsonable(run.declared, strict=False))
    if run.overrides:
        found["overrides"] = {
            name: _mask(knobs) for name, knobs in jsonable(run.overrides, strict=False).items()
        }
    return found
