"""A datasette plugin for promptlog's log: the viewer's pages (:mod:`.routes`),
the tables' cells made compact (JSON and messages on one line that opens to the
whole, prompt version ids as ``namer_user v2``, durations rounded), and it keeps the
server read-only and quiet: every connection to the log is ``query_only``, a
request that would change something (POST, PUT, …) gets 405, and an error is
answered without printing a traceback (with locals, prompts and replies among
them) on the server's terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Generator
from importlib import resources
from typing import Any

from datasette import Response, hookimpl
from markupsafe import Markup, escape

from ..read import Log, make_query_only
from . import display
from .routes import PREFIX, routes

JSON_COLUMNS = frozenset(
    {
        "result", "response_parsed", "hyperparameters", "parameters", "metadata",
        "environment", "metrics", "outcome",
    }
)  # fmt: skip
# Columns holding a prompt version id, shown as ``namer_user v2``.
VERSION_COLUMNS = frozenset({"prompt_version_id", "previous_version_id"})
# Long text shown as one line that opens to the whole.
TEXT_COLUMNS = frozenset({"traceback", "template", "response_text", "error", "error_message"})
# Timestamps: "3 min ago" in the browser, the exact UTC time in the title.
TIME_COLUMNS = frozenset({"created_at", "finished_at", "started_at", "ended_at"})
# Seconds and dollars that SQLite hands over with fifteen digits.
ROUNDED_COLUMNS = frozenset({"duration_s", "latency_s", "cost", "mean", "min", "max"})
_SUMMARY_CHARACTERS = 100
_PRE = "white-space: pre-wrap; margin: 0; font-size: 0.85em"


def _decode(value: Any) -> Any:
    if not isinstance(value, str) or value[:1] not in ("{", "["):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _folded(summary: str, body: Markup, css_class: str) -> Markup:
    """One line that opens, on a click, to the whole value."""
    if len(summary) > _SUMMARY_CHARACTERS:
        summary = summary[: _SUMMARY_CHARACTERS - 1] + "…"
    return Markup(
        f'<details class="pl-cell {css_class}"><summary>{escape(summary)}</summary>{body}</details>'
    )


def render_messages(messages: list[Any], labels: dict[int, tuple[str, int]]) -> Markup:
    """The messages folded to one line (role: first words, …), opening to each
    message as its role and prompt version (``namer_user v2``) above its content."""
    blocks, summary = [], []
    for message in messages:
        if not isinstance(message, dict):
            return render_json(messages)
        role = str(message.get("role", "?"))
        label = role
        version = message.get("prompt_version_id")
        if version is not None:
            named = labels.get(version)
            label += f" ({display.version_label(*named) if named else f'version id {version}'})"
        content = str(message.get("content", ""))
        summary.append(f"{role}: {' '.join(content.split())}")
        blocks.append(
            f'<div class="promptlog-message"><strong>{escape(label)}</strong>'
            f'<pre style="{_PRE}">{escape(content)}</pre></div>'
        )
    return _folded(" · ".join(summary), Markup("".join(blocks)), "promptlog-messages")


def render_json(data: Any) -> Markup:
    """JSON on one line, opening to the indented form."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    body = Markup(f'<pre class="promptlog-json" style="{_PRE}">{escape(text)}</pre>')
    return _folded(json.dumps(data, ensure_ascii=False), body, "promptlog-json-cell")


def render_text(text: str, *, last_line: bool = False) -> Markup | None:
    """Text of several lines, or a long one, folded to its first line (a
    traceback to its exception); short text as it is."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) <= 1 and len(text) <= _SUMMARY_CHARACTERS:
        return None
    summary = lines[0] if lines else ""
    if last_line and lines:
        # The exception: the first line after the traceback's last indented one.
        indented = [at for at, line in enumerate(lines) if line[:1].isspace()]
        summary = lines[min(indented[-1] + 1, len(lines) - 1)] if indented else lines[-1]
    body = Markup(f'<pre style="{_PRE}">{escape(text)}</pre>')
    return _folded(summary, body, "promptlog-text")


def render_experiment(value: Any, datasette: Any, database: str) -> Markup:
    """An experiment id as its name (when datasette knows it), linked to the
    experiment's page, with its id linked to its row."""
    label = None
    if isinstance(value, dict):  # a foreign key, with datasette's label
        value, label = value.get("value"), value.get("label")
    page = datasette.urls.path(f"{PREFIX}/experiments/{display.quoted(str(value))}")
    row = datasette.urls.row(database, "experiments", str(value))
    if label and label != value:
        return Markup(
            f'<a href="{escape(page)}" class="pl-experiment-link">{escape(label)}</a> '
            f'<a href="{escape(row)}" class="pl-muted" style="font-size: 0.8em">'
            f"{escape(str(value))}</a>"
        )
    return Markup(f'<a href="{escape(page)}" class="pl-experiment-link">{escape(str(value))}</a>')


def render_version(value: Any, labels: dict[int, tuple[str, int]], datasette: Any) -> Markup | None:
    named = labels.get(value) if isinstance(value, int) else None
    if named is None:
        return None
    name, version = named
    href = datasette.urls.path(f"{PREFIX}/prompts/{display.quoted(name)}#v{version}")
    return Markup(
        f'<a href="{escape(href)}" title="{escape(name)}, prompt version id {value}">'
        f"{escape(display.version_label(name, version))}</a>"
    )


class _Labels:
    """Prompt version id -> (name, version) of each log, read again only when a
    cell shows an id it has not seen (a version, once written, never changes)."""

    def __init__(self) -> None:
        self._found: dict[str, dict[int, tuple[str, int]]] = {}

    def __call__(self, path: str, wanted: Any = None) -> dict[int, tuple[str, int]]:
        found = self._found.get(path)
        if found is None or (wanted is not None and wanted not in found):
            with Log(path) as log:
                found = self._found[path] = log.prompt_version_labels()
        return found


_labels = _Labels()


def _log_path(datasette: Any, database: str) -> str | None:
    try:
        return datasette.get_database(database).path
    except KeyError:
        return None


@hookimpl
def render_cell(value: Any, column: str, database: str, datasette: Any) -> Markup | None:
    if column in ROUNDED_COLUMNS and isinstance(value, float) and value != round(value, 4):
        if column == "cost":
            shown = display.cost(value)
        elif column.endswith("_s"):
            shown = display.duration(value)
        else:
            shown = display.number(value)
        return Markup(f'<span title="{value!r}">{escape(shown)}</span>')
    if column in ("experiment_id", "parent_id") and value:
        return render_experiment(value, datasette, database)
    if column in TIME_COLUMNS and isinstance(value, str) and value[:1].isdigit():
        return display.when(value)
    if column in TEXT_COLUMNS and isinstance(value, str):
        return render_text(value, last_line=column == "traceback")
    if column in VERSION_COLUMNS:
        if isinstance(value, dict):  # a foreign key, with datasette's label
            value = value.get("value")
        path = _log_path(datasette, database)
        return None if path is None else render_version(value, _labels(path, value), datasette)
    if column != "messages" and column not in JSON_COLUMNS:
        return None
    data = _decode(value)
    if data is None:
        return None
    if column == "messages" and isinstance(data, list):
        path = _log_path(datasette, database)
        return render_messages(data, {} if path is None else _labels(path))
    return render_json(data)


# --- the viewer's pages, CSS and JS -------------------------------------------------


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    return routes()


@hookimpl
def prepare_jinja2_environment(env: Any, datasette: Any) -> None:
    # The package's templates/ next to datasette's own: datasette finds a
    # plugin's templates by its module's name, which Python 3.10 and 3.11
    # cannot resolve for a module inside a package.
    from jinja2 import ChoiceLoader, FileSystemLoader

    folder = str(resources.files(__package__).joinpath("templates"))
    env.loader = ChoiceLoader([env.loader, FileSystemLoader(folder)])


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path(f"{PREFIX}/static/promptlog.css")]


@hookimpl
def extra_js_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path(f"{PREFIX}/static/promptlog.js")]


@hookimpl
def menu_links(datasette: Any) -> list[dict[str, str]]:
    return [
        {"href": datasette.urls.path(PREFIX), "label": "promptlog: experiments"},
        {"href": datasette.urls.path(f"{PREFIX}/prompts"), "label": "promptlog: prompts"},
        {"href": datasette.urls.path(f"{PREFIX}/optimizations"),
         "label": "promptlog: optimisations"},
    ]  # fmt: skip


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
