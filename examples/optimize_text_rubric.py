"""A text scored against a rubric by a model, llm_optimize's third example: one model
proposes the text, another (``promptlog.optimize.llm_judge``) rates it; the judge's
reply is the feedback the proposer reads, and its calls count in the search's cost.

    python examples/optimize_text_rubric.py          # on the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/optimize_text_rubric.py
"""

from __future__ import annotations

import os
import re

import promptlog

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")

X0 = ("Machine learning (ML) is a field of inquiry devoted to understanding and building "
      "methods that learn")  # fmt: skip

TASK = """\
You are a linguistics expert who can write complex sentences. Write a statement that:
* describes machine learning
* is a palindrome
* is at least 5 words"""

QUESTION = (
    "What is the next x to try such that the text better describes machine learning "
    "and is a palindrome?"
)

RUBRIC = """\
Rate the following text, using the rubric:
* Describes machine learning (1-10)
* Is a palindrome (1-10)
* Is at least 5 words (1-10)

The final score should represent the overall ability of the text to meet the rubric."""


def final_score(reply: str) -> float:
    return float(re.findall(r"final_score=([\d.]+)", reply)[-1])


if __name__ == "__main__":
    judge = promptlog.optimize.llm_judge(RUBRIC, parse_score=final_score, model_name=MODEL)
    result = promptlog.optimize(
        judge, X0, task=TASK, question=QUESTION, model_name=MODEL,
        max_steps=3, stop_score=10, name="palindrome-rubric",
    )  # fmt: skip
    print(result.history[["step", "score", "x"]].to_string(index=False))
    print(f"best ({result.best_score}): {result.best_x}")
