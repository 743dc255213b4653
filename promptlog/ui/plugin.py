"""A datasette plugin for promptlog's log: it renders the JSON columns readably
(messages as role-labelled blocks, other JSON pretty-printed) and keeps the
server read-only and quiet: every connection to the log is ``query_only``, a
request that would change something (POST, PUT, …) gets 405, and an error is
answered without printing a traceback (with locals, prompts and replies among
them) on the server's terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from datasette import Response, hookimpl
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


# --- read-only ------------------------------------------------------------------

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    # Datasette reads the file through ?mode=ro connections, which see an
    # experiment's writes as they are committed (immutable=1 would skip the WAL
    # and the locks, and could read a half-checkpointed page). Its one write
    # connection, for writable canned queries and plugins, is made query_only
    # too. Only datasette's own in-memory catalogue stays writable.
    if database != "_internal":
        from ..read import make_query_only

        make_query_only(conn)


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    def wrap(app: Any) -> Any:
        async def read_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope.get("type") == "http" and scope.get("method") not in _READ_METHODS:
                message = f"This log is served read-only: {scope.get('method')} is not allowed."
                headers = {"Allow": "GET, HEAD, OPTIONS"}
                if scope.get("path", "").endswith(".json"):
                    body = {"ok": False, "error": message, "status": 405, "title": None}
                    response = Response.json(body, status=405, headers=headers)
                else:
                    response = Response.text(message, status=405, headers=headers)
                await response.asgi_send(send)
                return
            await app(scope, receive, send)

        return read_only

    return wrap


# --- errors ---------------------------------------------------------------------


@hookimpl(hookwrapper=True)
def handle_exception(
    datasette: Any, request: Any, exception: Exception
) -> Generator[None, Any, None]:
    # Datasette's own handler prints a rich traceback, locals included, for every
    # error, even a 404 or a typo in a query. Answer with the same error page, and
    # print one line, for an unexpected error only.
    outcome = yield
    outcome.force_result([lambda: _error_page(datasette, request, exception)])


def _error_page(datasette: Any, request: Any, exception: Exception) -> Awaitable[Response]:
    from datasette.utils import add_cors_headers
    from datasette.utils.asgi import Base400
    from datasette.views.base import DatasetteError

    title = None
    info: dict[str, Any] = {}
    if isinstance(exception, Base400):
        status, message = exception.status, exception.args[0]
    elif isinstance(exception, DatasetteError):
        status, info, message = exception.status, exception.error_dict, exception.message
        if exception.message_is_html:
            message = Markup(message)
        title = exception.title
    else:
        status, message = 500, str(exception)
        print(
            f"promptlog ui: {request.method} {request.path}: "
            f"{type(exception).__name__}: {exception}",
            file=sys.stderr,
        )
    info.update({"ok": False, "error": message, "status": status, "title": title})
    headers: dict[str, str] = {}
    if datasette.cors:
        add_cors_headers(headers)

    async def render() -> Response:
        if request.path.split("?")[0].endswith(".json"):
            return Response.json(info, status=status, headers=headers)
        template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
        context = dict(
            info, urls=datasette.urls, app_css_hash=datasette.app_css_hash(),
            menu_links=lambda: [],
        )  # fmt: skip
        return Response.html(await template.render_async(context), status=status, headers=headers)

    return render()
