"""The core of ``promptlog.optimizers``: compile a program of typed functions against a
metric and examples, every candidate an experiment in the log.

    result = optimizers.LabeledFewShot(metric=exact, k=4).compile(program, trainset=train,
                                                                  valset=dev)

One optimisation is a parent experiment of kind ``"optimisation"``. A candidate is a
set of knob overrides (each typed function's ``template`` and ``demos``); it is scored
by a child experiment over the valset (``metadata={"candidate": i, "overrides": …}``),
so its prompt versions, runs and scores pair by example with every other candidate's.
The optimiser's own work (the program run on training examples to collect traces, its
own model calls) happens in runs of the parent. An :class:`Optimizer` subclass only
proposes: its :meth:`Optimizer.search` calls :meth:`Compilation.evaluate` for each
candidate; the core runs, caches, budgets, resumes and reports.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import random
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import datasets, knobs, metrics, stats, store
from ..context import current_run
from ..errors import ExperimentFailedError, OptimizerError
from ..experiments import Experiment
from ..functions import LLMFunction, find
from .traces import Trace, TraceBook, from_log

if TYPE_CHECKING:
    import pandas as pd

    from ..comparisons import Comparison
    from ..read import Log

KIND = "optimisation"
# The level a paired comparison must reach for the best candidate's gain to count.
SIGNIFICANCE = 0.05


class BudgetExhausted(Exception):
    """Raised inside a search when a budget would be exceeded; the search stops there
    and the best candidate so far wins. ``reason`` names the budget."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Candidate:
    """One candidate, scored on the valset.

    ``overrides`` are its knob overrides keyed by full name (``{}`` for the
    baseline), ``key`` their hash; ``scores`` maps (example id, repeat) to the
    metric's value (0 where the program failed); ``experiment_id`` is its child
    experiment; ``prompt_versions`` the version number of each typed function its
    runs used; ``cost`` and ``calls`` what its evaluation spent.
    """

    index: int
    label: str
    overrides: dict[str, Any]
    key: str
    experiment_id: str | None = None
    scores: dict[tuple[str, int], float] = field(default_factory=dict)
    feedback: dict[tuple[str, int], str] = field(default_factory=dict)
    failed: int = 0
    prompt_versions: dict[str, int] = field(default_factory=dict)
    cost: float = 0.0
    calls: int = 0

    @property
    def score(self) -> float:
        """The mean score over the valset's examples and repeats."""
        return self.summary()["mean"]

    def summary(self) -> dict[str, float]:
        """n, mean, std, stderr and the 95% interval of the mean score."""
        return stats.mean_interval([self.scores[k] for k in sorted(self.scores)])

    def demos(self) -> dict[str, int]:
        """How many demos each typed function gets."""
        return {
            name: len(knobs_.get("demos") or ())
            for name, knobs_ in self.overrides.items()
            if isinstance(knobs_, Mapping) and "demos" in knobs_
        }


@dataclass
class ProgramRun:
    """The program run once on one example inside a run of the optimisation: its
    prediction, score (None if it failed), the metric's feedback if it gave some,
    the traces of its typed functions and the error, if any."""

    example: Any
    example_id: str
    prediction: Any
    score: float | None
    feedback: str | None
    traces: list[Trace]
    error: str | None = None
    run_id: str | None = None


def _key(overrides: Mapping[str, Any]) -> str:
    text = json.dumps(overrides, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _metric_name(metric: Callable[..., Any]) -> str:
    name = getattr(metric, "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>":
        raise OptimizerError(
            "The metric needs a name to be logged under: pass a def'd function or a "
            "@promptlog.metric, not a lambda."
        )
    return name


def _takes_example(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def split_score(value: Any) -> tuple[Any, str | None]:
    """A metric's value as (score, feedback): a ``(score, feedback)`` pair, an object
    with ``score`` and ``feedback`` attributes, or a bare score."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        return value[0], value[1]
    if hasattr(value, "score") and not isinstance(value, (int, float)):
        return value.score, getattr(value, "feedback", None)
    return value, None


class Optimizer:
    """Base class of the optimisers: a subclass proposes candidates in :meth:`search`.

    ``metric(example, prediction)`` returns a float or bool (or ``(score,
    feedback)``); ``max_metric_calls``, ``max_calls`` (model calls a provider
    answered) and ``max_cost`` stop the search cleanly with the best candidate so
    far; ``seed`` seeds :attr:`Compilation.rng`.
    """

    def __init__(
        self,
        metric: Callable[..., Any],
        *,
        max_metric_calls: int | None = None,
        max_calls: int | None = None,
        max_cost: float | None = None,
        seed: int = 0,
    ):
        if not callable(metric):
            raise OptimizerError(
                f"metric must be a function metric(example, prediction) -> float | bool, "
                f"not {metric!r}."
            )
        self.metric = metric
        self.metric_name = _metric_name(metric)
        for label, value in (("max_metric_calls", max_metric_calls), ("max_calls", max_calls)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise OptimizerError(
                    f"{label} must be a whole number of at least 1, not {value!r}."
                )
        if max_cost is not None and (
            isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or max_cost <= 0
        ):
            raise OptimizerError(
                f"max_cost must be a positive number of dollars, not {max_cost!r}."
            )
        self.max_metric_calls = max_metric_calls
        self.max_calls = max_calls
        self.max_cost = max_cost
        self.seed = seed

    # what a subclass writes -----------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The optimiser's own settings, stored in the optimisation's metadata."""
        return {}

    def planned_runs(self, compilation: Compilation) -> int:
        """How many times the search plans to run the program (the baseline's valset
        evaluation included), printed before it starts."""
        return compilation.evaluation_size

    def search(self, compilation: Compilation) -> None:
        """Propose candidates, each scored with ``compilation.evaluate(overrides)``.
        The baseline (no overrides) is scored before this is called."""
        raise NotImplementedError

    # what a user calls ----------------------------------------------------------------

    def compile(
        self,
        program: Callable[..., Any],
        trainset: Any,
        valset: Any = None,
        *,
        name: str | None = None,
        repeats: int = 1,
        max_workers: int | None = None,
        resume: bool = False,
        cache: bool = True,
        executor: Any = None,
        quiet: bool = False,
    ) -> CompileResult:
        """Tune ``program`` (a callable taking an example's inputs, calling typed
        functions) on ``trainset``, scoring candidates on ``valset`` (default: the
        trainset) ``repeats`` times per example, ``max_workers`` runs at once
        (default 8 on threads; with ``executor``, as many as its workers take).

        ``executor`` (a ``ProcessPoolExecutor``, ``promptlog.executors.dask(client)``
        …) runs the candidates' valset evaluations in other processes: the program
        and the metric are shipped there, never the compilation. The optimiser's own
        runs (:meth:`Compilation.run_program`, :meth:`Compilation.map`) stay on this
        process's threads, where their traces are collected.

        ``name`` names the optimisation (default ``"<program> <Optimiser>"``);
        ``resume=True`` continues the latest optimisation of that name from the
        scores it logged; ``cache`` answers repeated model requests from the response
        cache. Returns a :class:`CompileResult`.
        """
        compilation = Compilation(
            self, program, trainset, valset, name=name, repeats=repeats,
            max_workers=max_workers, resume=resume, cache=cache, executor=executor,
            quiet=quiet,
        )  # fmt: skip
        return compilation.run()


class Compilation:
    """One optimisation under way: what a search reads and calls.

    Read: ``program``, ``trainset``, ``valset`` (lists of examples), ``repeats``,
    ``functions`` (full name -> typed function, found by running the program),
    ``baseline``, ``candidates``, ``best``, ``rng``, ``optimizer``. Call:
    :meth:`evaluate` (a candidate on the valset), :meth:`run_program` (the program
    on examples, with traces), :meth:`map` and :meth:`call` (the optimiser's own
    model calls), :meth:`labeled_demos`, :meth:`demos_from_log`, :meth:`passes`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        program: Callable[..., Any],
        trainset: Any,
        valset: Any,
        *,
        name: str | None,
        repeats: int,
        max_workers: int | None,
        resume: bool,
        cache: bool,
        executor: Any,
        quiet: bool,
    ):
        if not callable(program):
            raise OptimizerError(f"program must be a callable taking an example, not {program!r}.")
        self.optimizer = optimizer
        self.program = program
        self.trainset = _examples(trainset, "trainset")
        self.valset = self.trainset if valset is None else _examples(valset, "valset")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise OptimizerError(f"repeats must be a whole number of at least 1, not {repeats!r}.")
        self.repeats = repeats
        title = name or f"{getattr(program, '__name__', 'program')} {type(optimizer).__name__}"
        self.name = title
        self.max_workers = max_workers
        self.resume = resume
        self.cache = cache
        self.executor = executor
        self.quiet = quiet
        self.rng = random.Random(optimizer.seed)
        self.functions: dict[str, LLMFunction] = {}
        self.candidates: list[Candidate] = []
        self.metric_calls = 0
        self.parent: Experiment | None = None
        self._book = TraceBook()
        self._by_key: dict[str, Candidate] = {}
        # What earlier sessions of a resumed optimisation logged.
        self._scores: dict[str, dict[tuple[str, int], tuple[float, str | None]]] = {}
        self._children: dict[str, str] = {}  # key -> a child experiment complete on the valset
        self._program_runs: dict[tuple[str, str, str], ProgramRun] = {}
        self._values: dict[str, Any] = {}  # call(): key -> value
        self._warned_threshold = False
        self._checking = True  # whether charge() checks the budgets
        self._log: Log | None = None

    # reading ---------------------------------------------------------------------------

    @property
    def evaluation_size(self) -> int:
        """Program runs in one evaluation of a candidate: valset examples × repeats."""
        return len(self.valset) * self.repeats

    @property
    def baseline(self) -> Candidate:
        return self.candidates[0]

    @property
    def best(self) -> Candidate:
        """The candidate with the highest mean score (the earliest among equals)."""
        return max(self.candidates, key=lambda c: (_finite(c.score), -c.index))

    @property
    def log(self) -> Log:
        from ..read import Log

        if self._log is None:
            self._log = Log(store.db_path())
        return self._log

    def usage(self) -> dict[str, Any]:
        """What the optimisation spent so far: ``metric_calls``, ``calls`` (a provider
        answered) and ``cost``, over its own runs and its candidates'."""
        store.flush()
        ids = [self._require_parent().id or ""] + [
            c.experiment_id for c in self.candidates if c.experiment_id
        ]
        if self.parent is not None and self.parent.id is not None:
            ids += self.log.children(self.parent.id)
        totals = self.log.call_totals(dict.fromkeys(ids))
        return {"metric_calls": self.metric_calls, **totals}

    # budgets ---------------------------------------------------------------------------

    def charge(self, metric_calls: int) -> None:
        """Count ``metric_calls`` about to be made against the budgets (what earlier
        sessions of a resumed optimisation scored counts too); raise
        :class:`BudgetExhausted` when one would be exceeded."""
        opt = self.optimizer
        if not self._checking:
            self.metric_calls += metric_calls
            return
        if opt.max_metric_calls is not None and self.metric_calls + metric_calls > (
            opt.max_metric_calls
        ):
            raise BudgetExhausted("max_metric_calls")
        if opt.max_calls is not None or opt.max_cost is not None:
            used = self.usage()
            if opt.max_calls is not None and used["calls"] >= opt.max_calls:
                raise BudgetExhausted("max_calls")
            if opt.max_cost is not None and used["cost"] >= opt.max_cost:
                raise BudgetExhausted("max_cost")
        self.metric_calls += metric_calls

    # scoring ---------------------------------------------------------------------------

    def passes(self, score: float | None, threshold: float | None) -> bool:
        """Whether a score passes: at least ``threshold``, or without one any true
        (non-zero) value; warns once when a non-boolean metric has no threshold."""
        if score is None:
            return False
        if threshold is not None:
            return score >= threshold
        if score not in (0.0, 1.0) and not self._warned_threshold:
            self._warned_threshold = True
            warnings.warn(
                f"Metric {self.optimizer.metric_name!r} is not boolean (it gave {score}) and "
                f"no threshold is set, so every non-zero score passes; set threshold=… to "
                f"keep only good traces.",
                stacklevel=3,
            )
        return bool(score)

    def _score(self, example: Any, prediction: Any) -> tuple[float, str | None]:
        """Call the metric and record its score on the current run."""
        return _score(self.optimizer.metric, self.optimizer.metric_name, example, prediction)

    # candidates ------------------------------------------------------------------------

    def evaluate(self, overrides: Mapping[Any, Any] | None = None, *, label: str = "") -> Candidate:
        """Score a candidate (knob overrides, as ``promptlog.overrides`` takes) on the
        valset as a child experiment of the optimisation, and return it.

        A candidate with the same overrides as an earlier one is that one (nothing
        runs); an (example, repeat) a resumed optimisation scored before is not run
        again. Raises :class:`BudgetExhausted` when the budget does not allow it.
        """
        resolved = knobs.resolve(overrides) if overrides else {}
        public = knobs.jsonable(knobs._public(resolved))
        key = _key(public)
        found = self._by_key.get(key)
        if found is not None:
            return found
        memo = self._scores.setdefault(key, {})
        previous = self._children.get(key)
        wanted = [(e.id, r) for e in self.valset for r in range(self.repeats)]
        self.charge(0 if previous else sum(where not in memo for where in wanted))
        candidate = Candidate(len(self.candidates), label, public, key)
        if previous is not None:
            candidate.experiment_id = previous
        else:
            candidate.experiment_id = self._run_candidate(candidate, resolved, memo)
        for example in self.valset:
            for repeat in range(self.repeats):
                hit = memo.get((example.id, repeat))
                if hit is None:
                    candidate.failed += 1
                    candidate.scores[(example.id, repeat)] = 0.0
                else:
                    candidate.scores[(example.id, repeat)] = hit[0]
                    if hit[1] is not None:
                        candidate.feedback[(example.id, repeat)] = hit[1]
        self._describe(candidate)
        self.candidates.append(candidate)
        self._by_key[key] = candidate
        if not self.quiet:
            shown = candidate.summary()
            print(
                f"  candidate {candidate.index} ({label or 'proposed'}): "
                f"{self.optimizer.metric_name} {shown['mean']:.3f}",
                file=sys.stdout,
            )
        return candidate

    def _run_candidate(
        self,
        candidate: Candidate,
        resolved: dict[str, dict[str, Any]],
        memo: dict[tuple[str, int], tuple[float, str | None]],
    ) -> str:
        """Run the child experiment of a candidate; return its id."""
        metadata = {
            "candidate": candidate.index,
            "label": candidate.label,
            "overrides": candidate.overrides,
            "digest": candidate.key,  # not "key": metadata under a secret-like name is masked
        }
        child = Experiment(
            f"{self.name} candidate {candidate.index}",
            inputs=[example.value for example in self.valset],
            repeats=self.repeats,
            max_workers=self.max_workers,
            metadata=metadata,
            overrides=resolved or None,
            quiet=True,
            cache=self.cache,
            **self._experiment_options(),
        )

        if self.executor is None:
            step: Callable[..., Any] = self._candidate_step(memo)
        else:
            # Shipped: a module-level function over the program, the metric and the
            # scores already known, never this compilation (its memo, its traces).
            known = {where: score for where, (score, _) in memo.items()}
            step = partial(
                _score_example, self.program, self.optimizer.metric,
                self.optimizer.metric_name, known,
            )  # fmt: skip
        try:
            child.run(step)
        except ExperimentFailedError as e:
            if candidate.index == 0:
                raise OptimizerError(
                    f"The program failed on every example of the valset with no overrides, so "
                    f"there is nothing to improve on: {e}"
                ) from e.__cause__
        if self.executor is not None:
            # The scores come back with the runs' metrics (no feedback: the metric's
            # feedback stays on the worker).
            for run in child.runs:
                value = run.metrics.get(self.optimizer.metric_name)
                if run.status == "succeeded" and value is not None and run.example_id:
                    memo.setdefault((run.example_id, int(run.repeat_index or 0)), (value, None))
        assert child.id is not None
        return child.id

    def _candidate_step(
        self, memo: dict[tuple[str, int], tuple[float, str | None]]
    ) -> Callable[..., Any]:
        """A candidate's execution on this process's threads: the program on the run's
        example, scored, its traces collected and its score (and feedback) memoised."""

        def one(*_: Any, **__: Any) -> Any:
            run = current_run()
            assert run is not None and run.example_id is not None
            where = (run.example_id, int(run.repeat_index or 0))
            hit = memo.get(where)
            if hit is not None:  # scored before: record the score, run nothing
                metrics.record(self.optimizer.metric_name, hit[0])
                return None
            prediction = datasets.call_with(self.program, run.input, (), {})
            self._book.take(run.id)
            score = self._score(run.input, prediction)
            memo[where] = score
            return prediction

        return one

    def _experiment_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"parent": self.parent}
        if self.executor is not None:
            options["executor"] = self.executor
        return options

    def _check_executor(self) -> None:
        if self.executor is None:
            return
        if "executor" not in inspect.signature(Experiment).parameters:
            raise OptimizerError(
                "This promptlog runs experiments on its own thread pool and takes no "
                "executor=; leave it out and set max_workers instead."
            )

    def _describe(self, candidate: Candidate) -> None:
        """Read the candidate's prompt versions, cost and calls from the log."""
        if candidate.experiment_id is None:
            return
        store.flush()
        used = self.log.prompt_versions_used(candidate.experiment_id)
        candidate.prompt_versions = {
            name: versions[-1]["version"]
            for name, versions in used.items()
            if versions and versions[-1]["role"] == "function"
        }
        totals = self.log.call_totals([candidate.experiment_id])
        candidate.cost, candidate.calls = totals["cost"], totals["calls"]

    # running the program ---------------------------------------------------------------

    def run_program(
        self,
        examples: Sequence[datasets.Example],
        overrides: Callable[[int], Mapping[Any, Any] | None] | Mapping[Any, Any] | None = None,
        *,
        tag: str = "",
    ) -> list[ProgramRun]:
        """Run the program on each example inside a run of the optimisation, under
        ``overrides`` (or ``overrides(i)`` for the i-th example, e.g. to leave an
        example out of its own demos), score it and keep its traces. ``tag`` tells
        apart runs of the same example and overrides (a round). A run logged by an
        earlier session of a resumed optimisation is not run again."""
        items = []
        for position, example in enumerate(examples):
            chosen = overrides(position) if callable(overrides) else overrides
            resolved = knobs.resolve(chosen) if chosen else {}
            key = _key(knobs.jsonable(knobs._public(resolved)))
            items.append((example, resolved, (key, example.id, tag)))
        todo = [item for item in items if item[2] not in self._program_runs]
        self.charge(len(todo))
        if todo:
            runs = self.map(self._program_step, todo)
            for item, run in zip(todo, runs, strict=True):
                if run.status == "succeeded" and isinstance(run.result, dict):
                    self._program_runs[item[2]] = _program_run(run.result, item[0].value, run.id)
                else:
                    self._program_runs[item[2]] = ProgramRun(
                        item[0].value, item[0].id, None, None, None, [],
                        error=f"{type(run.error).__name__}: {run.error}", run_id=run.id,
                    )  # fmt: skip
        return [self._program_runs[item[2]] for item in items]

    def _program_step(self, item: tuple[datasets.Example, dict[str, Any], tuple[str, ...]]) -> Any:
        example, resolved, (key, example_id, tag) = item
        token = knobs.push(resolved) if resolved else None
        try:
            prediction = datasets.call_with(self.program, example.value, (), {})
        finally:
            if token is not None:
                knobs.pop(token)
        run = current_run()
        traces = self._book.take(run.id if run is not None else None)
        score, feedback = self._score(example.value, prediction)
        return {
            "step": "program",
            "key": key,
            "example_id": example_id,
            "tag": tag,
            "prediction": knobs.jsonable(prediction, strict=False),
            "score": score,
            "feedback": feedback,
            "traces": [trace.to_dict() for trace in traces],
        }

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """Call ``fn(item)`` for each item, each in a run of the optimisation (so its
        model calls count in the optimisation's cost), concurrently; return the runs
        (``run.result``, ``run.status``, ``run.error``) in item order."""
        parent = self._require_parent()
        with self._book.tracing():
            return list(parent.map(fn, list(items)))

    def call(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, key: Callable[[Any], str]
    ) -> list[Any]:
        """:meth:`map` for steps a resumed optimisation should not make again: each
        item's value is kept in its run's result under ``key(item)``, and an item whose
        key an earlier session of this optimisation logged is not run; its value comes
        from the log. Returns the values in item order (None where ``fn`` failed).
        ``fn``'s values must be JSON-able."""
        items = list(items)
        keys = [key(item) for item in items]
        todo = [(k, item) for k, item in zip(keys, items, strict=True) if k not in self._values]
        if todo:
            self.charge(0)

            def step(pair: tuple[str, Any]) -> dict[str, Any]:
                return {"step": "call", "key": pair[0], "value": fn(pair[1])}

            for (k, _), run in zip(todo, self.map(step, todo), strict=True):
                if run.status == "succeeded" and isinstance(run.result, dict):
                    self._values[k] = run.result["value"]
        return [self._values.get(k) for k in keys]

    def _require_parent(self) -> Experiment:
        if self.parent is None:
            raise OptimizerError("The optimisation has not started: call compile().")
        return self.parent

    # demos -----------------------------------------------------------------------------

    def labeled_demos(
        self, function: LLMFunction, examples: Iterable[datasets.Example], output: str | None = None
    ) -> list[dict[str, Any]]:
        """Demos of ``function`` made from labelled examples: the example's fields the
        function takes as inputs, its one other field (or ``output``) as the output.
        Examples that do not fit are skipped; none fit when the function's inputs are
        not fields of the examples (a later step of a program)."""
        found = []
        parameters = list(inspect.signature(function.fn).parameters.values())
        names = [p.name for p in parameters]
        required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
        for example in examples:
            value = example.value
            if not isinstance(value, Mapping) or not all(n in value for n in required):
                continue
            rest = [k for k in value if k not in names]
            label = output if output is not None else (rest[0] if len(rest) == 1 else None)
            if label is None:
                raise OptimizerError(
                    f"Cannot tell which field of the examples is the output of {function.name}: "
                    f"they have {', '.join(map(repr, rest)) or 'no field'} besides its inputs. "
                    f"Pass output='…' to the optimiser."
                )
            if label not in value:
                continue
            demo = function.demo({n: value[n] for n in names if n in value}, value[label])
            if demo is not None:
                found.append(demo)
        return found

    def demos_from_log(
        self, function: LLMFunction, threshold: float | None
    ) -> list[dict[str, Any]]:
        """Demos of ``function`` harvested from calls already in the log whose run's
        metric passed ``threshold`` (see :meth:`passes`), one per distinct input,
        oldest first. No model is called."""
        store.flush()
        seen: set[str] = set()
        found = []
        for _, demo in from_log(
            self.log, function, self.optimizer.metric_name, lambda s: self.passes(s, threshold)
        ):
            inputs = json.dumps(demo["inputs"], sort_keys=True, default=str)
            if inputs not in seen:
                seen.add(inputs)
                found.append(demo)
        return found

    # the whole optimisation ------------------------------------------------------------

    def run(self) -> CompileResult:
        opt = self.optimizer
        metadata = {
            "optimiser": type(opt).__name__,
            "metric": opt.metric_name,
            "max_metric_calls": opt.max_metric_calls,
            "max_calls": opt.max_calls,
            "max_cost": opt.max_cost,
            "seed": opt.seed,
            "trainset": len(self.trainset),
            "valset": len(self.valset),
            "repeats": self.repeats,
            **opt.settings(),
        }
        self._check_executor()
        if opt.max_metric_calls is not None and opt.max_metric_calls < self.evaluation_size:
            raise OptimizerError(
                f"max_metric_calls={opt.max_metric_calls} does not cover one evaluation of the "
                f"baseline ({len(self.valset)} valset examples × {self.repeats} repeats = "
                f"{self.evaluation_size}); raise it or use a smaller valset."
            )
        parent = Experiment(
            self.name, kind=KIND, metadata=knobs.jsonable(metadata, strict=False),
            max_workers=self.max_workers, resume=self.resume, quiet=True,
        )  # fmt: skip
        self.parent = parent
        stopped = "finished"
        with parent.session():
            self._take_up()
            planned = opt.planned_runs(self)
            if not self.quiet:
                print(
                    f"{type(opt).__name__} {self.name!r}: planned {planned} program runs "
                    f"({len(self.trainset)} training, {len(self.valset)} validation examples"
                    f"{f' × {self.repeats} repeats' if self.repeats > 1 else ''})",
                    file=sys.stdout,
                )
            try:
                with self._book.tracing():
                    # The baseline is scored whatever the budget has left: a resumed
                    # search that spent it still needs something to compare with.
                    self._checking = False
                    self.evaluate({}, label="baseline")
                    self._checking = True
                    self._find_functions()
                    try:
                        opt.search(self)
                    except BudgetExhausted as e:
                        stopped = e.reason
                result = self._result(stopped)
                parent.outcome = result.outcome
            finally:
                if self._log is not None:
                    self._log.close()
        if not self.quiet:
            print(result.report(), file=sys.stdout)
        return result

    def _take_up(self) -> None:
        """On resume: what earlier sessions scored (children) and ran (own runs)."""
        parent = self._require_parent()
        for run in parent.runs:
            if getattr(run, "status", None) == "succeeded" and isinstance(run.result, dict):
                result = run.result
                if result.get("step") == "call":
                    self._values[result["key"]] = result.get("value")
                if result.get("step") == "program":
                    done = (result["key"], result["example_id"], result.get("tag", ""))
                    self._program_runs[done] = _program_run(result, None, run.id)
                    self.metric_calls += 1
        if parent.id is None:
            return
        store.flush()
        children = self.log.children(parent.id)
        if not children:
            return
        keys = {
            child: self.log.experiment_details(child)["metadata"].get("digest")
            for child in children
        }
        complete: dict[str, set[tuple[str, int]]] = {}
        for row in self.log.scored_runs(children, self.optimizer.metric_name).dicts():
            key = keys.get(row["experiment_id"])
            if key is None or row["status"] != "succeeded" or row["score"] is None:
                continue
            where = (row["example_id"], int(row["repeat_index"] or 0))
            scored = self._scores.setdefault(key, {})
            if where not in scored:
                self.metric_calls += 1
            scored[where] = (float(row["score"]), None)
            complete.setdefault(row["experiment_id"], set()).add(where)
        wanted = {(e.id, r) for e in self.valset for r in range(self.repeats)}
        for child, key in keys.items():
            if key is not None and wanted <= complete.get(child, set()):
                self._children[key] = child

    def _find_functions(self) -> None:
        """The typed functions the program called on the valset: traced as they ran,
        or, when the baseline's runs were logged before, read from its runs."""
        found = dict(self._book.functions)
        if not found and self.baseline.experiment_id is not None:
            for name in self.log.prompt_versions_used(self.baseline.experiment_id):
                function = find(name)
                if function is not None:
                    found[name] = function
        if not found:
            raise OptimizerError(
                f"The program {getattr(self.program, '__name__', self.program)!r} called no "
                f"typed function (@llm_function) on the valset, so there is nothing to tune."
            )
        self.functions = dict(sorted(found.items()))

    def _result(self, stopped: str) -> CompileResult:
        best = self.best
        comparison = None
        significant = False
        if best is not self.baseline and best.experiment_id and self.baseline.experiment_id:
            from ..comparisons import compare

            store.flush()
            comparison = compare(
                self.baseline.experiment_id, best.experiment_id,
                metrics=[self.optimizer.metric_name],
            )  # fmt: skip
            metric = comparison.metrics[0] if comparison.metrics else None
            significant = bool(
                metric is not None
                and math.isfinite(metric.p_value)
                and metric.p_value < SIGNIFICANCE
                and metric.difference > 0
            )
        used = self.usage()
        return CompileResult(
            name=self.name,
            optimiser=type(self.optimizer).__name__,
            metric=self.optimizer.metric_name,
            experiment_id=self._require_parent().id or "",
            candidates_=list(self.candidates),
            best_candidate=best,
            baseline=self.baseline,
            comparison=comparison,
            significant=significant,
            stopped=stopped,
            usage=used,
        )


def _score(
    metric: Callable[..., Any], name: str, example: Any, prediction: Any
) -> tuple[float, str | None]:
    """Call ``metric`` on a prediction and record its score as ``name`` on the current
    run; return the score and the metric's feedback."""
    raw = (
        getattr(metric, "__wrapped__", metric)
        if getattr(metric, "__promptlog_metric__", False)
        else metric
    )
    value = raw(example, prediction) if _takes_example(raw) else raw(prediction)
    score, feedback = split_score(value)
    metrics.record(name, score)
    number, _ = metrics.validate(name, score)
    return number, feedback


def _score_example(
    program: Callable[..., Any],
    metric: Callable[..., Any],
    name: str,
    known: Mapping[tuple[str, int], float],
    *_: Any,
    **__: Any,
) -> Any:
    """A candidate's execution on an executor's worker: the program on the run's
    example and its score, or, for an (example, repeat) in ``known``, that score
    recorded and nothing run. Returns the prediction (the run's result)."""
    run = current_run()
    assert run is not None and run.example_id is not None
    example = run.input
    hit = known.get((run.example_id, int(run.repeat_index or 0)))
    if hit is not None:
        metrics.record(name, hit)
        return None
    prediction = datasets.call_with(program, example, (), {})
    _score(metric, name, example, prediction)
    return prediction


def _program_run(result: dict[str, Any], example: Any, run_id: str | None) -> ProgramRun:
    return ProgramRun(
        example,
        result["example_id"],
        result.get("prediction"),
        result.get("score"),
        result.get("feedback"),
        [Trace.from_dict(t) for t in result.get("traces") or ()],
        run_id=run_id,
    )


def _examples(value: Any, what: str) -> list[datasets.Example]:
    try:
        return datasets.examples(value)
    except Exception as e:  # an ExperimentError saying what is wrong with the examples
        raise OptimizerError(f"The {what}: {e}") from None


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


@dataclass
class CompileResult:
    """What an optimisation found.

    ``best`` (the winning overrides, keyed by full name; ``{}`` when nothing beat
    the baseline), ``best_score``, ``baseline_score``; ``candidates`` and ``scores``
    as DataFrames; ``comparison`` (best vs baseline on the valset, paired by
    example; None when the baseline won) and ``significant``; ``stopped`` says why
    the search ended (``finished`` or the budget that ran out); ``usage`` what it
    spent. ``apply()`` uses the best overrides for the rest of the process;
    ``save(path)`` writes them for ``promptlog.load_overrides``.
    """

    name: str
    optimiser: str
    metric: str
    experiment_id: str
    candidates_: list[Candidate]
    best_candidate: Candidate
    baseline: Candidate
    comparison: Comparison | None
    significant: bool
    stopped: str
    usage: dict[str, Any]

    @property
    def best(self) -> dict[str, Any]:
        return dict(self.best_candidate.overrides)

    @property
    def best_score(self) -> float:
        return self.best_candidate.score

    @property
    def baseline_score(self) -> float:
        return self.baseline.score

    @property
    def outcome(self) -> dict[str, Any]:
        """What the optimisation's experiment records when it ends."""
        metric = self.comparison.metrics[0] if self.comparison and self.comparison.metrics else None
        return knobs.jsonable(
            {
                "best_score": _or_none(self.best_score),
                "baseline_score": _or_none(self.baseline_score),
                "best_candidate": self.best_candidate.index,
                "best": self.best,
                "difference": _or_none(metric.difference) if metric else 0.0,
                "ci_low": _or_none(metric.ci_low) if metric else None,
                "ci_high": _or_none(metric.ci_high) if metric else None,
                "p_value": _or_none(metric.p_value) if metric else None,
                "significant": self.significant,
                "stopped": self.stopped,
                "candidates": len(self.candidates_),
                **self.usage,
            },
            strict=False,
        )

    @property
    def candidates(self) -> pd.DataFrame:
        """One row per candidate: index, label, its child experiment, the prompt
        version of each typed function, demos per function, mean score with its 95%
        interval, failed runs, model calls and cost."""
        import pandas as pd

        rows = []
        for c in self.candidates_:
            summary = c.summary()
            rows.append({
                "candidate": c.index,
                "label": c.label,
                "experiment_id": c.experiment_id,
                "prompt_versions": ", ".join(
                    f"{name.rsplit('.', 1)[-1]} v{v}" for name, v in c.prompt_versions.items()
                ),
                "demos": sum(c.demos().values()),
                "score": summary["mean"],
                "ci_low": summary["ci_low"],
                "ci_high": summary["ci_high"],
                "n": summary["n"],
                "failed": c.failed,
                "calls": c.calls,
                "cost": c.cost,
                "best": c is self.best_candidate,
            })  # fmt: skip
        return pd.DataFrame(rows).set_index("candidate")

    @property
    def scores(self) -> pd.DataFrame:
        """One row per candidate × example × repeat: the score."""
        import pandas as pd

        rows = [
            {"candidate": c.index, "example_id": example_id, "repeat": repeat, "score": score}
            for c in self.candidates_
            for (example_id, repeat), score in sorted(c.scores.items())
        ]
        return pd.DataFrame(rows, columns=["candidate", "example_id", "repeat", "score"])

    def apply(self) -> dict[str, Any]:
        """Use the best overrides for the rest of the process (beneath any
        ``promptlog.overrides`` block), as ``promptlog.load_overrides`` does; returns
        them. For one block: ``with promptlog.overrides(result.best):``."""
        return knobs.apply_overrides(self.best)

    def save(self, path: str | Path) -> Path:
        """Write the best overrides to a JSON file for ``promptlog.load_overrides``."""
        return knobs.save_overrides(self.best, path)

    def report(self) -> str:
        """A few lines: the best candidate, its gain over the baseline and whether it
        is significant, why the search stopped and what it spent."""
        best, base = self.best_candidate, self.baseline
        lines = [
            f"{self.optimiser} {self.name!r}: {len(self.candidates_)} candidates, stopped: "
            f"{self.stopped}; {self.usage.get('metric_calls', 0)} metric calls, "
            f"{self.usage.get('calls', 0)} model calls, cost ${self.usage.get('cost', 0.0):.4f}",
            f"  baseline {self.metric} {base.score:.3f}; best: candidate {best.index} "
            f"({best.label or 'proposed'}) {best.score:.3f}",
        ]
        metric = self.comparison.metrics[0] if self.comparison and self.comparison.metrics else None
        if metric is not None:
            lines.append(
                f"  gain {metric.difference:+.3f} (95% CI {metric.ci_low:+.3f} to "
                f"{metric.ci_high:+.3f}, p={metric.p_value:.3g}, {metric.test}): "
                f"{'significant' if self.significant else 'not significant'}"
            )
        else:
            lines.append("  no candidate beat the baseline")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.report()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.report())}</pre>" + self.candidates.to_html()


def _or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
