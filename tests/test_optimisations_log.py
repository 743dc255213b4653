"""How an optimiser keeps its work in the log: an experiment of kind
``optimisation`` run in batches by a session, its candidates' evaluations as
child experiments, and its outcome; read back with ``optimizations()``."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner
from faults_support import query

import promptlog
from promptlog import Experiment, SimpleBot, metric
from promptlog.cli import cli
from promptlog.errors import ExperimentError


@metric
def score(value: float) -> float:
    return value


def square_distance(x: float) -> dict[str, float]:
    """An evaluation as a search makes one: a model call, a score, a result."""
    SimpleBot("You judge.", model_name="promptlog/offline", temperature=0)(f"x={x}")
    return {"x": x, "score": score(-((x - 3) ** 2))}


def test_a_session_runs_batches_of_executions_as_runs_of_one_experiment(db_path):
    threads: set[str] = set()

    def evaluate(x: float) -> dict[str, float]:
        threads.add(threading.current_thread().name)
        return square_distance(x)

    search = Experiment("search", kind="optimisation", metadata={"optimiser": "grid"},
                        max_workers=4, quiet=True)
    with search.session():
        first = search.map(evaluate, [0.0, 1.0, 2.0, 3.0])
        second = search.map(evaluate, [4.0, 5.0])
        search.outcome = {"best_score": 0.0, "best_x": 3.0, "stopped": "max_steps"}

    assert [run.execution_index for run in first + second] == [0, 1, 2, 3, 4, 5]
    assert [run.result["x"] for run in first + second] == [0, 1, 2, 3, 4, 5]
    assert all(run.status == "succeeded" for run in first + second)
    assert len(threads) > 1  # a batch runs on the workers, at the same time
    rows = query(db_path, "SELECT kind, status, num_executions, outcome FROM experiments")
    assert [(kind, status, n) for kind, status, n, _ in rows] == [
        ("optimisation", "succeeded", 6)
    ]
    assert json.loads(rows[0][3])["best_x"] == 3.0
    assert query(db_path, "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'") == [(6,)]
    assert query(db_path, "SELECT COUNT(*) FROM metrics WHERE name = 'score'") == [(6,)]
    assert query(db_path, "SELECT COUNT(*) FROM calls WHERE run_id IS NOT NULL") == [(6,)]


def test_a_failing_item_is_recorded_and_the_batch_goes_on(db_path):
    def evaluate(x: float) -> float:
        if x < 0:
            raise ValueError("negative")
        return x

    search = Experiment("search", kind="optimisation", quiet=True)
    with search.session():
        runs = search.map(evaluate, [1.0, -1.0, 2.0])
    assert [run.status for run in runs] == ["succeeded", "failed", "succeeded"]
    assert isinstance(runs[1].error, ValueError)
    assert search.status == "succeeded"


def test_an_error_in_the_session_ends_it_failed_keeping_what_ran(db_path):
    search = Experiment("search", kind="optimisation", quiet=True)
    with pytest.raises(RuntimeError), search.session():
        search.map(square_distance, [1.0])
        raise RuntimeError("the optimiser broke")
    assert query(db_path, "SELECT status, num_executions FROM experiments") == [("failed", 1)]
    assert query(db_path, "SELECT status FROM runs") == [("succeeded",)]


def test_a_resumed_session_keeps_its_runs_and_numbers_new_ones_after_them(db_path):
    with Experiment("search", kind="optimisation", quiet=True).session() as first:
        first.map(square_distance, [0.0, 1.0])
    # A plain experiment of the same name is not taken up by the optimisation.
    Experiment("search", quiet=True).run(lambda: 1)

    again = Experiment("search", kind="optimisation", resume=True, quiet=True)
    with again.session():
        assert again.id == first.id
        assert sorted(run.result["x"] for run in again.runs) == [0.0, 1.0]
        (new,) = again.map(square_distance, [2.0])
    assert new.execution_index == 2
    assert query(
        db_path, "SELECT COUNT(*), MAX(num_executions) FROM experiments WHERE kind = ?",
        ["optimisation"],
    ) == [(1, 3)]
    assert query(db_path, "SELECT COUNT(*) FROM runs WHERE experiment_id = ?", [first.id]) == [
        (3,)
    ]


def test_map_outside_a_session_and_a_session_over_inputs_are_clear_errors(db_path):
    with pytest.raises(ExperimentError, match="inside an open session"):
        Experiment("search", kind="optimisation").map(square_distance, [1.0])
    with pytest.raises(ExperimentError, match="exp.run or promptlog.evaluate"):
        with Experiment("qa", inputs=[{"x": 1}]).session():
            pass
    with pytest.raises(ExperimentError, match="kind must be one of"):
        Experiment("search", kind="study")
    with pytest.raises(ExperimentError, match="has not started"):
        Experiment("child", parent=Experiment("parent"))


def test_candidates_belong_to_their_optimisation_and_count_in_its_cost(db_path):
    optimisation = Experiment(
        "tune-qa", kind="optimisation", metadata={"optimiser": "RandomSearch"}, quiet=True
    )
    with optimisation.session():
        optimisation.map(square_distance, [1.0])  # the optimiser's own call, as a run
        for candidate in range(2):
            promptlog.evaluate(
                lambda x: square_distance(x)["score"], [{"x": 1.0}, {"x": 2.0}],
                name=f"tune-qa candidate {candidate}", parent=optimisation, quiet=True,
            )
        optimisation.outcome = {"best_score": -1.0, "stopped": "done"}
    Experiment("unrelated", quiet=True).run(lambda: square_distance(0.0))

    log = promptlog.open()
    (row,) = log.optimization_records().dicts()
    assert row["name"] == "tune-qa" and row["optimiser"] == "RandomSearch"
    assert (row["runs"], row["candidates"], row["calls"]) == (1, 2, 5)
    assert row["best_score"] == -1.0 and row["stopped"] == "done"
    assert row["outcome"] == {"best_score": -1.0, "stopped": "done"}
    assert len(log.children("tune-qa")) == 2
    assert log.children(optimisation.id) == log.children("tune-qa")
    frame = log.optimizations()
    assert list(frame["name"]) == ["tune-qa"]
    details = log.experiment_details(log.children("tune-qa")[0])
    assert details["parent_id"] == optimisation.id and details["kind"] == "experiment"

    listed = CliRunner().invoke(cli, ["optimizations", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [item["name"] for item in json.loads(listed.output)] == ["tune-qa"]
    shown = CliRunner().invoke(cli, ["optimizations"])
    assert "tune-qa" in shown.output and "RandomSearch" in shown.output
