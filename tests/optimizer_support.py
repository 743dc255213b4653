"""A small question-answering program for the optimiser tests, and its data.

The model comes from the environment (``PROMPTLOG_MODEL``, ``OPENAI_API_BASE``), so
that a fresh process importing this module talks to the same stand-in server. The
task is the "follows examples" stand-in's: an answer is right only when a demo shows
the question, or one sharing its first word.
"""

from __future__ import annotations

from pydantic import BaseModel

from promptlog import llm_function

WORDS = ["apple", "berry", "cherry", "grape", "lemon", "mango", "olive", "peach"]

# Every question starts with a word of its own: no example helps another.
TRAIN = [{"question": f"{w} one", "answer": w.upper()} for w in WORDS]
# The same first words: train-like questions.
DEV = [{"question": f"{w} two", "answer": w.upper()} for w in WORDS]
# Questions in pairs sharing their first word: each helps the other.
PAIRED = [{"question": f"{w} {n}", "answer": w.upper()} for w in WORDS[:4] for n in ("one", "six")]
EVERYTHING = TRAIN + DEV + PAIRED


@llm_function(temperature=0)
def answer(question: str) -> str:
    """Answer the question in one word."""


def qa(question: str) -> str:
    return answer(question).strip()


def exact(example: dict[str, str], prediction: str) -> bool:
    return prediction == example["answer"]


class Reply(BaseModel):
    answer: str


@llm_function(temperature=0)
def answer_structured(question: str, hint: str = "one word") -> Reply:
    """Answer this question in {{ hint }}: {{ question }}"""


def structured_qa(question: str) -> str:
    return answer_structured(question).answer.strip()
