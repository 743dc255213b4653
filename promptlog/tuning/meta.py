"""llm-strategy's meta-optimisation by reflection, every step a logged run.

    result = promptlog.meta_optimize(
        write_essay, hyperparameters=EssayHyper(...), task_parameters=[...],
        metric=essay_score, model_name="gpt-4o-mini", rounds=5,
    )
    result.best_hyperparameters, result.rounds

Round 0 runs the task on each of the given task parameters with the starting
hyperparameters. Each later round asks the model for the next step (the best
hyperparameters so far, 1–4 task parameters and 1–2 hyperparameter sets to try),
runs the task on every pair, has the model reflect on each run, summarises the
oldest reflections once there are more than ``max_task_infos``, and asks how
likely more rounds are to improve, stopping below ``stop_probability``.

Everything is one experiment of kind ``"optimisation"``: the task runs (their
model calls are their chat chains), and a run for every reflection, summary,
suggestion and probability, so that the optimiser's own calls are logged and
counted. Each run's result says its ``role`` and ``round``; task runs scored by a
metric record it as the metric ``score``. ``resume=True`` replays what is logged
and runs only what is missing.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import traceback
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pydantic
from pydantic import BaseModel, Field

from .. import knobs as _knobs
from .. import metrics, settings
from .._plain import shown
from ..context import current_run
from ..errors import OptimizerError
from ..functions import LLMFunction, llm_function

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..bots import SimpleBot
    from ..experiments import Experiment, Run

__all__ = [
    "ChatMessage",
    "ImprovementProbability",
    "MetaOptimization",
    "OptimizationInfo",
    "OptimizationStep",
    "TaskInfo",
    "TaskReflection",
    "TaskRun",
    "meta_optimize",
]

OPTIMISER = "meta_optimize"
SCORE = "score"  # the metric recorded on task runs
_MAX_MESSAGE_CHARS = 4000  # a chat chain's message longer than this is cut for the reflection

TaskParameters = TypeVar("TaskParameters")
TaskResults = TypeVar("TaskResults")
Hyperparameters = TypeVar("Hyperparameters")


# --- what the optimiser sees and says (the seed's models) ----------------------------


class ChatMessage(BaseModel):
    """One message of a chat chain."""

    role: str
    content: str


class TaskRun(BaseModel, Generic[TaskParameters, TaskResults, Hyperparameters]):
    """One run of the task: the data the hyperparameters are optimised on."""

    task_parameters: TaskParameters = Field(description="The task parameters.")
    hyperparameters: Hyperparameters = Field(
        description="The hyperparameters used for the task. We optimize these."
    )
    all_chat_chains: list[list[ChatMessage]] = Field(
        description="The chat chains of the task's model calls: the messages sent, then "
        "the reply."
    )
    return_value: TaskResults | None = Field(
        description="The results of the task (None when it failed)."
    )
    exception: str | None = Field(
        description="The exception the task raised, if it failed."
    )
    score: float | None = Field(
        default=None,
        description="The score a metric gave the results (higher is better); None "
        "without a metric.",
    )


class TaskReflection(BaseModel):
    """The lessons learnt from one task run, to come up with better hyperparameters."""

    feedback: str = Field(
        description="Look at the return value: does it satisfy the task description and "
        "the task parameters? Does it use all the relevant information in the chat "
        "chains? What could be improved in it?"
    )
    evaluation: str = Field(
        description="The evaluation of the outputs given the task. Is the output "
        "satisfying? What is wrong? What is missing?"
    )
    hyperparameter_suggestion: str = Field(
        description="How we want to change the hyperparameters to improve the results. "
        "What could we try to change?"
    )
    hyperparameter_missing: str = Field(
        description="What hyperparameters are missing to improve the results? What could "
        "be changed that is not exposed via hyperparameters?"
    )


class TaskInfo(BaseModel, Generic[TaskParameters, TaskResults, Hyperparameters]):
    """A task run and the reflection on it."""

    task_parameters: TaskParameters = Field(description="The task parameters.")
    hyperparameters: Hyperparameters = Field(
        description="The hyperparameters used for the task. We optimize these."
    )
    score: float | None = Field(
        default=None, description="The metric's score of the run (higher is better), if any."
    )
    reflection: TaskReflection = Field(description="The reflection on the task run.")


class OptimizationInfo(BaseModel, Generic[TaskParameters, TaskResults, Hyperparameters]):
    """What the optimiser knows: the data it suggests the next hyperparameters from."""

    older_task_summary: str | None = Field(
        default=None,
        description="A summary of previous experiments and the proposed changes, so as not "
        "to try the same changes again and again.",
    )
    task_infos: list[TaskInfo[TaskParameters, TaskResults, Hyperparameters]] = Field(
        description="The most recent task runs and our reflections on them."
    )
    best_hyperparameters: Hyperparameters = Field(
        description="The best hyperparameters found so far."
    )
    best_score: float | None = Field(
        default=None,
        description="The mean score of the best hyperparameters over the task parameters "
        "they were run on, when a metric scores the runs.",
    )


class OptimizationStep(BaseModel, Generic[TaskParameters, TaskResults, Hyperparameters]):
    """The next step: new hyperparameters to try, and task parameters to try them on,
    given the experiments so far."""

    best_hyperparameters: Hyperparameters = Field(
        description="The best hyperparameters found so far, given the task infos and the "
        "history."
    )
    suggestion: str = Field(
        description="The suggestions for the next experiments. What could we try to "
        "change? We will try several tasks next and several sets of hyperparameters. "
        "Let's think step by step."
    )
    task_parameters_suggestions: list[TaskParameters] = Field(
        description="The task parameters to try next (1 to 4).", min_length=1, max_length=4
    )
    hyperparameter_suggestions: list[Hyperparameters] = Field(
        description="The hyperparameters to try next (1 or 2).", min_length=1, max_length=2
    )


class ImprovementProbability(BaseModel):
    """How likely further steps are to find better hyperparameters."""

    considerations: list[str] = Field(
        description="The considerations for potential improvements."
    )
    probability: float = Field(ge=0, le=1, description="The probability of improvement.")


# --- the optimiser's prompts (typed functions, generic over the task's types) ----------


@llm_function
def reflect_on_task_run(
    task_description: str, task_run: TaskRun[TaskParameters, TaskResults, Hyperparameters]
) -> TaskReflection:
    """We are optimising the hyperparameters of this task: {{ task_description }}

    Reflect on the results of the task run given its task parameters and
    hyperparameters. Draw the lessons this run teaches, to come up with better
    hyperparameters to try."""
    raise NotImplementedError


@llm_function
def summarize_optimization_info(
    task_description: str,
    optimization_info: OptimizationInfo[TaskParameters, TaskResults, Hyperparameters],
) -> str:
    """We are optimising the hyperparameters of this task: {{ task_description }}

    Summarize the optimization info. Keep all the knowledge that helps to improve the
    hyperparameters later: everything learnt from these experiments is forgotten
    except what this summary says."""
    raise NotImplementedError


@llm_function
def suggest_next_optimization_step(
    task_description: str,
    optimization_info: OptimizationInfo[TaskParameters, TaskResults, Hyperparameters],
) -> OptimizationStep[TaskParameters, TaskResults, Hyperparameters]:
    """We are optimising the hyperparameters of this task: {{ task_description }}

    Suggest the next optimization step."""
    raise NotImplementedError


@llm_function
def probability_for_improvement(
    task_description: str,
    optimization_info: OptimizationInfo[TaskParameters, TaskResults, Hyperparameters],
) -> ImprovementProbability:
    """We are optimising the hyperparameters of this task: {{ task_description }}

    Return the probability of improvement (between 0 and 1): your confidence that the
    next optimization steps will improve the hyperparameters, given the information
    provided. If the information available is unlikely to lead to better
    hyperparameters, return 0; if it is very likely to, return 1. Be concise."""
    raise NotImplementedError


_FUNCTIONS = typing.cast(
    "tuple[LLMFunction, ...]",
    (
        reflect_on_task_run,
        summarize_optimization_info,
        suggest_next_optimization_step,
        probability_for_improvement,
    ),
)


# --- the result ----------------------------------------------------------------------


@dataclass
class MetaOptimization:
    """What :func:`meta_optimize` found: the best hyperparameters, every round, and the
    experiment that logged them."""

    best_hyperparameters: Any
    best_score: float | None
    stopped: str  # "probability", "rounds", or "failed: …"
    experiment: Experiment
    steps: list[Any] = field(default_factory=list)  # each round's OptimizationStep
    summary: str | None = None  # the latest summary of the older task infos
    _rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def outcome(self) -> dict[str, Any]:
        """What the optimisation's experiment records when it ends."""
        return {
            "best_score": self.best_score,
            "best_hyperparameters": _data(self.best_hyperparameters),
            "rounds": len(self.steps),
            "stopped": self.stopped,
        }

    @property
    def rounds(self) -> pd.DataFrame:
        """One row per round and hyperparameter set tried: ``round``, ``hyperparameters``,
        ``task_parameters``, ``scores`` (one per task run, None where none), ``score``
        (their mean), ``reflections``, ``suggestion`` (the step's reasoning),
        ``probability`` (asked after the round), ``best`` (whether it was the best when
        the round ended) and ``best_score`` (the best's mean score then)."""
        import pandas as pd

        columns = [
            "round", "hyperparameters", "task_parameters", "scores", "score",
            "reflections", "suggestion", "probability", "best", "best_score",
        ]  # fmt: skip
        return pd.DataFrame(self._rows, columns=columns)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Draw each hyperparameter set's mean score by round, and the best so far as a
        line (the ``plot`` extra: matplotlib); return the axes."""
        if self.best_score is None:
            raise OptimizerError(
                "There are no scores to plot: this meta-optimisation had no metric (or "
                "no task run was scored). Pass metric=... to meta_optimize."
            )
        try:
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("plot() needs matplotlib: pip install 'promptlog[plot]'.") from None
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        scored = [row for row in self._rows if not math.isnan(row["score"])]
        ax.scatter(
            [row["round"] for row in scored], [row["score"] for row in scored],
            s=18, alpha=0.7, label="hyperparameters tried", zorder=3,
        )
        # The best at the end of each round: the best mean score over all its runs.
        by_round = {row["round"]: row["best_score"] for row in self._rows}
        rounds = [r for r, v in by_round.items() if v is not None]
        best = [by_round[r] for r in rounds]
        ax.step(rounds, best, where="post", label="best so far")
        ax.set_xlabel("round")
        ax.set_ylabel(SCORE)
        ax.set_xticks(sorted({row["round"] for row in self._rows}))
        ax.legend(loc="lower right")
        return ax


# --- the loop --------------------------------------------------------------------------


def meta_optimize(
    task: Callable[[Any, Any], Any],
    hyperparameters: BaseModel,
    task_parameters: Sequence[Any],
    metric: Callable[[Any, Any], float] | None = None,
    *,
    model_name: str | None = None,
    bot: SimpleBot | None = None,
    knobs: Mapping[str, Any] | None = None,
    rounds: int = 5,
    max_task_infos: int = 20,
    stop_probability: float = 0.5,
    name: str | None = None,
    description: str | None = None,
    resume: bool = False,
    max_workers: int | None = None,
    **bot_options: Any,
) -> MetaOptimization:
    """Optimise ``task``'s hyperparameters by reflection, as llm-strategy does.

    ``task(task_parameters, hyperparameters)`` does the work (its model calls are
    logged on its run); ``hyperparameters`` (a pydantic model instance) is the start,
    and its class the type every suggestion must have; ``task_parameters`` are the
    examples round 0 runs on (the optimiser may propose others of the same type).
    ``metric(task_parameters, result) -> float`` (higher is better), when given,
    decides which hyperparameters are best, by their mean score over the task
    parameters they ran on; without one, the model's judgement does.

    ``knobs`` maps a field of the hyperparameters to what it sets while the task
    runs, through ``promptlog.overrides``: a prompt or typed function (its
    ``template``), a ``(prompt_or_function, knob)`` pair, or the name of a declared
    hyperparameter. An improved docstring is thus a new version of that prompt.

    ``model_name`` (or ``bot``, and any other bot option such as ``api_base``) is
    the optimiser's model. ``rounds`` bounds the rounds of suggestions after round
    0; the loop also stops when the probability of improvement falls below
    ``stop_probability``. ``description`` tells the optimiser what the task is for
    (default: the task's docstring). ``name`` names the experiment (default
    ``meta-optimize:<task>``); ``resume=True`` continues its latest one.
    """
    from ..experiments import Experiment

    plan = _Plan.make(
        task, hyperparameters, task_parameters, metric, knobs, rounds, max_task_infos,
        stop_probability, description,
    )  # fmt: skip
    if model_name is None and bot is None and settings.model_name() is None:
        raise OptimizerError(
            "meta_optimize has no model to reflect and suggest with: pass model_name=... "
            "(or bot=...), or set a default with promptlog.configure(model_name=...) or "
            f"the {settings.MODEL_ENV_VAR} environment variable."
        )
    functions = _bound_functions(model_name, bot, bot_options)
    experiment_name = name or f"meta-optimize:{getattr(task, '__qualname__', 'task')}"
    metadata = {
        "optimiser": OPTIMISER,
        "task": getattr(task, "__qualname__", repr(task)),
        "hyperparameters_type": plan.hyper_type.__name__,
        "metric": getattr(metric, "__qualname__", repr(metric)) if metric else None,
        "model": model_name or (bot.model_name if bot is not None else settings.model_name()),
        "rounds": rounds,
        "max_task_infos": max_task_infos,
        "stop_probability": stop_probability,
        "knobs": sorted(plan.knob_targets),
    }
    exp = Experiment(
        experiment_name, kind="optimisation", metadata=metadata, max_workers=max_workers,
        resume=resume, quiet=True,
    )
    with exp.session():
        loop = _Loop(plan, functions, exp)
        result = loop.run()
        exp.outcome = result.outcome
    return result


@dataclass
class _Plan:
    """The checked arguments of a meta-optimisation and the types they imply."""

    task: Callable[[Any, Any], Any]
    start: BaseModel
    task_parameters: list[Any]
    metric: Callable[[Any, Any], float] | None
    knob_targets: dict[str, tuple[Any, str | None]]  # field -> (target, knob or None)
    rounds: int
    max_task_infos: int
    stop_probability: float
    description: str
    hyper_type: type[BaseModel]
    params_type: Any
    results_type: Any

    @classmethod
    def make(
        cls,
        task: Any,
        hyperparameters: Any,
        task_parameters: Any,
        metric: Any,
        knobs: Any,
        rounds: Any,
        max_task_infos: Any,
        stop_probability: Any,
        description: Any,
    ) -> _Plan:
        if not callable(task):
            raise OptimizerError(
                f"meta_optimize takes the task as a function task(task_parameters, "
                f"hyperparameters), not {shown(task)}."
            )
        if inspect.iscoroutinefunction(task):
            raise OptimizerError(
                f"meta_optimize runs the task on its workers' threads and takes a plain "
                f"function; {getattr(task, '__qualname__', task)} is async. Wrap it: "
                f"lambda p, h: asyncio.run(task(p, h))."
            )
        if not isinstance(hyperparameters, BaseModel):
            raise OptimizerError(
                f"meta_optimize's hyperparameters must be a pydantic model instance (its "
                f"class is the type every suggestion must have), not {shown(hyperparameters)}."
                f" Declare class Hyper(BaseModel): ... and pass Hyper(...)."
            )
        if isinstance(task_parameters, (str, bytes, Mapping)) or not isinstance(
            task_parameters, Sequence
        ) or not task_parameters:
            raise OptimizerError(
                f"meta_optimize's task_parameters must be a non-empty list of the task's "
                f"inputs (round 0 runs the task on each), not {shown(task_parameters)}."
            )
        if metric is not None and not callable(metric):
            raise OptimizerError(
                f"metric must be a function metric(task_parameters, result) -> float, not "
                f"{shown(metric)}."
            )
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise OptimizerError(f"rounds must be a whole number of at least 0, not {rounds!r}.")
        if isinstance(max_task_infos, bool) or not isinstance(max_task_infos, int) or (
            max_task_infos < 2
        ):
            raise OptimizerError(
                f"max_task_infos must be a whole number of at least 2 (past it the older "
                f"task infos are summarised), not {max_task_infos!r}."
            )
        if isinstance(stop_probability, bool) or not isinstance(stop_probability, (int, float)) or (
            not 0 <= stop_probability <= 1
        ):
            raise OptimizerError(
                f"stop_probability must be a number between 0 and 1, not {stop_probability!r}."
            )
        first = task_parameters[0]
        params_type: Any = type(first)
        if isinstance(first, Mapping):
            params_type = dict[str, Any]
        elif any(type(p) is not type(first) for p in task_parameters):
            raise OptimizerError(
                f"Every task parameter must be of one type (the optimiser proposes more of "
                f"it); got {', '.join(sorted({type(p).__name__ for p in task_parameters}))}."
            )
        try:
            results_type = typing.get_type_hints(task).get("return", Any)
        except Exception:  # unresolvable annotations: the results go untyped
            results_type = Any
        plan = cls(
            task=task,
            start=hyperparameters,
            task_parameters=list(task_parameters),
            metric=metric,
            knob_targets=_knob_targets(knobs, type(hyperparameters)),
            rounds=rounds,
            max_task_infos=max_task_infos,
            stop_probability=float(stop_probability),
            description=str(
                description or inspect.getdoc(task) or getattr(task, "__qualname__", "the task")
            ),
            hyper_type=type(hyperparameters),
            params_type=params_type,
            results_type=results_type,
        )
        plan.overrides(hyperparameters)  # a bad knob is an error before anything runs
        return plan

    def overrides(self, hyperparameters: BaseModel) -> dict[str, dict[str, Any]]:
        """The knob overrides these hyperparameters set, checked and resolved."""
        mapping: dict[Any, Any] = {}
        for field_name, (target, knob) in self.knob_targets.items():
            value = getattr(hyperparameters, field_name)
            if knob is None:
                mapping[target] = value
            else:
                mapping.setdefault(target, {})[knob] = value
        return _knobs.resolve(mapping) if mapping else {}

    def types(self) -> tuple[Any, Any, Any]:
        return self.params_type, self.results_type, self.hyper_type


def _knob_targets(
    knobs: Mapping[str, Any] | None, hyper_type: type[BaseModel]
) -> dict[str, tuple[Any, str | None]]:
    """Each knob field's target and knob: ``None`` for a declared hyperparameter (its
    value bare), else the knob of a prompt or function (``template`` by default)."""
    if knobs is None:
        return {}
    if not isinstance(knobs, Mapping):
        raise OptimizerError(
            f"knobs maps fields of the hyperparameters to prompts, functions or declared "
            f"hyperparameters: {{'instructions': write_essay}}, not {shown(knobs)}."
        )
    found: dict[str, tuple[Any, str | None]] = {}
    for field_name, target in knobs.items():
        if field_name not in hyper_type.model_fields:
            raise OptimizerError(
                f"knobs names {field_name!r}, which is not a field of {hyper_type.__name__} "
                f"(its fields: {', '.join(hyper_type.model_fields) or 'none'})."
            )
        knob: str | None = "template"
        if isinstance(target, tuple):
            if len(target) != 2 or not isinstance(target[1], str):
                raise OptimizerError(
                    f"knobs[{field_name!r}] must be a prompt or function, a (prompt_or_"
                    f"function, knob) pair or a declared hyperparameter's name, not "
                    f"{shown(target)}."
                )
            target, knob = target
        elif isinstance(target, str) and _knobs._is_hyperparameter(target):
            knob = None
        found[field_name] = (target, knob)
    return found


def _bound_functions(
    model_name: str | None, bot: SimpleBot | None, options: dict[str, Any]
) -> dict[str, LLMFunction]:
    """The optimiser's typed functions calling the model asked for (the same names,
    versions and knobs as the module's own)."""
    if model_name is None and bot is None and not options:
        return {f.fn.__name__: f for f in _FUNCTIONS}
    chosen = dict(options)
    if model_name is not None:
        chosen["model_name"] = model_name
    if bot is not None:
        chosen["bot"] = bot
    return {f.fn.__name__: f.calling(**chosen) for f in _FUNCTIONS}


@dataclass
class _TaskRecord:
    """One task run as the loop knows it."""

    round: int
    task_parameters: Any
    hyperparameters: BaseModel
    return_value: Any
    exception: str | None
    score: float | None
    run_id: str | None
    reflection: TaskReflection | None = None

    @property
    def key(self) -> str:
        return _key(self.hyperparameters)


class _StepFailed(Exception):
    def __init__(self, role: str, round: int, error: BaseException | None):
        super().__init__(f"{role} in round {round}: {type(error).__name__}: {error}")


class _Loop:
    """One meta-optimisation's rounds, over its experiment's session."""

    def __init__(self, plan: _Plan, functions: dict[str, LLMFunction], exp: Experiment):
        self.plan = plan
        self.functions = functions
        self.exp = exp
        self.params, self.results, self.hyper = plan.types()
        # Parametrised here, once: pydantic builds a generic's classes unsafely from
        # several threads at a time, and reflections run concurrently.
        p, r, h = self.params, self.results, self.hyper
        self.task_run_type: Any = TaskRun[p, r, h]  # type: ignore[valid-type]
        self.task_info_type: Any = TaskInfo[p, r, h]  # type: ignore[valid-type]
        self.info_type: Any = OptimizationInfo[p, r, h]  # type: ignore[valid-type]
        self.step_type: Any = OptimizationStep[p, r, h]  # type: ignore[valid-type]
        # What an earlier session logged, for resume: (role, round, index) -> result.
        self.logged: dict[tuple[str, int, int], dict[str, Any]] = {}
        for run in exp.runs:
            result = run.result
            if not isinstance(result, dict) or "role" not in result:
                continue
            # A task that failed is a finished data point too (its exception is kept);
            # any other step that failed is asked again.
            if run.status == "succeeded" or "exception" in result:
                self.logged[(result["role"], result["round"], result.get("index", 0))] = result
        self.records: list[_TaskRecord] = []
        self.infos: list[Any] = []  # the TaskInfos not summarised yet
        self.summary: str | None = None
        self.steps: list[Any] = []
        self.llm_best: BaseModel = plan.start
        self.rows: list[dict[str, Any]] = []

    # the rounds -----------------------------------------------------------------

    def run(self) -> MetaOptimization:
        stopped = "rounds"
        try:
            self._round(0, [(p, self.plan.start) for p in self.plan.task_parameters], None)
            for number in range(1, self.plan.rounds + 1):
                step = self._one("suggestion", number, self._suggest)
                self.steps.append(step)
                self.llm_best = step.best_hyperparameters
                pairs = list(itertools.product(
                    step.task_parameters_suggestions, step.hyperparameter_suggestions
                ))
                probability = self._round(number, pairs, step)
                if probability is not None and probability < self.plan.stop_probability:
                    stopped = "probability"
                    break
        except _StepFailed as e:
            stopped = f"failed: {e}"
        best, best_score = self._best()
        return MetaOptimization(
            best_hyperparameters=best,
            best_score=best_score,
            stopped=stopped,
            experiment=self.exp,
            steps=self.steps,
            summary=self.summary,
            _rows=self.rows,
        )

    def _round(self, number: int, pairs: list[tuple[Any, Any]], step: Any) -> float | None:
        """Run and reflect on every pair, summarise if need be, and (but after the last
        round) ask the probability of improvement; return it."""
        done = self._many("task", number, pairs, self._run_task)
        # The chat chains read here, at once, rather than by each reflection: a read
        # waits for the log to take in everything written before it.
        chains = _chat_chains([r.run_id for r in done if r.run_id is not None])
        reflections = self._many(
            "reflection", number, [(r, chains.get(r.run_id, [])) for r in done],
            self._reflect, required=False,
        )
        new = []
        for record, reflection in zip(done, reflections, strict=True):
            record.reflection = reflection
            self.records.append(record)
            if reflection is not None:
                new.append(record)
        self.infos.extend(
            self.task_info_type(
                task_parameters=r.task_parameters,
                hyperparameters=r.hyperparameters,
                score=r.score,
                reflection=r.reflection,
            )
            for r in new
        )
        if len(self.infos) > self.plan.max_task_infos:
            keep = max(1, self.plan.max_task_infos // 2)
            older = self._info(self.infos[:-keep])
            self.summary = self._one("summary", number, self._summarise, older)
            self.infos = self.infos[-keep:]
        probability = None
        if 0 < number < self.plan.rounds:
            probability = self._one("probability", number, self._probability).probability
        self._add_rows(number, done, step, probability)
        return probability

    def _add_rows(
        self, number: int, done: list[_TaskRecord], step: Any, probability: float | None
    ) -> None:
        best, best_score = self._best()
        by_set: dict[str, list[_TaskRecord]] = {}
        for record in done:
            by_set.setdefault(record.key, []).append(record)
        for records in by_set.values():
            scores = [r.score for r in records]
            known = [s for s in scores if s is not None]
            self.rows.append({
                "round": number,
                "hyperparameters": _data(records[0].hyperparameters),
                "task_parameters": [_data(r.task_parameters) for r in records],
                "scores": scores,
                "score": sum(known) / len(known) if known else math.nan,
                "reflections": [_data(r.reflection) for r in records],
                "suggestion": step.suggestion if step is not None else None,
                "probability": probability,
                "best": records[0].key == _key(best),
                "best_score": best_score,
            })

    # the best so far --------------------------------------------------------------

    def _best(self) -> tuple[BaseModel, float | None]:
        """With a metric: the hyperparameters of the best mean score over their task
        runs, a failed run counting as the worst score seen (the earliest wins a
        tie). Without one: the model's latest word."""
        if self.plan.metric is None:
            return self.llm_best, None
        scored = [r.score for r in self.records if r.score is not None]
        if not scored:
            return self.llm_best, None
        worst = min(scored)
        by_set: dict[str, list[float]] = {}
        first: dict[str, BaseModel] = {}
        for record in self.records:
            by_set.setdefault(record.key, []).append(
                worst if record.score is None else record.score
            )
            first.setdefault(record.key, record.hyperparameters)
        key = max(by_set, key=lambda k: sum(by_set[k]) / len(by_set[k]))
        values = by_set[key]
        return first[key], sum(values) / len(values)

    def _info(self, infos: list[Any]) -> Any:
        best, best_score = self._best()
        return self.info_type(
            older_task_summary=self.summary,
            task_infos=infos,
            best_hyperparameters=best,
            best_score=best_score,
        )

    # the steps, each a run (or the logged result of one) -------------------------

    def _one(self, role: str, number: int, fn: Callable[..., Any], *args: Any) -> Any:
        (value,) = self._many(role, number, [args], lambda a: fn(*a))
        return value

    def _many(
        self,
        role: str,
        number: int,
        items: Sequence[Any],
        fn: Callable[[Any], Any],
        *,
        required: bool = True,
    ) -> list[Any]:
        """``fn`` on each item, each in a run of the experiment whose result is
        ``{"role", "round", "index", **fn(item)}``; a step logged by an earlier
        session is taken from the log instead. Returns the values ``fn`` made, read
        back with :meth:`_revive` (None for a step that failed, unless ``required``:
        then its failure ends the loop)."""
        values: list[Any] = [None] * len(items)
        todo = []
        for index, item in enumerate(items):
            logged = self.logged.get((role, number, index))
            if logged is not None:
                try:
                    values[index] = self._revive(role, logged, item)
                except pydantic.ValidationError as e:
                    raise OptimizerError(
                        f"The {role} of round {number} logged by optimisation "
                        f"{self.exp.name!r} does not fit this task's types "
                        f"({self.hyper.__name__} hyperparameters): "
                        f"{e.errors(include_url=False)[0]['msg']}. Resume it with the "
                        f"hyperparameters and task it was started with, or give this "
                        f"search another name."
                    ) from None
            else:
                todo.append((index, item))

        def step(entry: tuple[int, Any]) -> dict[str, Any]:
            index, item = entry
            run = current_run()
            head = {"role": role, "round": number, "index": index}
            if run is not None:
                run.set_result(head)  # a failed step still says what it was
            return {**head, **fn(item)}

        if todo:
            runs: list[Run] = self.exp.map(step, todo)
            for (index, item), run in zip(todo, runs, strict=True):
                if run.status == "succeeded":
                    values[index] = self._revive(role, run.result, item)
                elif role == "task":
                    values[index] = (
                        self._revive(role, run.result, item)
                        if isinstance(run.result, dict) and "exception" in run.result
                        else self._failed_task(number, item, run)
                    )
                elif required:
                    raise _StepFailed(role, number, run.error)
        return values

    def _revive(self, role: str, result: dict[str, Any], item: Any) -> Any:
        """A step's value from its run's result (JSON, as logged)."""
        if role == "task":
            return _TaskRecord(
                round=result["round"],
                task_parameters=_validate(self.params, result["task_parameters"]),
                hyperparameters=self.hyper.model_validate(result["hyperparameters"]),
                return_value=_validate(self.results, result.get("return_value")),
                exception=result.get("exception"),
                score=result.get("score"),
                run_id=result.get("run_id"),
            )
        if role == "reflection":
            return TaskReflection.model_validate(result["reflection"])
        if role == "summary":
            return result["summary"]
        if role == "suggestion":
            return self.step_type.model_validate(result["step"])
        return ImprovementProbability.model_validate(result["probability"])

    def _failed_task(self, number: int, item: tuple[Any, Any], run: Run) -> _TaskRecord:
        text = _exception(run.error) if run.error is not None else "failed"
        task_parameters, hyperparameters = item
        return _TaskRecord(number, task_parameters, hyperparameters, None, text, None, run.id)

    # what each step does, inside its run ------------------------------------------

    def _run_task(self, pair: tuple[Any, BaseModel]) -> dict[str, Any]:
        task_parameters, hyperparameters = pair
        run = current_run()
        if run is not None:
            for name, value in hyperparameters.model_dump(mode="json").items():
                run.note_hyperparameter(name, value)
        found: dict[str, Any] = {
            "task_parameters": _data(task_parameters),
            "hyperparameters": _data(hyperparameters),
            "run_id": run.id if run is not None else None,
        }
        token = None
        try:
            overrides = self.plan.overrides(hyperparameters)  # a suggested knob may not fit
            token = _knobs.push(overrides) if overrides else None
            value = self.plan.task(task_parameters, hyperparameters)
        except Exception as error:
            if run is not None:  # the run fails, and its result says how, for a resume
                run.set_result({**_head_of(run), **found, "exception": _exception(error)})
            raise
        finally:
            if token is not None:
                _knobs.pop(token)
        found["return_value"] = _knobs.jsonable(value, strict=False)
        if self.plan.metric is not None:
            try:
                score = self.plan.metric(task_parameters, value)
                found["score"] = metrics.validate(SCORE, score)[0]
            except Exception as error:
                if run is not None:
                    run.set_result({**_head_of(run), **found, "exception": _exception(error)})
                raise
            metrics.record(SCORE, found["score"])
        return found

    def _reflect(self, item: tuple[_TaskRecord, list[list[ChatMessage]]]) -> dict[str, Any]:
        record, chains = item
        task_run = self.task_run_type(
            task_parameters=record.task_parameters,
            hyperparameters=record.hyperparameters,
            all_chat_chains=chains,
            return_value=record.return_value,
            exception=record.exception,
            score=record.score,
        )
        reflection = self.functions["reflect_on_task_run"](self.plan.description, task_run)
        return {"task_run_id": record.run_id, "reflection": _data(reflection)}

    def _summarise(self, older: Any) -> dict[str, Any]:
        text = self.functions["summarize_optimization_info"](self.plan.description, older)
        return {"summary": text}

    def _suggest(self) -> dict[str, Any]:
        fn = self.functions["suggest_next_optimization_step"]
        return {"step": _data(fn(self.plan.description, self._info(self.infos)))}

    def _probability(self) -> dict[str, Any]:
        fn = self.functions["probability_for_improvement"]
        return {"probability": _data(fn(self.plan.description, self._info(self.infos)))}


# --- small helpers -----------------------------------------------------------------------


def _head_of(run: Any) -> dict[str, Any]:
    """What a step's run says of itself before its work is done: role, round, index."""
    result = run.result if isinstance(run.result, dict) else {}
    return {key: result[key] for key in ("role", "round", "index") if key in result}


def _exception(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(error)).strip()


def _data(value: Any) -> Any:
    return _knobs.jsonable(value, strict=False)


def _key(hyperparameters: BaseModel) -> str:
    """One hyperparameter set's identity: its JSON, keys sorted."""
    return json.dumps(hyperparameters.model_dump(mode="json"), sort_keys=True)


def _validate(tp: Any, value: Any) -> Any:
    """``value`` (JSON from the log) as a ``tp`` again, or as it is if it is not one."""
    if tp is Any or value is None:
        return value
    try:
        return pydantic.TypeAdapter(tp).validate_python(value)
    except pydantic.ValidationError:
        return value


def _chat_chains(run_ids: list[str]) -> dict[str, list[list[ChatMessage]]]:
    """Each run's logged calls, each as its messages followed by the reply."""
    if not run_ids:
        return {}
    from ..read import open as open_log

    chains: dict[str, list[list[ChatMessage]]] = {run_id: [] for run_id in run_ids}
    log = open_log()
    for run_id in dict.fromkeys(run_ids):
        for call in log.call_records(run=run_id).dicts():
            chain = [
                ChatMessage(role=str(m.get("role", "")), content=_cut(m.get("content")))
                for m in call.get("messages") or []
                if isinstance(m, dict)
            ]
            reply = call.get("response_text") or call.get("error")
            if reply:
                chain.append(ChatMessage(role="assistant", content=_cut(reply)))
            chains[run_id].append(chain)
    return chains


def _cut(content: Any) -> str:
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if len(text) <= _MAX_MESSAGE_CHARS:
        return text
    return text[: _MAX_MESSAGE_CHARS - 1] + "…"
