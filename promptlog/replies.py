"""Structured replies: what a model is asked for, for any type pydantic validates, and how
its reply text becomes a value.

A pydantic model is asked for as itself. A dataclass or ``TypedDict`` (a JSON object
with named fields) is asked for as its object. Anything else (``int``, ``list[str]``,
``Literal[…]``, a union …) travels wrapped, ``{"return_value": …}``, because servers
that follow a schema, and JSON mode, want an object at the top. In every case the
request carries one pydantic model class (``ReplyFormat.model``), so every server mode
and the log see the same thing; ``ReplyFormat.unwrap`` gives the caller the value.

Replies are parsed leniently: a Markdown code fence, or prose around the JSON, is
looked past, and a bare value where a wrapped one was asked for is taken.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from .errors import BotError
from .schemas import has_finite_instance

__all__ = ["RETURN_FIELD", "ReplyFormat", "ReplyInvalid", "reply_format", "type_name"]

RETURN_FIELD = "return_value"


class ReplyInvalid(Exception):
    """A reply that did not validate; ``attempt`` is set by the attempt that got it."""

    def __init__(self, reply: str, error: str):
        super().__init__(error)
        self.reply = reply
        self.error = error
        self.attempt = 0


@dataclass(frozen=True)
class ReplyFormat:
    """How a reply of one type is asked for and read."""

    name: str  # the type as messages name it: "JobName", "list[str]"
    model: type[pydantic.BaseModel]  # sent as response_format, validated against
    schema: dict[str, Any]  # the model's JSON schema, known to have a finite instance
    unwrap: Callable[[pydantic.BaseModel], Any]  # the value the caller gets
    wrapped: bool  # whether the value travels as {"return_value": …}

    def validate(self, response: Any) -> pydantic.BaseModel:
        """The reply of a litellm ``response`` as an instance of ``model``, or
        :class:`ReplyInvalid` with pydantic's error."""
        text = response.choices[0].message.content or ""
        return self.parse(text)

    def parse(self, text: str) -> pydantic.BaseModel:
        first_error: pydantic.ValidationError | None = None
        for candidate in _json_candidates(text):
            try:
                return self.model.model_validate_json(candidate)
            except pydantic.ValidationError as error:
                first_error = first_error or error
                if self.wrapped:
                    bare = _bare_value(candidate)
                    if bare is not _NOTHING:
                        try:
                            return self.model.model_validate({RETURN_FIELD: bare})
                        except pydantic.ValidationError:
                            pass
        raise ReplyInvalid(text, str(first_error))


_formats: dict[Any, ReplyFormat] = {}
_formats_lock = threading.Lock()


def reply_format(tp: Any) -> ReplyFormat:
    """The :class:`ReplyFormat` of ``tp``, made once per type in a process."""
    try:
        found = _formats.get(tp)
    except TypeError:  # an unhashable annotation: made each time
        return _make_format(tp)
    if found is None:
        with _formats_lock:
            found = _formats.get(tp)
            if found is None:
                found = _formats[tp] = _make_format(tp)
    return found


def type_name(tp: Any) -> str:
    """``tp`` as a person writes it: ``Summary``, ``list[Customer]``, ``Literal['a', 'b']``."""
    if isinstance(tp, type) and not getattr(tp, "__args__", None):
        return tp.__qualname__ if "<locals>" not in tp.__qualname__ else tp.__name__
    text = repr(tp)
    return re.sub(r"\b(?:typing|typing_extensions|builtins|[\w.]+<locals>)\.|\b[a-z_][\w]*\.", "",
                  text)


def _make_format(tp: Any) -> ReplyFormat:
    name = type_name(tp)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return ReplyFormat(name, tp, _checked_schema(tp, name), _identity, wrapped=False)
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(tp)
        schema = adapter.json_schema()
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, TypeError) as e:
        raise BotError(
            f"{name} has no JSON schema, so no model can be asked for it: {e}"
        ) from None
    class_name = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:60] or "Reply"
    if _is_object(schema):
        model: type[pydantic.BaseModel] = type(
            class_name, (pydantic.RootModel[tp],), {"__module__": __name__}
        )
        return ReplyFormat(name, model, _checked_schema(model, name), _root, wrapped=False)
    fields: dict[str, Any] = {RETURN_FIELD: (tp, ...)}
    model = pydantic.create_model(class_name, __module__=__name__, **fields)
    return ReplyFormat(name, model, _checked_schema(model, name), _return_value, wrapped=True)


def _identity(value: pydantic.BaseModel) -> Any:
    return value


def _root(value: pydantic.BaseModel) -> Any:
    return value.root  # type: ignore[attr-defined]


def _return_value(value: pydantic.BaseModel) -> Any:
    return getattr(value, RETURN_FIELD)


def _is_object(schema: dict[str, Any]) -> bool:
    """Whether the schema is an object with named fields (a dataclass, a TypedDict)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = schema.get("$defs", {}).get(ref.split("/")[-1], {})
    return schema.get("type") == "object" and "properties" in schema


def _checked_schema(model: type[pydantic.BaseModel], name: str) -> dict[str, Any]:
    """The model's JSON schema, once checked that some reply can validate against it."""
    try:
        schema = model.model_json_schema()
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError) as error:
        raise BotError(
            f"{name} has no JSON schema, so no model can be asked for it: {error}"
        ) from None
    if not has_finite_instance(schema):
        raise BotError(
            f"{name} has no finite instance: a required field refers back to it "
            f"with no way to end, so no reply can ever validate. Make the recursive field "
            f"optional (`Optional[...] = None`) or a list, which may be empty."
        )
    return schema


_FENCED = re.compile(r"```[\w-]*[ \t]*\n(.*?)```", re.DOTALL)
_NOTHING = object()


def _json_candidates(text: str) -> list[str]:
    """Where the JSON in a reply may be, most likely first: the reply itself (out of a
    code fence that wraps it), each fenced block, and the outermost ``{…}`` or ``[…]``."""
    stripped = text.strip()
    candidates = [_strip_fences(stripped)]
    candidates += [block.strip() for block in _FENCED.findall(stripped)]
    for opening, closing in ("{}", "[]"):
        start, end = stripped.find(opening), stripped.rfind(closing)
        if 0 <= start < end:
            candidates.append(stripped[start : end + 1])
    return list(dict.fromkeys(candidates))


def _strip_fences(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; take what is inside."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped


def _bare_value(candidate: str) -> Any:
    """The JSON value of ``candidate`` when it is not already a wrapped reply."""
    try:
        value = json.loads(candidate)
    except ValueError:
        return _NOTHING
    if isinstance(value, dict) and RETURN_FIELD in value:
        return _NOTHING
    return value
