"""Reflective search: a reflection model reads the program's traces and the metric's
feedback on a few training examples and rewrites one typed function's instructions,
as GEPA does (Agrawal et al. 2025).

    search = optimizers.ReflectiveSearch(metric=graded, reflection_model="gpt-4o",
                                         max_metric_calls=200)
    result = search.compile(program, trainset=train, valset=dev)

Each iteration picks a parent from the Pareto set (the candidates that score best on
at least one validation example, drawn as often as they are best), runs it on a
minibatch of training examples, and has the reflection model rewrite one typed
function's instructions (in turn) from the calls it made there, their scores and the
metric's feedback (a metric may return ``(score, feedback)``). The child is kept only
if it scores higher than its parent on the same minibatch; then it is scored on the
valset as a candidate. The search runs until a budget ends it. The reflection prompt
is a typed function (:func:`reflect_instructions`), versioned in the log and tunable;
its calls run inside runs of the optimisation, so they count in its calls and cost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..bots import SimpleBot
from ..datasets import Example
from ..errors import OptimizerError
from ..functions import LLMFunction, llm_function
from .compile import Candidate, Compilation, Optimizer, ProgramRun
from .instructions import (
    _check_model,
    _count,
    describe_model,
    earlier_results,
    model_function,
    short_name,
    signature_of,
    step_key,
    valid_instructions,
)

__all__ = ["ReflectiveSearch", "reflect_instructions"]

# An iteration that spends no metric call (its runs known, its child a candidate
# already) cannot go on for ever: this many in a row end the search.
_IDLE_ROUNDS = 5


@llm_function(temperature=1.0)
def reflect_instructions(signature: str, instructions: str, examples: str) -> str:  # type: ignore[empty-body]
    """You improve the instructions of one step of a program that calls a language model.
    The step is the Python function `{{ signature }}`: a language model reads its
    instructions and its inputs, and replies with its return value. Its instructions now:

    ```
    {{ instructions }}
    ```

    Here are calls of it on some examples: the inputs it was given, what it replied, and
    the score and feedback the program's result got.

    {{ examples }}

    Read the inputs, the replies and the feedback. Work out what the task is, what the
    good replies did and where the others went wrong, and write new instructions that
    keep what works and fix what does not; state any fact or rule the feedback teaches.
    Reply with the new instructions alone, without quotes, headings or comments."""


class ReflectiveSearch(Optimizer):
    """GEPA's reflective mutation with Pareto selection, run until ``max_metric_calls``
    (or ``max_calls``/``max_cost``) is spent.

    ``reflection_model`` is a model name, a bot (``SimpleBot``) whose model writes
    through :func:`reflect_instructions`, or a callable ``reflect(signature,
    instructions, examples)`` returning the new instructions, where each example is
    a dict of ``inputs``, ``output``, ``score`` and ``feedback``. Without one, the
    default model reflects. ``minibatch`` training examples are run per iteration;
    a parent that scores at least ``perfect_score`` on all of them is not reflected
    on (there is nothing to fix). ``max_iterations`` bounds the iterations too.
    """

    def __init__(
        self,
        metric: Callable[..., Any],
        reflection_model: str | SimpleBot | Callable[..., Any] | None = None,
        max_metric_calls: int | None = None,
        minibatch: int = 3,
        *,
        perfect_score: float = 1.0,
        max_iterations: int | None = None,
        temperature: float = 1.0,
        **options: Any,
    ):
        super().__init__(metric, max_metric_calls=max_metric_calls, **options)
        if max_metric_calls is None and self.max_calls is None and self.max_cost is None:
            raise OptimizerError(
                "ReflectiveSearch runs until a budget ends it: pass max_metric_calls=… "
                "(or max_calls=… or max_cost=…)."
            )
        self.reflection_model = _check_model(reflection_model, "reflection_model")
        self.minibatch = _count(minibatch, "minibatch")
        self.perfect_score = perfect_score
        self.max_iterations = (
            None if max_iterations is None else _count(max_iterations, "max_iterations")
        )
        self.temperature = temperature

    def settings(self) -> dict[str, Any]:
        return {
            "minibatch": self.minibatch,
            "reflection_model": describe_model(self.reflection_model),
            "perfect_score": self.perfect_score,
            "max_iterations": self.max_iterations,
            "temperature": self.temperature,
        }

    def planned_runs(self, compilation: Compilation) -> int:
        # At most the budget of metric calls: each is one run of the program.
        return self.max_metric_calls or compilation.evaluation_size

    def search(self, compilation: Compilation) -> None:
        c = compilation
        earlier = earlier_results(c, "reflect")
        prompt = cast(LLMFunction, reflect_instructions)
        writer = model_function(prompt, self.reflection_model, self.temperature)
        names = list(c.functions)
        batches = _Minibatches(c.trainset, self.minibatch, c)
        turn = 0
        idle = 0
        iteration = 0
        while self.max_iterations is None or iteration < self.max_iterations:
            iteration += 1
            if idle >= _IDLE_ROUNDS:
                return
            spent = c.metric_calls
            parent = pareto_parent(c)
            if all(score >= self.perfect_score for score in parent.scores.values()):
                return  # the best scores perfectly on every validation example
            batch = batches.next()
            runs = c.run_program(batch, parent.overrides)
            if all(r.score is not None and r.score >= self.perfect_score for r in runs):
                idle += c.metric_calls == spent
                continue
            name = names[turn % len(names)]
            turn += 1
            current = _instructions(c, parent, name)
            text = self._reflect(c, writer, name, current, batch, runs, parent, earlier)
            if text is None:
                idle += c.metric_calls == spent
                continue
            child = {**parent.overrides, name: {**parent.overrides.get(name, {}), "template": text}}
            if any(candidate.overrides == child for candidate in c.candidates):
                idle += c.metric_calls == spent
                continue
            child_runs = c.run_program(batch, child)
            if _total(child_runs) > _total(runs):
                label = f"reflection {iteration}: {short_name(name)} from {parent.index}"
                c.evaluate(child, label=label)
            idle = idle + 1 if c.metric_calls == spent else 0

    def _reflect(
        self,
        c: Compilation,
        writer: LLMFunction | None,
        name: str,
        current: str,
        batch: Sequence[Example],
        runs: Sequence[ProgramRun],
        parent: Candidate,
        earlier: dict[str, Any],
    ) -> str | None:
        """The reflection model's new instructions for ``name``, or None when it gave
        none that is new and valid."""
        fn = c.functions[name]
        signature = signature_of(fn)
        examples = reflective_examples(name, runs)
        key = step_key("reflect", name, parent.key, [e.id for e in batch], current)
        found = earlier.get(key)
        if found is None:

            def one(_: Any) -> dict[str, Any]:
                if writer is None:
                    text = self.reflection_model(signature, current, examples)
                else:
                    text = writer(
                        signature=signature, instructions=current,
                        examples=_examples_text(examples),
                    )  # fmt: skip
                return {"step": "reflect", "key": key, "function": name, "text": str(text)}

            c.charge(0)  # honour max_calls and max_cost before calling the model
            (run,) = c.map(one, [None])
            if run.status != "succeeded":
                raise OptimizerError(
                    f"The reflection model failed on {name}: {type(run.error).__name__}: "
                    f"{run.error}. Check its model (reflection_model=…)."
                )
            found = run.result
            earlier[key] = found
        kept = valid_instructions(fn, [found["text"]], exclude=[current])
        return kept[0] if kept else None


def pareto_parent(c: Compilation) -> Candidate:
    """A parent drawn from the Pareto set: each candidate that scores best on at least
    one validation example (and repeat), drawn as often as it is best; a candidate
    whose examples another's include is dropped, as is any that equals an earlier one."""
    wins: dict[int, set[tuple[str, int]]] = {}
    keys = sorted({k for candidate in c.candidates for k in candidate.scores})
    for k in keys:
        scores = [(candidate.scores.get(k, 0.0), candidate.index) for candidate in c.candidates]
        top = max(_finite(score) for score, _ in scores)
        for score, index in scores:
            if _finite(score) == top:
                wins.setdefault(index, set()).add(k)
    front = sorted(wins)
    kept = [
        i for i in front
        if not any(j != i and wins[i] <= wins[j] and (wins[i] < wins[j] or j < i) for j in front)
    ]  # fmt: skip
    if not kept:
        return c.best
    by_index = {candidate.index: candidate for candidate in c.candidates}
    chosen = c.rng.choices(kept, weights=[len(wins[i]) for i in kept])[0]
    return by_index[chosen]


def reflective_examples(name: str, runs: Sequence[ProgramRun]) -> list[dict[str, Any]]:
    """What the reflection model reads for the typed function ``name``: for each run,
    the calls of it (inputs, output), the run's score and the metric's feedback."""
    found = []
    for run in runs:
        calls = [t for t in run.traces if t.function == name]
        feedback = run.feedback
        if run.error:
            feedback = f"The program failed: {run.error}"
        elif feedback is None:
            feedback = "(no feedback; only the score)"
        if not calls:  # the function was not reached (or failed): the example as given
            found.append({"inputs": run.example, "output": run.prediction,
                          "score": run.score, "feedback": feedback})  # fmt: skip
        for call in calls:
            found.append({"inputs": call.inputs, "output": call.output,
                          "score": run.score, "feedback": feedback})  # fmt: skip
    return found


def _examples_text(examples: Sequence[dict[str, Any]]) -> str:
    parts = []
    for number, example in enumerate(examples, 1):
        score = example["score"]
        parts.append(
            f"Example {number}\n"
            f"Inputs: {json.dumps(example['inputs'], ensure_ascii=False, default=str)}\n"
            f"Reply: {json.dumps(example['output'], ensure_ascii=False, default=str)}\n"
            f"Score: {'failed' if score is None else f'{score:.3f}'}\n"
            f"Feedback: {example['feedback']}"
        )
    return "\n\n".join(parts)


def _instructions(c: Compilation, candidate: Candidate, name: str) -> str:
    knobs_ = candidate.overrides.get(name) or {}
    template = knobs_.get("template") if isinstance(knobs_, dict) else None
    return template if isinstance(template, str) else c.functions[name].template


def _total(runs: Sequence[ProgramRun]) -> float:
    return sum(_finite(r.score) if r.score is not None else 0.0 for r in runs)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


class _Minibatches:
    """Training examples in minibatches, each epoch in a new order drawn with the
    optimisation's seeded generator."""

    def __init__(self, examples: Sequence[Example], size: int, c: Compilation):
        self.examples = list(examples)
        self.size = min(size, len(self.examples))
        self.rng = c.rng
        self.order: list[Example] = []

    def next(self) -> list[Example]:
        if len(self.order) < self.size:
            shuffled = list(self.examples)
            self.rng.shuffle(shuffled)
            self.order += [e for e in shuffled if e not in self.order[: self.size]]
        batch, self.order = self.order[: self.size], self.order[self.size :]
        return batch
