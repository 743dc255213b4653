"""A log for the viewer's tests, built on the offline model: the demo's two
versions of namer_user, two experiments with known metric values (exp-a, exp-b),
one whose runs 3 and 7 fail, two evaluations over the same five questions
(qa-a, qa-b: two versions of a prompt, two repeats each), and two optimisations: a
search (search-x) and a compile with three candidates (tune-qa)."""

from __future__ import annotations

from typing import Any

from test_read import build_constructed_log

import promptlog
from promptlog import Experiment, SimpleBot, current_run, demo, metric, prompt
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


# --- two optimisations ---------------------------------------------------------------

TARGET_WORDS = ("step", "carefully", "check")
# A search's steps: the x each candidate tried, and the random baseline's x.
SEARCH_X0 = "Answer the question."
SEARCH_STEPS = [
    ["Answer the question step by step.", "Answer the question briefly."],
    ["Think carefully and answer the question step by step.", "Answer step by step."],
    ["Think carefully, answer step by step, then check the answer.", "Answer carefully."],
]
BASELINE_X = ["Reply now.", "Answer carefully please.", "Question: answer."]
TUNED_TEMPLATES = [
    None,  # the baseline: qa_user as written
    "Think step by step, then answer with the number only: {{ question }}",
    "Check your sum twice, then answer with the number only: {{ question }}",
]


@metric
def score(value: float) -> float:
    return value


def instruction_score(x: str) -> int:
    """How many of the target words an instruction has: what the search maximises."""
    words = x.lower().replace(",", " ").replace(".", " ").split()
    return sum(word in words for word in TARGET_WORDS)


def _propose(step: int) -> dict[str, Any]:
    bot = SimpleBot("You propose instructions.", model_name=MODEL_NAME, temperature=0,
                    name="proposer")  # fmt: skip
    reply = bot(f"Propose a better instruction, step {step}.")
    return {"role": "proposal", "step": step, "reply": reply.content[:60]}


def _evaluate(item: tuple[int, int, str, bool]) -> dict[str, Any]:
    step, candidate, x, baseline = item
    found: dict[str, Any] = {"role": "evaluation", "step": step, "candidate": candidate,
                             "x": x, "score": score(instruction_score(x))}  # fmt: skip
    if baseline:
        found["baseline"] = True
    return found


def build_search() -> Experiment:
    """search-x: a search for an instruction, as promptlog.optimize keeps one: a
    proposal run and two evaluations a step, and a random baseline's evaluation."""
    exp = Experiment("search-x", kind="optimisation", max_workers=2, quiet=True,
                     metadata={"optimiser": "OPRO", "metric": "score", "minimize": False,
                               "max_steps": 3})  # fmt: skip
    with exp.session():
        exp.map(_evaluate, [(0, 0, SEARCH_X0, False)])
        for step, (xs, random_x) in enumerate(zip(SEARCH_STEPS, BASELINE_X, strict=True), 1):
            exp.map(_propose, [step])
            exp.map(_evaluate, [(step, i, x, False) for i, x in enumerate(xs)]
                    + [(step, 0, random_x, True)])  # fmt: skip
        best = SEARCH_STEPS[-1][0]
        exp.outcome = {"best_score": instruction_score(best), "best_x": best, "best_step": 3,
                       "steps": 3, "evaluations": 7, "stopped": "max_steps"}  # fmt: skip
    return exp


def tuned_answer(question: str) -> str:
    """A program that does what its prompt says: checked sums are right, step by
    step misses 5+5, the prompt as written misses 3+3 and 7+7."""
    content = qa_user(question).content
    n = int(question.split()[2].split("+")[0])
    if "Check" in content:
        return str(2 * n)
    if "step by step" in content:
        return "11" if n == 5 else str(2 * n)
    return str(2 * n - 1) if n in (3, 7) else str(2 * n)


def build_compile() -> tuple[Experiment, list[Experiment]]:
    """tune-qa: an instruction search as promptlog.optimizers keeps one: a proposal
    run of its own, and each candidate template evaluated over the questions as a
    child experiment (candidate 0 the baseline)."""
    parent = Experiment("tune-qa", kind="optimisation", quiet=True,
                        metadata={"optimiser": "InstructionSearch", "metric": "exact",
                                  "max_metric_calls": 40})  # fmt: skip
    candidates = []
    with parent.session():
        parent.map(_propose, [0])
        for i, template in enumerate(TUNED_TEMPLATES):
            overrides = {} if template is None else {"ui_support.qa_user": {"template": template}}
            with promptlog.overrides(overrides):
                candidates.append(promptlog.evaluate(
                    tuned_answer, QUESTIONS, metrics=[exact], name=f"tune-qa candidate {i}",
                    parent=parent, quiet=True,
                    metadata={"candidate": i, "label": "baseline" if i == 0 else "proposed",
                              "overrides": overrides},
                ))  # fmt: skip
        parent.outcome = {"best_score": 1.0, "baseline_score": 0.6, "best_candidate": 2,
                          "stopped": "finished", "metric_calls": 15, "calls": 1,
                          "cost": 0.0}  # fmt: skip
    return parent, candidates


def build_ui_log() -> dict[str, Any]:
    """The experiments by label: v1, v2 (offline demo), a, b (known values), flaky,
    qa_a, qa_b (over inputs), search (a search), tune and tune_0 … tune_2 (a compile
    and its candidates)."""
    found: dict[str, Any] = {
        label: demo.run_experiment(label, MODEL_NAME, DEMO_RUNS) for label in ("v1", "v2")
    }
    found["a"], found["b"] = build_constructed_log()
    found["flaky"] = Experiment("flaky", num_executions=FLAKY_RUNS, quiet=True)
    found["flaky"].run(flaky)
    found["qa_a"], found["qa_b"] = build_qa()
    found["search"] = build_search()
    found["tune"], tuned = build_compile()
    for i, candidate in enumerate(tuned):
        found[f"tune_{i}"] = candidate
    promptlog.open().status()  # everything written
    return found
