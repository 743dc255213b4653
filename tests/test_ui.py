"""The datasette bundle, through datasette's own test client: every table and view,
the default sorts and facets, the JSON rendering and every canned query."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from test_read import build_prompt_log

pytest.importorskip("datasette")

from datasette.app import Datasette  # noqa: E402

import promptlog.ui  # noqa: E402
from promptlog.ui import metadata, register_plugin, split_for_datasette_1  # noqa: E402

TABLES = [
    "experiments", "runs", "metrics", "calls", "prompt_versions", "call_prompt_versions",
    "run_prompt_versions",
]  # fmt: skip
VIEWS = ["experiment_metrics", "run_metrics", "prompt_history"]
FACETS = {
    "experiments": {"name", "status"},
    "runs": {"experiment_id", "status"},
    "metrics": {"name", "kind"},
    "calls": {"model", "status", "bot_name"},
    "prompt_versions": {"name", "role"},
    "experiment_metrics": {"experiment", "metric"},
    "run_metrics": {"experiment", "status", "model"},
    "prompt_history": {"prompt", "experiment", "metric"},
}


@pytest.fixture
def logged(db_path) -> dict[str, Any]:
    experiments = build_prompt_log(runs=3)
    promptlog.open().experiments()  # flushed, and any migration applied
    return experiments


def get(db_path, *paths: str) -> list[Any]:
    """GET each path from a datasette serving the log with promptlog's bundle."""
    register_plugin()
    datasette = Datasette([str(db_path)], metadata=metadata(db_path.stem))

    async def fetch() -> list[Any]:
        await datasette.invoke_startup()
        return [await datasette.client.get(path) for path in paths]

    return asyncio.run(fetch())


def test_every_table_and_view_has_its_page_and_description(logged, db_path):
    pages = get(db_path, *(f"/message_log/{name}" for name in TABLES + VIEWS))
    for name, page in zip(TABLES + VIEWS, pages, strict=True):
        assert page.status_code == 200, name
        described = metadata()["databases"]["message_log"]["tables"][name]["description"]
        assert described.split(":")[-1].strip()[:40] in page.text.replace("&#39;", "'"), name
    index = get(db_path, "/message_log")[0]
    assert "Every prompt version, LLM call, experiment, run and metric" in index.text
    for query in ("leaderboard", "prompt_version_history", "side_by_side", "experiment_runs"):
        assert f'href="/message_log/{query}"' in index.text


def test_column_descriptions_are_shown(logged, db_path):
    (page,) = get(db_path, "/message_log/calls")
    assert "Allow-listed call parameters" in page.text


def test_default_facets_with_experiment_names_as_labels(logged, db_path):
    pages = get(db_path, *(f"/message_log/{name}.json" for name in FACETS))
    for (name, expected), page in zip(FACETS.items(), pages, strict=True):
        assert set(page.json()["facet_results"]) == expected, name
    runs = pages[1].json()["facet_results"]["experiment_id"]["results"]
    assert {(r["value"], r["label"], r["count"]) for r in runs} == {
        (logged["v1"].id, "names-v1", 3), (logged["v2"].id, "names-v2", 3),
    }


def test_default_sorts_put_the_newest_first(logged, db_path):
    runs, calls, experiments = get(
        db_path,
        "/message_log/runs.json?_shape=objects",
        "/message_log/calls.json?_shape=objects",
        "/message_log/experiments.json?_shape=objects",
    )
    started = [row["started_at"] for row in runs.json()["rows"]]
    assert started == sorted(started, reverse=True)
    created = [row["created_at"] for row in calls.json()["rows"]]
    assert created == sorted(created, reverse=True)
    assert [row["name"] for row in experiments.json()["rows"]] == ["names-v2", "names-v1"]


def test_messages_and_json_columns_render_readably(logged, db_path):
    calls, runs = get(db_path, "/message_log/calls", "/message_log/runs")
    assert '<div class="promptlog-message"><strong>system (prompt version 1)</strong>' in (
        calls.text
    )
    assert "You name jobs." in calls.text
    assert '<pre class="promptlog-json"' in runs.text
    assert "&#34;model&#34;: &#34;gpt-4o-mini&#34;" in runs.text or (
        "&quot;model&quot;: &quot;gpt-4o-mini&quot;" in runs.text
    )


def test_every_canned_query_answers(logged, db_path):
    board, history, sides, runs, all_metrics = get(
        db_path,
        "/message_log/leaderboard.json?_shape=objects&metric=name_length",
        "/message_log/prompt_version_history.json?_shape=objects&prompt=namer_user",
        "/message_log/side_by_side.json?_shape=objects&a=names-v1&b=names-v2",
        f"/message_log/experiment_runs.json?_shape=objects&experiment={logged['v1'].id}",
        "/message_log/leaderboard.json?_shape=objects",
    )
    assert [(r["experiment"], r["mean"]) for r in board.json()["rows"]] == [
        ("names-v1", 28.0), ("names-v2", 10.0),
    ]
    assert len(all_metrics.json()["rows"]) == 4
    assert [(r["version"], r["experiment"], r["metric"], r["mean"])
            for r in history.json()["rows"]] == [
        (1, "names-v1", "name_length", 28.0), (1, "names-v1", "short", 0.0),
        (2, "names-v2", "name_length", 10.0), (2, "names-v2", "short", 1.0),
    ]  # fmt: skip
    assert sides.json()["rows"] == [
        {"metric": "name_length", "kind": "int", "n_a": 3, "mean_a": 28.0, "n_b": 3,
         "mean_b": 10.0, "difference": -18.0},
        {"metric": "short", "kind": "bool", "n_a": 3, "mean_a": 0.0, "n_b": 3, "mean_b": 1.0,
         "difference": 1.0},
    ]  # fmt: skip
    rows = runs.json()["rows"]
    assert [r["execution_index"] for r in rows] == [0, 1, 2]
    assert json.loads(rows[0]["metrics"]) == {"name_length": 28.0, "short": 0.0}
    assert rows[0]["model"] == "gpt-4o-mini"
    pages = get(db_path, "/message_log/leaderboard", "/message_log/side_by_side")
    assert all(page.status_code == 200 for page in pages)


def test_the_metadata_splits_for_datasette_1():
    meta, config = split_for_datasette_1(metadata("log"))
    tables = config["databases"]["log"]["tables"]
    assert tables["runs"] == {"sort_desc": "started_at", "facets": ["experiment_id", "status"]}
    assert set(config["databases"]["log"]["queries"]) == {
        "leaderboard", "prompt_version_history", "side_by_side", "experiment_runs",
    }
    runs = meta["databases"]["log"]["tables"]["runs"]
    assert set(runs) == {"description", "columns"}
    assert "queries" not in meta["databases"]["log"]


def test_serve_runs_datasette_with_the_bundle(logged, db_path, monkeypatch):
    import datasette.cli

    seen: dict[str, Any] = {}

    def fake_main(args: list[str], **options: Any) -> None:
        seen["args"] = args
        seen["metadata"] = json.loads(open(args[args.index("--metadata") + 1]).read())

    monkeypatch.setattr(datasette.cli.cli, "main", fake_main)
    promptlog.ui.serve(db_path, port=8123)
    assert seen["args"][:2] == ["serve", str(db_path)]
    assert seen["args"][seen["args"].index("--port") + 1] == "8123"
    assert set(seen["metadata"]["databases"]) == {"message_log"}


def test_serve_refuses_datasette_1(logged, db_path, monkeypatch):
    monkeypatch.setattr(promptlog.ui, "datasette_major", lambda: 1)
    with pytest.raises(promptlog.PromptlogError, match="built for datasette 0.65"):
        promptlog.ui.serve(db_path)


def test_ui_without_datasette_says_what_to_install(logged, db_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasette.version", None)  # as if not installed
    with pytest.raises(promptlog.PromptlogError, match=r"pip install 'promptlog\[ui\]'"):
        promptlog.ui.serve(db_path)
