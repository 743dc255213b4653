"""JSON schemas of structured replies: whether a schema can be met at all, and the schema
written into a prompt for models that cannot take it as ``response_format``.

Standard library only: both the bots and the offline model use it.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["has_finite_instance", "schema_from_text", "schema_instructions"]

# The instructions end with the schema in a fenced block, so that a reader (the offline
# model, or a person reading the log) finds it after the words "JSON schema".
_SCHEMA_BLOCK = re.compile(r"JSON schema[^`]*```json[ \t]*\n(.*?)\n```", re.IGNORECASE | re.DOTALL)


def schema_instructions(schema: dict[str, Any]) -> str:
    """What to add to the system prompt when the schema cannot go in ``response_format``."""
    return (
        "Reply with only a JSON object (no other text) that is an instance of this "
        f"JSON schema:\n```json\n{json.dumps(schema, indent=2)}\n```"
    )


def schema_from_text(text: str) -> dict[str, Any] | None:
    """The last JSON schema that ``schema_instructions`` (or a person) put in ``text``:
    a fenced ```json block after the words "JSON schema"; None when there is none."""
    for block in reversed(_SCHEMA_BLOCK.findall(text)):
        try:
            schema = json.loads(block)
        except ValueError:
            continue
        if isinstance(schema, dict):
            return schema
    return None


def has_finite_instance(schema: Any) -> bool:
    """Whether any finite JSON value is valid against ``schema``, as far as its required
    structure goes.

    A model whose required field refers back to the model itself, with no optional, list
    or union way out (``class L(BaseModel): me: "L"``), has none: no reply can ever
    validate. Recursion through ``Optional``, a list that may be empty, a field with a
    default or a union with another alternative (a tree) is fine. Only structure is
    judged; bounds such as ``minLength`` are assumed satisfiable.
    """
    if not isinstance(schema, dict):
        return schema is not False
    # Least fixpoint over the references: a reference is finite once its target is
    # finite assuming only the references already known to be finite.
    finite: set[str] = set()
    refs = _references(schema)
    changed = True
    while changed:
        changed = False
        for ref in refs - finite:
            if _finite(_resolve(schema, ref), schema, finite):
                finite.add(ref)
                changed = True
    return _finite(schema, schema, finite)


def _finite(node: Any, root: dict[str, Any], finite: set[str]) -> bool:
    if not isinstance(node, dict):
        return node is not False
    if "$ref" in node and node["$ref"] not in finite:
        return False
    if "const" in node or "enum" in node:
        return bool(node.get("enum", [None]))
    parts = node.get("allOf")
    if parts and not all(_finite(part, root, finite) for part in parts):
        return False
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if options and not any(_finite(option, root, finite) for option in options):
            return False
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return any(_kind_finite(k, node, root, finite) for k in kinds) if kinds else True


def _kind_finite(kind: Any, node: dict[str, Any], root: dict[str, Any], finite: set[str]) -> bool:
    if kind == "object" or (kind is None and "properties" in node):
        properties = node.get("properties") or {}
        return all(
            _finite(properties.get(name, node.get("additionalProperties", True)), root, finite)
            for name in node.get("required") or []
        )
    if kind == "array" or (kind is None and ("items" in node or "prefixItems" in node)):
        needed = int(node.get("minItems", 0))
        prefix = node.get("prefixItems") or []
        if not all(_finite(item, root, finite) for item in prefix[:needed]):
            return False
        return needed <= len(prefix) or _finite(node.get("items", True), root, finite)
    return True


def _references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for value in node.values():
            found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


def _resolve(root: dict[str, Any], ref: str) -> Any:
    """The target of a local reference (``#/$defs/L``, ``#``); True (anything) otherwise."""
    if not ref.startswith("#"):
        return True
    target: Any = root
    for part in ref[1:].strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return True
        target = target[part]
    return target
