"""A datasette plugin that renders promptlog's JSON columns readably: messages as
role-labelled blocks, other JSON (results, parsed replies, hyperparameters,
parameters, metadata, metrics) pretty-printed."""

from __future__ import annotations

import json
from typing import Any

from datasette import hookimpl
from markupsafe import Markup, escape

JSON_COLUMNS = frozenset(
    {
        "result", "response_parsed", "hyperparameters", "parameters", "metadata",
        "environment", "metrics",
    }
)  # fmt: skip
_PRE = "white-space: pre-wrap; margin: 0; font-size: 0.85em"


def _decode(value: Any) -> Any:
    if not isinstance(value, str) or value[:1] not in ("{", "["):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def render_messages(messages: list[Any]) -> Markup:
    """Each message as its role (and prompt version id) above its content."""
    blocks = []
    for message in messages:
        if not isinstance(message, dict):
            return render_json(messages)
        version = message.get("prompt_version_id")
        label = f"{message.get('role', '?')}" + (f" (prompt version {version})" if version else "")
        blocks.append(
            f'<div class="promptlog-message"><strong>{escape(label)}</strong>'
            f'<pre style="{_PRE}">{escape(str(message.get("content", "")))}</pre></div>'
        )
    return Markup("".join(blocks))


def render_json(data: Any) -> Markup:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return Markup(f'<pre class="promptlog-json" style="{_PRE}">{escape(text)}</pre>')


@hookimpl
def render_cell(value: Any, column: str) -> Markup | None:
    if column != "messages" and column not in JSON_COLUMNS:
        return None
    data = _decode(value)
    if data is None:
        return None
    if column == "messages" and isinstance(data, list):
        return render_messages(data)
    return render_json(data)
