"""Generic pydantic models through typed functions, in the style of llm-strategy's
LLM optimizer: reflect on the runs of a task, then suggest its next hyperparameters.

    python examples/task_runs.py          # on the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/task_runs.py

``TaskRun[Params, Result, Hyper]`` is generic; the typed functions below are written
once against its TypeVars, and each call resolves them from its arguments: given runs
of ``TaskRun[SummaryParams, SummaryResult, SummaryHyper]``, ``suggest_hyperparameters``
asks for, validates and returns a ``SummaryHyper``.
"""

from __future__ import annotations

import os
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from promptlog import llm_function

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")

Params = TypeVar("Params")
Result = TypeVar("Result")
Hyper = TypeVar("Hyper")


class TaskRun(BaseModel, Generic[Params, Result, Hyper]):
    params: Params
    hyperparameters: Hyper
    result: Result


class Reflection(BaseModel):
    feedback: str = Field(max_length=300, description="What worked and what did not.")
    score: float = Field(ge=0, le=1, description="How well the run met the goal.")


class Optimizer:
    @staticmethod
    @llm_function(model_name=MODEL)
    def reflect(task_run: TaskRun[Params, Result, Hyper], goal: str) -> Reflection:
        """Reflect on this run of a task whose goal is: {{ goal }}. Say what about its
        hyperparameters helped or hurt, and score how well it met the goal."""

    @staticmethod
    @llm_function(model_name=MODEL)
    def suggest_hyperparameters(
        history: list[TaskRun[Params, Result, Hyper]], reflections: list[Reflection], goal: str
    ) -> Hyper:
        """Given the past runs of a task and a reflection on each, suggest the
        hyperparameters of the next run, to better meet this goal: {{ goal }}."""


class SummaryParams(BaseModel):
    text: str


class SummaryResult(BaseModel):
    summary: str
    words: int


class SummaryHyper(BaseModel):
    temperature: float = Field(ge=0, le=1)
    max_bullets: int = Field(ge=1, le=5)


SummaryRun = TaskRun[SummaryParams, SummaryResult, SummaryHyper]


def main() -> SummaryHyper:
    goal = "a summary a busy reader takes in within ten seconds"
    history = [
        SummaryRun(
            params=SummaryParams(text="Pipelines move data from sources to models nightly."),
            hyperparameters=SummaryHyper(temperature=0.9, max_bullets=5),
            result=SummaryResult(summary="Data pipelines, in five long points.", words=64),
        )
    ]
    reflections = [Optimizer.reflect(run, goal) for run in history]
    suggestion = Optimizer.suggest_hyperparameters(history, reflections, goal)
    print("reflection:", reflections[0])
    print("next hyperparameters:", suggestion)
    return suggestion


if __name__ == "__main__":
    main()
