"""The instruction optimisers, offline: InstructionSearch (a proposer writes instructions
from the scores so far) and ReflectiveSearch (a reflection model rewrites them from the
metric's feedback). The "keyword" stand-in answers right only when the instructions
hold the word "carefully"; the proposer and reflection models are stand-ins too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from optimizer_support import DEV, EVERYTHING, TRAIN, answer, exact, qa

import promptlog
from promptlog import SimpleBot, optimizers
from promptlog.testing import FakeOpenAIServer, Keyword, Proposer, Reflector

WORD = "carefully"
PROPOSE = "promptlog.tuning.instructions.propose_instruction"
REFLECT = "promptlog.tuning.reflective.reflect_instructions"


def graded(example: dict[str, str], prediction: str) -> tuple[float, str]:
    """Exact match, with a sentence on what was wrong."""
    if prediction == example["answer"]:
        return 1.0, "right"
    return 0.0, f"wrong: expected {example['answer']!r}, got {prediction!r}"


@pytest.fixture
def keyword(monkeypatch):
    """The keyword stand-in behind the fake server; the program's model points at it."""
    model = Keyword(EVERYTHING, word=WORD)
    with FakeOpenAIServer(responder=model, max_seconds=120) as server:
        monkeypatch.setenv("PROMPTLOG_MODEL", server.model)
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        yield model


@contextmanager
def serving(responder: Any) -> Iterator[SimpleBot]:
    """A bot talking to ``responder`` on a fake server of its own."""
    with FakeOpenAIServer(responder=responder, max_seconds=120) as server:
        yield SimpleBot("", model_name=server.model, api_base=server.base_url, api_key="sk-fake")


def _template(result: optimizers.CompileResult) -> str:
    return result.best.get(answer.name, {}).get("template", answer.template)


def test_the_keyword_stand_in_answers_right_only_with_the_word_in_the_instructions(keyword):
    assert qa("apple two") == "I do not know."
    with promptlog.overrides({answer: {"template": "Read the question carefully."}}):
        assert qa("apple two") == "APPLE"
    assert keyword.requests == 2


def test_instruction_search_keeps_the_proposal_with_the_word(keyword):
    proposer = Proposer(["Be brief.", "Think carefully.", "Be polite.", "Use capitals."])
    with serving(proposer) as bot:
        result = optimizers.InstructionSearch(exact, proposer=bot, breadth=2, depth=2).compile(
            qa, trainset=TRAIN, valset=DEV, name="tune", quiet=True
        )
    frame = result.candidates
    assert list(frame["label"]) == [
        "baseline", "round 1 proposal 1", "round 1 proposal 2",
        "round 2 proposal 1", "round 2 proposal 2",
    ]  # fmt: skip
    assert list(frame["score"]) == [0.0, 0.0, 1.0, 0.0, 0.0]
    # The best is the one with the word, not the last tried: the scores chose it.
    assert result.best == {answer.name: {"template": "Think carefully."}}
    assert result.best_score == 1.0 and result.baseline_score == 0.0
    assert frame["prompt_versions"].is_unique
    assert proposer.requests == 4  # breadth × depth
    # The proposer's calls ran in runs of the optimisation and count in its calls.
    log = promptlog.open()
    assert len(log.calls(prompt=PROPOSE)) == 4
    assert len(log.runs(result.experiment_id)) == 4
    assert result.usage["calls"] == 4 + len(frame) * len(DEV)


def test_the_proposer_sees_the_attempts_lowest_score_first(keyword):
    # A proposer that builds on the last attempt it is shown: the best, if the
    # optimiser lists them lowest first.
    proposer = Proposer(["Be brief.", "Think carefully.", "Be polite."], build_on_best=True)
    with serving(proposer) as bot:
        result = optimizers.InstructionSearch(exact, proposer=bot, breadth=2, depth=2).compile(
            qa, trainset=TRAIN, valset=DEV, quiet=True
        )
    later = [shown for shown in proposer.attempts if len(shown) > 1]
    assert len(later) == 2
    for shown in later:
        scores = [score for score, _ in shown]
        assert scores == sorted(scores) and scores[-1] == 1.0
        assert WORD in shown[-1][1]
    # Round 2 built on the winner, so both its proposals keep the word.
    assert list(result.candidates["score"]) == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert _template(result) == f"{answer.template} Think carefully."


def test_a_proposer_that_never_suggests_the_word_gets_nowhere(keyword):
    with serving(Proposer(["Be brief.", "Be polite.", "Answer in capitals."])) as bot:
        result = optimizers.InstructionSearch(exact, proposer=bot, breadth=3, depth=2).compile(
            qa, trainset=TRAIN, valset=DEV, quiet=True
        )
    assert result.best_score == 0.0 and result.best == {}
    assert len(result.candidates) == 4  # three distinct proposals; round 2 repeats them


def test_a_callable_proposer_is_called_once_a_round_with_the_scores(keyword):
    seen = []

    def proposer(signature, attempts, n):
        seen.append((signature, list(attempts), n))
        return ["Be brief.", "Work carefully.", "{{ nonsense }}"][: n + 1]

    result = optimizers.InstructionSearch(exact, proposer=proposer, breadth=2, depth=1).compile(
        qa, trainset=TRAIN, valset=DEV, quiet=True
    )
    assert seen == [("answer(question: str) -> str", [(answer.template, 0.0)], 2)]
    # An invalid template (a variable the function does not take) is skipped.
    assert list(result.candidates["label"]) == ["baseline", "round 1 proposal 1",
                                                "round 1 proposal 2"]  # fmt: skip
    assert _template(result) == "Work carefully."


def test_instruction_search_resumed_asks_no_model_again(keyword):
    proposer = Proposer(["Be brief.", "Think carefully."])
    with serving(proposer) as bot:
        search = optimizers.InstructionSearch(exact, proposer=bot, breadth=2, depth=2)
        first = search.compile(qa, trainset=TRAIN, valset=DEV, name="tune", quiet=True)
        asked, answered = proposer.requests, keyword.requests
        again = search.compile(qa, trainset=TRAIN, valset=DEV, name="tune", resume=True,
                               quiet=True)  # fmt: skip
    assert (proposer.requests, keyword.requests) == (asked, answered)
    assert again.best == first.best and again.experiment_id == first.experiment_id
    assert list(again.candidates["score"]) == list(first.candidates["score"])


def test_reflective_search_adds_the_word_when_the_feedback_says_wrong(keyword):
    reflector = Reflector(WORD, failing="wrong: expected")
    with serving(reflector) as bot:
        result = optimizers.ReflectiveSearch(
            graded, reflection_model=bot, max_metric_calls=40, minibatch=3
        ).compile(qa, trainset=TRAIN, valset=DEV, name="reflect", quiet=True)
    assert result.best_score == 1.0 and result.baseline_score == 0.0
    assert _template(result) == f"{answer.template} Work {WORD}."
    assert result.best_candidate.label == "reflection 1: answer from 0"
    assert result.usage["metric_calls"] <= 40
    # baseline (8) + parent and child on one minibatch (3 + 3) + the child (8)
    assert result.usage["metric_calls"] == 22
    assert reflector.requests == 1 and reflector.failing_seen == 1
    assert len(promptlog.open().calls(prompt=REFLECT)) == 1
    assert result.significant


def test_reflective_search_without_feedback_has_nothing_to_go_on(keyword):
    # The same reflection model, but the metric gives a bare score: no "wrong:" to
    # read, so the instructions come back as they were and no child is made.
    reflector = Reflector(WORD, failing="wrong: expected")
    with serving(reflector) as bot:
        result = optimizers.ReflectiveSearch(
            exact, reflection_model=bot, max_metric_calls=40
        ).compile(qa, trainset=TRAIN, valset=DEV, quiet=True)
    assert result.best_score == 0.0 and len(result.candidates) == 1
    assert reflector.requests >= 1 and reflector.failing_seen == 0


def test_a_child_that_does_not_improve_its_minibatch_is_not_scored(keyword):
    reflector = Reflector(WORD, failing="wrong: expected", addition="Be polite.")
    with serving(reflector) as bot:
        result = optimizers.ReflectiveSearch(
            graded, reflection_model=bot, max_metric_calls=30, minibatch=2
        ).compile(qa, trainset=TRAIN, valset=DEV, quiet=True)
    assert len(result.candidates) == 1  # every child tried on a minibatch, none kept
    # The baseline (8), then parent and child on each minibatch of the trainset (4 × 4);
    # after that every run is known and the search ends before the budget does.
    assert result.usage["metric_calls"] == 24
    assert result.stopped == "finished"
    assert reflector.failing_seen >= 4
    runs = promptlog.open().runs(result.experiment_id)
    assert len(runs) > 2  # minibatch runs and reflections, in runs of the optimisation


def test_reflective_search_needs_a_budget_and_sound_options(keyword):
    with pytest.raises(promptlog.OptimizerError, match="runs until a budget ends it"):
        optimizers.ReflectiveSearch(graded, reflection_model="gpt-4o-mini")
    with pytest.raises(promptlog.OptimizerError, match="minibatch must be a whole number"):
        optimizers.ReflectiveSearch(graded, max_metric_calls=10, minibatch=0)
    with pytest.raises(promptlog.OptimizerError, match="proposer must be a model name"):
        optimizers.InstructionSearch(exact, proposer=42)
    with pytest.raises(promptlog.OptimizerError, match="breadth must be a whole number"):
        optimizers.InstructionSearch(exact, breadth=0)


def test_a_proposer_that_fails_is_a_clear_error_and_the_log_keeps_the_baseline(keyword):
    def proposer(signature, attempts, n):
        raise RuntimeError("no model here")

    with pytest.raises(promptlog.OptimizerError, match="proposer failed .*no model here"):
        optimizers.InstructionSearch(exact, proposer=proposer).compile(
            qa, trainset=TRAIN, valset=DEV, name="broken", quiet=True
        )
    (row,) = promptlog.open().optimizations().itertuples()
    assert row.status == "failed"
    assert len(promptlog.open().children(row.id)) == 1  # the baseline stays logged


def _dspy_chat(objective: str, question: str) -> dict[str, Any]:
    """A request as DSPy's chat adapter writes it."""
    system = (
        "Your input fields are:\n1. `question` (str):\nYour output fields are:\n"
        "1. `answer` (str):\nAll interactions will be structured in the following way, "
        "with the appropriate values filled in.\n\n[[ ## question ## ]]\n{question}\n\n"
        "[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]\n"
        f"In adhering to this structure, your objective is: \n        {objective}"
    )
    user = (
        f"[[ ## question ## ]]\n{question}\n\nRespond with the corresponding output fields, "
        "starting with the field `[[ ## answer ## ]]`, and then ending with the marker for "
        "`[[ ## completed ## ]]`."
    )
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


def test_the_keyword_stand_in_reads_dspy_requests_and_answers_in_their_format():
    model = Keyword(EVERYTHING, word=WORD)
    right = model(_dspy_chat("Read the question carefully.", "lemon two"))
    assert right == "[[ ## answer ## ]]\nLEMON\n\n[[ ## completed ## ]]"
    wrong = model(_dspy_chat("Answer the question.", "lemon two"))
    assert wrong == "[[ ## answer ## ]]\nI do not know.\n\n[[ ## completed ## ]]"
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    as_json = {
        "messages": [
            {"role": "system", "content": "Answer carefully."},
            {"role": "user", "content": "lemon two"},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
    }
    assert model(as_json) == '{"answer": "LEMON"}'


def test_the_question_answering_example_is_tuned_end_to_end_offline(tmp_path):
    root = Path(__file__).parent.parent
    log = tmp_path / "example.db"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PROMPTLOG_DB=str(log), PROMPTLOG_MODEL="promptlog/offline",
               PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]))  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "tune_qa.py"), str(tmp_path / "tuned.json")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Best instructions: 'Answer the question: {{ question }} Be concise." in done.stdout
    saved = json.loads((tmp_path / "tuned.json").read_text())
    assert "Be concise." in saved["tune_qa.answer"]["template"]
    rows = promptlog.open(log).optimizations()
    assert set(rows["optimiser"]) == {"InstructionSearch", "ReflectiveSearch"}
    assert (rows["best_score"] > 0.5).all()


def test_reflective_search_resumed_asks_no_model_again(keyword):
    reflector = Reflector(WORD, failing="wrong: expected")
    with serving(reflector) as bot:
        search = optimizers.ReflectiveSearch(graded, reflection_model=bot, max_metric_calls=40)
        first = search.compile(qa, trainset=TRAIN, valset=DEV, name="reflect", quiet=True)
        asked, answered = reflector.requests, keyword.requests
        again = search.compile(qa, trainset=TRAIN, valset=DEV, name="reflect", resume=True,
                               quiet=True)  # fmt: skip
    assert (reflector.requests, keyword.requests) == (asked, answered)
    assert again.best == first.best and list(again.candidates["label"]) == list(
        first.candidates["label"]
    )
    assert again.usage["metric_calls"] == first.usage["metric_calls"]


def test_max_calls_stops_instruction_search_with_the_best_so_far(keyword):
    proposer = Proposer(["Be brief.", "Think carefully."])
    with serving(proposer) as bot:
        result = optimizers.InstructionSearch(
            exact, proposer=bot, breadth=2, depth=3, max_calls=len(DEV) + 2
        ).compile(qa, trainset=TRAIN, valset=DEV, quiet=True)
    # The baseline, then one round of proposals: the calls are spent, so no candidate
    # is scored.
    assert result.stopped == "max_calls"
    assert len(result.candidates) == 1 and proposer.requests == 2
    assert result.usage["calls"] == len(DEV) + 2


def test_parents_come_from_the_pareto_set_as_often_as_they_are_best():
    import random
    from types import SimpleNamespace

    from promptlog.tuning.reflective import pareto_parent

    def candidate(index, scores):
        found = optimizers.Candidate(index, f"c{index}", {}, f"k{index}")
        found.scores = {(example, 0): score for example, score in zip("xyz", scores, strict=True)}
        return found

    candidates = [
        candidate(0, [0.0, 0.0, 0.0]),  # never best: not drawn
        candidate(1, [1.0, 0.0, 0.5]),  # best on x
        candidate(2, [0.0, 1.0, 1.0]),  # best on y and z: drawn twice as often
        candidate(3, [1.0, 0.0, 0.0]),  # best on x too, as candidate 1 is: a duplicate
    ]
    search = SimpleNamespace(candidates=candidates, rng=random.Random(0), best=candidates[2])
    drawn = [pareto_parent(search).index for _ in range(3000)]
    assert set(drawn) == {1, 2}
    assert 1.7 < drawn.count(2) / drawn.count(1) < 2.3
