"""Function minimisation, llm_optimize's first example: a model proposes the next x
from the history of (x, f(x)), and every evaluation is a run in the log.

    python examples/optimize_function.py          # on the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/optimize_function.py

Then `promptlog show minimise-f` prints the best score after each step and the best x.
"""

from __future__ import annotations

import json
import os

import promptlog

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")

TASK = "Decrease the value of f(x). x is a list of two numbers, each in [-10, 10]."
QUESTION = "What is the next x to try such that f(x) is smaller?"


def f(x: str) -> tuple[float, str]:
    a, b = json.loads(x)
    if not all(-10 <= v <= 10 for v in (a, b)):
        raise ValueError(f"{x} is out of bounds: each value must be in [-10, 10]")
    value = (a - 3) ** 2 + (b + 1) ** 2
    return value, f"f(x) = {value}"


if __name__ == "__main__":
    result = promptlog.optimize(
        f, "[0, 0]", task=TASK, question=QUESTION, model_name=MODEL,
        max_steps=10, minimize=True, stop_score=0, name="minimise-f",
    )  # fmt: skip
    print(result.history[["step", "x", "score", "best_so_far"]].to_string(index=False))
    print(f"best x {result.best_x}: f = {result.best_score} ({result.stopped})")
