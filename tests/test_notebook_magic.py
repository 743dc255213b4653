"""``%%experiment``: a notebook cell run N times as an experiment."""

from __future__ import annotations

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


@pytest.mark.parametrize("line", ["", "name -n many", "name --metadata '{bad'"])
def test_bad_magic_lines_say_how_to_write_them(line):
    with pytest.raises(ExperimentError, match="%%experiment NAME -n 10"):
        parse_line(line)
