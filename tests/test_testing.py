"""The stand-in models of ``promptlog.testing`` answer DSPy's requests as well as
promptlog's, so that the benchmarks can run DSPy's optimisers on the same stand-ins:
each reply in the layout its request asks for. The DSPy requests here are laid out as
DSPy 3.4's chat and JSON adapters lay them out."""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import Any

import pytest

from promptlog import llm_function, overrides
from promptlog.testing import FakeOpenAIServer, FollowsExamples, Keyword, Proposer, Reflector

EXAMPLES = [
    {"question": "spell cat", "answer": "C-A-T"},
    {"question": "spell moon", "answer": "M-O-O-N"},
    {"question": "count river", "answer": "5"},
    {"question": "count pencil", "answer": "6"},
]

# What DSPy 3.4's ChatAdapter sends for a Predict of "question -> answer": the
# signature and instructions, each demo as a user turn and an assistant turn, then
# the call, ending with the fields it must answer.
DSPY_SYSTEM = """Your input fields are:
1. `question` (str):
Your output fields are:
1. `answer` (str):
All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## question ## ]]
{question}

[[ ## answer ## ]]
{answer}

[[ ## completed ## ]]
In adhering to this structure, your objective is: 
        {instructions}"""  # noqa: W291 - DSPy's own trailing space
DSPY_ASK = (
    "Respond with the corresponding output fields, starting with the field "
    "`[[ ## answer ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`."
)


def dspy_messages(
    question: str, demos: list[dict[str, str]], instructions: str = "Answer the question."
) -> list[dict[str, str]]:
    system = DSPY_SYSTEM.replace("{instructions}", instructions)
    messages = [{"role": "system", "content": system}]
    for demo in demos:
        messages.append({"role": "user", "content": f"[[ ## question ## ]]\n{demo['question']}"})
        messages.append({"role": "assistant", "content":
                         f"[[ ## answer ## ]]\n{demo['answer']}\n\n[[ ## completed ## ]]\n"})
    messages.append({"role": "user", "content": f"[[ ## question ## ]]\n{question}\n\n{DSPY_ASK}"})
    return messages


def dspy_reply(answer: str) -> str:
    return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def ask(litellm: ModuleType, server: FakeOpenAIServer, messages: list[dict[str, Any]]) -> str:
    response = litellm.completion(model=server.model, api_base=server.base_url,
                                  api_key="sk-fake", messages=messages, num_retries=0)
    return str(response.choices[0].message.content).strip()


def test_follows_examples_answers_dspy_in_its_field_markers(litellm):
    with FakeOpenAIServer(responder=FollowsExamples(EXAMPLES), max_seconds=60) as server:
        zero_shot = ask(litellm, server, dspy_messages("spell moon", []))
        other_kind = ask(litellm, server, dspy_messages("spell moon", EXAMPLES[2:3]))
        same_kind = ask(litellm, server, dspy_messages("spell moon", EXAMPLES[2:3] + EXAMPLES[:1]))
        shown = ask(litellm, server, dspy_messages("count pencil", EXAMPLES[3:]))
    assert zero_shot == dspy_reply("I do not know.")
    assert other_kind == dspy_reply("I do not know.")
    assert same_kind == dspy_reply("M-O-O-N")
    assert shown == dspy_reply("6")


@pytest.mark.fake_openai(responder=FollowsExamples(EXAMPLES))
def test_follows_examples_answers_a_typed_function_in_plain_text(fake_openai):
    @llm_function(model_name=fake_openai.model, api_base=fake_openai.base_url,
                  api_key="sk-fake")
    def answer(question: str) -> str:
        """Answer the question."""

    demo = {"inputs": {"question": "spell cat"}, "output": "C-A-T"}
    assert answer("spell moon") == "I do not know."
    with overrides({answer: {"demos": [demo]}}):
        assert answer("spell moon") == "M-O-O-N"
        assert answer("count river") == "I do not know."


def test_keyword_answers_dspy_only_when_its_instructions_have_the_word(litellm):
    with FakeOpenAIServer(responder=Keyword(EXAMPLES, word="carefully"),
                          max_seconds=60) as server:  # fmt: skip
        plain = ask(litellm, server, dspy_messages("spell moon", []))
        careful = ask(litellm, server, dspy_messages(
            "spell moon", [], instructions="Answer the question carefully."))
    assert plain == dspy_reply("I do not know.")
    assert careful == dspy_reply("M-O-O-N")


# COPRO's second round: the instructions tried, worst first, with their scores.
COPRO_SYSTEM = """Your input fields are:
1. `attempted_instructions` (str):
Your output fields are:
1. `proposed_instruction` (str): The improved instructions for the language model
2. `proposed_prefix_for_output_field` (str): The string at the end of the prompt, which will help the model start solving the task
All interactions will be structured in the following way, with the appropriate values filled in.

[[ ## attempted_instructions ## ]]
{attempted_instructions}

[[ ## proposed_instruction ## ]]
{proposed_instruction}

[[ ## proposed_prefix_for_output_field ## ]]
{proposed_prefix_for_output_field}

[[ ## completed ## ]]
In adhering to this structure, your objective is: 
        You are an instruction optimizer for large language models. I will give some task instructions I've tried, along with their corresponding validation scores. The instructions are arranged in increasing order based on their scores, where higher scores indicate better quality."""  # noqa: E501, W291
COPRO_USER = """[[ ## attempted_instructions ## ]]
[1] «Instruction #1: Answer the question.»
[2] «Prefix #1: Answer:»
[3] «Resulting Score #1: 0.0»
[4] «Instruction #2: Answer the question briefly.»
[5] «Prefix #2: Answer:»
[6] «Resulting Score #2: 12.5»

Respond with the corresponding output fields, starting with the field `[[ ## proposed_instruction ## ]]`, then `[[ ## proposed_prefix_for_output_field ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`."""  # noqa: E501


def copro_reply(instruction: str) -> str:
    return (f"[[ ## proposed_instruction ## ]]\n{instruction}\n\n"
            f"[[ ## proposed_prefix_for_output_field ## ]]\nAnswer:\n\n[[ ## completed ## ]]")


def test_the_proposer_answers_copro_its_suggestions_in_turn(litellm):
    proposer = Proposer(["Be brief.", "Think carefully."], build_on_best=True)
    messages = [{"role": "system", "content": COPRO_SYSTEM},
                {"role": "user", "content": COPRO_USER}]
    with FakeOpenAIServer(responder=proposer, max_seconds=60) as server:
        replies = [ask(litellm, server, messages) for _ in range(3)]
    assert replies == [copro_reply("Answer the question briefly. Be brief."),
                       copro_reply("Answer the question briefly. Think carefully."),
                       copro_reply("Answer the question briefly. Be brief.")]
    assert proposer.attempts[0] == [(0.0, "Answer the question."),
                                    (12.5, "Answer the question briefly.")]


# GEPA's reflection, through DSPy's JSON adapter.
GEPA_SYSTEM = """Your input fields are:
1. `current_instruction` (str): The instructions I provided to the assistant.
2. `examples_with_feedback` (list[dict[str, Any]]): Task inputs provided to the assistant, the assistant's response for each, and feedback on how the response could be better.
Your output fields are:
1. `new_instruction` (str): The new instruction for the assistant.
All interactions will be structured in the following way, with the appropriate values filled in.

Inputs will have the following structure:

[[ ## current_instruction ## ]]
{current_instruction}

[[ ## examples_with_feedback ## ]]
{examples_with_feedback}

Outputs will be a JSON object with the following fields.

{
  "new_instruction": "{new_instruction}"
}
In adhering to this structure, your objective is: 
        I provided an assistant with instructions to perform a task for me."""  # noqa: E501, W291


def gepa_messages(feedback: str) -> list[dict[str, str]]:
    examples = json.dumps([{"Inputs": {"question": "spell moon"},
                            "Generated Outputs": {"answer": "I do not know."},
                            "Feedback": feedback}])  # fmt: skip
    user = (f"[[ ## current_instruction ## ]]\nAnswer the question.\n\n"
            f"[[ ## examples_with_feedback ## ]]\n{examples}\n\n"
            f"Respond with a JSON object in the following order of fields: `new_instruction`.")
    return [{"role": "system", "content": GEPA_SYSTEM}, {"role": "user", "content": user}]


def test_the_reflector_answers_gepa_in_json_adding_the_word_on_failing_feedback(litellm):
    reflector = Reflector("carefully", failing="wrong: expected")
    with FakeOpenAIServer(responder=reflector, max_seconds=60) as server:
        failing = ask(litellm, server, gepa_messages("wrong: expected 'M-O-O-N'"))
        passing = ask(litellm, server, gepa_messages("right"))
    assert json.loads(failing) == {"new_instruction": "Answer the question. Work carefully."}
    assert json.loads(passing) == {"new_instruction": "Answer the question."}
    assert (reflector.requests, reflector.failing_seen) == (2, 1)
