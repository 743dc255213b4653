"""``promptlog demo``: the whole flow on the offline model, in a few seconds.

Two versions of a prompt, an experiment of 20 executions on each, and their
summaries side by side; then an optimiser finds a better instruction for the
namer by itself, and the demo shows the winning version's diff and its paired gain;
last, where the log is and how to look inside it. With ``model`` set (e.g.
``gpt-4o-mini`` and ``OPENAI_API_KEY``) it runs on a real model instead, which
then also writes the instructions the optimiser tries.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from . import read, store
from .bots import SimpleBot, StructuredBot
from .experiments import Experiment, experiment
from .metrics import metric
from .offline import MODEL_NAME
from .prompts import Message, PromptFunction, prompt

if TYPE_CHECKING:
    from .tuning.compile import CompileResult

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

# The jobs the optimiser names in the last act: its validation examples.
JOBS = [
    "someone who builds full stack AI apps",
    "a person who cleans and labels training data",
    "an engineer who keeps models running in production",
    "someone who writes prompts for a living",
    "a researcher who studies how models fail",
    "a person who turns dashboards into decisions",
    "an analyst who forecasts sales every week",
    "someone who teaches teams to use LLMs well",
    "a developer who builds search for documents",
    "a scientist who designs A/B tests",
    "someone who measures what chatbots get wrong",
    "an engineer who shrinks models to fit phones",
]
# What the offline proposer adds to the best instructions so far; a real model writes
# its own.
REWRITES = ("Make it descriptive.", "Keep it short.", "Make it catchy.")


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


def offline_proposer(signature: str, attempts: Sequence[tuple[str, float]], n: int) -> list[str]:
    """The instructions the offline model's optimiser tries: the best so far (the last
    of the attempts, which come lowest score first) with a sentence added."""
    best = attempts[-1][0]
    return [f"{best} {extra}" for extra in REWRITES if extra not in best][:n]


def optimise(model: str) -> CompileResult:
    """The last act: InstructionSearch tunes the namer's instructions, as a typed
    function, for names of at most two words, on :data:`JOBS`."""
    from .functions import LLMFunction
    from .tuning.instructions import InstructionSearch

    def name_job(job_description: str) -> JobName:  # type: ignore[empty-body]
        """The model implements it."""

    name_job.__doc__ = NAMER_USER_VERSIONS["v1"]
    namer = LLMFunction(name_job, name=f"{__name__}.name_job", model_name=model, temperature=0)

    def name(job_description: str) -> JobName:
        return namer(job_description)

    proposer = offline_proposer if model == MODEL_NAME else model
    search = InstructionSearch(short_name, proposer=proposer, breadth=3, depth=2)
    return search.compile(name, trainset=[{"job_description": job} for job in JOBS],
                          name="demo-tune-namer", max_workers=4, quiet=True)  # fmt: skip


def show_optimisation(console: Any, result: CompileResult) -> None:
    """The candidates, the winning version's diff and its paired gain over v1."""
    from rich.table import Table

    from .diffs import diff

    name = f"{__name__}.name_job"
    table = Table(title=f"InstructionSearch: each candidate on {len(JOBS)} jobs, mean [95% CI]")
    for column in ("candidate", "version", "instructions (after the first sentence)", "short_name"):
        table.add_column(column)
    original = NAMER_USER_VERSIONS["v1"]
    for candidate, (_, row) in zip(result.candidates_, result.candidates.iterrows(), strict=True):
        template = (candidate.overrides.get(name) or {}).get("template", original)
        added = template[len(original) :].strip() if template.startswith(original) else template
        cell = f"{row['score']:.0%} [{max(0.0, row['ci_low']):.0%}, {min(1.0, row['ci_high']):.0%}]"
        table.add_row(f"{candidate.index}{' (best)' if row['best'] else ''}",
                      row["prompt_versions"], added or "(as written)", cell)  # fmt: skip
    console.print(table)
    version = result.best_candidate.prompt_versions.get(name)
    metric = result.comparison.metrics[0] if result.comparison else None
    if version is None or metric is None:
        console.print("No instruction beat the namer's own.")
        return
    console.print(f"\nThe winning version, v{version}, against v1:")
    console.print(diff(name, 1, version).unified, markup=False, highlight=False)
    console.print(
        f"Paired by job, short_name gains {metric.difference:+.0%} "
        f"(95% CI {metric.ci_low:+.0%} to {metric.ci_high:+.0%}, p = {metric.p_value:.2g}, "
        f"{metric.test}): {'significant' if result.significant else 'not significant'}."
    )


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

    console.print(
        "\n[bold]Last act[/]: an optimiser looks for a better instruction for the namer "
        "by itself."
    )
    show_optimisation(console, optimise(model))

    path = store.db_path()
    with read.open(path) as log:
        counts = log.status()
    console.print(
        f"\nThe log is [bold]{path}[/]: {counts['prompt_versions']} prompt versions, "
        f"{counts['experiments']} experiments, {counts['runs']} runs, {counts['calls']} calls.\n"
        f"Look inside:\n"
        f"  promptlog experiments\n"
        f"  promptlog diff {__name__}.namer_user\n"
        f"  promptlog optimizations    (and: promptlog diff {__name__}.name_job)\n"
        f"  promptlog compare {experiments['v1'].name} {experiments['v2'].name}\n"
        f"  promptlog ui            (or: datasette {path})\n"
        f"  python -c \"import promptlog; print(promptlog.open().runs())\""
    )
