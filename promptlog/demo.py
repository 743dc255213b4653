"""``promptlog demo``: the whole flow on the offline model, in a few seconds.

Two versions of a prompt, an experiment of 20 executions on each, and their
summaries side by side; then where the log is and how to look inside it. With
``model`` set (e.g. ``gpt-4o-mini`` and ``OPENAI_API_KEY``) it runs on a real
model instead.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field

from . import read, store
from .bots import SimpleBot, StructuredBot
from .experiments import Experiment, experiment
from .metrics import metric
from .offline import MODEL_NAME
from .prompts import Message, PromptFunction, prompt

NUM_EXECUTIONS = 20
JOB = "someone who builds full stack AI apps"
# The same prompt, before and after an edit: promptlog versions it by its text.
NAMER_USER_VERSIONS = {
    "v1": "Give me a name for a job that follows this description: {{ job_description }}.",
    "v2": (
        "Give me a short, catchy name for a job that follows this description: "
        "{{ job_description }}."
    ),
}


class JobName(BaseModel):
    name: str = Field(..., description="A job name.")
    description: str = Field(..., description="A job description.")


@prompt("system")
def namer_system(type_of_manager: str) -> None:
    """You are an {{ type_of_manager }}. You name jobs well."""


def namer_user(template: str) -> PromptFunction:
    """The ``namer_user`` prompt as it reads with ``template`` as its docstring."""

    def namer_user(job_description: str) -> None:
        pass

    namer_user.__doc__ = template
    namer_user.__qualname__ = "namer_user"
    return prompt("user")(namer_user)


@metric
def name_length(job: JobName) -> int:
    return len(job.name)


@metric
def short_name(job: JobName) -> bool:
    return len(job.name.split()) <= 2


@metric
def pitch_words(pitch: Message) -> int:
    return len(pitch.content.split())


def run_experiment(label: str, model: str, num_executions: int) -> Experiment:
    """One experiment of the demo: name a job, pitch it, measure both."""
    user_prompt = namer_user(NAMER_USER_VERSIONS[label])
    system_prompt = namer_system("data science manager")

    @experiment
    def name_generator() -> JobName:
        bot = StructuredBot(system_prompt, pydantic_model=JobName, model_name=model,
                            temperature=0.7, name="namer")
        return bot(user_prompt(JOB))

    pitcher = SimpleBot(system_prompt, model_name=model, temperature=0.7, name="pitcher")
    with Experiment(f"demo-job-names-{label}", num_executions=num_executions,
                    metadata={"prompt": label}, quiet=True) as exp:
        job = name_generator()
        name_length(job)
        short_name(job)
        pitch_words(pitcher(f"Pitch the job {job.name!r} in one sentence."))
    return exp


def _cell(row: Any) -> str:
    if row["kind"] == "bool":
        return f"{row['mean']:.0%} [{row['ci_low']:.0%}, {row['ci_high']:.0%}]"
    return f"{row['mean']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def main(db_path: str | None = None, model: str | None = None,
         num_executions: int = NUM_EXECUTIONS) -> None:
    """Run the demo and print what it logged."""
    from rich.console import Console
    from rich.table import Table

    if db_path is not None:
        store.configure(db_path)
    model = model or os.environ.get("PROMPTLOG_DEMO_MODEL") or MODEL_NAME
    console = Console()
    if model == MODEL_NAME:
        console.print(
            f"Running on [bold]{MODEL_NAME}[/], promptlog's offline stand-in model "
            f"(deterministic made-up answers). For a real model: "
            f"promptlog demo --model gpt-4o-mini (with OPENAI_API_KEY set)."
        )
    experiments = {label: run_experiment(label, model, num_executions)
                   for label in NAMER_USER_VERSIONS}
    summaries = {label: exp.summary() for label, exp in experiments.items()}

    table = Table(title=f"{num_executions} runs per prompt version, mean [95% CI]")
    table.add_column("metric")
    for label, exp in experiments.items():
        table.add_column(f"namer_user {label}\n{exp.name}")
    for name in summaries["v1"].index:
        table.add_row(name, *(_cell(summaries[label].loc[name]) for label in summaries))
    console.print(table)

    path = store.db_path()
    with read.open(path) as log:
        counts = log.status()
    console.print(
        f"\nThe log is [bold]{path}[/]: {counts['prompt_versions']} prompt versions, "
        f"{counts['experiments']} experiments, {counts['runs']} runs, {counts['calls']} calls.\n"
        f"Look inside:\n"
        f"  promptlog experiments\n"
        f"  promptlog diff {__name__}.namer_user\n"
        f"  promptlog compare {experiments['v1'].name} {experiments['v2'].name}\n"
        f"  promptlog ui            (or: datasette {path})\n"
        f"  python -c \"import promptlog; print(promptlog.open().runs())\""
    )
