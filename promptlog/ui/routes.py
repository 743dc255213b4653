"""The viewer's routes: ``/-/promptlog`` and its pages (:data:`.pages.PAGES`),
each also as JSON (``.json`` or ``?_format=json``), and the CSS and JS the
plugin ships. A page reads the log through :class:`promptlog.read.Log` on a
worker thread and renders a Jinja template from ``templates/``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from datasette import Response
from datasette.utils.asgi import NotFound

from ..errors import PromptlogError
from ..read import Log
from . import display, svg
from .pages import PAGES, Page

PREFIX = "/-/promptlog"
STATIC = {"promptlog.css": "text/css; charset=utf-8", "promptlog.js": "text/javascript"}
# The datasette table behind each page: its "table" link.
TABLES = {"experiments": "experiments", "experiment": "runs", "compare": "experiment_metrics",
          "prompts": "prompt_versions", "prompt": "prompt_versions",
          "optimizations": "experiments", "optimization": "experiments"}  # fmt: skip

# Pages about one thing link to its rows only: (column, the page data's value of it).
TABLE_FILTERS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "experiment": ("experiment_id", lambda data: data["experiment"]["experiment_id"]),
    "optimization": ("parent_id", lambda data: data["optimization"]["experiment_id"]),
}

View = Callable[[Any, Any], Awaitable[Response]]


def routes() -> list[tuple[str, View]]:
    """(pattern, view) for datasette's ``register_routes``."""
    found: list[tuple[str, View]] = [(rf"^{PREFIX}/static/(?P<file>[a-z_]+\.(?:css|js))$", _static)]
    found += [(rf"^{PREFIX}{page.path}(?P<format>\.json)?$", _view(page)) for page in PAGES]
    return found


def log_database(datasette: Any) -> Any:
    """The database datasette serves the log from: the first one with a file."""
    for database in datasette.databases.values():
        if database.path:
            return database
    raise NotFound("promptlog ui serves no log file.")


def json_safe(data: Any) -> Any:
    """``data`` with NaN and infinities as null: JSON has no such numbers."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


async def _static(datasette: Any, request: Any) -> Response:
    name = request.url_vars["file"]
    if name not in STATIC:
        raise NotFound(f"No file {name}.")
    text = (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")
    return Response(text, content_type=STATIC[name], headers={"Cache-Control": "max-age=60"})


def _view(page: Page) -> View:
    async def view(datasette: Any, request: Any) -> Response:
        database = log_database(datasette)
        url = dict(request.url_vars)
        as_json = bool(url.pop("format", None)) or request.args.get("_format") == "json"
        query = {key: request.args.get(key) for key in request.args}

        def read() -> dict[str, Any]:
            with Log(database.path) as log:
                return page.data(log, url, query)

        try:
            data = await asyncio.to_thread(read)
        except PromptlogError as e:
            raise NotFound(str(e)) from None
        data = json_safe(data)
        if as_json:
            return Response.json(data)
        path = request.path
        arguments = {k: v for k, v in query.items() if k != "_format"}
        json_url = datasette.urls.path(path.rstrip("/") + ".json") + (
            "?" + urlencode(arguments) if arguments else ""
        )
        table_url = datasette.urls.table(database.name, TABLES[page.name])
        if page.name in TABLE_FILTERS:
            column, value = TABLE_FILTERS[page.name]
            table_url += "?" + urlencode({column: value(data)})
        context = {
            "page": page,
            "data": data,
            "database": database.name,
            "nav": [p for p in PAGES if "(?P<" not in p.path],
            "prefix": datasette.urls.path(PREFIX),
            "json_url": json_url,
            "table_url": table_url,
            "f": display.HELPERS,
            "svg": svg,
        }
        html = await datasette.render_template(
            page.template, context, request=request, view_name="promptlog"
        )
        return Response.html(html)

    view.__name__ = f"promptlog_{page.name}"
    return view
