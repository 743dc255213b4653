"""promptlog.meta_optimize, llm-strategy's reflection loop, on the fake OpenAI server: a
responder reads which of the optimiser's typed functions is asking and answers from a
script, so every reply goes through litellm and is parsed into the seed's models."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import promptlog
from promptlog import OptimizerError, llm_function, meta_optimize
from promptlog.functions import find
from promptlog.tuning import meta
from promptlog.tuning.meta import ImprovementProbability, OptimizationStep, TaskReflection

ROOT = Path(__file__).resolve().parents[1]
_FUNCTION = re.compile(r"implementation of the Python function `(\w+)\(")
_INPUTS = re.compile(r"Inputs:\n```\n(.*)\n```", re.S)


class Script:
    """The optimiser's model: per typed function, a reply written from the call's
    inputs; every call's inputs kept, by function."""

    def __init__(self, **replies: Callable[[dict[str, Any]], Any]):
        self.replies = {
            "reflect_on_task_run": self.reflect,
            "summarize_optimization_info": self.summarise,
            "probability_for_improvement": lambda inputs: {
                "considerations": ["more to try"], "probability": 0.9,
            },
            **replies,
        }
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, request: dict[str, Any]) -> str:
        system = request["messages"][0]["content"]
        function = _FUNCTION.search(system).group(1)  # type: ignore[union-attr]
        user = request["messages"][-1]["content"]
        found = _INPUTS.search(user)
        inputs = json.loads(found.group(1)) if found else {}
        inputs["_text"] = user
        self.calls.setdefault(function, []).append(inputs)
        reply = self.replies[function](inputs)
        return reply if isinstance(reply, str) else json.dumps(reply)

    @staticmethod
    def reflect(inputs: dict[str, Any]) -> dict[str, str]:
        run = inputs["task_run"]
        return {
            "feedback": f"length {run['hyperparameters']['length']} scored {run['score']}",
            "evaluation": "ok" if run["exception"] is None else f"failed: {run['exception']}",
            "hyperparameter_suggestion": "try a length nearer 7",
            "hyperparameter_missing": "none",
        }

    def summarise(self, inputs: dict[str, Any]) -> str:
        count = len(inputs["optimization_info"]["task_infos"])
        return f"SUMMARY {len(self.calls['summarize_optimization_info'])} of {count} infos"


class Hyper(BaseModel):
    length: int = Field(ge=1, le=20, description="How many characters to write.")


def step(best: int, lengths: list[int], topics: list[str]) -> dict[str, Any]:
    return {
        "best_hyperparameters": {"length": best},
        "suggestion": f"try lengths {lengths}",
        "task_parameters_suggestions": topics,
        "hyperparameter_suggestions": [{"length": n} for n in lengths],
    }


def suggestions(*steps: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Round n's suggestion is steps[n - 1] (the last one again after that)."""
    asked = []

    def reply(inputs: dict[str, Any]) -> dict[str, Any]:
        asked.append(inputs)
        return steps[min(len(asked), len(steps)) - 1]

    return reply


task_calls: list[tuple[str, int]] = []


def write(topic: str, hyperparameters: Hyper) -> str:
    """Write exactly seven characters about the topic."""
    task_calls.append((topic, hyperparameters.length))
    if hyperparameters.length == 13:
        raise ValueError("thirteen is unlucky")
    return (topic * 20)[: hyperparameters.length]


def closeness(topic: str, text: str) -> float:
    return -abs(len(text) - 7)


@pytest.fixture(autouse=True)
def no_task_calls():
    task_calls.clear()


def runs_of(result) -> list[dict[str, Any]]:
    return promptlog.open().run_records(result.experiment.id).dicts(nest=True)


def roles(result) -> list[tuple[str, int]]:
    return sorted(
        (run["result"]["role"], run["result"]["round"])
        for run in runs_of(result) if run["result"]
    )  # fmt: skip


def test_reflections_and_suggestions_are_parsed_and_every_step_is_a_logged_run(fake_openai):
    script = Script(suggest_next_optimization_step=suggestions(step(5, [5, 9], ["sea"])))
    fake_openai.responder = script
    result = meta_optimize(
        write, Hyper(length=3), ["ink", "owl"], closeness, rounds=1, name="lengths",
        **fake_openai.bot_kwargs,
    )

    # The seed's models, parsed from the replies.
    assert [type(s) for s in result.steps] == [OptimizationStep[str, str, Hyper]]
    assert result.steps[0].hyperparameter_suggestions == [Hyper(length=5), Hyper(length=9)]
    assert sorted(task_calls) == [("ink", 3), ("owl", 3), ("sea", 5), ("sea", 9)]
    reflections = result.rounds["reflections"].explode().tolist()
    assert [r["feedback"] for r in reflections] == [
        "length 3 scored -4.0", "length 3 scored -4.0", "length 5 scored -2.0",
        "length 9 scored -2.0",
    ]  # fmt: skip
    TaskReflection.model_validate(reflections[0])

    # What the suggestion was asked with: the reflections, the metric's best so far.
    (asked,) = script.calls["suggest_next_optimization_step"]
    info = asked["optimization_info"]
    assert [i["reflection"]["feedback"] for i in info["task_infos"]] == [
        "length 3 scored -4.0", "length 3 scored -4.0"
    ]
    assert info["best_hyperparameters"] == {"length": 3} and info["best_score"] == -4.0
    assert "Write exactly seven characters" in asked["_text"]  # the task's docstring
    # The reflection saw the task run: parameters, hyperparameters, result, score.
    (task_run,) = [
        call["task_run"] for call in script.calls["reflect_on_task_run"]
        if call["task_run"]["hyperparameters"] == {"length": 5}
    ]  # fmt: skip
    assert task_run["task_parameters"] == "sea" and task_run["return_value"] == "sease"
    assert task_run["score"] == -2.0 and task_run["exception"] is None

    # The optimiser called the model it was given through copies of its functions,
    # which leave the functions themselves as they were.
    assert find("promptlog.tuning.meta.reflect_on_task_run") is meta.reflect_on_task_run

    # One optimisation experiment; a run per task, reflection and suggestion.
    optimizations = promptlog.open().optimizations()
    assert optimizations.loc[0, "name"] == "lengths"
    assert optimizations.loc[0, "optimiser"] == "meta_optimize"
    assert optimizations.loc[0, "best_score"] == -2.0
    assert roles(result) == [
        ("reflection", 0), ("reflection", 0), ("reflection", 1), ("reflection", 1),
        ("suggestion", 1), ("task", 0), ("task", 0), ("task", 1), ("task", 1),
    ]  # fmt: skip
    runs = runs_of(result)
    tasks = [r for r in runs if r["result"]["role"] == "task"]
    assert sorted(r["metrics"]["score"] for r in tasks) == [-4.0, -4.0, -2.0, -2.0]
    assert sorted(r["hyperparameters"]["length"] for r in tasks) == [3, 3, 5, 9]
    # Every model call the optimiser made is on one of its runs.
    calls = promptlog.open().call_records().dicts()
    assert len(calls) == 5 and all(c["run_id"] for c in calls)
    assert optimizations.loc[0, "outcome"] == {
        "best_score": -2.0, "best_hyperparameters": {"length": 5}, "rounds": 1,
        "stopped": "rounds",
    }  # fmt: skip


def test_a_metric_picks_the_best_hyperparameters_not_the_models_word(fake_openai):
    # The model insists that length 3 is best; the metric says 7 (and 13 fails).
    fake_openai.responder = Script(
        suggest_next_optimization_step=suggestions(
            step(3, [7, 13], ["ink", "owl"]), step(3, [2], ["sea"])
        )
    )
    result = meta_optimize(
        write, Hyper(length=3), ["ink", "owl"], closeness, rounds=2,
        **fake_openai.bot_kwargs,
    )
    assert result.steps[-1].best_hyperparameters == Hyper(length=3)  # the model's word
    assert result.best_hyperparameters == Hyper(length=7)
    assert result.best_score == 0.0
    assert result.stopped == "rounds"
    rounds = result.rounds
    assert rounds["hyperparameters"].tolist() == [
        {"length": 3}, {"length": 7}, {"length": 13}, {"length": 2}
    ]
    assert rounds["score"].tolist()[:2] == [-4.0, 0.0]
    assert math.isnan(rounds["score"][2])  # both runs of 13 failed: no score
    assert rounds["best"].tolist() == [True, True, False, False]
    assert rounds["best_score"].tolist() == [-4.0, 0.0, 0.0, 0.0]
    failed = [r for r in runs_of(result) if r["status"] == "failed"]
    assert len(failed) == 2 and all(r["result"]["role"] == "task" for r in failed)
    # The failure was reflected on, with its exception.
    evaluations = [r["evaluation"] for r in rounds["reflections"][2]]
    assert evaluations == ["failed: ValueError: thirteen is unlucky"] * 2


def test_plot_draws_scores_by_round_and_the_best_so_far(fake_openai):
    import matplotlib  # the test extra has it

    matplotlib.use("Agg")
    fake_openai.responder = Script(
        suggest_next_optimization_step=suggestions(step(3, [5, 1], ["ink"]), step(5, [7], ["ink"]))
    )
    result = meta_optimize(
        write, Hyper(length=3), ["ink"], closeness, rounds=2, **fake_openai.bot_kwargs
    )
    ax = result.plot()
    (points,) = ax.collections
    assert points.get_offsets().tolist() == [[0, -4], [1, -2], [1, -6], [2, 0]]
    (best,) = ax.lines
    assert list(best.get_xdata()) == [0, 1, 2] and list(best.get_ydata()) == [-4, -2, 0]


def test_without_a_metric_the_models_word_is_the_best(fake_openai):
    fake_openai.responder = Script(
        suggest_next_optimization_step=suggestions(step(9, [7], ["ink"]))
    )
    result = meta_optimize(write, Hyper(length=3), ["ink"], rounds=1, **fake_openai.bot_kwargs)
    assert result.best_hyperparameters == Hyper(length=9)
    assert result.best_score is None
    assert result.rounds["scores"].tolist() == [[None], [None]]
    with pytest.raises(OptimizerError, match="no metric"):
        result.plot()


def test_older_task_infos_are_summarised_past_max_task_infos(fake_openai):
    script = Script(
        suggest_next_optimization_step=suggestions(
            step(3, [5, 9], ["sea", "sky"]), step(3, [6], ["elm"])
        )
    )
    fake_openai.responder = script
    result = meta_optimize(
        write, Hyper(length=3), ["ink", "owl"], closeness, rounds=2, max_task_infos=4,
        **fake_openai.bot_kwargs,
    )
    # Round 1 brings the infos to 2 + 4 = 6 > 4: the 4 oldest are summarised, 2 kept.
    (summarised,) = script.calls["summarize_optimization_info"]
    assert len(summarised["optimization_info"]["task_infos"]) == 4
    assert summarised["optimization_info"]["older_task_summary"] is None
    second = script.calls["suggest_next_optimization_step"][1]["optimization_info"]
    assert second["older_task_summary"] == "SUMMARY 1 of 4 infos"
    assert len(second["task_infos"]) == 2
    assert result.summary == "SUMMARY 1 of 4 infos"
    assert ("summary", 1) in roles(result)


def test_a_low_probability_of_improvement_stops_the_loop(fake_openai):
    script = Script(
        suggest_next_optimization_step=suggestions(step(3, [5], ["ink"])),
        probability_for_improvement=lambda inputs: {
            "considerations": ["nothing left to try"], "probability": 0.2,
        },
    )
    fake_openai.responder = script
    # The optimiser's own prompts are knobs too.
    pessimist = {"template": "Be pessimistic about: {{ task_description }}"}
    with promptlog.overrides({"probability_for_improvement": pessimist}):
        result = meta_optimize(
            write, Hyper(length=3), ["ink"], closeness, rounds=5, stop_probability=0.5,
            **fake_openai.bot_kwargs,
        )
    assert script.calls["probability_for_improvement"][0]["_text"].startswith(
        "Be pessimistic about: Write exactly seven characters"
    )
    assert result.stopped == "probability"
    assert len(result.steps) == 1 and len(script.calls["suggest_next_optimization_step"]) == 1
    probabilities = result.rounds["probability"].tolist()
    assert math.isnan(probabilities[0]) and probabilities[1] == 0.2  # none after round 0
    runs = promptlog.open().runs(result.experiment.id)  # as docs/meta_optimize.md reads them
    assert runs[runs.result.str["role"] == "task"]["score"].tolist() == [-4.0, -2.0]
    probability = [r for r in runs_of(result) if r["result"]["role"] == "probability"]
    assert probability[0]["result"]["probability"]["probability"] == 0.2
    ImprovementProbability.model_validate(probability[0]["result"]["probability"])


def test_resume_continues_without_rerunning_finished_rounds(fake_openai):
    script = Script(
        suggest_next_optimization_step=suggestions(
            step(3, [5], ["ink"]), step(5, [6], ["owl"]), step(6, [7], ["sea"])
        )
    )
    fake_openai.responder = script
    first = meta_optimize(
        write, Hyper(length=3), ["ink"], closeness, rounds=1, name="resumable",
        **fake_openai.bot_kwargs,
    )
    assert task_calls == [("ink", 3), ("ink", 5)]
    requests = fake_openai.request_count

    task_calls.clear()
    again = meta_optimize(
        write, Hyper(length=3), ["ink"], closeness, rounds=3, name="resumable", resume=True,
        **fake_openai.bot_kwargs,
    )
    assert again.experiment.id == first.experiment.id
    assert task_calls == [("owl", 6), ("sea", 7)]  # rounds 0 and 1 were not run again
    # New calls: round 1's probability (not asked when it was the last round), then
    # rounds 2 and 3 (a suggestion and a reflection each, and round 2's probability).
    assert fake_openai.request_count - requests == 6
    assert again.best_hyperparameters == Hyper(length=7)
    assert again.rounds["round"].tolist() == [0, 1, 2, 3]
    assert sorted(roles(again)).count(("task", 0)) == 1


class Knobbed(BaseModel):
    instructions: str = Field(description="The instructions of write_slogan.")


def test_a_prompt_knob_in_the_hyperparameters_is_a_new_diffable_version(fake_openai):
    @llm_function(**fake_openai.bot_kwargs)
    def write_slogan(topic: str) -> str:
        """Write a slogan about {{ topic }}."""

    better = "Write a slogan of at most three words about {{ topic }}."

    def slogan(topic: str, hyperparameters: Knobbed) -> str:
        return write_slogan(topic)

    def shortness(topic: str, text: str) -> float:
        return -len(text.split())

    def reply(request: dict[str, Any]) -> str:
        system = request["messages"][0]["content"]
        if "`write_slogan(" in system:
            asked = request["messages"][-1]["content"]
            return "Tea." if "three words" in asked else "Tea is the warm heart of a cold day."
        return script(request)

    script = Script(
        suggest_next_optimization_step=suggestions({
            "best_hyperparameters": {"instructions": write_slogan.template},
            "suggestion": "shorter",
            "task_parameters_suggestions": ["tea"],
            "hyperparameter_suggestions": [{"instructions": better}],
        })
    )
    fake_openai.responder = reply
    result = meta_optimize(
        slogan, Knobbed(instructions=write_slogan.template), ["tea"], shortness,
        knobs={"instructions": write_slogan}, rounds=1, **fake_openai.bot_kwargs,
    )
    assert result.best_hyperparameters.instructions == better
    assert [v.version for v in write_slogan.versions()] == [1, 2]
    shown = str(promptlog.diff(write_slogan))
    assert "-Write a slogan about {{ topic }}." in shown
    assert f"+{better}" in shown
    # The override is on the task run that used it.
    tasks = [r for r in runs_of(result) if r["result"]["role"] == "task"]
    tasks.sort(key=lambda r: r["result"]["round"])
    assert [better in json.dumps(r["hyperparameters"]) for r in tasks] == [False, True]


def test_bad_arguments_are_clear_errors_before_anything_runs(fake_openai, db_path):
    with pytest.raises(OptimizerError, match="pydantic model instance"):
        meta_optimize(write, {"length": 3}, ["ink"], **fake_openai.bot_kwargs)
    with pytest.raises(OptimizerError, match="non-empty list"):
        meta_optimize(write, Hyper(length=3), [], **fake_openai.bot_kwargs)
    with pytest.raises(OptimizerError, match="not a field of Hyper"):
        meta_optimize(
            write, Hyper(length=3), ["ink"], knobs={"size": "x"}, **fake_openai.bot_kwargs
        )
    async def later(topic: str, hyperparameters: Hyper) -> str:
        return topic

    with pytest.raises(OptimizerError, match="is async"):
        meta_optimize(later, Hyper(length=3), ["ink"], **fake_openai.bot_kwargs)
    with pytest.raises(OptimizerError, match="stop_probability"):
        meta_optimize(write, Hyper(length=3), ["ink"], stop_probability=2)
    assert task_calls == [] and fake_openai.request_count == 0 and not db_path.exists()


def test_resume_after_ctrl_c_mid_round_keeps_finished_and_failed_task_runs(fake_openai):
    fake_openai.responder = Script(
        suggest_next_optimization_step=suggestions(
            step(3, [13, 9], ["sea"]), step(3, [7], ["elm"])
        )
    )
    interrupt = [True]

    def flaky(topic: str, hyperparameters: Hyper) -> str:
        if hyperparameters.length == 9 and interrupt.pop():
            raise KeyboardInterrupt
        return write(topic, hyperparameters)

    options = dict(name="flaky", max_workers=1, **fake_openai.bot_kwargs)
    with pytest.raises(KeyboardInterrupt):
        meta_optimize(flaky, Hyper(length=3), ["ink"], closeness, rounds=2, **options)
    assert promptlog.open().optimizations().loc[0, "status"] == "interrupted"
    assert task_calls == [("ink", 3), ("sea", 13)]

    task_calls.clear()
    interrupt.append(False)
    result = meta_optimize(
        flaky, Hyper(length=3), ["ink"], closeness, rounds=2, resume=True, **options
    )
    # The seed run and the failed run of 13 are kept; the interrupted one runs again.
    assert task_calls == [("sea", 9), ("elm", 7)]
    assert result.best_hyperparameters == Hyper(length=7)
    assert result.rounds["hyperparameters"].tolist() == [
        {"length": 3}, {"length": 13}, {"length": 9}, {"length": 7}
    ]
    assert promptlog.open().optimizations().loc[0, "status"] == "succeeded"


def test_the_example_runs_on_the_offline_model_and_logs_its_prompt_versions(tmp_path):
    log = tmp_path / "example.db"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PROMPTLOG_DB=str(log), PROMPTLOG_MODEL="promptlog/offline")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "meta_optimize.py")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best: instructions=" in done.stdout
    found = promptlog.open(log).optimizations()
    assert found.loc[0, "name"] == "taglines" and found.loc[0, "status"] == "succeeded"
    # Round 1 tried new instructions: new versions of the tagline writer.
    versions = promptlog.open(log).prompt_versions("meta_optimize.write_tagline")
    assert len(versions) >= 2


class Other(BaseModel):
    width: int


def test_resuming_with_other_hyperparameters_is_a_clear_error(fake_openai):
    fake_openai.responder = Script()
    meta_optimize(write, Hyper(length=3), ["ink"], rounds=0, name="typed", **fake_openai.bot_kwargs)

    def other(topic: str, hyperparameters: Other) -> str:
        return topic

    with pytest.raises(OptimizerError, match="does not fit this task's types"):
        meta_optimize(
            other, Other(width=2), ["ink"], rounds=0, name="typed", resume=True,
            **fake_openai.bot_kwargs,
        )
    assert len(promptlog.open().runs()) == 2  # the logged task run and reflection are kept


def test_a_suggestion_that_never_validates_stops_with_a_clear_status(fake_openai):
    too_many = step(3, [4, 5, 6], ["sea"])  # three hyperparameter sets: at most two
    script = Script(suggest_next_optimization_step=lambda inputs: too_many)
    fake_openai.responder = script
    result = meta_optimize(
        write, Hyper(length=3), ["ink"], closeness, rounds=3, name="invalid",
        **fake_openai.bot_kwargs,
    )
    assert result.stopped.startswith("failed: suggestion in round 1: StructuredOutputError")
    assert len(script.calls["suggest_next_optimization_step"]) == 4  # max_retries: 3
    assert result.best_hyperparameters == Hyper(length=3) and result.best_score == -4.0
    found = promptlog.open().optimizations()
    assert found.loc[0, "stopped"] == result.stopped and found.loc[0, "status"] == "succeeded"


class Brief(BaseModel):
    topic: str
    words: int


def test_task_parameters_may_be_models_and_suggestions_are_of_their_type(fake_openai):
    fake_openai.responder = Script(suggest_next_optimization_step=suggestions({
        "best_hyperparameters": {"length": 3},
        "suggestion": "a longer brief",
        "task_parameters_suggestions": [{"topic": "sea", "words": 7}],
        "hyperparameter_suggestions": [{"length": 7}],
    }))
    seen = []

    def brief(task_parameters: Brief, hyperparameters: Hyper) -> str:
        seen.append(task_parameters)
        return write(task_parameters.topic, hyperparameters)

    result = meta_optimize(
        brief, Hyper(length=3), [Brief(topic="ink", words=3)], rounds=1,
        **fake_openai.bot_kwargs,
    )
    assert seen == [Brief(topic="ink", words=3), Brief(topic="sea", words=7)]
    assert result.steps[0].task_parameters_suggestions == [Brief(topic="sea", words=7)]


class Retrieval(BaseModel):
    top_k: int = Field(ge=1, le=10)


def test_a_declared_hyperparameter_is_set_from_its_field(fake_openai):
    promptlog.hyperparameter("meta_top_k", 1)  # declared, as a program would
    fake_openai.responder = Script(suggest_next_optimization_step=suggestions({
        "best_hyperparameters": {"top_k": 2},
        "suggestion": "more context",
        "task_parameters_suggestions": ["ink"],
        "hyperparameter_suggestions": [{"top_k": 5}],
    }))

    def retrieve(topic: str, hyperparameters: Retrieval) -> int:
        return promptlog.hyperparameter("meta_top_k", 1)

    result = meta_optimize(
        retrieve, Retrieval(top_k=2), ["ink"], lambda topic, k: float(k),
        knobs={"top_k": "meta_top_k"}, rounds=1, **fake_openai.bot_kwargs,
    )
    assert result.rounds["scores"].tolist() == [[2.0], [5.0]]
    assert result.best_hyperparameters == Retrieval(top_k=5)
