"""The datasette bundle, through datasette's own test client: every table and view,
the default sorts and facets, the JSON rendering and every canned query."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_read import SCORES_A, build_prompt_log

pytest.importorskip("datasette")

from datasette.app import Datasette  # noqa: E402

import promptlog.ui  # noqa: E402
from promptlog import Experiment  # noqa: E402
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


def test_messages_and_json_columns_render_compact_and_open_to_the_whole(logged, db_path):
    calls, runs, versions = get(
        db_path, "/message_log/calls", "/message_log/runs", "/message_log/call_prompt_versions"
    )
    # A call's messages: one line, opening to each message under its role and version.
    assert '<details class="pl-cell promptlog-messages"><summary>system: You name jobs.' in (
        calls.text
    )
    assert '<div class="promptlog-message"><strong>system (namer_system v1)</strong>' in (
        calls.text
    )
    assert "prompt version 1" not in calls.text
    # Other JSON: one line, opening to the indented form.
    assert '<details class="pl-cell promptlog-json-cell"><summary>{&#34;bots&#34;' in runs.text
    assert '<pre class="promptlog-json"' in runs.text
    assert "&#34;model&#34;: &#34;gpt-4o-mini&#34;" in runs.text
    # Prompt version ids as name vN, linked to the prompt's page.
    assert re.search(
        r'<a href="/-/promptlog/prompts/[\w.]+\.namer_user#v2" title="[\w.]+\.namer_user, '
        r'prompt version id \d+">namer_user v2</a>',
        versions.text,
    )
    # Experiment ids as their names, linked to the experiment's page.
    assert re.search(r'<a href="/-/promptlog/experiments/\w+" class="pl-experiment-link">'
                     r'names-v1</a>', runs.text)
    # Durations rounded, the exact value in the title.
    assert re.search(r'<span title="[0-9.e-]+">(<1 ms|\d+ ms|[0-9.]+ s)</span>', runs.text)


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


# --- a read-only, quiet server ------------------------------------------------------


def serve_and_request(db_path, *requests: tuple[str, str], during=None) -> list[Any]:
    """(method, path) requests to a datasette serving the log with promptlog's bundle;
    ``during(datasette)`` runs after the first request, on the same server."""
    register_plugin()
    datasette = Datasette([str(db_path)], metadata=metadata(db_path.stem))

    async def fetch() -> list[Any]:
        await datasette.invoke_startup()
        pages = []
        for i, (method, path) in enumerate(requests):
            if i == 1 and during is not None:
                await during(datasette)
            pages.append(await getattr(datasette.client, method.lower())(path))
        return pages

    return asyncio.run(fetch())


def test_a_post_to_a_canned_query_is_refused_with_405(logged, db_path, capfd):
    pages = serve_and_request(
        db_path,
        ("POST", "/message_log/leaderboard"),
        ("POST", "/message_log/leaderboard.json"),
        ("POST", "/message_log/runs"),
        ("PUT", "/message_log/experiment_runs.json"),
        ("GET", "/message_log/leaderboard.json"),
    )
    assert [page.status_code for page in pages] == [405, 405, 405, 405, 200]
    assert pages[0].headers["allow"] == "GET, HEAD, OPTIONS"
    assert "read-only" in pages[0].text
    assert pages[1].json()["status"] == 405 and not pages[1].json()["ok"]
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


def test_invalid_queries_answer_without_a_traceback_on_the_server(logged, db_path, capfd):
    pages = serve_and_request(
        db_path,
        ("GET", "/message_log?sql=select+nope+from+runs"),
        ("GET", "/message_log.json?sql=delete+from+runs"),
        ("GET", "/message_log/no_such_table"),
        ("GET", "/message_log/runs?_sort=no_such_column"),  # datasette answers 500
    )
    assert [page.status_code for page in pages] == [400, 400, 404, 500]
    assert "Cannot sort table by no_such_column" in pages[3].text
    assert "no such column: nope" in pages[0].text
    assert pages[1].json()["error"] == "Statement must be a SELECT"
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "locals" not in out + err
    assert out == "" and len(err.splitlines()) <= 2  # datasette's one line per SQL error


def test_an_unexpected_error_is_one_line_on_the_server(logged, db_path, capfd):
    from datasette import hookimpl
    from datasette.plugins import pm

    class Broken:
        __name__ = "broken-for-test"

        @hookimpl
        def register_routes(self):
            def broken(request):
                raise RuntimeError("the plugin broke")

            return [(r"^/-/broken(\.json)?$", broken)]

    pm.register(Broken(), name="broken-for-test")
    try:
        page, as_json = serve_and_request(db_path, ("GET", "/-/broken"), ("GET", "/-/broken.json"))
    finally:
        pm.unregister(name="broken-for-test")
    assert page.status_code == 500 and "the plugin broke" in page.text
    assert as_json.json() == {"ok": False, "error": "the plugin broke", "status": 500,
                              "title": None}  # fmt: skip
    out, err = capfd.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "promptlog ui: GET /-/broken: RuntimeError: the plugin broke",
        "promptlog ui: GET /-/broken.json: RuntimeError: the plugin broke",
    ]


def test_the_log_is_served_read_only_and_live_while_an_experiment_writes(logged, db_path):
    refused: list[str] = []

    async def meanwhile(datasette) -> None:
        database = datasette.get_database("message_log")
        for sql in ("DELETE FROM runs", "UPDATE experiments SET name = 'x'"):
            try:
                await database.execute_write(sql)
            except sqlite3.OperationalError as e:
                refused.append(str(e))
        # An experiment writing to the log while it is served.
        promptlog.Experiment("while-serving", num_executions=5, quiet=True).run(lambda: 1)

    first, second = serve_and_request(
        db_path,
        ("GET", "/message_log/runs.json?_shape=objects&_size=max"),
        ("GET", "/message_log/runs.json?_shape=objects&_size=max"),
        during=meanwhile,
    )
    assert refused == ["attempt to write a readonly database"] * 2
    assert len(first.json()["rows"]) == 6 and len(second.json()["rows"]) == 11
    names = promptlog.open(db_path).experiments()["experiment"].tolist()
    assert sorted(names) == ["names-v1", "names-v2", "while-serving"]


@pytest.mark.parametrize(
    ("host", "warned"),
    [("127.0.0.1", False), ("localhost", False), ("::1", False), ("0.0.0.0", True),
     ("::", True), ("192.168.1.20", True), ("my-laptop.local", True)],
)  # fmt: skip
def test_serving_beyond_this_machine_warns(host, warned, logged, db_path, monkeypatch, capsys):
    import datasette.cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(datasette.cli.cli, "main", lambda args, **_: seen.update(args=args))
    promptlog.ui.serve(db_path, host=host)
    assert seen["args"][seen["args"].index("--host") + 1] == host
    err = capsys.readouterr().err
    if not warned:
        assert err == ""
        return
    assert "warning" in err and "no authentication" in err and str(db_path) in err
    assert "every prompt, reply" in err and "127.0.0.1" in err
    if host in ("0.0.0.0", "::"):
        assert "every network interface" in err


def test_promptlog_ui_on_every_interface_warns_from_the_cli(logged, db_path, monkeypatch):
    import datasette.cli
    from click.testing import CliRunner

    from promptlog.cli import cli

    monkeypatch.setattr(datasette.cli.cli, "main", lambda args, **_: None)
    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "no authentication" in result.stderr


def test_every_module_the_ui_imports_is_declared_in_the_ui_and_test_extras():
    import ast
    import importlib.metadata
    import sys

    import tomllib

    root = Path(promptlog.ui.__file__).parent
    imported = set()
    for source in root.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"promptlog"}
    owners = importlib.metadata.packages_distributions()
    needed = {owners[module][0].lower() for module in third_party}
    project = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}

    core = names(project["dependencies"])
    extras = project["optional-dependencies"]
    # markupsafe comes with jinja2 (a core dependency); datasette brings the rest.
    assert "pyyaml" in needed
    for extra in ("ui", "test"):
        missing = needed - core - names(extras[extra]) - {"markupsafe"}
        assert not missing, f"imported by promptlog/ui but not in the {extra} extra: {missing}"


# --- the viewer: /-/promptlog -------------------------------------------------------


@pytest.fixture
def viewer_log(db_path) -> dict[str, Any]:
    from ui_support import build_ui_log

    return build_ui_log()


def test_the_experiments_page_lists_the_newest_first_with_counts_and_intervals(
    viewer_log, db_path
):
    from ui_support import DEMO_RUNS, FLAKY_RUNS

    page, as_json, by_format, filtered = get(
        db_path, "/-/promptlog", "/-/promptlog.json", "/-/promptlog?_format=json",
        "/-/promptlog.json?name=DEMO",
    )  # fmt: skip
    assert page.status_code == as_json.status_code == 200
    assert by_format.json() == as_json.json()
    rows = as_json.json()["experiments"]
    assert [row["experiment"] for row in rows] == [
        "tune-qa", "tune-qa candidate 0", "tune-qa candidate 1", "tune-qa candidate 2",
        "search-x", "qa-b", "qa-a", "flaky", "exp-b", "exp-a", "demo-job-names-v2",
        "demo-job-names-v1",
    ]  # fmt: skip
    flaky, b, a, v2, v1 = rows[7:]
    assert (flaky["runs"], flaky["num_executions"], flaky["failed"]) == (FLAKY_RUNS, 8, 2)
    assert flaky["calls"] == 0 and flaky["metrics"] == {}
    assert v1["models"] == ["promptlog/offline"] and v1["calls"] == 2 * DEMO_RUNS
    usage = promptlog.open().calls(viewer_log["v1"].id)
    assert v1["input_tokens"] == usage["input_tokens"].sum()
    assert v1["cost"] == pytest.approx(usage["cost"].sum())
    score = a["metrics"]["score"]
    assert (score["n"], score["mean"]) == (10, 5.5)
    assert (score["ci_low"], score["ci_high"]) == pytest.approx((3.3341, 7.6659), abs=1e-4)
    passed = b["metrics"]["passed"]
    assert passed["kind"] == "bool" and passed["mean"] == 0.8
    assert (passed["ci_low"], passed["ci_high"]) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    summary = promptlog.open().summary(viewer_log["v2"].id)
    for name, found in v2["metrics"].items():
        assert found["mean"] == pytest.approx(summary.loc[name, "mean"])
        assert found["ci_high"] == pytest.approx(summary.loc[name, "ci_high"])
    assert [row["experiment"] for row in filtered.json()["experiments"]] == [
        "demo-job-names-v2", "demo-job-names-v1",
    ]  # fmt: skip
    html = page.text
    assert html.count('class="pl-experiment-link"') == 12
    assert f'href="/-/promptlog/experiments/{viewer_log["a"].id}"' in html
    assert html.count("<svg") >= 11  # an interval bar per metric per experiment
    assert f'<time datetime="{flaky["created_at"]}"' in html
    assert 'href="/-/promptlog.json"' in html and 'href="/message_log/experiments"' in html
    assert "5.5" in html and "80.0%" in html


def test_the_experiment_page_shows_runs_metrics_errors_prompts_and_environment(
    viewer_log, db_path
):
    v1, flaky = viewer_log["v1"].id, viewer_log["flaky"].id
    page, as_json, failing, by_name, missing = get(
        db_path, f"/-/promptlog/experiments/{v1}", f"/-/promptlog/experiments/{v1}.json",
        f"/-/promptlog/experiments/{flaky}", "/-/promptlog/experiments/exp-a.json",
        "/-/promptlog/experiments/nope",
    )  # fmt: skip
    assert page.status_code == 200 and missing.status_code == 404
    data = as_json.json()
    assert data["experiment"]["experiment"] == "demo-job-names-v1"
    assert data["experiment"]["environment"]["python"]
    runs = promptlog.open().runs(v1)
    assert [r["run_id"] for r in data["runs"]] == runs["run_id"].tolist()
    assert [r["metrics"]["short_name"] for r in data["runs"]] == runs["short_name"].tolist()
    assert set(data["metrics"]) == {"name_length", "pitch_words", "short_name"}
    assert data["metrics"]["name_length"]["values"] == runs["name_length"].tolist()
    assert {(v["short_name"], v["version"]) for v in data["prompt_versions"]} == {
        ("namer_system", 1), ("namer_user", 1),
    }  # fmt: skip
    assert {bot["name"] for bot in data["bots"]} == {"namer", "pitcher"}
    html = page.text
    assert html.count('class="pl-plot pl-histogram"') == 3
    passed = int(runs["short_name"].sum())  # short_name, a bool: one mark per run
    assert (html.count("✓"), html.count("✗")) == (passed, len(runs) - passed)
    assert 'href="/-/promptlog/prompts/promptlog.demo.namer_user#v1"' in html
    assert f'href="/message_log/runs/{data["runs"][0]["run_id"]}"' in html
    assert "Python" in html and "Git commit" in html
    assert [r["metrics"]["score"] for r in by_name.json()["runs"]] == SCORES_A
    text = failing.text
    assert text.count('<details class="pl-traceback">') == 2
    assert "<strong>ValueError</strong>: no name for execution 3</span>" in text
    assert "Traceback (most recent call last)" in text


def test_the_compare_page_gives_the_numbers_of_promptlog_compare_and_the_prompt_diff(
    viewer_log, db_path
):
    a, b = viewer_log["a"].id, viewer_log["b"].id
    page, as_json, prompts, empty = get(
        db_path, f"/-/promptlog/compare?a={a}&b={b}", f"/-/promptlog/compare.json?a={a}&b={b}",
        "/-/promptlog/compare?a=demo-job-names-v1&b=demo-job-names-v2", "/-/promptlog/compare",
    )  # fmt: skip
    assert page.status_code == prompts.status_code == empty.status_code == 200
    data = as_json.json()["comparison"]
    expected = promptlog.compare(a, b).to_dict()
    assert data["metrics"] == expected["metrics"] and data["pairing"] == "execution_index"
    score, passed = data["metrics"][1], data["metrics"][0]
    assert (score["metric"], score["difference"]) == ("score", 1.5)
    assert (passed["a_only"], passed["b_only"], passed["p_value"]) == (0, 3, 0.25)
    html = page.text
    assert "+1.5 [" in html and "0.250" in html and "+30.0 [" in html
    assert html.count('class="pl-plot pl-difference"') == 2
    assert f'href="/-/promptlog/experiments/{a}"' in html
    # The prompt that changed between the demo's two experiments, side by side.
    text = prompts.text
    assert '<table class="diff"' in text
    assert 'class="diff_add"' in text and "short, catchy" in text
    assert 'href="/-/promptlog/prompts/promptlog.demo.namer_user#v2"' in text
    # With nothing chosen: the two pickers, every experiment in each.
    assert empty.text.count("<select") == 2 and empty.text.count("<option") == 2 * (1 + 12)
    assert as_json.json()["a"] == a
    # Neither ran over inputs: no table per example.
    assert as_json.json()["examples"] is None and "pl-examples" not in html


def test_the_compare_page_puts_each_example_side_by_side_most_changed_first(
    viewer_log, db_path
):
    from ui_support import QA_ORDER

    a, b = viewer_log["qa_a"].id, viewer_log["qa_b"].id
    page, as_json = get(
        db_path, f"/-/promptlog/compare?a={a}&b={b}", f"/-/promptlog/compare.json?a={a}&b={b}"
    )
    assert page.status_code == 200
    data = as_json.json()
    assert data["comparison"]["pairing"] == "example"
    found = data["examples"]
    examples = found["examples"]
    assert [e["input"]["question"] for e in examples] == QA_ORDER
    # The means per side are those promptlog.open().examples gives.
    expected = promptlog.open().examples(a, b).set_index("input.question")
    for example in examples:
        row = expected.loc[example["input"]["question"]]
        assert example["example_id"] == row["example_id"]
        for name in ("exact", "closeness"):
            shown = example["metrics"][name]
            assert (shown["a"], shown["b"]) == (row[f"{name}_a"], row[f"{name}_b"])
            assert shown["change"] == row[f"{name}_change"]
            assert shown["flips"] == row[f"{name}_flips"]
    three, five, seven, two, _ = examples
    assert (three["direction"], five["direction"], seven["direction"]) == (
        "better", "worse", "better",
    )  # fmt: skip
    assert (three["change"], five["change"], seven["change"], two["change"]) == (1, 1, 0.5, 0)
    assert [e["flips"] for e in examples] == [False, False, True, False, False]
    assert found["counts"] == {"better": 2, "worse": 1, "mixed": 0, "same": 2}
    assert found["flips"] == 1
    # Each side's outputs, repeat by repeat, from the runs.
    runs = promptlog.open().runs([a, b])
    seven_b = runs[(runs["experiment_id"] == b) & (runs["input.question"] == "What is 7+7?")]
    assert [(r["repeat_index"], r["result"], r["metrics"]["exact"]) for r in seven["b"]] == [
        (0, "14", True), (1, "15", False),
    ]  # fmt: skip
    assert [r["run_id"] for r in seven["b"]] == seven_b["run_id"].tolist()
    assert [r["result"] for r in three["a"]] == ["5", "5"]
    html = page.text
    assert html.count('<tr class="pl-example ') == 5
    assert html.count("pl-example-better") == 2 and html.count("pl-example-worse") == 1
    assert html.count('<span class="pl-flip-badge" title=') == 1
    assert html.index("What is 3+3?") < html.index("What is 5+5?") < html.index("What is 9+9?")
    assert f'href="/message_log/runs/{seven["b"][1]["run_id"]}"' in html
    assert "0% → 50.0%" in html and "100% → 0%" in html
    # The prompt edit between them, as a diff, above the examples.
    assert '<table class="diff"' in html and "Think step by step" in html
    assert html.index('<table class="diff"') < html.index("pl-examples")


def test_the_prompt_page_is_a_timeline_of_versions_with_diffs_and_metrics(viewer_log, db_path):
    page, as_json, short, prompts, missing = get(
        db_path, "/-/promptlog/prompts/promptlog.demo.namer_user",
        "/-/promptlog/prompts/promptlog.demo.namer_user.json",
        "/-/promptlog/prompts/namer_user.json", "/-/promptlog/prompts.json",
        "/-/promptlog/prompts/nope",
    )  # fmt: skip
    assert page.status_code == 200 and missing.status_code == 404
    data = as_json.json()
    assert short.json() == data
    assert data["prompt"] == "promptlog.demo.namer_user"
    v2, v1 = data["versions"]  # newest first
    assert (v2["version"], v1["version"]) == (2, 1) and v1["diff"] is None
    assert "+Give me a short, catchy name" in v2["diff"]
    assert [e["experiment"] for e in v2["experiments"]] == ["demo-job-names-v2"]
    summary = promptlog.open().summary(viewer_log["v2"].id)
    shown = v2["experiments"][0]["metrics"]
    assert set(shown) == set(summary.index)
    for name, found in shown.items():
        assert found["mean"] == pytest.approx(summary.loc[name, "mean"])
        assert found["ci_low"] == pytest.approx(summary.loc[name, "ci_low"])
    html = page.text
    assert 'id="v2"' in html and 'id="v1"' in html
    assert html.index('id="v2"') < html.index('id="v1"')
    assert '<table class="diff"' in html and "short, catchy" in html
    assert html.count('class="pl-plot pl-interval"') == 6  # 3 metrics x 2 versions
    assert f'href="/-/promptlog/experiments/{viewer_log["v1"].id}"' in html
    names = {p["short_name"]: p["versions"] for p in prompts.json()["prompts"]}
    assert names == {"namer_system": 1, "namer_user": 2, "qa_user": 3}


def test_every_page_links_its_json_and_its_table_and_the_nav(viewer_log, db_path):
    paths = {
        "/-/promptlog": "/message_log/experiments",
        f"/-/promptlog/experiments/{viewer_log['a'].id}":
            f"/message_log/runs?experiment_id={viewer_log['a'].id}",
        "/-/promptlog/compare?a=exp-a&b=exp-b": "/message_log/experiment_metrics",
        "/-/promptlog/prompts": "/message_log/prompt_versions",
        "/-/promptlog/prompts/promptlog.demo.namer_user": "/message_log/prompt_versions",
        "/-/promptlog/optimizations": "/message_log/experiments",
        "/-/promptlog/optimizations/tune-qa":
            f"/message_log/experiments?parent_id={viewer_log['tune'].id}",
    }
    pages = get(db_path, *paths)
    for (path, table), page in zip(paths.items(), pages, strict=True):
        assert page.status_code == 200, path
        json_link = re.search(r'<a href="([^"]+)" class="pl-json-link">', page.text)
        assert json_link, path
        assert f'<a href="{table}" class="pl-table-link">' in page.text, path
        assert 'href="/-/promptlog/static/promptlog.css"' in page.text
        (as_json,) = get(db_path, json_link.group(1).replace("&amp;", "&"))
        assert as_json.status_code == 200 and as_json.headers["content-type"].startswith(
            "application/json"
        ), path
    # A page about one thing links to its rows: an experiment's runs, an optimisation's
    # candidates.
    runs, candidates = get(
        db_path, f"/message_log/runs.json?experiment_id={viewer_log['a'].id}&_shape=objects",
        f"/message_log/experiments.json?parent_id={viewer_log['tune'].id}&_shape=objects",
    )  # fmt: skip
    assert len(runs.json()["rows"]) == 10
    assert [r["name"] for r in candidates.json()["rows"]] == [
        f"tune-qa candidate {i}" for i in (2, 1, 0)
    ]
    css, js = get(db_path, "/-/promptlog/static/promptlog.css", "/-/promptlog/static/promptlog.js")
    assert css.status_code == js.status_code == 200 and "ago" in js.text


def test_the_runs_table_folds_tracebacks_and_shows_times_for_the_browser(viewer_log, db_path):
    (runs,) = get(db_path, f"/message_log/runs?experiment_id={viewer_log['flaky'].id}")
    assert runs.text.count('<details class="pl-cell promptlog-text"><summary>ValueError: ') == 2
    assert re.search(r'<time datetime="20[0-9T:.-]+Z" title="[^"]+">20[0-9-]+ [0-9:]+ UTC</time>',
                     runs.text)


def test_the_viewer_answers_on_an_empty_log(db_path):
    from promptlog import store

    store.writer()  # a log with nothing in it
    store.flush()
    pages = get(
        db_path, "/-/promptlog", "/-/promptlog.json", "/-/promptlog/compare",
        "/-/promptlog/prompts", "/-/promptlog/experiments/nope.json",
        "/-/promptlog/optimizations", "/-/promptlog/optimizations/nope",
    )  # fmt: skip
    assert [page.status_code for page in pages] == [200, 200, 200, 200, 404, 200, 404]
    assert "No optimisation yet" in pages[5].text
    assert "No experiment yet" in pages[0].text
    assert pages[1].json()["experiments"] == []
    assert "No experiment named or with id 'nope'" in pages[4].json()["error"]


# --- optimisations ----------------------------------------------------------------


def test_the_optimisation_page_of_a_search_shows_each_step_the_best_so_far_and_a_baseline(
    viewer_log, db_path
):
    from ui_support import BASELINE_X, SEARCH_STEPS, SEARCH_X0, instruction_score

    search = viewer_log["search"].id
    page, as_json, by_name = get(
        db_path, f"/-/promptlog/optimizations/{search}",
        f"/-/promptlog/optimizations/{search}.json", "/-/promptlog/optimizations/search-x.json",
    )  # fmt: skip
    assert page.status_code == 200
    data = as_json.json()
    assert by_name.json() == data
    assert (data["form"], data["optimiser"], data["metric"], data["minimize"]) == (
        "search", "OPRO", "score", False,
    )  # fmt: skip
    main, baseline = data["series"]
    tried = [SEARCH_X0, *(x for xs in SEARCH_STEPS for x in xs)]
    assert [p["y"] for p in main["points"]] == [instruction_score(x) for x in tried]
    assert [p["x"] for p in main["points"]] == [0, 1, 1, 2, 2, 3, 3]
    assert [b["y"] for b in main["best"]] == [0, 1, 1, 2, 2, 3, 3]
    assert baseline["baseline"] and [p["y"] for p in baseline["points"]] == [
        instruction_score(x) for x in BASELINE_X
    ]
    assert [b["y"] for b in baseline["best"]] == [0, 1, 1]
    # Each evaluation is a run of the search, with the score metric it recorded.
    runs = promptlog.open().runs(search).set_index("run_id")
    evaluations = data["evaluations"]
    assert len(evaluations) == 10 and sum(e["baseline"] for e in evaluations) == 3
    for e in evaluations:
        assert runs.loc[e["run_id"], "score"] == e["score"]
    listed = promptlog.open().optimizations().set_index("name").loc["search-x"]
    budget = data["budget"]
    assert (budget["runs"], budget["own_runs"], budget["proposals"]) == (13, 13, 3)
    assert budget["runs"] == listed["runs"] and budget["calls"] == listed["calls"] == 3
    assert budget["recorded"] == [
        {"key": "steps", "value": 3, "limit": 3},
        {"key": "evaluations", "value": 7, "limit": None},
    ]
    assert data["outcome"]["best_x"] == SEARCH_STEPS[-1][0]
    html = page.text
    assert html.count('class="pl-plot pl-progress"') == 1
    assert html.count('class="pl-point"') == 10 and html.count('class="pl-best-line"') == 2
    # Each x after the first opens to its diff against the first.
    assert html.count('<details class="pl-fold pl-x-diff">') == 9
    assert html.count('<table class="diff"') == 9
    assert f'href="/message_log/runs/{evaluations[-1]["run_id"]}"' in html
    assert f'href="/-/promptlog/experiments/{search}"' in html
    assert "steps" in html and "of 3" in html


def test_the_optimisation_page_of_a_compile_shows_candidates_scores_diffs_and_budget(
    viewer_log, db_path
):
    tune = viewer_log["tune"].id
    children = [viewer_log[f"tune_{i}"].id for i in range(3)]
    page, as_json = get(
        db_path, f"/-/promptlog/optimizations/{tune}", f"/-/promptlog/optimizations/{tune}.json"
    )
    assert page.status_code == 200
    data = as_json.json()
    assert (data["form"], data["optimiser"], data["metric"]) == (
        "candidates", "InstructionSearch", "exact",
    )  # fmt: skip
    candidates = data["candidates"]
    assert [c["experiment_id"] for c in candidates] == children == promptlog.open().children(tune)
    for c in candidates:
        summary = promptlog.open().summary(c["experiment_id"]).loc["exact"]
        assert c["score"]["mean"] == pytest.approx(summary["mean"])
        assert c["score"]["ci_low"] == pytest.approx(summary["ci_low"])
    assert [c["score"]["mean"] for c in candidates] == [0.6, 0.8, 1.0]
    assert [(c["baseline"], c["best"]) for c in candidates] == [
        (True, False), (False, False), (False, True),
    ]  # fmt: skip
    # Each candidate against the baseline: the numbers of promptlog.compare, and the
    # prompt its overrides changed, as a diff.
    expected = promptlog.compare(children[0], children[2], ["exact"]).to_dict()
    assert candidates[2]["vs_baseline"] == expected["metrics"][0]
    (change,) = candidates[2]["changes"]
    assert (change["short_name"], change["versions_a"], change["versions_b"]) == (
        "qa_user", [1], [3],
    )  # fmt: skip
    assert "+Check your sum twice" in change["diff"]
    assert [v["version"] for v in candidates[1]["prompt_versions"]] == [2]
    points, baseline = data["series"]
    assert [p["y"] for p in points["points"]] == [0.6, 0.8, 1.0]
    assert [b["y"] for b in points["best"]] == [0.6, 0.8, 1.0]
    assert baseline["baseline"] and {b["y"] for b in baseline["best"]} == {0.6}
    listed = promptlog.open().optimizations().set_index("name").loc["tune-qa"]
    budget = data["budget"]
    assert budget["runs"] == 1 + 3 * 5 and budget["candidates"] == listed["candidates"] == 3
    assert budget["calls"] == listed["calls"] == 1
    assert {"key": "metric_calls", "value": 15, "limit": 40} in budget["recorded"]
    html = page.text
    assert html.count('class="pl-plot pl-progress"') == 1
    assert html.count('class="pl-point"') == 3
    assert html.count('class="pl-plot pl-interval"') == 3
    assert html.count('<table class="diff"') == 2 and "Check your sum twice" in html
    assert 'href="/-/promptlog/prompts/ui_support.qa_user#v3"' in html
    for child in children:
        assert f'href="/-/promptlog/experiments/{child}"' in html
    assert 'id="candidate-2"' in html and "15" in html and "of 40" in html
    # Each candidate's difference links to its comparison with the baseline.
    assert f'href="/-/promptlog/compare?a={children[0]}&amp;b={children[2]}"' in html


def test_optimisations_are_listed_marked_and_linked_from_experiments(viewer_log, db_path):
    tune, search = viewer_log["tune"].id, viewer_log["search"].id
    listed, experiments, optimisation, candidate, plain, refused = get(
        db_path, "/-/promptlog/optimizations.json", "/-/promptlog",
        f"/-/promptlog/experiments/{tune}", f"/-/promptlog/experiments/{viewer_log['tune_1'].id}",
        f"/-/promptlog/experiments/{viewer_log['a'].id}",
        f"/-/promptlog/optimizations/{viewer_log['tune_1'].id}.json",
    )  # fmt: skip
    rows = listed.json()["optimizations"]
    records = promptlog.open().optimization_records().dicts()
    assert [r["experiment_id"] for r in rows] == [r["id"] for r in records] == [tune, search]
    assert [(r["best_score"], r["candidates"], r["calls"]) for r in rows] == [
        (1.0, 3, 1), (3.0, 0, 3),
    ]  # fmt: skip
    html = experiments.text
    assert html.count('class="pl-kind-badge pl-optimization-link"') == 2
    assert f'href="/-/promptlog/optimizations/{tune}"' in html
    assert html.count('class="pl-kind-badge pl-candidate-link"') == 3
    assert f'href="/-/promptlog/optimizations/{tune}#candidate-1"' in html
    assert "candidate 1 of tune-qa" in html
    assert f'href="/-/promptlog/optimizations/{tune}"' in optimisation.text
    assert f'href="/-/promptlog/optimizations/{tune}#candidate-1"' in candidate.text
    # A candidate ran over the questions: each run shows its example's fields.
    assert candidate.text.count('<td class="pl-example-input">') == 5
    assert "What is 7+7?" in candidate.text and "<th>Example</th>" in candidate.text
    assert "<th>Example</th>" not in plain.text
    assert "pl-optimization-link" not in plain.text
    assert refused.status_code == 404
    assert "is not an optimisation; it belongs to optimisation" in refused.json()["error"]


def test_a_baseline_kept_as_a_child_search_and_candidates_without_numbers(db_path):
    from ui_support import score

    def evaluate(item: tuple[int, float]) -> dict[str, float]:
        step, value = item
        return {"step": step, "x": f"[{value}, 0]", "score": score(value)}

    main = Experiment("minimise", kind="optimisation", quiet=True,
                      metadata={"optimiser": "llm_optimize", "minimize": True})  # fmt: skip
    with main.session():
        main.map(evaluate, [(0, 5.0), (1, 3.0), (2, 4.0), (3, 1.0)])
        main.outcome = {"best_score": 1.0}
        baseline = Experiment("minimise random", kind="optimisation", parent=main, quiet=True,
                              metadata={"optimiser": "baseline", "minimize": True})  # fmt: skip
        with baseline.session():
            baseline.map(evaluate, [(1, 4.0), (2, 2.0), (3, 3.0)])
        Experiment("minimise best", parent=main, quiet=True).run(lambda: {"best": 1.0})
    tune = Experiment("tune", kind="optimisation", quiet=True)
    with tune.session():
        for i, answer in enumerate(["4", "5"]):
            promptlog.evaluate(lambda question, a=answer: a, [{"question": "2+2"}],
                               metrics=[lambda prediction: prediction == "4"],
                               name=f"tune {i}", parent=tune, quiet=True)  # fmt: skip
    promptlog.open().status()
    searched, tuned, tuned_json = get(
        db_path, "/-/promptlog/optimizations/minimise.json", "/-/promptlog/optimizations/tune",
        "/-/promptlog/optimizations/tune.json",
    )  # fmt: skip
    data = searched.json()
    assert data["form"] == "search" and data["candidates"] == []
    own, child = data["series"]
    assert [b["y"] for b in own["best"]] == [5.0, 3.0, 3.0, 1.0]  # minimised
    assert (child["label"], child["baseline"]) == ("minimise random", True)
    assert [b["y"] for b in child["best"]] == [4.0, 2.0, 2.0]
    assert [o["experiment"] for o in data["others"]] == ["minimise random", "minimise best"]
    # Its x are JSON data, shown whole, with no diff.
    assert [e["x"] for e in data["evaluations"]][:2] == ["[5.0, 0]", "[3.0, 0]"]
    assert all(e["diff_html"] is None for e in data["evaluations"])
    assert tuned.status_code == 200
    assert 'id="candidate-1"' in tuned.text and "tune 1" in tuned.text
    # No outcome recorded: the best score is the best the log holds, and no candidate
    # without overrides is taken for a baseline.
    found = tuned_json.json()
    assert found["outcome"] == {} and found["best_score"] == 1.0
    assert [(c["candidate"], c["score"]["mean"], c["baseline"], c["best"])
            for c in found["candidates"]] == [(0, 1.0, False, True), (1, 0.0, False, False)]
    assert "the optimiser recorded none" in tuned.text


def test_the_optimisation_page_of_a_compile_by_promptlog_optimizers(db_path, monkeypatch):
    from optimizer_support import DEV, EVERYTHING, TRAIN, exact, qa

    from promptlog import optimizers
    from promptlog.testing import FakeOpenAIServer, FollowsExamples

    with FakeOpenAIServer(responder=FollowsExamples(EVERYTHING), max_seconds=120) as server:
        monkeypatch.setenv("PROMPTLOG_MODEL", server.model)
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        result = optimizers.LabeledFewShot(k=len(TRAIN), metric=exact).compile(
            qa, trainset=TRAIN, valset=DEV, name="tune-qa", quiet=True
        )
    promptlog.open().status()
    page, as_json = get(
        db_path, "/-/promptlog/optimizations/tune-qa", "/-/promptlog/optimizations/tune-qa.json"
    )
    assert page.status_code == 200
    data = as_json.json()
    assert (data["form"], data["optimiser"], data["metric"]) == (
        "candidates", "LabeledFewShot", "exact",
    )  # fmt: skip
    frame = result.candidates
    shown = data["candidates"]
    assert [c["experiment_id"] for c in shown] == list(frame["experiment_id"])
    assert [c["score"]["mean"] for c in shown] == list(frame["score"]) == [0.0, 1.0]
    assert [(c["baseline"], c["best"]) for c in shown] == [(True, False), (False, True)]
    assert shown[1]["vs_baseline"]["difference"] == 1.0
    (change,) = shown[1]["changes"]
    assert (change["short_name"], change["versions_a"], change["versions_b"]) == (
        "answer", [1], [2],
    )  # fmt: skip
    assert data["best_score"] == result.best_score == 1.0
    recorded = {item["key"]: item["value"] for item in data["budget"]["recorded"]}
    assert recorded["metric_calls"] == result.outcome["metric_calls"]
    assert data["evaluations"] == []  # its own runs are its work, not evaluations
    html = page.text
    assert html.count('class="pl-point"') == 2 and '<table class="diff"' in html
    assert TRAIN[0]["question"] in html  # a demo the candidate added, in its diff


def test_a_reflection_loop_is_drawn_per_round_one_point_per_setting(db_path):
    from ui_support import score

    settings = [{"temperature": 0.7}, {"temperature": 0.2}, {"temperature": 0.4}]

    def task(item: tuple[int, int, int, float]) -> dict[str, Any]:
        round_, index, which, value = item
        score(value)
        return {"role": "task", "round": round_, "index": index,
                "hyperparameters": settings[which]}  # fmt: skip

    loop = Experiment("reflect", kind="optimisation", quiet=True,
                      metadata={"optimiser": "meta_optimize", "metric": "fits"})  # fmt: skip
    with loop.session():
        loop.map(task, [(0, 0, 0, 0.2), (0, 1, 0, 0.4)])
        loop.map(lambda i: {"role": "reflection", "round": 0, "index": i}, [0, 1])
        loop.map(task, [(1, 0, 1, 0.9), (1, 1, 1, 0.7), (1, 2, 2, 0.1), (1, 3, 2, 0.3)])
        loop.outcome = {"best_score": 0.8, "best_hyperparameters": settings[1], "rounds": 1}
    promptlog.open().status()
    page, as_json = get(
        db_path, "/-/promptlog/optimizations/reflect", "/-/promptlog/optimizations/reflect.json"
    )
    data = as_json.json()
    # Its metadata names the metric function; the runs recorded "score".
    assert (data["form"], data["metric"], data["step_name"]) == ("search", "score", "round")
    (series,) = data["series"]
    assert [(p["x"], round(p["y"], 6)) for p in series["points"]] == [(0, 0.3), (1, 0.8), (1, 0.2)]
    assert [round(b["y"], 6) for b in series["best"]] == [0.3, 0.8, 0.8]
    assert len(data["evaluations"]) == 6 and data["budget"]["runs"] == 8
    assert data["best_x"] == settings[1]
    assert "score per round" in page.text and "The best hyperparameters" in page.text
