"""LLM strategies: a class whose unimplemented members a model implements.

    @llm_strategy(model_name="gpt-4o-mini")
    @dataclass
    class MockCustomerDatabase(CustomerDatabase):
        def load(self):                       # a real body: left alone
            self.customers = self.create_mock_customers(10)

Every method, property, staticmethod and classmethod whose body only raises
``NotImplementedError`` (or is only a docstring, or ``...``), the class's own or
inherited, becomes a typed function (:mod:`promptlog.functions`) named after the
strategy class: ``module.MockCustomerDatabase.find_customer_key``. ``self`` is sent
as the instance's fields.
"""

from __future__ import annotations

import ast
import dis
import inspect
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import FunctionError
from .functions import LLMFunction
from .prompts import _module_name

__all__ = ["llm_strategy", "is_unimplemented"]

C = TypeVar("C", bound=type)


def llm_strategy(cls: Any = None, **options: Any) -> Any:
    """Implement every unimplemented member of a class with a model.

    Takes what :func:`~promptlog.llm_function` takes (``model_name``, ``bot``,
    ``reasoning``, bot options); each member implemented is a typed function with its
    own prompt versions. The class is changed in place and returned.
    """
    if cls is not None:
        if not isinstance(cls, type):
            raise FunctionError(
                "@llm_strategy decorates a class; with options, write "
                "@llm_strategy(model_name=...)."
            )
        return _implement(cls, options)

    def decorate(target: C) -> C:
        if not isinstance(target, type):
            raise FunctionError(f"@llm_strategy decorates a class, not {target!r}.")
        return _implement(target, options)

    return decorate


def _implement(cls: C, options: dict[str, Any]) -> C:
    prefix = f"{_module_name_of(cls)}.{cls.__qualname__}"
    implemented: list[str] = []
    for name in _member_names(cls):
        if name.startswith("__") and name.endswith("__"):
            continue
        member = inspect.getattr_static(cls, name)
        made = _implemented(member, cls, f"{prefix}.{name}", options)
        if made is not None:
            setattr(cls, name, made)
            implemented.append(name)
    if implemented and getattr(cls, "__abstractmethods__", None):
        remaining = frozenset(cls.__abstractmethods__) - set(implemented)  # type: ignore[attr-defined]
        cls.__abstractmethods__ = remaining  # type: ignore[attr-defined]
    return cls


# Bases whose members are the machinery of a class, never a strategy's to implement.
_FRAMEWORK_MODULES = ("builtins", "typing", "abc", "pydantic")


def _member_names(cls: type) -> list[str]:
    """Every member name of the class and its bases, each once, the class's own first."""
    names: dict[str, None] = {}
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in _FRAMEWORK_MODULES:
            continue
        names.update(dict.fromkeys(vars(klass)))
    return list(names)


def _implemented(member: Any, cls: type, name: str, options: dict[str, Any]) -> Any:
    """The member made a typed function, or None when it has a body of its own."""
    if isinstance(member, property):
        if member.fget is None or not is_unimplemented(member.fget):
            return None
        return property(LLMFunction(member.fget, name=name, owner=cls, **options),
                        member.fset, member.fdel, member.__doc__)
    if isinstance(member, staticmethod):
        fn = member.__func__
        return staticmethod(LLMFunction(fn, name=name, **options)) if is_unimplemented(fn) else None
    if isinstance(member, classmethod):
        fn = member.__func__
        if not is_unimplemented(fn):
            return None
        return classmethod(LLMFunction(fn, name=name, skip_first=True, **options))
    if inspect.isfunction(member) and is_unimplemented(member):
        # A typed function is a descriptor: looked up on an instance, it is a method.
        return LLMFunction(member, name=name, owner=cls, **options)
    return None


def _module_name_of(cls: type) -> str:
    """The class's module as prompts name it (a script's ``__main__`` as its import
    name), read off a function of the class, which knows its script's globals."""
    for member in vars(cls).values():
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member) and member.__module__ == cls.__module__:
            return _module_name(member)
    return cls.__module__


# --- is a body only a placeholder? ------------------------------------------------------


def is_unimplemented(fn: Callable[..., Any]) -> bool:
    """Whether ``fn``'s body only raises ``NotImplementedError`` or is only a docstring
    or ``...`` (a body of ``pass`` is a body: it does nothing on purpose)."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return _unimplemented_code(fn)
    node = next(
        (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))),
        None,
    )
    if node is None or node.name != fn.__name__:
        return _unimplemented_code(fn)
    body = list(node.body)
    if body and _is_constant(body[0], str):
        body = body[1:]
    if not body:
        return True
    if len(body) == 1 and _is_constant(body[0], type(...)):
        return True
    return len(body) == 1 and _raises_not_implemented(body[0])


def _is_constant(statement: ast.stmt, kind: type) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, kind)
    )


def _raises_not_implemented(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Raise) or statement.exc is None:
        return False
    exc = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


_IGNORED = {"RESUME", "NOP", "PUSH_NULL", "PRECALL", "CACHE", "KW_NAMES", "COPY_FREE_VARS"}


def _unimplemented_code(fn: Callable[..., Any]) -> bool:
    """Without source (a function made by ``exec``): read the bytecode. Only a body
    that raises NotImplementedError counts; an empty one may be a ``pass``."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    steps = [i for i in dis.get_instructions(code) if i.opname not in _IGNORED]
    if not steps or steps[0].opname != "LOAD_GLOBAL" or steps[0].argval != "NotImplementedError":
        return False
    rest = [i.opname for i in steps[1:]]
    return rest in (["RAISE_VARARGS"], ["CALL", "RAISE_VARARGS"],
                    ["LOAD_CONST", "CALL", "RAISE_VARARGS"])
