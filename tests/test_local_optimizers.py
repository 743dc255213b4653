"""An instruction optimiser on a real (tiny) model: SmolLM2-135M-Instruct, served by
llama.cpp. Every call passes max_tokens; the long answers still have room to be long."""

from __future__ import annotations

import promptlog
from promptlog import llm_function, metric, optimizers

QUESTIONS = [
    {"question": "What do bees make?", "fact": "honey"},
    {"question": "Who wrote Romeo and Juliet?", "fact": "Shakespeare"},
    {"question": "What is frozen water called?", "fact": "ice"},
]
SHORT = "Answer in one short sentence. {{ question }}"
CANDIDATES = ["Explain your answer in detail. {{ question }}", SHORT]


@metric
def words(reply: str) -> int:
    return len(reply.split())


def right_and_brief(example: dict[str, str], prediction: str) -> float:
    """1 for a right answer of at most 30 words, less the longer it is; 0 if wrong."""
    right = example["fact"].lower() in prediction.lower()
    return float(right) * min(1.0, 30 / max(1, len(prediction.split())))


def test_instruction_search_finds_the_instruction_that_cuts_the_words(local_model):
    @llm_function(**local_model.bot_kwargs, temperature=0, max_tokens=200)
    def answer(question: str) -> str:
        """{{ question }}"""

    def program(question: str) -> str:
        reply = answer(question)
        words(reply)
        return reply

    def fixed_list(signature, attempts, n):
        return CANDIDATES

    result = optimizers.InstructionSearch(
        right_and_brief, proposer=fixed_list, breadth=2, depth=1
    ).compile(program, trainset=QUESTIONS, name="shorter", max_workers=2, quiet=True)

    assert result.best == {answer.name: {"template": SHORT}}
    log = promptlog.open()
    before = log.runs(result.baseline.experiment_id)
    after = log.runs(result.best_candidate.experiment_id)
    print(
        f"words: baseline {before['words'].mean():.0f}, best {after['words'].mean():.0f}; "
        f"score {result.baseline_score:.2f} -> {result.best_score:.2f}"
    )
    assert before["words"].mean() > 60
    assert after["words"].mean() < 30 and after["words"].max() <= 30
    # The answers stayed right: every short one holds its fact.
    assert all(score > 0 for (_, _), score in result.best_candidate.scores.items())
    assert result.best_score > result.baseline_score
