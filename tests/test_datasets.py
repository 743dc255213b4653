"""Datasets: experiments over inputs × repeats, examples stored content-addressed,
comparisons paired by example, metrics taking the example, and evaluate."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

import promptlog
from promptlog import Experiment, SimpleBot, metric
from promptlog.errors import ExperimentError

DATASET = [
    {"question": "What is 2+2?", "answer": "4"},
    {"question": "What is 3+3?", "answer": "6"},
    {"question": "What is 5+5?", "answer": "10"},
    {"question": "What is 7+7?", "answer": "14"},
]


def query(db_path: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def solve(question: str) -> str:
    """A deterministic program: right on every question but the last."""
    a = int(question.split()[2].split("+")[0])
    return "wrong" if a == 7 else str(2 * a)


@metric
def exact(example, prediction) -> bool:
    return example["answer"] == prediction


def test_four_examples_times_three_repeats_are_twelve_runs_with_example_and_repeat(db_path):
    seen = []
    with Experiment("qa", inputs=DATASET, repeats=3, quiet=True) as exp:
        seen.append(exp.input["question"])
        reply = solve(exp.input["question"])
        exact(exp.input, reply)

    assert exp.num_executions == 12 and len(exp.runs) == 12
    assert sorted(seen) == sorted(example["question"] for example in DATASET for _ in range(3))
    rows = query(
        db_path,
        "SELECT r.execution_index, r.repeat_index, e.data, m.value FROM runs r "
        "JOIN examples e ON e.id = r.example_id JOIN metrics m ON m.run_id = r.id "
        "ORDER BY r.execution_index",
    )
    assert [(index, repeat) for index, repeat, _, _ in rows] == [
        (i, i % 3) for i in range(12)
    ]
    assert [json.loads(data)["question"] for _, _, data, _ in rows] == [
        example["question"] for example in DATASET for _ in range(3)
    ]
    assert [value for *_, value in rows] == [1.0] * 9 + [0.0] * 3
    (example_id,) = query(db_path, "SELECT DISTINCT example_id FROM runs WHERE repeat_index = 0 "
                          "AND execution_index = 0")[0]
    assert example_id.startswith("sha256:") and len(example_id) == 7 + 64


def test_the_current_input_reaches_bots_metrics_and_functions_in_the_run(db_path):
    @metric
    def matches(prediction) -> bool:
        return promptlog.current_input()["answer"] == prediction

    bot = SimpleBot("You answer.", model_name="promptlog/offline")

    def answer(question):
        bot(question)
        return solve(question)

    exp = Experiment("qa", inputs=DATASET, repeats=2, quiet=True)
    results = exp.run(lambda question: matches(answer(question)))
    assert results == [True] * 6 + [False] * 2
    assert promptlog.current_input() is None
    calls = query(db_path, "SELECT COUNT(*), COUNT(DISTINCT run_id) FROM calls")
    assert calls == [(8, 8)]
    assert query(db_path, "SELECT SUM(value) FROM metrics WHERE name = 'matches'") == [(6.0,)]


def test_run_passes_the_example_whole_when_the_function_does_not_take_its_keys(db_path):
    exp = Experiment("whole", inputs=DATASET, quiet=True)
    assert exp.run(lambda example: example["answer"]) == ["4", "6", "10", "14"]
    exp = Experiment("keys", inputs=DATASET, quiet=True)
    assert exp.run(lambda question, answer: answer) == ["4", "6", "10", "14"]
    strings = Experiment("strings", inputs=["a", "bb"], repeats=2, quiet=True)
    assert strings.run(len) == [1, 1, 2, 2]


def test_the_same_example_in_two_experiments_is_one_row(db_path):
    for name in ("first", "second"):
        Experiment(name, inputs=DATASET, repeats=2, quiet=True).run(solve)
    Experiment("third", inputs=DATASET[:1] * 2, quiet=True).run(solve)  # a duplicate inside
    assert query(db_path, "SELECT COUNT(*) FROM examples") == [(4,)]
    assert query(db_path, "SELECT COUNT(DISTINCT example_id) FROM runs") == [(4,)]
    # The key is the example's content, whatever the order of its keys.
    reordered = [{"answer": e["answer"], "question": e["question"]} for e in DATASET]
    Experiment("fourth", inputs=reordered, quiet=True).run(solve)
    assert query(db_path, "SELECT COUNT(*) FROM examples") == [(4,)]


def test_a_dataframe_and_pydantic_models_are_inputs(db_path):
    frame = pd.DataFrame(DATASET).assign(points=[1, 2, 3, 4])
    exp = Experiment("frame", inputs=frame, quiet=True)
    assert exp.run(lambda question, points: (solve(question), points)) == [
        ("4", 1), ("6", 2), ("10", 3), ("wrong", 4),
    ]

    class QA(BaseModel):
        question: str
        answer: str

    models = [QA(**example) for example in DATASET]
    exp = Experiment("models", inputs=models, repeats=2, quiet=True)
    results = exp.run(lambda qa: (type(qa).__name__, solve(qa.question) == qa.answer))
    assert results[0] == ("QA", True) and results[-1] == ("QA", False)
    # The dict, the row and the model are one example each: the same content.
    assert query(db_path, "SELECT COUNT(*) FROM examples") == [(8,)]
    Experiment("dicts", inputs=DATASET, quiet=True).run(solve)
    assert query(db_path, "SELECT COUNT(*) FROM examples") == [(8,)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inputs": []}, "inputs is empty"),
        ({"inputs": {"question": "q"}}, "must be a list of examples"),
        ({"inputs": [{"when": object()}]}, "Example 0 (dict"),
        ({"inputs": [{"x": float("nan")}]}, "cannot be stored as JSON"),
        ({"inputs": DATASET, "repeats": 0}, "repeats must be a whole number"),
        ({"inputs": DATASET, "repeats": True}, "repeats must be a whole number"),
        ({"inputs": DATASET, "num_executions": 3}, "either num_executions or inputs"),
        ({"repeats": 3}, "without inputs use num_executions"),
    ],
)
def test_inputs_are_checked_with_clear_errors(kwargs, message):
    with pytest.raises(ExperimentError, match=message.replace("(", r"\(")):
        Experiment("bad", **kwargs)


def test_without_inputs_num_executions_keeps_its_meaning(db_path):
    exp = Experiment("plain", num_executions=3, quiet=True)
    assert exp.run(lambda: promptlog.current_input()) == [None, None, None]
    assert exp.input is None
    assert query(db_path, "SELECT example_id, repeat_index FROM runs") == [(None, None)] * 3
    assert query(db_path, "SELECT COUNT(*) FROM examples") == [(0,)]


def test_compare_pairs_runs_by_example_and_repeat(db_path):
    def worse(question):
        return "wrong" if "3+3" in question else solve(question)

    def score(program):
        def run(question, answer):
            prediction = program(question)
            exact({"answer": answer}, prediction)
            return prediction

        return run

    a = Experiment("a", inputs=DATASET, repeats=2, quiet=True)
    a.run(score(solve))
    # B runs the examples in another order: pairing is by example, not by position.
    b = Experiment("b", inputs=list(reversed(DATASET)), repeats=2, quiet=True)
    b.run(score(worse))
    comparison = promptlog.compare(a.id, b.id)
    assert comparison.pairing == "example"
    assert "Paired by example: 8" in comparison.note
    (row,) = comparison.metrics
    assert (row.mean_a, row.mean_b) == (0.75, 0.5)
    assert row.difference == pytest.approx(-0.25)


def test_a_metric_takes_the_example_and_the_prediction():
    assert exact({"answer": "4"}, "4") is True  # outside an experiment: validated, returned
    with pytest.raises(promptlog.MetricError):
        metric(lambda example, prediction: None)({}, "x")


def test_evaluate_returns_the_experiment_and_prints_its_summary(db_path, capsys):
    def length(prediction):  # a plain function of the prediction alone
        return len(prediction)

    exp = promptlog.evaluate(solve, DATASET, metrics=[exact, length], repeats=3)
    assert isinstance(exp, Experiment)
    assert exp.name == "solve" and exp.status == "succeeded"
    assert len(exp.runs) == 12
    assert exp.results[:3] == ["4", "4", "4"]
    summary = exp.summary()
    assert summary.loc["exact", "mean"] == pytest.approx(0.75)
    assert summary.loc["exact", "n"] == 12
    assert summary.loc["length", "mean"] == pytest.approx((1 + 1 + 2 + 5) / 4)
    printed = capsys.readouterr().out
    assert "solve: 12 runs, 12 succeeded, 0 failed" in printed
    assert "exact" in printed and "ci_low" in printed and "length" in printed


def test_evaluate_names_its_experiment_and_needs_a_name_for_a_lambda(db_path):
    exp = promptlog.evaluate(lambda question: solve(question), DATASET, name="lam", quiet=True)
    assert exp.name == "lam"
    with pytest.raises(ExperimentError, match="pass name="):
        promptlog.evaluate(lambda question: question, DATASET)


def test_runs_have_the_example_id_repeat_and_fields_as_columns(db_path):
    exp = Experiment("qa", inputs=DATASET, repeats=2, quiet=True)
    exp.run(solve)
    runs = promptlog.open().runs(exp.id)
    columns = list(runs.columns)
    at = columns.index("execution_index")
    assert columns[at + 1 : at + 5] == [
        "example_id", "repeat_index", "input.answer", "input.question",  # keys sorted
    ]
    assert list(runs["repeat_index"]) == [0, 1] * 4
    assert list(runs["input.question"]) == [e["question"] for e in DATASET for _ in range(2)]
    assert runs["example_id"].str.startswith("sha256:").all()
    # Experiments without inputs keep their columns.
    plain = Experiment("plain", num_executions=2, quiet=True)
    plain.run(lambda: 1)
    assert "example_id" not in promptlog.open().runs(plain.id).columns


def _scored(name, answers, repeats=2):
    """An experiment over DATASET whose prediction for each question comes from
    ``answers`` (a function of the question and the repeat index)."""

    def run(question, answer):
        prediction = answers(question, promptlog.current_run().repeat_index)
        exact({"answer": answer}, prediction)
        return prediction

    exp = Experiment(name, inputs=DATASET, repeats=repeats, quiet=True)
    exp.run(run)
    return exp


def test_examples_lists_what_got_better_worse_and_flips(db_path):
    a = _scored("a", lambda q, r: "wrong" if "3+3" in q else solve(q))  # 2+2, 5+5 right
    # B: 3+3 fixed (better), 5+5 broken (worse), 7+7 right on one repeat of two (flips).
    b = _scored(
        "b", lambda q, r: "wrong" if "5+5" in q else ("14" if "7+7" in q and r == 0 else solve(q))
    )
    examples = promptlog.open().examples(a.id, b.id).set_index("input.question")
    assert list(examples.columns[:2]) == ["example_id", "input.answer"]
    assert examples["exact_change"].to_dict() == {
        "What is 2+2?": "same", "What is 3+3?": "better", "What is 5+5?": "worse",
        "What is 7+7?": "better",
    }
    assert examples["exact_a"].to_dict() == {
        "What is 2+2?": 1.0, "What is 3+3?": 0.0, "What is 5+5?": 1.0, "What is 7+7?": 0.0,
    }
    assert examples.loc["What is 7+7?", "exact_b"] == 0.5
    assert examples["exact_flips"].to_dict() == {
        "What is 2+2?": False, "What is 3+3?": False, "What is 5+5?": False,
        "What is 7+7?": True,
    }
    one = promptlog.open().examples(a.id)
    assert list(one["exact"]) == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(ExperimentError, match="did not run over inputs"):
        plain = Experiment("plain", quiet=True)
        plain.run(lambda: 1)
        promptlog.open().examples(plain.id)


def test_cli_compare_by_example(db_path):
    from click.testing import CliRunner

    from promptlog.cli import cli

    _scored("a", lambda q, r: solve(q))
    _scored("b", lambda q, r: "wrong" if "2+2" in q else solve(q))
    result = CliRunner().invoke(cli, ["compare", "a", "b", "--by-example"])
    assert result.exit_code == 0, result.output
    assert "What is 2+2?" in result.output and "worse" in result.output
    assert "same" in result.output and "exact_change" in result.output
    result = CliRunner().invoke(cli, ["compare", "a", "b", "--by-example", "--json"])
    rows = json.loads(result.output)
    assert [row["exact_change"] for row in rows] == ["worse", "same", "same", "same"]
    assert rows[0]["input"]["question"] == "What is 2+2?"


# --- resume ---------------------------------------------------------------------


def _flaky(failing: set[str]):
    """A program that fails on the questions in ``failing``, else answers right."""

    def program(question, answer):
        if question in failing:
            raise RuntimeError(f"flaky on {question}")
        exact({"answer": answer}, solve(question))
        return solve(question)

    return program


def _succeeded_per_execution(db_path, experiment_id):
    return query(
        db_path,
        "SELECT example_id, repeat_index, COUNT(*) FROM runs "
        "WHERE experiment_id = ? AND status = 'succeeded' GROUP BY example_id, repeat_index",
        [experiment_id],
    )


def test_resume_runs_only_what_failed_under_the_same_experiment(db_path, capsys):
    first = Experiment("qa", inputs=DATASET, repeats=3, quiet=True)
    first.run(_flaky({"What is 3+3?"}))
    assert len(first.failures) == 3

    calls = []

    def program(question, answer):
        calls.append(question)
        return _flaky(set())(question, answer)

    again = Experiment("qa", inputs=DATASET, repeats=3, resume=True)
    results = again.run(program)
    assert again.id == first.id
    assert calls == ["What is 3+3?"] * 3  # only the failed executions ran again
    assert results == ["4", "4", "4", "6", "6", "6", "10", "10", "10", "wrong", "wrong", "wrong"]
    said = capsys.readouterr().err
    assert f"resuming experiment 'qa' {first.id}: 9 of 12 runs kept, 3 to run" in said
    assert again.status == "succeeded"
    rows = _succeeded_per_execution(db_path, first.id)
    assert len(rows) == 12 and all(count == 1 for *_, count in rows)
    assert query(db_path, "SELECT COUNT(*) FROM runs") == [(12,)]
    assert query(db_path, "SELECT status FROM experiments") == [("succeeded",)]
    assert promptlog.open().summary(first.id).loc["exact", "n"] == 12


def test_resume_with_retry_failed_false_keeps_failed_runs(db_path):
    first = Experiment("qa", inputs=DATASET, quiet=True)
    first.run(_flaky({"What is 2+2?"}))
    again = Experiment("qa", inputs=DATASET, resume=True, retry_failed=False, quiet=True)
    ran = []
    again.run(lambda question: ran.append(question))
    assert ran == [] and again.id == first.id
    assert query(db_path, "SELECT COUNT(*) FROM runs WHERE status = 'failed'") == [(1,)]


def test_resume_without_a_match_starts_a_new_experiment_and_says_so(db_path, capsys):
    Experiment("qa", inputs=DATASET, quiet=True).run(solve)
    other = Experiment("qa", inputs=DATASET[:2], resume=True)  # other inputs
    other.run(solve)
    assert "starting a new one" in capsys.readouterr().err
    repeated = Experiment("qa", inputs=DATASET, repeats=2, resume=True, quiet=True)
    repeated.run(solve)  # other repeats
    assert len({other.id, repeated.id}) == 2
    assert query(db_path, "SELECT COUNT(*) FROM experiments") == [(3,)]


def test_resume_a_with_block_and_evaluate(db_path):
    first = Experiment("block", inputs=DATASET, repeats=2, quiet=True)
    first.run(_flaky({"What is 5+5?", "What is 7+7?"}))
    seen = []
    with Experiment("block", inputs=DATASET, repeats=2, resume=True, quiet=True) as exp:
        seen.append(exp.input["question"])
        exact(exp.input, solve(exp.input["question"]))
    assert exp.id == first.id
    assert sorted(seen) == ["What is 5+5?"] * 2 + ["What is 7+7?"] * 2
    assert len(_succeeded_per_execution(db_path, first.id)) == 8
    # Nothing left: the block's own pass runs once more, unlogged.
    with Experiment("block", inputs=DATASET, repeats=2, resume=True, quiet=True) as done:
        exact(done.input, solve(done.input["question"]))
    assert done.id == first.id
    assert query(db_path, "SELECT COUNT(*) FROM runs") == [(8,)]
    assert query(db_path, "SELECT COUNT(*) FROM metrics") == [(8,)]

    evaluated = promptlog.evaluate(solve, DATASET, metrics=[exact], name="ev", quiet=True)
    again = promptlog.evaluate(
        solve, DATASET, metrics=[exact], name="ev", quiet=True, resume=True
    )
    assert again.id == evaluated.id
    assert query(db_path, "SELECT COUNT(*) FROM runs WHERE experiment_id = ?", [again.id]) == [
        (4,)
    ]


def test_resume_after_sigkill_completes_with_one_succeeded_run_each(db_path, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from faults_support import child_env, write_script

    script = write_script(
        tmp_path,
        f"""
        import time
        from promptlog import Experiment
        dataset = {DATASET!r} * 5  # 20 examples
        def slow(question, answer):
            time.sleep(0.05)
            return answer
        Experiment("killed", inputs=dataset, repeats=3, max_workers=4, quiet=True).run(slow)
        """,
    )
    child = subprocess.Popen([sys.executable, str(script)], env=child_env(db_path))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                done = query(db_path, "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")
            except sqlite3.OperationalError:
                done = [(0,)]
            if done[0][0] >= 5:
                break
            assert child.poll() is None, "the child ended before it was killed"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    before = query(db_path, "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")[0][0]
    assert 5 <= before < 60
    resumed = Experiment("killed", inputs=DATASET * 5, repeats=3, resume=True, quiet=True)
    resumed.run(lambda question, answer: answer)
    assert resumed.status == "succeeded"
    (experiment_id,) = query(db_path, "SELECT id FROM experiments")[0]
    assert resumed.id == experiment_id
    rows = query(
        db_path,
        "SELECT execution_index, COUNT(*) FROM runs WHERE status = 'succeeded' "
        "GROUP BY execution_index",
    )
    assert [index for index, _ in rows] == list(range(60))
    assert all(count == 1 for _, count in rows)
    assert query(db_path, "SELECT COUNT(*) FROM runs") == [(60,)]


def test_the_experiment_magic_takes_resume(db_path):
    from promptlog.notebook import parse_line

    assert parse_line("qa -n 3 --resume")["resume"] is True
    assert "resume" not in parse_line("qa -n 3")
    first = Experiment("magic", num_executions=3, quiet=True)
    first.run(lambda: 1)
    again = Experiment(**parse_line("magic -n 3 --resume"), quiet=True)
    ran = []
    again.run_code("ran.append(1)", {"ran": ran})
    assert again.id == first.id and ran == [1]  # nothing left: the pass runs unlogged
    assert query(db_path, "SELECT COUNT(*) FROM runs") == [(3,)]
