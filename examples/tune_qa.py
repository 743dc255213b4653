"""A small question-answering program tuned end to end: two instruction optimisers
look for better instructions, every candidate logged as a prompt version with its
scores, and the winner saved for production.

    python examples/tune_qa.py                       # on the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/tune_qa.py

The offline model makes its answers up, but it does what a real model does with
instructions such as "short" or "concise": it writes less. So the metric here asks
for concise answers (at most 32 words), and says what was wrong when an answer is
too long, which is what ReflectiveSearch's reflection reads. On the offline model,
two small functions stand in for the models that write instructions; with a real
model set, that model writes them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import promptlog
from promptlog import llm_function, optimizers

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")
OFFLINE = MODEL.startswith("promptlog/")
MAX_WORDS = 32

QUESTIONS = [
    "What do bees make?", "Why is the sky blue?", "How do plants grow?",
    "What is a volcano?", "How does a compass work?", "Why do cats purr?",
    "What is a glacier?", "How do birds fly?", "What makes thunder?",
    "Why does bread rise?", "How do tides work?", "What is a comet?",
]  # fmt: skip
TRAIN = [{"question": q} for q in QUESTIONS[:4]]
DEV = [{"question": q} for q in QUESTIONS[4:]]


@llm_function(model_name=MODEL, temperature=0)
def answer(question: str) -> str:  # type: ignore[empty-body]
    """Answer the question: {{ question }}"""


def qa(question: str) -> str:
    """The program: one typed function; a real one would retrieve, then answer."""
    return answer(question).strip()


def concise(example: dict[str, Any], prediction: str) -> tuple[float, str]:
    """1 for an answer of at most MAX_WORDS words, with a sentence of feedback."""
    words = len(prediction.split())
    if words <= MAX_WORDS:
        return 1.0, f"good: {words} words"
    return 0.0, f"too long: {words} words, at most {MAX_WORDS}"


def offline_proposer(signature: str, attempts: Sequence[tuple[str, float]], n: int) -> list[str]:
    """Stands in for a proposer model: the best instructions so far (the attempts come
    lowest score first), each with one sentence added."""
    best = attempts[-1][0]
    extras = ("Explain it in detail.", "Keep it short.", "Be concise.", "Answer in brief.")
    return [f"{best} {extra}" for extra in extras if extra not in best][:n]


def offline_reflection(signature: str, instructions: str, examples: list[dict[str, Any]]) -> str:
    """Stands in for a reflection model: it reads the feedback and, when answers were
    too long, asks for concise ones."""
    if any(str(e["feedback"]).startswith("too long") for e in examples):
        for advice in ("Be concise.", "Answer in brief.", "Keep it short."):
            if advice not in instructions:
                return f"{instructions} {advice}"
    return instructions


def main(out: Path = Path("tuned_qa.json")) -> optimizers.CompileResult:
    proposer: Any = offline_proposer if OFFLINE else MODEL
    reflection: Any = offline_reflection if OFFLINE else MODEL

    print("1. InstructionSearch: a proposer writes instructions from the scores so far.")
    search = optimizers.InstructionSearch(concise, proposer=proposer, breadth=3, depth=2)
    found = search.compile(qa, trainset=TRAIN, valset=DEV, name="tune-qa-instructions")

    print("\n2. ReflectiveSearch: a reflection model rewrites them from the feedback.")
    reflective = optimizers.ReflectiveSearch(
        concise, reflection_model=reflection, max_metric_calls=40, minibatch=3
    )
    reflected = reflective.compile(qa, trainset=TRAIN, valset=DEV, name="tune-qa-reflective")

    best = max((found, reflected), key=lambda result: result.best_score)
    print("\nCandidates of the better optimisation, each a prompt version:")
    print(best.candidates[["label", "prompt_versions", "score", "ci_low", "ci_high"]])
    print("\nCandidates × examples (1 = concise):")
    print(best.scores.pivot_table(index="candidate", columns="example_id", values="score")
          .rename(columns=lambda example_id: example_id[7:13]))  # fmt: skip
    tuned = best.best.get(answer.name, {}).get("template", answer.template)
    print(f"\nBest instructions: {tuned!r}")

    saved = best.save(out)
    print(f"Saved to {saved}; in production: promptlog.load_overrides({str(saved)!r})")
    promptlog.load_overrides(saved)
    reply = qa("How do volcanoes erupt?")
    print(f"Tuned answer ({len(reply.split())} words): {reply}")
    return best


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tuned_qa.json"))
