"""Prompt functions: Jinja2 templates in docstrings, hashed and versioned in the log.

    @prompt("user")
    def namer_user(job_description):
        \"\"\"Give me a name for a job that follows this description: {{ job_description }}.\"\"\"

Calling ``namer_user("…")`` renders the template and returns a :class:`Message`
carrying its :class:`PromptVersion`. The version is registered in the log on
first use in a process and cached after that.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import jinja2
import jinja2.meta
import jinja2.sandbox

from . import knobs, store
from .context import current_run
from .errors import (
    KnobError,
    PromptError,
    PromptNotFoundError,
    PromptTemplateError,
    PromptVariableError,
)

ROLES = ("system", "user", "assistant")
Role = Literal["system", "user", "assistant"]

# Sandboxed: a template is text that may come from anywhere (a notebook cell, an
# optimiser's proposal, a colleague's log), so it may read the values passed to it
# but never walk attributes such as ``__globals__`` to reach ``os`` or call unsafe
# methods.
_jinja = jinja2.sandbox.SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


@dataclass(frozen=True)
class PromptVersion:
    """One version of a prompt: its template and role, content-addressed by ``hash``."""

    id: int
    name: str
    role: str
    template: str
    hash: str
    version: int
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PromptVersion:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Message:
    """A chat message; ``prompt_version`` is set when a prompt function rendered it."""

    role: str
    content: str
    prompt_version: PromptVersion | None = None

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}

    def __str__(self) -> str:
        return self.content


def _normalise_template(docstring: str) -> str:
    """The template as a docstring means it: dedented, with lines of only spaces
    made empty and blank lines at either end dropped. (``inspect.cleandoc`` alone
    keeps a last line of spaces before closing quotes, and Python 3.13 already
    dedents ``__doc__``; this gives the same template, and hash, on every version.)"""
    lines = [line if line.strip() else "" for line in inspect.cleandoc(docstring).split("\n")]
    return "\n".join(lines).strip("\n")


def template_hash(template: str, role: str) -> str:
    """The version identity of a prompt: ``sha256:`` of its normalised template and role."""
    payload = json.dumps({"role": role, "template": template}, sort_keys=True)
    return "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


# (database file, prompt name, hash) -> PromptVersion, so that only the first
# render of a version in a process touches the database.
_registered: dict[tuple[Path, str, str], PromptVersion] = {}
_register_lock = threading.Lock()


def _register(name: str, role: str, template: str, hash_: str) -> PromptVersion:
    run = current_run()
    if run is not None and isinstance(run.db, store.Recorder):
        # On a worker of an executor: registered by the process that owns the log.
        return PromptVersion.from_row(run.db.register_prompt_version(name, role, template, hash_))
    path = store.db_path()
    key = (path, name, hash_)
    found = _registered.get(key)
    if found is None:
        with _register_lock:
            found = _registered.get(key)
            if found is None:
                row = store.register_prompt_version(name, role, template, hash_, path)
                found = _registered[key] = PromptVersion.from_row(row)
    return found


def _module_name(fn: Callable[..., Any]) -> str:
    """The name of ``fn``'s module as an ``import`` of it would spell it.

    A script's functions live in ``__main__``; naming prompts after that would make
    ``python reviewer.py`` and ``import reviewer`` log two different prompts. So
    ``__main__`` becomes the name it was run under with ``python -m``, else the
    file's stem, prefixed with the packages (folders holding ``__init__.py``) that
    enclose it: the name an ``import`` from the script's own folder, or from the
    top of its package, gives. Without a file (a notebook, ``python -c``) it stays
    ``__main__``.
    """
    module = fn.__module__
    if module != "__main__":
        return module
    namespace = getattr(fn, "__globals__", None) or vars(sys.modules["__main__"])
    spec = namespace.get("__spec__")
    if spec is not None and getattr(spec, "name", None) not in (None, "__main__"):
        return str(spec.name)
    file = namespace.get("__file__")
    if not file or not str(file).endswith(".py"):
        return module
    path = Path(file).resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


_MAX_TEMPLATES = 64  # parsed templates kept per prompt (its docstring's and overrides')


class _Template:
    """One template text of a prompt, parsed once: its hash, compiled form and the
    variables it uses."""

    __slots__ = ("text", "hash", "compiled", "variables")

    def __init__(self, prompt_name: str, text: str, role: str):
        self.text = text
        self.hash = template_hash(text, role)
        try:
            parsed = _jinja.parse(text)
        except jinja2.TemplateSyntaxError as e:
            raise PromptTemplateError(
                f"The template of prompt {prompt_name} has a Jinja syntax error on line "
                f"{e.lineno}: {e.message}."
            ) from None
        self.variables = frozenset(jinja2.meta.find_undeclared_variables(parsed))
        self.compiled = _jinja.from_string(parsed)  # parsed once, above

    def render(self, prompt_name: str, values: Mapping[str, Any]) -> str:
        """The text for ``values``, which hold every variable the template uses."""
        try:
            return self.compiled.render(values)
        except jinja2.sandbox.SecurityError as e:
            raise PromptTemplateError(
                f"The template of prompt {prompt_name} tried something unsafe and was "
                f"stopped: {e} Templates may use the values passed to them, filters and "
                f"tests, but not private attributes (names starting with '_') or Python's "
                f"internals."
            ) from None
        except jinja2.UndefinedError as e:
            raise PromptVariableError(f"Prompt {prompt_name}: {e.message}.") from None


class PromptFunction:
    """A function whose docstring is a Jinja2 template; calling it renders a message.

    Its one knob is ``template``: inside ``promptlog.overrides({prompt: {"template":
    text}})`` it renders ``text`` instead of the docstring, logged as a version of
    this same prompt.
    """

    def __init__(self, fn: Callable[..., Any], role: str, name: str | None = None):
        if not fn.__doc__ or not fn.__doc__.strip():
            raise PromptError(
                f"@prompt function {fn.__qualname__} has no docstring: write the Jinja2 "
                f"template as its docstring."
            )
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.role = role
        self.name = name if name is not None else f"{_module_name(fn)}.{fn.__qualname__}"
        self.template = _normalise_template(fn.__doc__)
        self.hash = template_hash(self.template, role)
        self._signature = inspect.signature(fn)
        # template text -> its parsed form; the docstring's parsed on first call
        self._templates: dict[str, _Template] = {}
        self._default: _Template | None = None  # the docstring's, once parsed
        knobs.register(self.name, self, kind="prompt", knobs=("template",), check=self._check)

    def _parsed(self, text: str) -> _Template:
        found = self._templates.get(text)
        if found is None:
            found = _Template(self.name, text, self.role)
            if len(self._templates) >= _MAX_TEMPLATES:
                # An optimiser may try thousands of templates: keep memory bounded.
                self._templates.clear()
            self._templates[text] = found
        return found

    def _current(self) -> _Template:
        """The template in force: an override's, else the docstring's."""
        overridden = knobs.active(self.name).get("template")
        if overridden is None:
            return self._default or self._parse_default()
        return self._parsed(overridden)

    def _parse_default(self) -> _Template:
        self._default = self._parsed(self.template)
        return self._default

    def _check(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """An override's template, normalised as a docstring is, checked for syntax
        and for variables this function does not take."""
        text = overrides.get("template")
        if not isinstance(text, str) or not text.strip():
            raise KnobError(
                f"The template override of prompt {self.name} must be a non-empty string, "
                f"not {text!r}."
            )
        text = _normalise_template(text)
        try:
            template = self._parsed(text)
        except PromptTemplateError as e:
            raise KnobError(f"Template override: {e}") from None
        parameters = self._signature.parameters.values()
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            taken = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
            unknown = sorted(template.variables - taken)
            if unknown:
                raise KnobError(
                    f"The template override of prompt {self.name} uses {{{{ {unknown[0]} }}}}, "
                    f"but {self.fn.__qualname__} takes no parameter {unknown[0]!r}; it takes "
                    f"{', '.join(sorted(taken)) or 'none'}."
                )
        return {**overrides, "template": text}

    def render(self, *args: Any, **kwargs: Any) -> str:
        """The rendered text, without registering a version or touching the log."""
        return self._render(self._current(), args, kwargs)

    def _render(self, template: _Template, args: Any, kwargs: Any) -> str:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise PromptVariableError(f"Prompt {self.name}: {e}.") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        for parameter in self._signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                values.update(values.pop(parameter.name, {}))
        missing = sorted(template.variables - values.keys())
        if missing:
            raise PromptVariableError(
                f"Prompt {self.name} uses {{{{ {missing[0]} }}}} but no value named "
                f"{missing[0]!r} was passed; add it as a parameter of {self.fn.__qualname__} "
                f"and pass it."
            )
        return template.render(self.name, values)

    def __call__(self, *args: Any, **kwargs: Any) -> Message:
        template = self._current()
        content = self._render(template, args, kwargs)
        version = _register(self.name, self.role, template.text, template.hash)
        run = current_run()
        if run is not None:
            run.note_prompt_version(version.id, self.name)
        return Message(role=self.role, content=content, prompt_version=version)

    def versions(self) -> list[PromptVersion]:
        """Every logged version of this prompt, oldest first."""
        return versions(self.name)

    def __repr__(self) -> str:
        return f"<prompt {self.name} ({self.role})>"


@overload
def prompt(
    role: Role, *, name: str | None = None
) -> Callable[[Callable[..., Any]], PromptFunction]: ...
@overload
def prompt(role: Callable[..., Any]) -> PromptFunction: ...


def prompt(role: Any, *, name: str | None = None) -> Any:
    """Make a function whose docstring is a Jinja2 template into a prompt function.

    ``role`` is ``"system"``, ``"user"`` or ``"assistant"``. The prompt's name in the
    log is ``module.qualname`` (a script's module named as ``import`` would name it);
    ``name`` sets another, e.g. to keep a prompt's history when the function moves.
    """
    if callable(role):
        raise PromptError(
            f"@prompt needs a role: write @prompt(\"user\") (or \"system\", \"assistant\") "
            f"above {getattr(role, '__qualname__', role)}."
        )
    if role not in ROLES:
        raise PromptError(
            f"Unknown prompt role {role!r}: use one of {', '.join(map(repr, ROLES))}."
        )
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise PromptError(f"A prompt's name must be a non-empty string, not {name!r}.")

    def decorate(fn: Callable[..., Any]) -> PromptFunction:
        return PromptFunction(fn, role, name)

    return decorate


def _name_of(prompt_or_name: PromptFunction | str) -> str:
    """The name of a prompt, given its name or the prompt (or typed function) itself."""
    return prompt_or_name if isinstance(prompt_or_name, str) else prompt_or_name.name


def versions(
    prompt_or_name: PromptFunction | str, path: str | os.PathLike[str] | None = None
) -> list[PromptVersion]:
    """Every logged version of a prompt (a prompt function or its ``module.qualname``),
    in the log at ``path`` (default: the current log)."""
    target = Path(path).expanduser().absolute() if path is not None else None
    rows = store.prompt_versions(_name_of(prompt_or_name), target)
    return [PromptVersion.from_row(row) for row in rows]


def find_version(
    prompt_or_name: PromptFunction | str,
    which: int | str | None,
    *,
    default: int = -1,
    path: str | os.PathLike[str] | None = None,
) -> PromptVersion:
    """One version of a prompt, by number (1, 2, …), hash (or a prefix), or position
    in the history when ``which`` is None (``default``: -1 is the newest)."""
    name = _name_of(prompt_or_name)
    history = versions(name, path)
    if not history:
        raise PromptNotFoundError(
            f"No versions of prompt {name!r} are logged. Prompts are logged on first "
            f"use; check the name with `promptlog prompts`."
        )
    if which is None:
        if len(history) < abs(default):
            raise PromptNotFoundError(
                f"Prompt {name!r} has only {len(history)} version(s); nothing to compare."
            )
        return history[default]
    if isinstance(which, int) or (isinstance(which, str) and which.isdigit()):
        for version in history:
            if version.version == int(which):
                return version
    else:
        needle = which if which.startswith("sha256:") else f"sha256:{which}"
        matches = [v for v in history if v.hash.startswith(needle)]
        if len(matches) == 1:
            return matches[0]
    numbers = ", ".join(str(v.version) for v in history)
    raise PromptNotFoundError(
        f"Prompt {name!r} has no version {which!r}; its versions are {numbers}."
    )


def unified_diff(a: PromptVersion, b: PromptVersion) -> str:
    """The unified diff from version ``a`` to version ``b`` of a prompt."""
    lines = difflib.unified_diff(
        a.template.splitlines(),
        b.template.splitlines(),
        fromfile=f"{a.name} v{a.version} ({a.hash[:15]})",
        tofile=f"{b.name} v{b.version} ({b.hash[:15]})",
        lineterm="",
    )
    return "".join(line + "\n" for line in lines)
