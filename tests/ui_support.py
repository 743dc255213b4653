"""A log for the viewer's tests, built on the offline model: the demo's two
versions of namer_user, two experiments with known metric values (exp-a, exp-b),
one whose runs 3 and 7 fail, and two evaluations over the same five questions
(qa-a, qa-b: two versions of a prompt, two repeats each)."""

from __future__ import annotations

from typing import Any

from test_read import build_constructed_log

import promptlog
from promptlog import Experiment, current_run, demo, metric, prompt
from promptlog.offline import MODEL_NAME

DEMO_RUNS = 10
FLAKY_RUNS = 8


def flaky() -> dict[str, int]:
    index = current_run().execution_index
    if index % 4 == 3:
        raise ValueError(f"no name for execution {index}\nthe second line")
    return {"index": index}


QUESTIONS = [
    {"question": f"What is {n}+{n}?", "answer": str(2 * n)} for n in (2, 3, 5, 7, 9)
]
# Each side's answer to "What is n+n?" on each repeat, where it is not 2n: B fixes
# 3+3, breaks 5+5 and gets 7+7 right on one repeat of two.
WRONG_A = {(3, 0): "5", (3, 1): "5", (7, 0): "15", (7, 1): "15"}
WRONG_B = {(5, 0): "11", (5, 1): "11", (7, 1): "15"}
# The examples most changed first, as the comparison lists them.
QA_ORDER = ["What is 3+3?", "What is 5+5?", "What is 7+7?", "What is 2+2?", "What is 9+9?"]


@prompt("user")
def qa_user(question: str) -> None:
    """Answer: {{ question }}"""


@metric
def exact(example: dict[str, str], prediction: str) -> bool:
    return prediction == example["answer"]


@metric
def closeness(example: dict[str, str], prediction: str) -> float:
    return 1 / (1 + abs(int(prediction) - int(example["answer"])))


def qa_program(wrong: dict[tuple[int, int], str]) -> Any:
    def answer(question: str) -> str:
        qa_user(question)
        n = int(question.split()[2].split("+")[0])
        return wrong.get((n, current_run().repeat_index), str(2 * n))

    answer.__name__ = "answer"
    return answer


def build_qa() -> tuple[Experiment, Experiment]:
    """qa-a and qa-b: the same questions, qa_user as written and then edited."""
    a = promptlog.evaluate(qa_program(WRONG_A), QUESTIONS, metrics=[exact, closeness],
                           repeats=2, name="qa-a", quiet=True)  # fmt: skip
    edited = "Think step by step, then answer with the number only: {{ question }}"
    with promptlog.overrides({qa_user: {"template": edited}}):
        b = promptlog.evaluate(qa_program(WRONG_B), QUESTIONS, metrics=[exact, closeness],
                               repeats=2, name="qa-b", quiet=True)  # fmt: skip
    return a, b


def build_ui_log() -> dict[str, Any]:
    """The experiments by label: v1, v2 (offline demo), a, b (known values), flaky,
    qa_a, qa_b (over inputs)."""
    found: dict[str, Any] = {
        label: demo.run_experiment(label, MODEL_NAME, DEMO_RUNS) for label in ("v1", "v2")
    }
    found["a"], found["b"] = build_constructed_log()
    found["flaky"] = Experiment("flaky", num_executions=FLAKY_RUNS, quiet=True)
    found["flaky"].run(flaky)
    found["qa_a"], found["qa_b"] = build_qa()
    promptlog.open().status()  # everything written
    return found
