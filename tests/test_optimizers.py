"""Optimisers compile a program of typed functions against a metric and examples; each
candidate is a child experiment of one optimisation, every prompt version logged.
Offline: the "follows examples" stand-in answers a question right only when a demo
shows it, or one sharing its first word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from optimizer_support import DEV, EVERYTHING, PAIRED, TRAIN, answer, exact, qa

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
    assert "demos: 8" in str(promptlog.diff(answer.name))


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
