"""Reading the log: DataFrames, prompt history, comparisons with known answers, plots
and the reading notebook."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

import promptlog
from promptlog import Experiment, SimpleBot, current_run, metric, prompt
from promptlog.errors import ExperimentError, PromptNotFoundError
from promptlog.prompts import PromptFunction

ROOT = Path(__file__).resolve().parent.parent

# --- logs to read ------------------------------------------------------------------


def namer_user(template: str) -> PromptFunction:
    """The prompt ``reading_logs.namer_user`` as it reads with ``template``: calling
    this with two templates makes two versions of one prompt."""

    def namer_user(job: str) -> None:
        pass

    namer_user.__doc__ = template
    namer_user.__module__ = "reading_logs"
    namer_user.__qualname__ = "namer_user"
    return prompt("user")(namer_user)


TEMPLATES = {
    "v1": "Give me a name for a job that follows this description: {{ job }}.",
    "v2": "Give me a short name (two words at most) for this job: {{ job }}.",
}


@prompt("system")
def namer_system():
    """You name jobs."""


@metric
def name_length(text):
    return len(text)


@metric
def short(text):
    return len(text.split()) <= 2


def build_prompt_log(runs: int = 4) -> dict[str, Experiment]:
    """Two experiments, one per version of namer_user, on mocked replies: the second
    version's replies are shorter."""
    experiments = {}
    system = namer_system()  # rendered before the experiments, as in the demo
    replies = {"v1": "Senior Full Stack AI Builder", "v2": "AI Builder"}
    for label, template in TEMPLATES.items():
        user = namer_user(template)

        def run(user=user, label=label):
            bot = SimpleBot(system, model_name="gpt-4o-mini", temperature=0.5,
                            mock_response=replies[label])
            reply = bot(user("someone who builds full stack AI apps"))
            name_length(reply.content)
            short(reply.content)
            return reply.content

        exp = Experiment(f"names-{label}", num_executions=runs, metadata={"prompt": label},
                         quiet=True)
        exp.run(run)
        experiments[label] = exp
    return experiments


@metric
def score(value):
    return value


@metric
def passed(value):
    return value


SCORES_A = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
STEPS = [1.0, 2.0] * 5  # B - A for each execution index
PASSED_A = [True] * 5 + [False] * 5
PASSED_B = [True] * 8 + [False] * 2  # three discordant pairs, all for B


def constructed(name: str, scores: list[float], passes: list[bool]) -> Experiment:
    """An experiment whose run i records score scores[i] and passed passes[i]."""

    def run():
        index = current_run().execution_index
        score(scores[index])
        passed(passes[index])

    exp = Experiment(name, num_executions=len(scores), quiet=True)
    exp.run(run)
    return exp


def build_constructed_log() -> tuple[Experiment, Experiment]:
    a = constructed("exp-a", SCORES_A, PASSED_A)
    b = constructed("exp-b", [x + d for x, d in zip(SCORES_A, STEPS, strict=True)], PASSED_B)
    return a, b


# --- the DataFrames ----------------------------------------------------------------


def test_runs_has_metrics_and_flattened_hyperparameters_as_columns():
    experiments = build_prompt_log(runs=4)
    frame = promptlog.open().runs("names-v1")
    assert frame.shape == (4, 18)
    assert list(frame.columns) == [
        "run_id", "experiment_id", "experiment", "execution_index", "status",
        "name_length", "short",  # metrics
        "model", "temperature", "mock_response",  # the bot's settings
        "namer_user_version", "namer_system_version",  # prompt versions, by full name
        "prompt",  # the experiment's metadata
        "started_at", "duration_s", "result", "error_type", "error_message",
    ]
    assert list(frame["execution_index"]) == [0, 1, 2, 3]
    assert (frame["experiment_id"] == experiments["v1"].id).all()
    assert str(frame["short"].dtype) == "boolean" and str(frame["name_length"].dtype) == "Int64"
    assert set(frame["model"]) == {"gpt-4o-mini"} and set(frame["temperature"]) == {0.5}
    assert set(frame["namer_user_version"]) == {1}
    assert set(frame["namer_system_version"]) == {1}
    assert set(frame["prompt"]) == {"v1"}
    assert set(frame["result"]) == {"Senior Full Stack AI Builder"}
    assert str(frame["started_at"].dtype).startswith("datetime64")

    both = promptlog.open().runs(["names-v1", "names-v2"])
    assert both.shape[0] == 8
    assert list(both.groupby("namer_user_version")["name_length"].mean()) == [28, 10]


def test_runs_keeps_the_columns_experiment_to_pandas_promises():
    a, _ = build_constructed_log()
    frame = a.to_pandas()
    assert list(frame.columns) == [
        "run_id", "experiment_id", "experiment", "execution_index", "status", "passed",
        "score", "started_at", "duration_s", "result", "error_type", "error_message",
    ]
    assert frame.shape == (10, 12)
    assert list(frame["score"]) == SCORES_A
    assert list(frame["passed"]) == PASSED_A
    summary = a.summary()
    assert list(summary.columns) == ["kind", "n", "mean", "std", "stderr", "ci_low", "ci_high"]
    assert summary.loc["score", "mean"] == pytest.approx(5.5)
    assert summary.loc["passed", "mean"] == pytest.approx(0.5)


def test_experiments_lists_counts_and_metric_means():
    build_constructed_log()
    frame = promptlog.open().experiments()
    assert list(frame.columns) == [
        "experiment_id", "experiment", "status", "created_at", "finished_at", "num_executions",
        "runs", "succeeded", "failed", "interrupted", "duration_s", "passed", "score",
    ]
    assert list(frame["experiment"]) == ["exp-a", "exp-b"]
    assert list(frame["runs"]) == [10, 10] and list(frame["failed"]) == [0, 0]
    assert list(frame["score"]) == pytest.approx([5.5, 7.0])
    assert list(frame["passed"]) == pytest.approx([0.5, 0.8])
    only_b = promptlog.open().experiments("exp-b")
    assert list(only_b["experiment"]) == ["exp-b"]


def test_calls_have_tokens_cost_latency_and_prompt_versions():
    build_prompt_log(runs=2)
    log = promptlog.open()
    frame = log.calls()
    assert frame.shape == (4, 23)
    assert list(frame.columns) == [
        "call_id", "run_id", "experiment_id", "experiment", "execution_index", "created_at",
        "bot_name", "bot_class", "model", "status", "attempt", "input_tokens",
        "output_tokens", "cost", "cached", "saved_cost", "latency_s", "prompt_versions",
        "messages", "parameters", "response_text", "response_parsed", "error",
    ]
    assert set(frame["prompt_versions"]) == {
        "test_read.namer_system v1, reading_logs.namer_user v1",
        "test_read.namer_system v1, reading_logs.namer_user v2",
    }
    assert (frame["input_tokens"] > 0).all() and (frame["latency_s"] >= 0).all()
    assert frame["messages"][0][0] == {
        "role": "system", "content": "You name jobs.", "prompt_version_id": 1,
    }
    assert not frame["cached"].any() and frame["saved_cost"].isna().all()
    assert len(log.calls("names-v2")) == 2
    assert len(log.calls(prompt="namer_user", limit=1)) == 1
    assert log.calls(limit=1)["call_id"][0] == frame["call_id"].iloc[-1]
    assert len(log.calls(model="no-such-model")) == 0


def test_prompts_versions_and_history():
    build_prompt_log(runs=3)
    log = promptlog.open()
    prompts = log.prompts()
    assert list(prompts.columns) == [
        "prompt", "role", "versions", "latest_version", "latest_hash", "created_at", "changed_at",
    ]
    assert list(prompts["prompt"]) == ["reading_logs.namer_user", "test_read.namer_system"]
    assert list(prompts["versions"]) == [2, 1]
    versions = log.prompt_versions("namer_user")
    assert list(versions["version"]) == [1, 2]
    assert list(versions["template"]) == [TEMPLATES["v1"], TEMPLATES["v2"]]

    history = log.prompt_history("namer_user")
    assert list(history.columns) == [
        "prompt_version_id", "version", "hash", "created_at", "experiment_id", "experiment",
        "runs", "name_length", "short",
    ]
    assert list(history["experiment"]) == ["names-v1", "names-v2"]
    assert list(history["runs"]) == [3, 3]
    assert list(history["name_length"]) == [28, 10]
    assert list(history["short"]) == [0.0, 1.0]
    # The system prompt was rendered before the experiments and given to the bot:
    # both experiments used it.
    system = log.prompt_history("namer_system")
    assert list(system["experiment"]) == ["names-v1", "names-v2"]


def test_a_version_no_experiment_used_has_a_row_of_its_own():
    namer_user("An unused {{ job }}.")("x")
    history = promptlog.open().prompt_history("namer_user")
    assert len(history) == 1 and history["experiment"].isna().all()
    assert history["runs"].tolist() == [0]


def test_bad_names_are_clear_errors(db_path):
    build_constructed_log()
    log = promptlog.open()
    with pytest.raises(ExperimentError, match="No experiment named or with id 'nope'"):
        log.runs("nope")
    with pytest.raises(PromptNotFoundError, match="No prompt named 'nope'"):
        log.prompt_history("nope")
    with pytest.raises(ExperimentError, match="No run with id 'nope'"):
        log.run("nope")
    with pytest.raises(ExperimentError, match="no metric named 'nope'|has a metric named"):
        promptlog.compare("exp-a", "exp-b", metrics=["nope"])


def test_a_name_means_the_latest_experiment_of_that_name():
    first = constructed("same", [1.0, 2.0], [True, True])
    second = constructed("same", [3.0, 4.0], [False, False])
    log = promptlog.open()
    assert log.experiment_ids("same") == [second.id]
    assert log.experiment_ids(first.id) == [first.id]
    assert list(log.runs("same")["score"]) == [3.0, 4.0]


def test_a_metric_logged_as_int_and_float_is_a_float_column():
    constructed("mixed", [1, 2.5], [True, False])
    frame = promptlog.open().runs("mixed")
    assert str(frame["score"].dtype) == "float64"
    assert list(frame["score"]) == [1.0, 2.5]
    assert promptlog.open().metric_kinds() == {"passed": "bool", "score": "float"}
    summary = promptlog.open().summary("mixed")
    assert dict(summary["kind"]) == {"passed": "bool", "score": "float"}


def test_one_rule_decides_a_metric_kind():
    from promptlog.metrics import widest_kind

    assert widest_kind(["int", "float"]) == widest_kind(["float", "int"]) == "float"
    assert widest_kind(["bool", "int", "bool"]) == "int"
    assert widest_kind(["bool"]) == "bool"


def test_a_metric_named_like_a_run_column_keeps_its_name_and_the_column_moves():
    @metric
    def status(value):
        return value

    def run():
        status(1.5)

    Experiment("clash", num_executions=2, quiet=True).run(run)
    records = promptlog.open().run_records("clash")
    assert "metric.status" in records.columns and "status" in records.columns
    assert records.dicts(nest=True)[0]["metrics"] == {"status": 1.5}


def test_records_nest_data_dependent_columns_for_json():
    build_prompt_log(runs=1)
    (item,) = promptlog.open().run_records("names-v2").dicts(nest=True)
    assert item["metrics"] == {"name_length": 10, "short": True}
    assert item["hyperparameters"]["model"] == "gpt-4o-mini"
    assert item["hyperparameters"]["namer_user_version"] == 2
    json.dumps(item)


def test_one_run_with_its_calls_and_metrics():
    experiments = build_prompt_log(runs=1)
    run_id = experiments["v1"].runs[0].id
    run = promptlog.open().run(run_id)
    assert run["experiment"] == "names-v1" and run["status"] == "succeeded"
    assert run["metrics"] == {"name_length": 28, "short": False}
    assert [v["prompt"] for v in run["prompt_versions"]] == [
        "reading_logs.namer_user", "test_read.namer_system",
    ]
    (call,) = run["calls"]
    assert call["response_text"] == "Senior Full Stack AI Builder"
    assert [m["role"] for m in call["messages"]] == ["system", "user"]


def test_reading_an_old_log_upgrades_it_and_a_bad_file_is_refused(tmp_path):
    from promptlog.errors import DatabaseError, NotAPromptlogDatabase

    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    with pytest.raises(NotAPromptlogDatabase):
        promptlog.open(text).experiments()
    with pytest.raises(DatabaseError, match="No promptlog log at"):
        promptlog.open(tmp_path / "missing.db").experiments()


def test_the_reading_views_answer():
    build_prompt_log(runs=2)
    conn = sqlite3.connect(promptlog.db_path())
    board = conn.execute(
        "SELECT experiment, metric, kind, n, mean FROM experiment_metrics ORDER BY 1, 2"
    ).fetchall()
    assert board == [
        ("names-v1", "name_length", "int", 2, 28.0), ("names-v1", "short", "bool", 2, 0.0),
        ("names-v2", "name_length", "int", 2, 10.0), ("names-v2", "short", "bool", 2, 1.0),
    ]
    history = conn.execute(
        "SELECT version, experiment, metric, mean FROM prompt_history "
        "WHERE prompt = 'reading_logs.namer_user' ORDER BY 1, 3"
    ).fetchall()
    assert history == [
        (1, "names-v1", "name_length", 28.0), (1, "names-v1", "short", 0.0),
        (2, "names-v2", "name_length", 10.0), (2, "names-v2", "short", 1.0),
    ]
    (metrics,) = conn.execute("SELECT metrics FROM run_metrics LIMIT 1").fetchone()
    assert set(json.loads(metrics)) == {"name_length", "short"}
    usage = conn.execute("SELECT COUNT(*) FROM run_prompt_versions").fetchone()
    assert usage == (8,)  # 4 runs x (system prompt + user prompt)


# --- comparisons -------------------------------------------------------------------


def test_a_paired_comparison_of_constructed_metrics_has_the_known_interval():
    from scipy import stats

    build_constructed_log()
    comparison = promptlog.compare("exp-a", "exp-b")
    assert comparison.pairing == "execution_index"
    assert "Paired by execution index: 10 pairs" in comparison.note
    score_row, passed_row = (
        next(m for m in comparison.metrics if m.metric == name) for name in ("score", "passed")
    )
    # score: B - A is 1, 2, 1, 2, ... so the mean difference is 1.5 with a paired t
    # interval of 1.5 +- t(0.975, 9) * sd / sqrt(10).
    half = stats.t.ppf(0.975, 9) * stats.tstd(STEPS) / math.sqrt(10)
    assert score_row.mean_a == pytest.approx(5.5) and score_row.mean_b == pytest.approx(7.0)
    assert score_row.difference == pytest.approx(1.5)
    assert (score_row.ci_low, score_row.ci_high) == pytest.approx((1.5 - half, 1.5 + half))
    b_scores = [x + d for x, d in zip(SCORES_A, STEPS, strict=True)]
    assert score_row.p_value == pytest.approx(stats.ttest_rel(b_scores, SCORES_A).pvalue)
    assert score_row.test == "paired t"
    # passed: three pairs pass only in B and none only in A.
    assert (passed_row.a_only, passed_row.b_only) == (0, 3)
    assert passed_row.difference == pytest.approx(0.3)
    assert passed_row.p_value == pytest.approx(0.25)  # 2 * (1/2)**3
    assert passed_row.test == "McNemar exact"
    differences = [float(b) - float(a) for a, b in zip(PASSED_A, PASSED_B, strict=True)]
    half = stats.t.ppf(0.975, 9) * stats.tstd(differences) / math.sqrt(10)
    assert (passed_row.ci_low, passed_row.ci_high) == pytest.approx((0.3 - half, 0.3 + half))

    frame = comparison.to_pandas()
    assert list(frame.index) == ["passed", "score"]
    assert list(frame.columns) == [
        "kind", "n_a", "n_b", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
        "p_value", "test", "a_only", "b_only",
    ]
    data = comparison.to_dict()
    assert data["pairing"] == "execution_index" and len(data["metrics"]) == 2
    json.dumps(data)
    html = comparison._repr_html_()
    assert "McNemar exact" in html and "exp-b" in html
    assert "score: A 5.5, B 7, B - A +1.5" in str(comparison)


def test_a_pass_rate_difference_on_few_runs_keeps_its_interval_within_100_points(db_path):
    # 1 of 3 pairs flips to a pass: the t interval, 0.33 +- 4.30 * 0.58 / sqrt(3),
    # reaches past +-1, which no difference of pass rates can.
    for name, outcomes in (("few-a", [False, True, False]), ("few-b", [True, True, False])):
        Experiment(name, num_executions=3, quiet=True).run(
            lambda outcomes=outcomes: passed(outcomes[promptlog.current_run().execution_index])
        )
    (row,) = promptlog.compare("few-a", "few-b").metrics
    assert row.kind == "bool" and row.difference == pytest.approx(1 / 3)
    assert (row.ci_low, row.ci_high) == (-1.0, 1.0)


def test_different_run_counts_give_an_unpaired_welch_comparison_that_says_so():
    from scipy import stats

    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    b = [2.0, 4.0, 6.0, 8.0]
    constructed("short-a", a, [True, False, True, False, True, False])
    constructed("short-b", b, [True, True, True, False])
    comparison = promptlog.compare("short-a", "short-b", metrics=["score"])
    assert comparison.pairing == "unpaired"
    assert "Unpaired (Welch): A has 6 runs and B has 4" in comparison.note
    (row,) = comparison.metrics
    assert row.test == "Welch t" and row.a_only is None
    assert row.difference == pytest.approx(5.0 - 3.5)
    va, vb = stats.tvar(a) / len(a), stats.tvar(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (row.ci_low, row.ci_high) == pytest.approx((1.5 - half, 1.5 + half))
    assert row.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)


def test_runs_with_the_same_inputs_in_another_order_pair_by_input():
    questions = ["alpha", "beta", "gamma", "delta", "epsilon"]

    @metric
    def answer_length(value):
        return value

    def experiment_over(order: list[str], bonus: int) -> None:
        def run():
            question = order[current_run().execution_index]
            bot = SimpleBot("Answer.", model_name="gpt-4o-mini", mock_response="ok")
            bot(question)
            answer_length(len(question) + bonus)

        Experiment(f"by-input-{bonus}", num_executions=len(order), quiet=True).run(run)

    experiment_over(questions, 0)
    experiment_over(questions[::-1], 3)
    comparison = promptlog.compare("by-input-0", "by-input-3")
    assert comparison.pairing == "input"
    (row,) = comparison.metrics
    # Paired by input, every difference is exactly 3; by index it would vary.
    assert row.difference == 3 and (row.ci_low, row.ci_high) == (3, 3)
    assert row.p_value == 0.0


def test_a_comparison_shows_the_prompt_versions_and_settings_that_differ():
    build_prompt_log(runs=2)
    comparison = promptlog.compare("names-v1", "names-v2")
    (change,) = comparison.prompt_changes
    assert change.prompt == "reading_logs.namer_user"
    assert (change.versions_a, change.versions_b) == ((1,), (2,))
    assert f"-{TEMPLATES['v1']}" in change.diff.unified
    assert f"+{TEMPLATES['v2']}" in change.diff.unified
    assert comparison.setting_changes == {
        "mock_response": (["Senior Full Stack AI Builder"], ["AI Builder"])
    }
    assert "Prompt reading_logs.namer_user: A used v1, B used v2" in str(comparison)
    assert "<table" in comparison._repr_html_()


# --- plots and the notebook ---------------------------------------------------------


def test_metric_distributions_plot_per_experiment_and_per_prompt_version():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from promptlog import plot

    build_prompt_log(runs=3)
    ax = plot.distributions("name_length")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["names-v1", "names-v2"]
    ax = plot.distributions("short", prompt="namer_user")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["v1", "v2"]
    assert ax.get_ylabel() == "short (pass rate)"


def test_a_failed_run_has_its_error_and_no_result():
    def run():
        index = current_run().execution_index
        score(float(index))
        if index == 1:
            raise ValueError("no luck")
        return {"index": index}

    Experiment("partly", num_executions=3, quiet=True).run(run)
    frame = promptlog.open().runs("partly")
    assert list(frame["status"]) == ["succeeded", "failed", "succeeded"]
    assert list(frame["result"]) == [{"index": 0}, None, {"index": 2}]
    assert list(frame["error_type"].fillna("")) == ["", "ValueError", ""]
    assert list(frame["score"]) == [0.0, 1.0, 2.0]
    experiments = promptlog.open().experiments()
    assert experiments[["runs", "succeeded", "failed"]].values.tolist() == [[3, 2, 1]]


def test_student_t_without_scipy_matches_scipy():
    from scipy import stats as reference

    from promptlog import stats

    for df in (1, 2, 3.7, 9, 30, 1000):
        assert stats.t_quantile(0.975, df) == pytest.approx(reference.t.ppf(0.975, df), rel=1e-9)
        for t in (0.0, 0.5, 2.0, 8.0):
            expected = 2 * reference.t.sf(t, df)
            assert stats.t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-8, abs=1e-15)


def test_a_metric_only_one_experiment_recorded_gets_its_mean_and_no_difference():
    @metric
    def only_a(value):
        return value

    def run_a():
        only_a(1.0)
        score(2.0)

    def run_b():
        score(3.0)

    Experiment("one-sided-a", num_executions=3, quiet=True).run(run_a)
    Experiment("one-sided-b", num_executions=3, quiet=True).run(run_b)
    rows = {m.metric: m for m in promptlog.compare("one-sided-a", "one-sided-b").metrics}
    assert (rows["only_a"].n_a, rows["only_a"].mean_a, rows["only_a"].n_b) == (3, 1.0, 0)
    assert math.isnan(rows["only_a"].difference) and rows["only_a"].test.startswith("none")
    assert rows["score"].difference == 1.0
