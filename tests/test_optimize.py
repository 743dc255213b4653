"""promptlog.optimize: a model proposes the next x from the history of (x, f(x)),
every proposal and evaluation a run. The model is a deterministic stand-in served by
the fake server (it reads the solutions shown and moves from the best one), scripted
replies, or the offline model."""

from __future__ import annotations

import json
import re
import statistics

import numpy as np
import pytest
from faults_support import query

import promptlog
from promptlog import OptimizerError, SimpleBot
from promptlog.testing import NumericProposer

X = np.arange(50) + 1.0


def linear_regression(seed: int):
    """OPRO's problem: 50 points of y = 15x + 14 with fixed noise; f is the squared
    error of a line [w, b]; its integer optimum is [15, 14]."""
    y = X * 15 + 14 + np.random.RandomState(seed + 1).randn(50)

    def f(x: str) -> float:
        w, b = json.loads(x)
        return float(np.sum((y - (X * w + b)) ** 2))

    starts = np.round(np.random.RandomState((seed + 1) * 10).uniform(10, 20, (5, 2)))
    return f, [f"[{int(w)}, {int(b)}]" for w, b in starts]


def uniform_guess(rng):
    return f"[{rng.randint(0, 30)}, {rng.randint(0, 30)}]"


def proposer_bot(server, **options):
    return SimpleBot("", **server.bot_kwargs, max_tokens=64, **options)


TASK = "Find the line [w, b] that fits the points best. x is a list of two integers."


@pytest.mark.fake_openai(responder=NumericProposer(seed=0))
def test_opro_finds_the_line_and_beats_random_search_at_the_same_budget(fake_openai, db_path):
    steps, beaten = [], 0
    for seed in range(5):
        f, starts = linear_regression(seed)
        optimum = f("[15, 14]")
        result = promptlog.optimize(
            f, starts, task=TASK, bot=proposer_bot(fake_openai), candidates_per_step=8,
            max_steps=12, minimize=True, stop_score=optimum, baseline=uniform_guess,
            name=f"line-{seed}",
        )
        assert result.best_x == "[15, 14]" and result.best_score == optimum
        assert result.stopped == "stop_score"
        baseline = result.baseline
        assert baseline is not None and baseline.steps == result.steps  # the same budget
        assert baseline.best_score >= result.best_score
        beaten += baseline.best_score > result.best_score
        steps.append(result.steps)
    assert beaten >= 4
    assert statistics.median(steps) <= 6

    # OPRO's form: 8 proposals per step at temperature 1.0, from a meta-prompt of the
    # best solutions sorted by score, the best last, each shown once.
    requests = fake_openai.requests
    assert {r["temperature"] for r in requests} == {1.0}
    meta = requests[-1]["messages"][-1]["content"]
    shown = re.findall(r"solution:\n```\n(.*?)\n```\nscore: (\S+)", meta)
    assert 5 <= len(shown) <= 20 and len({x for x, _ in shown}) == len(shown)
    scores = [float(s) for _, s in shown]
    assert scores == sorted(scores, reverse=True)  # minimising: the lowest last
    assert "lower scores are better" in meta


@pytest.mark.fake_openai(responder=NumericProposer(seed=1))
def test_every_proposal_and_evaluation_is_a_run_of_the_search(fake_openai, db_path):
    import threading
    import time

    loss, starts = linear_regression(0)
    threads = set()

    def f(x):
        threads.add(threading.current_thread().name)
        time.sleep(0.05)
        return loss(x)

    result = promptlog.optimize(
        f, starts[:2], task=TASK, bot=proposer_bot(fake_openai), candidates_per_step=3,
        max_steps=2, minimize=True, name="line",
    )
    assert len(threads) > 1  # a step's candidates are evaluated at once, on the workers
    assert result.stopped == "max_steps" and result.steps == 2
    assert str(result).startswith("Search 'line' (") and result.best_x in str(result)
    assert "<table" in result._repr_html_()
    history = result.history
    assert list(history.columns[:6]) == ["step", "candidate", "x", "x_hash", "score", "feedback"]
    assert history["step"].tolist()[:2] == [0, 0] and history["step"].max() == 2
    assert history["best_so_far"].is_monotonic_decreasing
    assert history["best_so_far"].iloc[-1] == result.best_score

    rows = query(db_path, "SELECT kind, name, metadata, outcome FROM experiments")
    ((kind, name, metadata, outcome),) = rows
    assert (kind, name) == ("optimisation", "line")
    assert json.loads(metadata)["optimiser"] == "OPRO" and json.loads(metadata)["minimize"]
    outcome = json.loads(outcome)
    assert outcome["best_x"] == result.best_x and outcome["best_score"] == result.best_score
    assert outcome["steps"] == 2 and outcome["stopped"] == "max_steps"
    assert outcome["evaluations"] == len(history) and outcome["calls"] == 6
    assert json.loads(metadata)["max_steps"] == 2

    results = [json.loads(r) for (r,) in query(db_path, "SELECT result FROM runs")]
    proposals = [r for r in results if r["role"] == "proposal"]
    evaluations = [r for r in results if r["role"] == "evaluation"]
    assert len(proposals) == 6 and len(evaluations) == len(history)
    for evaluation in evaluations:
        assert {"step", "candidate", "x", "x_hash", "score", "feedback", "reply"} <= set(evaluation)
        assert evaluation["x_hash"].startswith("sha256:")
        assert (evaluation["reply"] is None) == (evaluation["step"] == 0)
    # the proposer's calls are on the proposal runs, the score a metric of each evaluation
    calls = query(db_path, "SELECT json_extract(r.result, '$.role') FROM calls c "
                           "JOIN runs r ON r.id = c.run_id")  # fmt: skip
    assert calls == [("proposal",)] * 6
    assert query(db_path, "SELECT COUNT(*) FROM metrics WHERE name = 'score'") == [
        (len(evaluations),)
    ]
    prompts = {name for (name,) in query(db_path, "SELECT name FROM prompt_versions")}
    assert {"promptlog.optimize.system", "promptlog.optimize.meta_prompt"} <= prompts


def scripted(*replies):
    """A responder that gives these replies in turn, then the last one again."""
    queue = list(replies)

    def respond(request):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


@pytest.mark.fake_openai(responder=scripted(
    "A palindrome about learning:\n```Madam, in Eden, I'm Adam```",
    "First ```draft one``` then the better one:\n```text\nA man, a plan, a canal: Panama\n```",
))
def test_a_one_line_block_is_kept_whole_and_of_two_blocks_the_last_is_taken(fake_openai):
    seen = []

    def f(x):
        seen.append(x)
        return len(x)

    promptlog.optimize(f, "Machine learning learns.", task="Write a palindrome.",
                       bot=proposer_bot(fake_openai), max_steps=2, name="palindromes")
    assert seen == ["Machine learning learns.", "Madam, in Eden, I'm Adam",
                    "A man, a plan, a canal: Panama"]  # fmt: skip


@pytest.mark.fake_openai(responder=scripted(
    "I would try seven.", "Fine:\n```\n7\n```", "No idea.", "Still none.",
))
def test_a_reply_without_a_block_gets_one_correction_then_the_search_stops(fake_openai):
    result = promptlog.optimize(int, "1", task="Find a big number.",
                                bot=proposer_bot(fake_openai), max_steps=5, name="numbers")
    # step 1: corrected once, then read; step 2: no block after the correction either
    assert result.best_x == "7"
    assert result.stopped == "unparsed" and result.steps == 2
    assert "no x could be read" in result.reason and "Still none." in result.reason
    correction = fake_openai.requests[1]["messages"]
    assert correction[-2] == {"role": "assistant", "content": "I would try seven."}
    assert "no fenced block" in correction[-1]["content"]


@pytest.mark.fake_openai(responder=scripted(
    "```\n3\n```", "```\n5\n```", "```\n5\n```", "```\n9\n```",
))
def test_an_x_tried_before_is_not_evaluated_again_and_the_model_is_told(fake_openai):
    calls = []

    def f(x):
        calls.append(x)
        return int(x)

    result = promptlog.optimize(f, "1", task="Find a big number.",
                                bot=proposer_bot(fake_openai), max_steps=4, name="numbers")
    assert calls == ["1", "3", "5", "9"]
    assert result.best_x == "9" and result.steps == 4 and len(result.history) == 4
    told = fake_openai.requests[3]["messages"][-1]["content"]
    assert "x =\n```\n5\n```" in told and "tried before" in told
    proposals = [json.loads(r) for (r,) in query(
        promptlog.db_path(), "SELECT result FROM runs WHERE result LIKE '%proposal%'")]
    assert [p.get("reused", False) for p in proposals] == [False, False, True, False]


@pytest.mark.fake_openai(responder=scripted("```\nboom\n```", "```\n4\n```"))
def test_an_exception_in_f_scores_the_worst_so_far_with_the_traceback_as_feedback(fake_openai):
    def f(x):
        if x == "boom":
            raise ValueError("cannot score boom")
        return int(x)

    result = promptlog.optimize(f, ["2", "3"], task="Find a big number.",
                                bot=proposer_bot(fake_openai), max_steps=2, name="boom")
    history = result.history.set_index("x")
    assert history.loc["boom", "score"] == 2  # the worst seen so far
    assert "ValueError: cannot score boom" in history.loc["boom", "feedback"]
    assert "Traceback" in history.loc["boom", "feedback"]
    assert result.best_x == "4"
    told = fake_openai.requests[1]["messages"][-1]["content"]
    assert "cannot score boom" in told


def test_f_must_return_a_number_and_arguments_are_checked():
    with pytest.raises(OptimizerError, match="model_name"):
        promptlog.optimize(len, "x", task="t")
    with pytest.raises(OptimizerError, match="x0"):
        promptlog.optimize(len, "", task="t", model_name="promptlog/offline")
    with pytest.raises(OptimizerError, match="candidates_per_step"):
        promptlog.optimize(len, "x", task="t", model_name="promptlog/offline",
                           candidates_per_step=0)
    with pytest.raises(OptimizerError, match="return a number"):
        promptlog.optimize(lambda x: "good", "x", task="t", model_name="promptlog/offline")
    # what was logged before the error stays
    assert promptlog.open().optimizations()["status"].tolist() == ["failed"]


def test_max_cost_stops_the_search_from_the_logged_costs(fake_openai):
    fake_openai.responder = NumericProposer(seed=2)
    bot = proposer_bot(fake_openai, input_cost_per_token=0.001, output_cost_per_token=0.001)
    result = promptlog.optimize(lambda x: -abs(int(x.strip("[]")) - 50), "[0]",
                                task="Find 50.", bot=bot, max_steps=50, max_cost=0.5,
                                name="costly")  # fmt: skip
    assert result.stopped == "max_cost" and 1 < result.steps < 50
    assert promptlog.open().optimizations()["cost"].iloc[0] >= 0.5


def test_patience_stops_a_search_that_no_longer_improves():
    result = promptlog.optimize(lambda x: 1.0, "[0, 0]", task="Anything.",
                                model_name="promptlog/offline", max_steps=20, patience=3,
                                name="flat")  # fmt: skip
    assert result.stopped == "patience" and result.steps == 3


def test_a_text_rubric_scored_by_llm_judge(fake_openai):
    def respond(request):
        text = request["messages"][-1]["content"]
        if "The text to rate" in text:  # the judge: one point per word of the text rated
            rated = re.search(r"The text to rate:\n```\n(.*?)\n```", text, re.DOTALL).group(1)
            return f"It reads well.\nfinal_score={len(rated.split())}"
        return "Longer:\n```\n" + "learning " * (text.count("```") + 1) + "\n```"

    fake_openai.responder = respond
    judge = promptlog.optimize.llm_judge("Rate how much the text says (1-10).",
                                         bot=proposer_bot(fake_openai))
    result = promptlog.optimize(judge, "Machine learning", task="Describe machine learning.",
                                bot=proposer_bot(fake_openai), max_steps=3, stop_score=10,
                                name="rubric")  # fmt: skip
    assert result.best_score > 2
    assert result.history["feedback"].str.contains("final_score=").all()
    # the judge's calls are logged on the evaluation runs, so they count in the cost
    roles = query(promptlog.db_path(), "SELECT json_extract(r.result, '$.role'), c.bot_name "
                  "FROM calls c JOIN runs r ON r.id = c.run_id")  # fmt: skip
    assert ("evaluation", "judge") in roles and ("proposal", "proposer") in roles


def test_code_search_with_run_python_scores_a_crash_and_a_timeout(fake_openai):
    fake_openai.responder = scripted(
        "```python\nraise RuntimeError('crashed')\n```",
        "```python\nwhile True:\n    pass\n```",
        "```python\ntotal = sum(i * i for i in range(n))\n```",
    )

    def f(code):
        outputs = promptlog.optimize.run_python(code, inputs={"n": 10}, outputs=["total"],
                                                timeout=2)
        return outputs["total"], f"total = {outputs['total']}"

    result = promptlog.optimize(f, "total = n", task="Make total as big as you can.",
                                bot=proposer_bot(fake_openai), max_steps=3, name="code")
    history = result.history
    assert history["error"].iloc[1].startswith("CodeError")
    assert "crashed" in history["feedback"].iloc[1]
    assert "longer than 2 s" in history["feedback"].iloc[2]
    assert history["score"].tolist() == [10, 10, 10, 285]
    assert result.best_score == 285


def test_random_baseline_and_repeats_compare_the_best_scores(fake_openai):
    fake_openai.responder = NumericProposer(seed=3)
    f, starts = linear_regression(1)
    result = promptlog.optimize(f, starts, task=TASK, bot=proposer_bot(fake_openai),
                                candidates_per_step=4, max_steps=3, minimize=True,
                                baseline="random", repeats=2, name="line")  # fmt: skip
    assert len(result.searches) == 2 and len(result.baselines) == 2
    assert {b.experiment.name for b in result.baselines} == {"line random #1", "line random #2"}
    comparison = result.comparison
    assert comparison is not None
    (row,) = comparison.metrics
    assert row.metric == "best_score" and row.n_a == row.n_b == 2
    assert row.mean_b == statistics.mean(s.best_score for s in result.searches)
    # the random baseline's model saw no scores
    unguided = [r for r in fake_openai.requests if "Here is an example x" in
                r["messages"][-1]["content"]]  # fmt: skip
    assert unguided and not any(re.search(r"score[:=]|score =", r["messages"][-1]["content"])
                                for r in unguided)
    log = promptlog.open()
    assert len(log.children("line")) == 5  # a repeat, two baselines, two sets of best scores
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot()
    assert ax.get_xlabel() == "step" and len(ax.get_lines()) == 4


KILLED_SEARCH = """
import json, os, signal, sys, time
import promptlog

evaluated = sys.argv[1]

def f(x):
    with open(evaluated, "a") as out:
        out.write(x + "\\n")
    with open(evaluated) as done:
        if len(done.read().splitlines()) == 4:
            time.sleep(0.5)  # the runs before this one reach the file
            os.kill(os.getpid(), signal.SIGKILL)
    a, b = json.loads(x)
    return -((a - 3) ** 2 + (b + 1) ** 2)

promptlog.optimize(f, "[0, 0]", task="Find the x with the highest score.",
                   model_name="promptlog/offline", max_steps=6, name="resumable")
"""


def test_a_search_killed_with_sigkill_resumes_without_evaluating_anything_again(
    tmp_path, db_path
):
    import signal
    import subprocess
    import sys

    from faults_support import child_env, write_script

    evaluated = tmp_path / "evaluated.txt"
    script = write_script(tmp_path, KILLED_SEARCH)
    done = subprocess.run([sys.executable, str(script), str(evaluated)], env=child_env(db_path),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    before = evaluated.read_text().splitlines()
    logged = {x for (x,) in query(db_path, "SELECT json_extract(result, '$.x') FROM runs "
                                           "WHERE json_extract(result, '$.role') = 'evaluation'")}
    assert len(before) == 4 and logged == set(before[:3])  # the fourth was cut short
    (killed_id,) = query(db_path, "SELECT id FROM experiments")[0]

    again: list[str] = []

    def f(x):
        again.append(x)
        a, b = json.loads(x)
        return -((a - 3) ** 2 + (b + 1) ** 2)

    result = promptlog.optimize(f, "[0, 0]", task="Find the x with the highest score.",
                                model_name="promptlog/offline", max_steps=6, name="resumable",
                                resume=True)  # fmt: skip
    assert result.experiment.id == killed_id and result.steps == 6
    assert not set(again) & logged  # neither x0 nor any logged x is evaluated again
    assert len(again) == len(set(again))
    history = result.history
    assert set(before[:3]) <= set(history["x"]) and history["x"].is_unique
    assert history["step"].max() > 2
    assert query(db_path, "SELECT COUNT(*) FROM experiments") == [(1,)]


def test_promptlog_show_name_gives_the_best_so_far_by_step_and_the_best_x(fake_openai):
    from click.testing import CliRunner

    from promptlog.cli import cli

    fake_openai.responder = scripted("```\n3\n```", "```\n2\n```", "```\n8\n```")
    promptlog.optimize(int, "1", task="Find a big number.", bot=proposer_bot(fake_openai),
                       max_steps=3, name="numbers")  # fmt: skip
    shown = CliRunner().invoke(cli, ["show", "numbers"])
    assert shown.exit_code == 0, shown.output
    assert "optimisation numbers" in shown.output and "stopped: max_steps" in shown.output
    lines = [line.split() for line in shown.output.splitlines()]
    assert ["0", "1", "1"] in lines and ["2", "1", "3"] in lines and ["3", "1", "8"] in lines
    assert shown.output.rstrip().endswith("best x (score 8, step 3):\n8")
    data = json.loads(CliRunner().invoke(cli, ["show", "numbers", "--json"]).output)
    assert [row["best_so_far"] for row in data["best_by_step"]] == [1, 3, 3, 8]
    assert [row["x"] for row in data["evaluations"]] == ["1", "3", "2", "8"]
    run_id = data["evaluations"][1]["run_id"]
    assert '"x": "3"' in CliRunner().invoke(cli, ["show", run_id]).output
    listed = json.loads(CliRunner().invoke(cli, ["optimizations", "--json"]).output)
    assert [(o["name"], o["optimiser"], o["best_score"]) for o in listed] == [
        ("numbers", "optimize", 8)
    ]


@pytest.mark.parametrize("example, name", [
    ("optimize_function", "minimise-f"), ("optimize_automl", "automl-digits"),
    ("optimize_text_rubric", "palindrome-rubric"),
])  # fmt: skip
def test_the_examples_run_on_the_offline_model(example, name, db_path):
    import subprocess
    import sys
    from pathlib import Path

    from faults_support import child_env

    script = Path(__file__).resolve().parent.parent / "examples" / f"{example}.py"
    done = subprocess.run([sys.executable, str(script)], env=child_env(db_path),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best" in done.stdout
    search = promptlog.open().search(name)
    assert search["status"] == "succeeded" and search["outcome"]["steps"] >= 1
    assert len(search["evaluations"]) >= 2
    assert all(e["error"] is None for e in search["evaluations"])


def test_the_search_prompts_are_versioned_knobs(fake_openai):
    fake_openai.responder = scripted("```\n2\n```")
    shorter = "{% for s in solutions %}{{ s.x }}: {{ s.score }}\n{% endfor %}Next, in ```?"
    with promptlog.overrides({promptlog.optimize.prompts.meta_prompt: {"template": shorter}}):
        promptlog.optimize(int, "1", task="Find a big number.", bot=proposer_bot(fake_openai),
                           method="OPRO", max_steps=1, name="numbers")  # fmt: skip
    assert fake_openai.requests[0]["messages"][-1]["content"] == "1: 1\nNext, in ```?"
    versions = promptlog.versions("promptlog.optimize.meta_prompt")
    assert [v.template for v in versions] == [shorter.strip()]


@pytest.mark.fake_openai(responder=NumericProposer(seed=4))
def test_llm_optimizes_conversation_finds_the_line_one_proposal_at_a_time(fake_openai):
    f, starts = linear_regression(0)
    result = promptlog.optimize(f, starts[0], task=TASK, bot=proposer_bot(fake_openai),
                                max_steps=80, top_k=6, minimize=True, stop_score=f("[15, 14]"),
                                name="line")  # fmt: skip
    assert result.best_x == "[15, 14]" and result.stopped == "stop_score"
    assert {r["temperature"] for r in fake_openai.requests} == {0.7}
    # the conversation is kept: x0, then the last top_k exchanges of reply and score
    last = fake_openai.requests[-1]["messages"]
    assert [m["role"] for m in last[:2]] == ["system", "user"]
    assert [m["role"] for m in last[2:]] == ["assistant", "user"] * 6
    assert all(m["content"].startswith("Moving from the best") for m in last[2::2])


def test_an_executor_runs_the_evaluations_and_the_proposals_stay_on_the_search(fake_openai):
    from concurrent.futures import ThreadPoolExecutor

    fake_openai.responder = NumericProposer(seed=5)
    loss, starts = linear_regression(0)
    threads = set()

    def f(x):
        import threading

        threads.add(threading.current_thread().name)
        return loss(x)

    with ThreadPoolExecutor(3, thread_name_prefix="mine") as pool:
        result = promptlog.optimize(f, starts, task=TASK, bot=proposer_bot(fake_openai),
                                    candidates_per_step=3, max_steps=2, minimize=True,
                                    executor=pool, name="line")  # fmt: skip
    assert result.steps == 2 and threads and all(t.startswith("mine") for t in threads)
    assert result.experiment.executor is None  # the proposer's calls: the search's threads
