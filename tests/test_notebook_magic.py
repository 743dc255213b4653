"""``%%experiment``: a notebook cell run N times as an experiment."""

from __future__ import annotations

import re
import sqlite3

import pytest
from IPython.core.interactiveshell import InteractiveShell

from promptlog.errors import ExperimentError
from promptlog.notebook import parse_line


@pytest.fixture
def shell():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "promptlog")
    yield shell
    InteractiveShell.clear_instance()


def test_the_cell_runs_n_times_and_leaves_execution_zeros_names(shell, db_path):
    shell.run_cell(
        "from promptlog import metric, current_run\n"
        "@metric\n"
        "def index(value):\n"
        "    return value\n"
        "offset = 100\n"
    )
    result = shell.run_cell(
        "%%experiment cells -n 5 --workers 2 --metadata '{\"owner\": \"ada\"}'\n"
        "mine = current_run().execution_index + offset\n"
        "index(mine)\n"
    )
    result.raise_error()
    exp = result.result
    assert sorted(run.metrics["index"] for run in exp.runs) == [100, 101, 102, 103, 104]
    assert shell.user_ns["mine"] == 100  # the notebook's own pass is execution 0
    rows = sqlite3.connect(db_path).execute(
        "SELECT name, num_executions, max_workers, metadata FROM experiments"
    ).fetchall()
    assert rows == [("cells", 5, 2, '{"owner": "ada"}')]
    assert "<b>Experiment cells</b>" in exp._repr_html_()


def test_every_execution_starts_from_the_notebook_as_it_was(shell, db_path):
    shell.run_cell(
        "from promptlog import metric\n"
        "@metric\n"
        "def seen(value):\n"
        "    return value\n"
        "counter = 0\n"
    )
    result = shell.run_cell("%%experiment counting -n 8 --workers 4\ncounter += 1\nseen(counter)\n")
    result.raise_error()
    assert [run.metrics["seen"] for run in result.result.runs] == [1] * 8
    assert shell.user_ns["counter"] == 1


def test_a_failing_cell_raises_after_every_execution_is_logged(shell, db_path):
    result = shell.run_cell("%%experiment failing -n 3\nraise ValueError('no')\n")
    assert isinstance(result.error_in_exec, ValueError)
    statuses = sqlite3.connect(db_path).execute("SELECT status FROM runs").fetchall()
    assert statuses == [("failed",)] * 3


def shown(capsys: pytest.CaptureFixture[str]) -> str:
    """What the shell printed, without its colours."""
    captured = capsys.readouterr()
    return re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)


def test_a_failing_cell_shows_its_own_lines_and_none_of_promptlogs(shell, db_path, capsys):
    shell.run_cell("def check(value):\n    raise ValueError(f'bad {value}')\n", store_history=True)
    capsys.readouterr()
    result = shell.run_cell(
        "%%experiment failing -n 2\nvalue = 41\ncheck(value + 1)\n", store_history=True
    )
    assert isinstance(result.error_in_exec, ValueError)
    output = shown(capsys)
    number = shell.execution_count - 1
    # the cell as the notebook shows it, numbered from its magic line
    assert f"Cell In[{number}], line 3" in output
    lines = ["      1 %%experiment failing -n 2", "      2 value = 41", "----> 3 check(value + 1)"]
    assert "\n".join(lines) in output
    assert f"Cell In[{number - 1}], line 2, in check" in output  # and on into user code
    assert "ValueError: bad 42" in output
    assert "In[0]" not in output
    for internal in ("promptlog", "run_cell_magic", "interactiveshell.py", "hidden"):
        assert internal not in output.replace("promptlog: <Experiment", ""), internal


@pytest.mark.parametrize(
    "line", ["", "name -n many", "name --metadata '{bad'", "name -n 0", "name -o 1x"]
)
def test_bad_magic_lines_print_a_usage_message_not_a_traceback(shell, db_path, capsys, line):
    result = shell.run_cell(f"%%experiment {line}\nx = 1\n")
    assert result.error_in_exec is not None
    output = shown(capsys)
    assert output.startswith("UsageError: "), output
    assert "Traceback" not in output and "usage:" not in output
    assert "x" not in shell.user_ns and not db_path.exists()


def test_o_keeps_the_experiment_in_the_notebook_even_when_the_cell_fails(shell, db_path):
    shell.run_cell(
        "from promptlog import metric\n"
        "@metric\n"
        "def named(value):\n"
        "    return value\n"
    )
    result = shell.run_cell("%%experiment kept -n 3 -o exp\nnamed(exp.name == 'kept')\n")
    result.raise_error()
    exp = shell.user_ns["exp"]
    assert exp is result.result and [run.metrics["named"] for run in exp.runs] == [True] * 3
    failing = shell.run_cell("%%experiment broken -n 2 --output broken\n1 / 0\n")
    assert isinstance(failing.error_in_exec, ZeroDivisionError)
    assert [run.status for run in shell.user_ns["broken"].runs] == ["failed"] * 2


@pytest.mark.parametrize(
    "line", ["", "name -n many", "name --metadata '{bad'", "name -o 'not a name'"]
)
def test_bad_magic_lines_say_how_to_write_them(line):
    with pytest.raises(ExperimentError, match="%%experiment NAME -n 10"):
        parse_line(line)
