"""Optimisers compile a program of typed functions against a metric and examples; each
candidate is a child experiment of one optimisation, every prompt version logged.
Offline: the "follows examples" stand-in answers a question right only when a demo
shows it, or one sharing its first word."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from optimizer_support import (
    DEV,
    EVERYTHING,
    PAIRED,
    TRAIN,
    answer,
    answer_structured,
    exact,
    qa,
    structured_qa,
)

import promptlog
from promptlog import optimizers
from promptlog.testing import FakeOpenAIServer, FollowsExamples

TESTS = Path(__file__).parent
PRICED = "openai/gpt-4o-mini"  # litellm knows its price: each reply has a cost


@pytest.fixture
def stand_in(monkeypatch):
    """The stand-in model behind the fake server; the program's model points at it."""
    model = FollowsExamples(EVERYTHING)
    with FakeOpenAIServer(responder=model, max_seconds=120) as server:
        monkeypatch.setenv("PROMPTLOG_MODEL", server.model)
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        yield model


def test_zero_shot_scores_nothing_and_labeled_demos_score_everything(stand_in, capsys):
    result = optimizers.LabeledFewShot(k=len(TRAIN), metric=exact).compile(
        qa, trainset=TRAIN, valset=DEV, name="tune-qa"
    )
    out = capsys.readouterr().out
    assert "planned 16 program runs" in out
    assert result.baseline_score == 0.0
    assert result.best_score == 1.0
    demos = result.best[answer.name]["demos"]
    assert sorted(d["inputs"]["question"] for d in demos) == sorted(e["question"] for e in TRAIN)
    assert result.significant and "significant" in out
    assert "labeled k=8" in result._repr_html_()  # in a notebook: the report and candidates
    frame = result.candidates
    assert list(frame["label"]) == ["baseline", "labeled k=8"]
    assert list(frame["demos"]) == [0, 8]
    assert list(frame["prompt_versions"]) == ["answer v1", "answer v2"]
    assert frame.loc[1, "score"] == 1.0 and frame.loc[1, "ci_low"] == 1.0
    scores = result.scores
    assert len(scores) == 2 * len(DEV)
    assert set(scores.groupby("candidate")["score"].mean()) == {0.0, 1.0}

    log = promptlog.open()
    (row,) = log.optimizations().itertuples()
    assert (row.optimiser, row.candidates, row.best_score) == ("LabeledFewShot", 2, 1.0)
    assert log.children(row.id) == [c for c in frame["experiment_id"]]
    history = log.prompt_history(answer.name)
    assert list(history["version"]) == [1, 2]
    assert list(history["exact"]) == [0.0, 1.0]
    diff = str(promptlog.diff(answer.name))
    assert "+demos: 8 (sha256:" in diff
    assert '+  {"inputs": {"question": "apple one"}, "output": "APPLE"}' in diff


def test_bootstrap_with_an_empty_log_accepts_no_leave_one_out_trace(stand_in):
    # No two training questions share a first word: left out of its own demos, every
    # example is answered wrong, so no trace passes.
    result = optimizers.BootstrapFewShot(metric=exact, max_demos=4, from_log=True).compile(
        qa, trainset=TRAIN, valset=DEV, name="boot", quiet=True
    )
    runs = promptlog.open().runs(result.experiment_id)
    assert len(runs) == len(TRAIN) and runs["exact"].sum() == 0  # each example tried once
    # What it keeps is the labelled examples alone, filled in up to max_labeled.
    assert result.candidates.loc[1, "label"] == "bootstrap: 0 traced, 8 labeled"
    assert result.best_score == 1.0


def test_bootstrap_from_the_log_finds_demos_without_calling_the_program(stand_in):
    # One logged evaluation in which the program passed on the training examples.
    labeled = [{"inputs": {"question": e["question"]}, "output": e["answer"]} for e in TRAIN]
    with promptlog.overrides({answer: {"demos": labeled}}):
        promptlog.evaluate(qa, TRAIN, metrics=[exact], name="earlier", quiet=True)
    before = stand_in.requests

    result = optimizers.BootstrapFewShot(
        metric=exact, max_demos=4, max_labeled=0, from_log=True
    ).compile(qa, trainset=TRAIN, valset=DEV, name="boot", quiet=True)

    demos = result.best[answer.name]["demos"]
    assert [d["inputs"]["question"] for d in demos] == [e["question"] for e in TRAIN[:4]]
    assert [d["output"] for d in demos] == [e["answer"] for e in TRAIN[:4]]
    log = promptlog.open()
    assert len(log.runs(result.experiment_id)) == 0  # no bootstrap run of the program
    assert stand_in.requests - before == 2 * len(DEV)  # only the two valset evaluations
    assert result.best_score == 0.5  # four of the eight first words shown


def test_bootstrap_keeps_passing_traces_as_demos(stand_in):
    result = optimizers.BootstrapFewShot(metric=exact, max_demos=2, max_labeled=2).compile(
        qa, trainset=PAIRED, valset=PAIRED, name="boot", quiet=True
    )
    demos = result.best[answer.name]["demos"]
    assert len(demos) == 2 + 0  # two traced; max_labeled 2 leaves no room for labelled ones
    assert all(d["output"] == d["inputs"]["question"].split()[0].upper() for d in demos)
    assert result.best_candidate.label == "bootstrap: 2 traced, 0 labeled"


def _random_search(**options):
    return optimizers.RandomSearch(
        metric=exact, num_candidates=3, max_demos=2, max_labeled=4, **options
    )


def test_random_search_logs_its_seeds_as_distinct_prompt_versions(stand_in):
    result = _random_search().compile(qa, trainset=PAIRED, valset=DEV, name="rs", quiet=True)
    frame = result.candidates
    assert len(frame) == 3 + 3  # zero-shot (the baseline), labelled, unshuffled, 3 shuffled
    assert frame.loc[0, "label"] == "baseline"
    assert frame["prompt_versions"].is_unique
    assert len(promptlog.open().children(result.experiment_id)) == 6
    assert result.best_score == frame["score"].max() > 0
    assert result.stopped == "finished"


def test_random_search_gives_the_same_result_on_one_worker_or_four(stand_in):
    one = _random_search().compile(
        qa, trainset=PAIRED, valset=DEV, name="one", max_workers=1, quiet=True
    )
    four = _random_search().compile(
        qa, trainset=PAIRED, valset=DEV, name="four", max_workers=4, quiet=True
    )
    assert one.best == four.best
    assert list(one.candidates["score"]) == list(four.candidates["score"])
    assert one.scores.equals(four.scores)
    assert one.usage["metric_calls"] == four.usage["metric_calls"]


def test_random_search_resumed_makes_no_model_call(stand_in):
    first = _random_search().compile(qa, trainset=PAIRED, valset=DEV, name="rs", quiet=True)
    before = stand_in.requests
    again = _random_search().compile(
        qa, trainset=PAIRED, valset=DEV, name="rs", resume=True, quiet=True
    )
    assert stand_in.requests == before
    assert again.best == first.best
    assert list(again.candidates["score"]) == list(first.candidates["score"])
    assert again.experiment_id == first.experiment_id
    assert len(promptlog.open().optimizations()) == 1


def test_max_cost_stops_the_search_with_the_best_so_far(stand_in, monkeypatch, capsys):
    monkeypatch.setenv("PROMPTLOG_MODEL", PRICED)
    result = _random_search(max_cost=1e-9).compile(qa, trainset=PAIRED, valset=DEV, name="rs")
    assert result.stopped == "max_cost"
    assert len(result.candidates) == 1 and result.best == {}
    assert result.usage["cost"] > 0
    assert "stopped: max_cost" in capsys.readouterr().out
    (row,) = promptlog.open().optimizations().itertuples()
    assert row.cost > 0


def test_max_metric_calls_stops_cleanly_and_must_cover_the_baseline(stand_in):
    result = _random_search(max_metric_calls=20).compile(
        qa, trainset=PAIRED, valset=DEV, name="rs", quiet=True
    )
    assert result.stopped == "max_metric_calls"
    assert result.usage["metric_calls"] <= 20
    with pytest.raises(promptlog.OptimizerError, match="max_metric_calls=3 does not cover"):
        _random_search(max_metric_calls=3).compile(qa, trainset=PAIRED, valset=DEV, quiet=True)


def test_a_saved_result_loaded_in_a_fresh_process_renders_the_tuned_version(
    stand_in, tmp_path, db_path
):
    result = optimizers.LabeledFewShot(k=len(TRAIN), metric=exact).compile(
        qa, trainset=TRAIN, valset=DEV, quiet=True
    )
    saved = result.save(tmp_path / "tuned.json")
    tuned = result.best_candidate.prompt_versions[answer.name]
    script = (
        "import promptlog, sys\n"
        "promptlog.load_overrides(sys.argv[1])\n"
        "from optimizer_support import qa\n"
        "print(qa('cherry two'))\n"
        "promptlog.flush()\n"
    )
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", script, str(saved)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CHERRY"  # answered right: the demos were sent
    calls = promptlog.open().calls(prompt=answer.name)
    assert calls.iloc[-1]["prompt_versions"] == f"optimizer_support.answer v{tuned}"


def test_a_program_that_calls_no_typed_function_is_a_clear_error(stand_in):
    def plain(question: str) -> str:
        return question

    with pytest.raises(promptlog.OptimizerError, match="called no typed function"):
        optimizers.LabeledFewShot(k=2, metric=exact).compile(plain, trainset=TRAIN, quiet=True)
    with pytest.raises(promptlog.OptimizerError, match="needs a name"):
        optimizers.LabeledFewShot(k=2, metric=lambda e, p: True)
    with pytest.raises(promptlog.OptimizerError, match="max_cost must be a positive number"):
        optimizers.RandomSearch(exact, max_cost=0)


def _dspy_turn(question: str) -> str:
    return f"[[ ## question ## ]]\n{question}"


DSPY_ASK = (
    "\n\nRespond with the corresponding output fields, starting with the field "
    "`[[ ## answer ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`."
)


def test_the_stand_in_reads_any_layout_of_demos_as_text():
    model = FollowsExamples(EVERYTHING)
    system = {"role": "system", "content": "Your input fields are:\n1. `question` (str)"}
    ask = {"role": "user", "content": _dspy_turn("lemon two") + DSPY_ASK}
    # DSPy's chat layout, zero-shot: the wrong answer, in the fields asked for.
    assert model({"messages": [system, ask]}) == (
        "[[ ## answer ## ]]\nI do not know.\n\n[[ ## completed ## ]]"
    )
    # A demo sharing the first word: its reply's layout, with the right answer.
    demo = [
        {"role": "user", "content": _dspy_turn("lemon one")},
        {"role": "assistant", "content": "[[ ## answer ## ]]\nLEMON\n\n[[ ## completed ## ]]"},
    ]
    assert model({"messages": [system, *demo, ask]}) == (
        "[[ ## answer ## ]]\nLEMON\n\n[[ ## completed ## ]]"
    )
    # A demo of another first word does not help; a JSON schema asked for is filled in.
    other = [{"role": "user", "content": "peach one"}, {"role": "assistant", "content": "PEACH"}]
    assert model({"messages": [*other, {"role": "user", "content": "lemon two"}]}) == (
        "I do not know."
    )
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = {
        "messages": [{"role": "user", "content": '{"question": "olive two"}'}],
        "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
    }
    assert json.loads(model(request)) == {"answer": "I do not know."}
    assert model.requests == 4


def half_credit(example: dict[str, str], prediction: str) -> float:
    """A metric that is rarely 0: half a point for any answer at all."""
    return 1.0 if prediction == example["answer"] else 0.5


def test_a_threshold_keeps_wrong_answers_out_of_the_demos(stand_in):
    with pytest.warns(UserWarning, match="not boolean"):
        loose = optimizers.BootstrapFewShot(metric=half_credit, max_demos=2, max_labeled=4)
        lax = loose.compile(qa, trainset=TRAIN, valset=DEV, name="lax", quiet=True)
    assert lax.candidates.loc[1, "label"].startswith("bootstrap: 2 traced")
    outputs = [d["output"] for d in lax.best_candidate.overrides[answer.name]["demos"]]
    assert outputs[:2] == ["I do not know."] * 2  # two wrong answers taken as demos

    strict = optimizers.BootstrapFewShot(
        metric=half_credit, max_demos=2, max_labeled=4, threshold=1.0
    ).compile(qa, trainset=TRAIN, valset=DEV, name="strict", quiet=True)
    demos = strict.best[answer.name]["demos"]
    # Only right answers: the lax search's valset runs that scored 1.0, from the log.
    assert all(d["output"] == d["inputs"]["question"].split()[0].upper() for d in demos)


def test_a_search_stopped_by_its_budget_resumes_where_it_stopped(stand_in):
    stopped = _random_search(max_metric_calls=30).compile(
        qa, trainset=PAIRED, valset=DEV, name="rs", quiet=True
    )
    assert stopped.stopped == "max_metric_calls" and len(stopped.candidates) < 6
    before = stand_in.requests
    resumed = _random_search().compile(
        qa, trainset=PAIRED, valset=DEV, name="rs", resume=True, quiet=True
    )
    assert resumed.stopped == "finished" and len(resumed.candidates) == 6
    # Only the candidates the first session did not score ran.
    new = 6 - len(stopped.candidates)
    assert stand_in.requests - before <= new * len(DEV) + len(PAIRED)
    fresh = _random_search().compile(qa, trainset=PAIRED, valset=DEV, name="fresh", quiet=True)
    assert resumed.best == fresh.best
    assert list(resumed.candidates["score"]) == list(fresh.candidates["score"])


def test_repeats_score_each_example_several_times_and_apply_uses_the_best(stand_in):
    result = optimizers.LabeledFewShot(k=len(TRAIN), metric=exact).compile(
        qa, trainset=TRAIN, valset=DEV[:3], repeats=2, quiet=True
    )
    scores = result.scores
    assert len(scores) == 2 * 3 * 2 and set(scores["repeat"]) == {0, 1}
    assert result.comparison is not None and result.comparison.pairing == "example"
    assert result.candidates.loc[1, "n"] == 6
    try:
        result.apply()
        assert qa("mango two") == "MANGO"  # the demos are in force for the process
    finally:
        promptlog.knobs._base.clear()
    assert qa("mango two") == "I do not know."


class AskForInstructions(optimizers.Optimizer):
    """An optimiser of its own: a proposer model writes instructions, each scored."""

    def search(self, compilation):
        model = os.environ["PROMPTLOG_MODEL"]
        proposer = promptlog.SimpleBot("You write instructions.", model_name=model, temperature=0)

        def propose(step: int) -> str:
            return f"{proposer(f'Instructions number {step}, please.').content} ({step})"

        for instructions in compilation.call(propose, [1, 2], key=lambda step: f"step {step}"):
            compilation.evaluate({answer: {"template": instructions}}, label=instructions)


def test_an_optimiser_of_ones_own_makes_its_calls_in_runs_of_the_optimisation(stand_in):
    result = AskForInstructions(exact).compile(qa, trainset=TRAIN, name="own", quiet=True)
    labels = list(result.candidates["label"])
    assert labels == ["baseline", "I do not know. (1)", "I do not know. (2)"]
    assert list(result.candidates["prompt_versions"]) == ["answer v1", "answer v2", "answer v3"]
    log = promptlog.open()
    own = log.runs(result.experiment_id)
    assert len(own) == 2 and (own["status"] == "succeeded").all()
    assert len(log.calls(result.experiment_id)) == 2  # the proposer's, counted in its cost
    before = stand_in.requests
    again = AskForInstructions(exact).compile(
        qa, trainset=TRAIN, name="own", resume=True, quiet=True
    )
    assert stand_in.requests == before  # neither the proposals nor the scores are made again
    assert list(again.candidates["label"]) == labels


def test_structured_replies_and_template_variables_come_back_from_the_log(stand_in):
    # Both inputs go through the template: read back from the example and the default.
    labeled = [
        {"inputs": {"question": e["question"]}, "output": {"answer": e["answer"]}} for e in TRAIN
    ]
    with promptlog.overrides({answer_structured: {"demos": labeled}}):
        promptlog.evaluate(structured_qa, TRAIN, metrics=[exact], name="earlier", quiet=True)
    result = optimizers.BootstrapFewShot(metric=exact, max_demos=8, max_labeled=0).compile(
        structured_qa, trainset=TRAIN, valset=DEV, name="boot", quiet=True
    )
    demos = result.best[answer_structured.name]["demos"]
    assert demos == [
        {"inputs": {"question": e["question"], "hint": "one word"},
         "output": {"answer": e["answer"]}}
        for e in TRAIN
    ]  # fmt: skip
    assert result.best_score == 1.0
