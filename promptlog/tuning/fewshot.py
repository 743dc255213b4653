"""Few-shot optimisers: demos from the labelled trainset, from traces of the program's
own passing runs (and passing calls already in the log), and a random search over both,
as DSPy's ``LabeledFewShot``, ``BootstrapFewShot`` and ``BootstrapFewShotWithRandomSearch``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from ..datasets import Example
from ..errors import OptimizerError
from .compile import Candidate, Compilation, Optimizer

# DSPy's teacher samples its labelled demos with a fixed seed: every bootstrap of one
# optimisation runs an example under the same teacher, so the log answers repeats.
_TEACHER_SEED = 0
_BATCH = 8  # training examples bootstrapped at a time


def _count(value: Any, name: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise OptimizerError(f"{name} must be a whole number of at least {least}, not {value!r}.")
    return value


def _inputs_key(demo: dict[str, Any]) -> str:
    return json.dumps(demo["inputs"], sort_keys=True, default=str, ensure_ascii=False)


class LabeledFewShot(Optimizer):
    """``k`` demos for each typed function, drawn from the labelled trainset (a seeded
    sample, or the first ``k`` with ``sample=False``): an example's fields that the
    function takes are the demo's inputs, its one other field (or ``output``) the
    demo's output."""

    def __init__(
        self,
        k: int = 16,
        *,
        metric: Callable[..., Any],
        output: str | None = None,
        sample: bool = True,
        **options: Any,
    ):
        super().__init__(metric, **options)
        self.k = _count(k, "k", least=1)
        self.output = output
        self.sample = sample

    def settings(self) -> dict[str, Any]:
        return {"k": self.k, "output": self.output, "sample": self.sample}

    def planned_runs(self, compilation: Compilation) -> int:
        return 2 * compilation.evaluation_size

    def search(self, compilation: Compilation) -> None:
        demos = labeled(compilation, self.k, compilation.rng if self.sample else None, self.output)
        compilation.evaluate(_as_overrides(demos), label=f"labeled k={self.k}")


def labeled(
    compilation: Compilation,
    k: int,
    rng: random.Random | None,
    output: str | None,
    *,
    examples: Sequence[Example] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Up to ``k`` labelled demos per typed function from ``examples`` (default the
    trainset): a sample drawn with ``rng``, or the first ``k`` without."""
    found = {}
    for name, function in compilation.functions.items():
        demos = compilation.labeled_demos(
            function, compilation.trainset if examples is None else examples, output
        )
        if rng is not None:
            demos = rng.sample(demos, min(k, len(demos)))
        found[name] = demos[:k]
    return found


def _as_overrides(demos: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {name: {"demos": found} for name, found in demos.items() if found}


class BootstrapFewShot(Optimizer):
    """Demos from the program's own passing runs, as DSPy's ``BootstrapFewShot``.

    With ``from_log=True`` it first harvests calls already in the log: calls of the
    same typed function whose run's metric passed, so those demos cost no new call.
    Then, while a function has fewer than ``max_demos``, it runs the program on
    training examples under a teacher (``max_labeled`` labelled demos, the example
    itself left out of its own) and keeps, from each run whose metric passes
    ``threshold``, each function's last call as a demo; ``max_rounds`` tries the
    examples that failed again at a slightly higher temperature. Each function's
    demos are then filled up to ``max_labeled`` with labelled examples.
    """

    def __init__(
        self,
        metric: Callable[..., Any],
        max_demos: int = 4,
        max_labeled: int = 16,
        threshold: float | None = None,
        max_rounds: int = 1,
        from_log: bool = True,
        *,
        output: str | None = None,
        **options: Any,
    ):
        super().__init__(metric, **options)
        self.max_demos = _count(max_demos, "max_demos")
        self.max_labeled = _count(max_labeled, "max_labeled")
        self.threshold = threshold
        self.max_rounds = _count(max_rounds, "max_rounds", least=1)
        self.from_log = from_log
        self.output = output

    def settings(self) -> dict[str, Any]:
        return {
            "max_demos": self.max_demos, "max_labeled": self.max_labeled,
            "threshold": self.threshold, "max_rounds": self.max_rounds,
            "from_log": self.from_log,
        }  # fmt: skip

    def planned_runs(self, compilation: Compilation) -> int:
        bootstrap = len(compilation.trainset) * self.max_rounds if self.max_demos else 0
        return 2 * compilation.evaluation_size + bootstrap

    def search(self, compilation: Compilation) -> None:
        demos, traced = self.bootstrap(compilation, compilation.trainset, self.max_demos)
        compilation.evaluate(
            _as_overrides(demos),
            label=f"bootstrap: {traced} traced, {sum(map(len, demos.values())) - traced} labeled",
        )

    def bootstrap(
        self, compilation: Compilation, trainset: Sequence[Example], max_demos: int
    ) -> tuple[dict[str, list[dict[str, Any]]], int]:
        """Each typed function's demos (traced, then labelled up to ``max_labeled``)
        and how many were traced (harvested from the log or bootstrapped)."""
        functions = compilation.functions
        traced: dict[str, list[dict[str, Any]]] = {name: [] for name in functions}
        if self.from_log and max_demos:
            for name, function in functions.items():
                found = compilation.demos_from_log(function, self.threshold)
                traced[name] = sorted(found, key=lambda d: _position(d, trainset))[:max_demos]
        teacher = labeled(compilation, self.max_labeled, random.Random(_TEACHER_SEED), self.output)
        done = {_inputs_key(d) for found in traced.values() for d in found}

        def wanted() -> bool:
            return any(len(found) < max_demos for found in traced.values())

        harvested = [d for found in traced.values() for d in found]
        todo = [e for e in trainset if not any(_matches(d, e.value) for d in harvested)]
        for round_ in range(self.max_rounds):
            if not wanted() or not todo:
                break
            failed: list[Example] = []
            # In batches, so that a search that has its demos stops calling the model;
            # of a fixed size, so that it makes the same runs on any number of workers.
            batch = max(_BATCH, max_demos)
            for start in range(0, len(todo), batch):
                if not wanted():
                    failed.extend(todo[start:])
                    break
                chunk = todo[start : start + batch]

                def teach(i: int, chunk: list[Example] = chunk, round_: int = round_) -> Any:
                    return _leave_out(teacher, chunk[i], round_)

                runs = compilation.run_program(chunk, teach, tag=f"bootstrap round {round_}")
                for example, run in zip(chunk, runs, strict=True):
                    if not compilation.passes(run.score, self.threshold):
                        failed.append(example)
                        continue
                    last = {trace.function: trace for trace in run.traces}
                    for name, trace in last.items():
                        if name in traced and len(traced[name]) < max_demos:
                            demo = functions[name].demo(trace.inputs, trace.output, trace.reasoning)
                            if demo is not None and _inputs_key(demo) not in done:
                                traced[name].append(demo)
                                done.add(_inputs_key(demo))
            todo = failed
        count = sum(map(len, traced.values()))
        demos = {}
        # The rest up to max_labeled: labelled examples of this trainset's order, sampled
        # with a fixed seed as DSPy does (a shuffled trainset gives another sample).
        pool = labeled(compilation, len(trainset), None, self.output, examples=trainset)
        for name in functions:
            have = {_inputs_key(d) for d in traced[name]}
            fill = [d for d in pool.get(name, []) if _inputs_key(d) not in have]
            room = max(0, self.max_labeled - len(traced[name]))
            demos[name] = traced[name] + random.Random(0).sample(fill, min(room, len(fill)))
        return demos, count


def _position(demo: dict[str, Any], trainset: Sequence[Example]) -> tuple[int, str]:
    """Where a harvested demo sorts: its example's place in the trainset (else after
    them), then its inputs, so that calls logged concurrently give one order."""
    at = next((i for i, e in enumerate(trainset) if _matches(demo, e.value)), len(trainset))
    return at, _inputs_key(demo)


def _matches(demo: dict[str, Any], value: Any) -> bool:
    """Whether the example ``value`` is the one the demo was made from (its inputs
    are fields of the example)."""
    return isinstance(value, dict) and all(
        k in value and value[k] == v for k, v in demo["inputs"].items()
    )


def _leave_out(
    teacher: dict[str, list[dict[str, Any]]], example: Example, round_: int
) -> dict[str, Any]:
    """The teacher's overrides for running ``example``: its labelled demos without the
    example itself (and, after the first round, a slightly higher temperature, so that
    a retry is a new sample)."""
    value = example.value
    overrides: dict[str, Any] = {}
    for name, demos in teacher.items():
        kept = [d for d in demos if not _matches(d, value)]
        knobs_: dict[str, Any] = {"demos": kept}
        if round_:
            knobs_["temperature"] = 0.7 + 0.001 * round_
        overrides[name] = knobs_
    return overrides


class RandomSearch(BootstrapFewShot):
    """DSPy's ``BootstrapFewShotWithRandomSearch``: the zero-shot program (the
    baseline), labelled demos only, an unshuffled bootstrap, then ``num_candidates``
    bootstraps of a shuffled trainset with a random number of demos (from
    ``min_demos`` to ``max_demos``); each candidate is scored on the valset and the
    best kept. Candidates are distinct: a seed that repeats an earlier candidate's
    demos is skipped for the next one."""

    def __init__(
        self,
        metric: Callable[..., Any],
        num_candidates: int = 16,
        max_demos: int = 4,
        max_labeled: int = 16,
        threshold: float | None = None,
        max_rounds: int = 1,
        from_log: bool = False,
        *,
        min_demos: int = 1,
        output: str | None = None,
        **options: Any,
    ):
        super().__init__(
            metric, max_demos, max_labeled, threshold, max_rounds, from_log, output=output,
            **options,
        )  # fmt: skip
        self.num_candidates = _count(num_candidates, "num_candidates")
        self.min_demos = _count(min_demos, "min_demos")
        if self.min_demos > self.max_demos:
            raise OptimizerError(
                f"min_demos ({min_demos}) is more than max_demos ({max_demos}); lower it."
            )

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "num_candidates": self.num_candidates,
                "min_demos": self.min_demos}  # fmt: skip

    def planned_runs(self, compilation: Compilation) -> int:
        bootstrap = len(compilation.trainset) * self.max_rounds if self.max_demos else 0
        # The teacher is the same for every bootstrap, so each example runs once a round.
        return (self.num_candidates + 3) * compilation.evaluation_size + bootstrap

    def search(self, compilation: Compilation) -> None:
        seen: set[str] = set()
        wanted = self.num_candidates + 3
        seed = -3
        last_seed = self.num_candidates + 3 * wanted  # seeds that repeat others are skipped
        while len(compilation.candidates) < wanted and seed < last_seed:
            candidate = self._seed(compilation, seed)
            seed += 1
            if candidate is None or candidate.key in seen:
                continue
            seen.add(candidate.key)

    def _seed(self, compilation: Compilation, seed: int) -> Candidate | None:
        if seed == -3:
            return compilation.evaluate({}, label="zero-shot")
        if seed == -2:
            demos = labeled(compilation, self.max_labeled, random.Random(seed), self.output)
            return compilation.evaluate(_as_overrides(demos), label="labeled only")
        trainset = list(compilation.trainset)
        size = self.max_demos
        if seed >= 0:
            rng = random.Random(seed)
            rng.shuffle(trainset)
            size = rng.randint(self.min_demos, self.max_demos)
        demos, traced = self.bootstrap(compilation, trainset, size)
        before = len(compilation.candidates)
        label = "bootstrap" if seed == -1 else f"bootstrap seed {seed}, {size} demos"
        candidate = compilation.evaluate(_as_overrides(demos), label=f"{label} ({traced} traced)")
        return candidate if len(compilation.candidates) > before else None
