"""promptlog's datasette bundle: ``promptlog ui`` opens the log in datasette with
table and column descriptions, default sorts and facets, canned queries
(leaderboard, prompt history, two experiments side by side, an experiment's
runs) and JSON columns rendered readably, served read-only (see :mod:`.plugin`).

Datasette 0.65 (the ``ui`` extra pins ``datasette>=0.65,<1.0``) reads all of this
from metadata. Datasette 1.0 moves sorts, facets, label columns and canned
queries to ``datasette.yaml`` and keeps only descriptions in metadata;
:func:`split_for_datasette_1` makes that split, and :func:`serve` refuses a 1.x
datasette with a clear message until the bundle has been tested there.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from .. import store
from ..errors import PromptlogError

PLACEHOLDER = "PROMPTLOG_DATABASE"
# The keys of a table's metadata that datasette 1.0 reads from datasette.yaml.
_CONFIG_KEYS = ("sort", "sort_desc", "facets", "label_column", "size", "hidden")


def database_name(path: str | os.PathLike[str]) -> str:
    """The name datasette gives the file: its name without the extension."""
    return Path(path).stem


def metadata(name: str = "message_log") -> dict[str, Any]:
    """The bundled metadata for a log that datasette calls ``name``."""
    import yaml

    text = resources.files(__package__).joinpath("metadata.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    data["databases"] = {name: data["databases"].pop(PLACEHOLDER)}
    return data


def split_for_datasette_1(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, config) for datasette 1.0: descriptions stay in metadata; sorts,
    facets, label columns and canned queries go to the config (datasette.yaml)."""
    meta = json.loads(json.dumps(data))
    config: dict[str, Any] = {"databases": {}}
    for name, database in meta.get("databases", {}).items():
        target: dict[str, Any] = config["databases"].setdefault(name, {})
        if "queries" in database:
            target["queries"] = database.pop("queries")
        for table, options in database.get("tables", {}).items():
            moved = {key: options.pop(key) for key in _CONFIG_KEYS if key in options}
            if moved:
                target.setdefault("tables", {})[table] = moved
    return meta, config


def register_plugin() -> None:
    """Register the render_cell plugin with datasette (once per process)."""
    from datasette.plugins import pm

    from . import plugin

    if not pm.is_registered(plugin):
        pm.register(plugin, name="promptlog")


def datasette_major() -> int:
    from datasette.version import __version__

    return int(__version__.split(".")[0])


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.1, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def exposure_warning(host: str, port: int, path: str | os.PathLike[str]) -> str | None:
    """The warning to print before serving the log on ``host``, or None on loopback."""
    if is_loopback(host):
        return None
    where = "every network interface" if host in ("0.0.0.0", "::", "[::]") else host
    return (
        f"promptlog ui: warning: serving on {where} (port {port}). The server has no "
        f"authentication: anyone who can reach it can read every prompt, reply, call and "
        f"metric in {path}. Serve on 127.0.0.1 (the default) unless other machines must "
        f"see the log and your network is trusted."
    )


def serve(
    path: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    open_browser: bool = False,
) -> None:
    """Serve the log at ``path`` (default: the current log) with datasette until
    interrupted: read-only, and live while an experiment writes to it. A ``host``
    other than loopback gets a warning on stderr: the server has no authentication."""
    target = Path(path) if path is not None else store.db_path()
    store.connect_readonly(target).close()  # a clear error for a bad path; upgrades old logs
    try:
        major = datasette_major()
    except ImportError:
        raise PromptlogError(
            "promptlog ui needs datasette: pip install 'promptlog[ui]'."
        ) from None
    if major >= 1:
        raise PromptlogError(
            "promptlog ui is built for datasette 0.65; install it with "
            "pip install 'datasette>=0.65,<1.0'."
        )
    from datasette.cli import cli as datasette_cli

    warning = exposure_warning(host, port, target)
    if warning:
        print(warning, file=sys.stderr)
    register_plugin()
    with tempfile.TemporaryDirectory(prefix="promptlog-ui-") as folder:
        metadata_file = Path(folder) / "metadata.json"
        metadata_file.write_text(json.dumps(metadata(database_name(target))), encoding="utf-8")
        args = [
            "serve", str(target), "--metadata", str(metadata_file),
            "--host", host, "--port", str(port),
            # Views aggregate every metric; give them time on a large log.
            "--setting", "sql_time_limit_ms", "5000",
            "--setting", "facet_time_limit_ms", "500",
        ]  # fmt: skip
        # The viewer's pages, rather than datasette's list of tables, are the way in.
        page = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/-/promptlog"
        if open_browser:
            import threading
            import webbrowser

            threading.Timer(1.0, webbrowser.open, [page]).start()
        datasette_cli.main(args, prog_name="promptlog ui", standalone_mode=False)
