"""The promptlog command, through click's CliRunner: every command, its --json form,
and what bad arguments get (the whole error on one line, exit status 1, no
traceback)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_read import TEMPLATES, build_constructed_log, build_prompt_log

import promptlog
from promptlog.cli import cli

COMMANDS = [
    "path", "status", "experiments", "runs", "show", "calls", "prompts", "diff", "compare",
    "export", "ui", "demo",
]  # fmt: skip


def invoke(*args: str, color: bool = False) -> Result:
    # 80 columns whatever the terminal running the tests.
    return CliRunner(env={"COLUMNS": "80"}).invoke(cli, list(args), color=color)


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str, exit_code: int = 1) -> str:
    """The output of a command that must fail cleanly: one line, no traceback."""
    result = invoke(*args)
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return result.output


def assert_fits_80_columns(text: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


def one_line_error(output: str) -> str:
    """The error a command printed: one line, the library's message whole."""
    (line,) = output.strip().splitlines()
    assert line.startswith("Error: ") and line.endswith(".")
    return line


@pytest.fixture
def prompt_log() -> dict[str, promptlog.Experiment]:
    return build_prompt_log(runs=3)


def test_help_lists_every_command_and_each_has_help():
    output = ok("--help")
    for command in COMMANDS:
        assert f"  {command} " in output
        assert ok(command, "--help").startswith(f"Usage: cli {command}")


def test_path_prints_the_log_in_use(db_path, tmp_path):
    assert ok("path").strip() == str(db_path)
    assert json.loads(ok("path", "--json")) == {"path": str(db_path), "exists": False}
    other = tmp_path / "other.db"
    assert ok("--db", str(other), "path").strip() == str(other)
    assert os.environ["PROMPTLOG_DB"] == str(db_path)  # --db lasts one command


def test_path_never_calls_a_folder_an_existing_log(tmp_path):
    assert json.loads(ok("--db", str(tmp_path), "path", "--json")) == {
        "path": str(tmp_path), "exists": False,
    }
    result = CliRunner().invoke(cli, ["--db", str(tmp_path), "path"])
    assert result.exit_code == 0 and result.stdout == f"{tmp_path}\n"
    assert f"{tmp_path} is a folder, not a log" in result.stderr


def test_status_counts_what_the_log_holds(prompt_log, db_path):
    output = ok("status")
    assert f"log:         {db_path}" in output
    assert "experiments: 2\n" in output and "runs:        6 (0 failed)" in output
    assert "prompts:     2 (3 versions)" in output
    data = json.loads(ok("status", "--json"))
    assert set(data) == {
        "path", "size_bytes", "experiments", "runs", "failed_runs", "metrics", "calls",
        "prompts", "prompt_versions", "cost", "last_activity",
    }
    assert (data["experiments"], data["runs"], data["calls"], data["metrics"]) == (2, 6, 6, 12)


def test_experiments_lists_runs_and_metric_means(prompt_log):
    output = ok("experiments")
    assert_fits_80_columns(output)
    assert "names-v1" in output and prompt_log["v2"].id in output
    assert "name_length 28" in output and "short 100%" in output
    items = json.loads(ok("experiments", "--json"))
    assert [item["experiment"] for item in items] == ["names-v1", "names-v2"]
    assert set(items[0]) == {
        "experiment_id", "experiment", "status", "created_at", "finished_at",
        "num_executions", "runs", "succeeded", "failed", "interrupted", "duration_s", "metrics",
    }
    assert items[1]["metrics"] == {"name_length": 10.0, "short": 1.0}
    assert [i["experiment"] for i in json.loads(ok("experiments", "-n", "1", "--json"))] == [
        "names-v2"
    ]


def test_experiments_on_an_empty_log_says_so(db_path):
    from promptlog import store

    store.writer(db_path).flush()  # an empty log: created by its writer, nothing in it
    assert ok("experiments").startswith("No experiments in ")
    assert json.loads(ok("experiments", "--json")) == []


def test_runs_of_an_experiment(prompt_log):
    output = ok("runs", "names-v2")
    assert_fits_80_columns(output)
    assert "same in every run: model gpt-4o-mini, temperature 0.5" in output
    for run in prompt_log["v2"].runs:
        assert run.id in output
    first = ok("runs", "names-v2", "-n", "2")
    ordered = sorted(prompt_log["v2"].runs, key=lambda run: run.execution_index)
    assert ordered[1].id in first and ordered[2].id not in first
    assert "… and 1 more runs (-n 0 shows all)." in first
    items = json.loads(ok("runs", prompt_log["v1"].id, "--json"))
    assert [item["execution_index"] for item in items] == [0, 1, 2]
    first_two = json.loads(ok("runs", prompt_log["v1"].id, "-n", "2", "--json"))
    assert [item["execution_index"] for item in first_two] == [0, 1]
    assert set(items[0]) == {
        "run_id", "experiment_id", "experiment", "execution_index", "status", "started_at",
        "duration_s", "result", "error_type", "error_message", "metrics", "hyperparameters",
    }
    assert items[0]["metrics"] == {"name_length": 28, "short": False}
    assert items[0]["hyperparameters"]["namer_user_version"] == 1
    assert items[0]["result"] == "Senior Full Stack AI Builder"


def test_show_one_run_with_its_calls(prompt_log):
    run_id = prompt_log["v1"].runs[0].id
    output = ok("show", run_id)
    assert_fits_80_columns(output)
    assert f"run {run_id}: execution" in output
    assert "metrics: name_length 28, short no" in output
    assert "system: You name jobs." in output
    assert "reply: Senior Full Stack AI Builder" in output
    data = json.loads(ok("show", run_id, "--json"))
    assert data["run_id"] == run_id and len(data["calls"]) == 1
    assert data["metrics"] == {"name_length": 28, "short": False}


def test_calls_filtered_by_model_prompt_and_experiment(prompt_log):
    output = ok("calls")
    assert_fits_80_columns(output)
    assert output.count("gpt-4o-mini") == 6
    # each call with its id, its run's id and the start of its reply
    for item in json.loads(ok("calls", "--json")):
        assert item["call_id"] in output and item["run_id"] in output
    assert output.count("reply: Senior Full Stack AI Builder") == 3
    assert output.count("reply: AI Builder") == 3
    # the log's own status words, as --json gives them
    assert output.count(": succeeded (attempt 1)") == 6 and " ok " not in output
    assert len(json.loads(ok("calls", "--json", "-n", "2"))) == 2
    assert len(json.loads(ok("calls", "--json", "--experiment", "names-v1"))) == 3
    assert len(json.loads(ok("calls", "--json", "--model", "gpt-4o-mini"))) == 6
    assert ok("calls", "--model", "claude").startswith("No calls that match in ")
    items = json.loads(ok("calls", "--json", "--prompt", "namer_user"))
    assert len(items) == 6 and {"messages", "input_tokens", "cost"} <= set(items[0])


def test_prompts_and_one_prompts_history(prompt_log):
    output = ok("prompts")
    assert_fits_80_columns(output)
    assert "reading_logs.namer_user" in output and "test_read.namer_system" in output
    history = ok("prompts", "namer_user")
    assert_fits_80_columns(history)
    assert history.startswith("reading_logs.namer_user\n")
    assert "names-v1" in history and "name_length 28" in history
    assert "name_length 10" in history and "short 100%" in history
    data = json.loads(ok("prompts", "namer_user", "--json"))
    assert data["prompt"] == "reading_logs.namer_user"
    assert [(h["version"], h["experiment"], h["runs"]) for h in data["history"]] == [
        (1, "names-v1", 3), (2, "names-v2", 3),
    ]
    assert data["history"][1]["metrics"] == {"name_length": 10.0, "short": 1.0}
    assert {item["prompt"] for item in json.loads(ok("prompts", "--json"))} == {
        "reading_logs.namer_user", "test_read.namer_system",
    }


def test_diff_is_plain_when_piped_and_coloured_in_a_terminal(prompt_log):
    output = ok("diff", "namer_user")
    assert str(promptlog.diff("namer_user")) == output
    assert f"-{TEMPLATES['v1']}\n+{TEMPLATES['v2']}\n" in output
    assert "\x1b[" not in output
    coloured = invoke("diff", "namer_user", "1", "2", color=True).output
    assert f"\x1b[31m-{TEMPLATES['v1']}\x1b[0m" in coloured
    assert f"\x1b[32m+{TEMPLATES['v2']}\x1b[0m" in coloured
    data = json.loads(ok("diff", "namer_user", "--json"))
    assert set(data) == {"prompt", "a", "b", "diff"}
    assert (data["a"]["version"], data["b"]["version"]) == (1, 2)
    assert ok("diff", "namer_user", "v1", "v2") == output  # the labels it prints
    prefix = data["a"]["hash"].removeprefix("sha256:")[:6]
    assert ok("diff", "namer_user", prefix, "v2") == output


def test_compare_two_experiments():
    build_constructed_log()
    output = ok("compare", "exp-a", "exp-b")
    assert_fits_80_columns(output)
    assert "Paired by execution index: 10 pairs of runs." in output
    assert "+1.5 [+1.12, +1.88]" in output
    assert "+30.0 [-4.6, +64.6] pp" in output and "0.250" in output
    data = json.loads(ok("compare", "exp-a", "exp-b", "--json", "--metric", "score"))
    assert set(data) == {"a", "b", "pairing", "note", "metrics", "prompt_changes",
                         "setting_changes"}
    (row,) = data["metrics"]
    assert row["metric"] == "score" and row["difference"] == pytest.approx(1.5)


def test_compare_shows_the_prompt_diff(prompt_log):
    output = ok("compare", "names-v1", "names-v2")
    assert "Prompt reading_logs.namer_user: A used v1, B used v2" in output
    assert f"+{TEMPLATES['v2']}" in output


def test_export_runs_and_calls_as_csv_and_json_lines(prompt_log, tmp_path):
    rows = list(csv.DictReader(io.StringIO(ok("export", "runs"))))
    assert len(rows) == 6
    assert {"run_id", "name_length", "short", "model", "namer_user_version"} <= set(rows[0])
    assert rows[0]["short"] == "False" and rows[0]["name_length"] == "28"
    lines = ok("export", "runs", "-e", "names-v2", "--format", "jsonl").splitlines()
    assert [json.loads(line)["metrics"] for line in lines] == [
        {"name_length": 10, "short": True}
    ] * 3
    target = tmp_path / "calls.csv"
    ok("export", "calls", "-o", str(target))
    calls = list(csv.DictReader(target.open()))
    assert len(calls) == 6 and json.loads(calls[0]["messages"])[0]["role"] == "system"


def test_bad_arguments_get_the_whole_error_on_one_line_and_status_1(prompt_log, tmp_path):
    cases = [
        (("runs", "nope"), "No experiment named or with id 'nope'"),
        (("compare", "names-v1", "nope"), "No experiment named or with id 'nope'"),
        (("compare", "names-v1", "names-v2", "-m", "nope"), "metric named 'nope'"),
        (("show", "nope"), "No run with id 'nope'"),
        (("prompts", "nope"), "No prompt named 'nope'"),
        (("diff", "nope"), "No prompt named 'nope'"),
        (("diff", "namer_user", "9"), "has no version 9;"),
        (("diff", "namer_user", "v9"), "has no version 9;"),
        (("diff", "namer_user", "123456"), "has no version 'sha256:123456';"),
        (("calls", "--experiment", "nope"), "No experiment named or with id 'nope'"),
        (("calls", "--prompt", "nope"), "No prompt named 'nope'"),
        (("export", "runs", "-e", "nope"), "No experiment named or with id 'nope'"),
    ]
    for args, expected in cases:
        assert expected in one_line_error(fails(*args)), args
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello")
    refused = (
        f"Error: {not_a_log} is not a SQLite database, so promptlog left it untouched. "
        f"Point PROMPTLOG_DB or promptlog.configure(db_path=...) at another file."
    )
    for command in ("status", "experiments", "ui"):
        assert one_line_error(fails("--db", str(not_a_log), command)) == refused
    line = one_line_error(fails("--db", str(tmp_path / "missing.db"), "experiments"))
    assert line == (  # the whole message: what was wrong, then what to do
        f"Error: No promptlog log at {tmp_path / 'missing.db'}. Run something that logs "
        f"first (promptlog demo), or pass the path of an existing log."
    )
    assert "Invalid value" in fails("export", "runs", "--format", "xml", exit_code=2)
    assert "Missing argument" in fails("runs", exit_code=2)
    for command in ("experiments", "calls", ("runs", "names-v1")):
        args = (command,) if isinstance(command, str) else command
        output = fails(*args, "-n", "-1", exit_code=2)
        assert "-1 is not in the range x>=0" in output, command


def test_ui_serves_the_log_in_use(prompt_log, db_path, monkeypatch):
    pytest.importorskip("datasette")
    import promptlog.ui

    served = {}
    monkeypatch.setattr(promptlog.ui, "serve", lambda path, **options: served.update(
        path=path, **options))
    ok("ui", "--port", "8123")
    assert served == {"path": db_path, "host": "127.0.0.1", "port": 8123, "open_browser": False}


def test_demo_calls_the_demo_with_the_log_in_use(db_path, monkeypatch):
    demo = pytest.importorskip("promptlog.demo")
    called = {}
    monkeypatch.setattr(demo, "main", lambda **options: called.update(options))
    ok("demo", "--model", "gpt-4o-mini")
    assert called == {"db_path": str(db_path), "model": "gpt-4o-mini"}


READ_COMMANDS = [
    ["status"], ["experiments"], ["runs", "names-v1"], ["calls"], ["prompts"],
    ["prompts", "namer_user"], ["diff", "namer_user"], ["compare", "names-v1", "names-v2"],
    ["export", "runs"], ["path"],
]  # fmt: skip


def test_reading_commands_import_neither_litellm_nor_pandas(prompt_log, db_path):
    script = (
        "import sys\n"
        "from promptlog.cli import cli\n"
        "try:\n"
        "    cli(sys.argv[1:])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = [m for m in ('litellm', 'pandas', 'scipy') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    env = {**os.environ, "PROMPTLOG_DB": str(db_path)}
    for command in READ_COMMANDS:
        result = subprocess.run(
            [sys.executable, "-c", script, *command], env=env, capture_output=True, text=True,
            cwd=Path(db_path).parent,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "heavy: []", command


def test_names_from_the_log_are_never_read_as_markup():
    constructed = pytest.importorskip("test_read").constructed
    constructed("exp [bold]x[/] [1]", [1.0, 2.0], [True, False])
    assert "exp [bold]x[/] [1]" in ok("experiments")
    output = ok("runs", "exp [bold]x[/] [1]")
    assert output.startswith("exp [bold]x[/] [1] (")
    (item,) = json.loads(ok("experiments", "--json"))
    runs = json.loads(ok("runs", "exp [bold]x[/] [1]", "--json"))
    assert runs[0]["hyperparameters"] == {} and runs[0]["metrics"] == {"passed": True, "score": 1.0}
    assert item["metrics"] == {"passed": 0.5, "score": 1.5}
