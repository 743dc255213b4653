"""Optimisers that compile a program of typed functions against a metric and examples,
as DSPy does, every candidate a logged experiment::

    from promptlog import optimizers

    result = optimizers.BootstrapFewShot(metric=exact, max_demos=4).compile(
        program, trainset=train, valset=dev)
    result.candidates        # one row per candidate: prompt versions, demos, score, cost
    result.save("tuned.json")  # promptlog.load_overrides("tuned.json") in production

See ``docs/optimizers.md``. :class:`Optimizer` is the base class to write another.
"""

from __future__ import annotations

from .tuning.compile import (
    BudgetExhausted,
    Candidate,
    Compilation,
    CompileResult,
    Optimizer,
    ProgramRun,
)
from .tuning.fewshot import BootstrapFewShot, LabeledFewShot, RandomSearch
from .tuning.instructions import InstructionSearch
from .tuning.reflective import ReflectiveSearch
from .tuning.traces import Trace, TraceBook

__all__ = [
    "BootstrapFewShot",
    "BudgetExhausted",
    "Candidate",
    "Compilation",
    "CompileResult",
    "InstructionSearch",
    "LabeledFewShot",
    "Optimizer",
    "ProgramRun",
    "RandomSearch",
    "ReflectiveSearch",
    "Trace",
    "TraceBook",
]
