"""Run inside DSPy's own virtual environment: one of DSPy's optimisers on a one-step
question-answering program, against an OpenAI-compatible endpoint (the benchmark's
stand-in models), then the tuned program on the valset. Prints one JSON object.
Standard library and DSPy only.

    python dspy_optimizers.py SPEC_JSON

The spec: ``base_url``; ``task`` (the task model's name); ``instructions``;
``trainset`` and ``valset`` (lists of {"question", "answer"}); ``optimiser`` (a name
below) and ``options`` (its keyword arguments); ``proposer`` and ``reflector`` (the
names of the models that write instructions, for COPRO and GEPA).

Model calls are counted from DSPy's own history of each LM (the benchmark also
counts the requests its server receives); caching is off, so each entry is one call.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import dspy

spec: dict[str, Any] = json.loads(sys.argv[1])


def lm(model: str, **options: Any) -> dspy.LM:
    return dspy.LM(f"openai/{model}", api_base=spec["base_url"], api_key="sk-fake",
                   cache=False, max_tokens=200, **options)


def make_signature(instructions: str) -> type[dspy.Signature]:
    class Answer(dspy.Signature):
        question: str = dspy.InputField()
        answer: str = dspy.OutputField()

    return Answer.with_instructions(instructions)


class Program(dspy.Module):
    """The program: one typed step, question in, answer out."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.Predict(make_signature(spec["instructions"]))

    def forward(self, question: str) -> dspy.Prediction:
        return self.answer(question=question)


def exact(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> bool:
    return str(prediction.answer).strip() == example.answer


def exact_with_feedback(
    example: dspy.Example, prediction: dspy.Prediction, trace: Any = None,
    pred_name: str | None = None, pred_trace: Any = None,
) -> dspy.Prediction:
    """GEPA's metric: the score, and a sentence on what was wrong."""
    got = str(prediction.answer).strip()
    ok = got == example.answer
    feedback = "right" if ok else f"wrong: expected {example.answer!r}, got {got!r}"
    return dspy.Prediction(score=float(ok), feedback=feedback)


def examples(rows: list[dict[str, str]]) -> list[dspy.Example]:
    return [dspy.Example(**row).with_inputs("question") for row in rows]


def optimiser(name: str, options: dict[str, Any]) -> Any:
    quiet = {"num_threads": 1, "display_progress": False}
    if name == "LabeledFewShot":
        return dspy.LabeledFewShot(**options), {}
    if name == "BootstrapFewShot":
        return dspy.BootstrapFewShot(metric=exact, **options), {}
    if name == "BootstrapFewShotWithRandomSearch":
        return dspy.BootstrapFewShotWithRandomSearch(metric=exact, num_threads=1, **options), {
            "valset": valset}
    if name == "COPRO":  # COPRO scores its candidates on the trainset; it takes no valset
        return dspy.COPRO(prompt_model=lm(spec["proposer"]), metric=exact, **options), {
            "eval_kwargs": quiet}
    if name == "GEPA":
        return dspy.GEPA(metric=exact_with_feedback, reflection_lm=lm(spec["reflector"]),
                         num_threads=1, seed=0, **options), {"valset": valset}
    raise SystemExit(f"unknown optimiser {name!r}")


def calls(model: dspy.LM | None) -> int:
    return len(model.history) if model is not None else 0


trainset, valset = examples(spec["trainset"]), examples(spec["valset"])
dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
task = lm(spec["task"], temperature=0.0)
dspy.configure(lm=task)
teleprompter, extra = optimiser(spec["optimiser"], spec.get("options") or {})
started = time.perf_counter()
tuned = teleprompter.compile(Program(), trainset=trainset, **extra)
seconds = time.perf_counter() - started
compile_calls = calls(task)
scores = [float(exact(example, tuned(**example.inputs()))) for example in valset]
predictor = tuned.predictors()[0]
print(json.dumps({
    "optimiser": spec["optimiser"],
    "version": dspy.__version__,
    "seconds": seconds,
    "task_calls": compile_calls,
    "eval_calls": calls(task) - compile_calls,
    "instruction_calls": (calls(getattr(teleprompter, "prompt_model", None))
                          + calls(getattr(teleprompter, "reflection_lm", None))),
    "valset_score": sum(scores) / len(scores),
    "demos": len(predictor.demos),
    "instructions": predictor.signature.instructions,
}))
