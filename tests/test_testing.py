"""The stand-in models of ``promptlog.testing`` answer DSPy's requests as well as
promptlog's typed functions, so that the benchmarks can run DSPy's optimisers on the
same stand-ins: each reply in the layout its request asks for."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest

from promptlog import llm_function, overrides
from promptlog.testing import FakeOpenAIServer, FollowsExamples

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
        Answer the question."""  # noqa: W291 - DSPy's own trailing space
DSPY_ASK = (
    "Respond with the corresponding output fields, starting with the field "
    "`[[ ## answer ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`."
)


def dspy_messages(question: str, demos: list[dict[str, str]]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": DSPY_SYSTEM}]
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
