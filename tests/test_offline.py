"""The offline model, called through litellm as any provider would be."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import threading
import time
from enum import Enum
from typing import Literal

import pytest
from pydantic import BaseModel, Field

offline = pytest.importorskip("promptlog.offline")
litellm = pytest.importorskip("litellm")


class Level(str, Enum):
    junior = "junior"
    senior = "senior"
    principal = "principal"


class Skill(BaseModel):
    name: str
    years: int = Field(ge=1, le=30)


class Job(BaseModel):
    name: str = Field(..., description="A job name.")
    description: str
    level: Level
    skills: list[Skill] = Field(min_length=1, max_length=4)
    mentor: Skill | None = None
    tags: list[str]
    salary: float = Field(gt=0)
    remote: bool
    code: str = Field(min_length=5, max_length=8)
    kind: Literal["full-time", "part-time"]


class JobName(BaseModel):
    name: str
    description: str


SYSTEM = {"role": "system", "content": "You are a data science manager."}


def ask(text: str) -> list[dict[str, str]]:
    return [SYSTEM, {"role": "user", "content": text}]


def complete(messages: list[dict[str, str]], **kwargs: object) -> litellm.ModelResponse:
    return litellm.completion(model=offline.MODEL_NAME, messages=messages, **kwargs)


def content(response: litellm.ModelResponse) -> str:
    return response.choices[0].message.content


@pytest.fixture(autouse=True, scope="module")
def registered() -> None:
    offline.register()


def test_register_is_idempotent():
    offline.register()
    offline.register()
    providers = [item["provider"] for item in litellm.custom_provider_map]
    assert providers.count("promptlog") == 1


def test_plain_reply_is_a_few_english_sentences_about_the_prompt():
    messages = ask("How should I calibrate a telescope for planetary photography?")
    replies = [content(complete(messages, seed=seed)) for seed in range(5)]
    for text in replies:
        assert text.count(".") >= 2
        with pytest.raises(ValueError):
            json.loads(text)
    assert any("telescope" in text or "planetary" in text for text in replies)


def test_same_seed_same_reply_and_other_seeds_differ():
    messages = ask("Name a team that builds data pipelines.")
    assert content(complete(messages, seed=7)) == content(complete(messages, seed=7))
    assert len({content(complete(messages, seed=seed)) for seed in range(5)}) == 5
    structured = [content(complete(messages, seed=s, response_format=Job)) for s in (1, 1, 2)]
    assert structured[0] == structured[1] != structured[2]


def test_without_seed_temperature_decides_whether_replies_vary():
    messages = ask("Suggest a name for a reading club.")
    assert len({content(complete(messages)) for _ in range(3)}) == 1
    assert len({content(complete(messages, temperature=0)) for _ in range(3)}) == 1
    assert len({content(complete(messages, temperature=0.7)) for _ in range(5)}) > 1


def test_reply_is_a_pure_function_matching_the_litellm_call():
    messages = ask("Describe a robust evaluation harness.")
    expected = offline.reply(messages, seed=3, response_format=Job)
    assert offline.reply(messages, seed=3, response_format=Job) == expected
    assert content(complete(messages, seed=3, response_format=Job)) == expected


def test_structured_reply_validates_against_a_nested_model():
    messages = ask("Give me a job for someone who builds full stack AI apps.")
    jobs = [
        Job.model_validate_json(content(complete(messages, seed=seed, response_format=Job)))
        for seed in range(40)
    ]
    assert {job.level for job in jobs} == set(Level)
    assert {job.mentor is None for job in jobs} == {True, False}
    for job in jobs:
        words = job.name.split()
        assert 2 <= len(words) <= 4
        assert all(word[0].isupper() for word in words)
    assert all(job.description.endswith(".") for job in jobs)


def test_structured_reply_follows_a_dict_schema():
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 30},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "required": ["title", "score", "ratio", "items", "extra"],
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"label": {"enum": ["a", "b"]}, "note": {"type": ["string", "null"]}},
            }
        },
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    for seed in range(10):
        data = json.loads(
            content(complete(ask("Rate it."), seed=seed, response_format=response_format))
        )
        assert len(data["title"]) <= 30
        assert 1 <= data["score"] <= 5
        assert 0 < data["ratio"] <= 1
        assert len(data["items"]) >= 2
        assert all(item["label"] in ("a", "b") for item in data["items"])
        assert all(isinstance(value, int) for value in data["extra"].values())


def test_json_object_mode_returns_a_json_object():
    response = complete(ask("List three ideas."), response_format={"type": "json_object"})
    assert isinstance(json.loads(content(response)), dict)


def test_a_json_schema_in_the_prompt_is_followed_without_response_format():
    from promptlog.schemas import schema_instructions

    system = {"role": "system", "content": f"You name jobs.\n\n"
              f"{schema_instructions(JobName.model_json_schema())}"}
    messages = [system, {"role": "user", "content": "Someone who builds AI apps."}]
    for response_format in (None, {"type": "json_object"}):
        for seed in range(5):
            text = content(complete(messages, seed=seed, response_format=response_format))
            assert JobName.model_validate_json(text).name


class Endless(BaseModel):
    me: Endless


def test_a_schema_with_no_finite_instance_is_a_bad_request_not_a_recursion_error():
    with pytest.raises(litellm.BadRequestError, match="no finite instance"):
        complete(ask("Go on."), response_format=Endless)
    with pytest.raises(ValueError, match="no finite instance"):
        offline.reply(ask("Go on."), response_format=Endless)


def names(text: str, seeds: int = 30) -> list[str]:
    return [
        JobName.model_validate_json(offline.reply(ask(text), seed=s, response_format=JobName)).name
        for s in range(seeds)
    ]


def test_name_length_depends_on_the_prompt_wording():
    task = "a job that follows this description: someone who builds full stack AI apps."
    plain = statistics.mean(map(len, names(f"Give me a name for {task}")))
    reworded = statistics.mean(map(len, names(f"Suggest a fitting name for {task}")))
    assert abs(plain - reworded) > 2


def test_length_hints_in_the_prompt_are_followed():
    task = "a job that follows this description: someone who builds full stack AI apps."
    two_words = names(f"Give me a catchy name (two words at most) for {task}")
    short = names(f"Give me a short name for {task}")
    detailed = names(f"Give me a long, descriptive name for {task}")
    assert all(len(name.split()) == 2 for name in two_words)
    assert statistics.mean(map(len, short)) + 5 < statistics.mean(map(len, detailed))


def test_invalid_json_hook_breaks_only_the_first_reply():
    messages = ask("Name a job. [offline:invalid-json]")
    first = content(complete(messages, response_format=JobName))
    with pytest.raises(ValueError):
        json.loads(first)
    retry = [
        *messages,
        {"role": "assistant", "content": first},
        {"role": "user", "content": "That was not valid JSON; try again."},
    ]
    job = JobName.model_validate_json(content(complete(retry, response_format=JobName)))
    assert "offline" not in job.name.lower()  # the hook is not taken for a word of the prompt


def test_always_invalid_hook_never_gives_json():
    messages = ask("Name a job. [offline:always-invalid]")
    for _ in range(2):
        text = content(complete(messages, response_format=JobName))
        with pytest.raises(ValueError):
            json.loads(text)
        messages = [
            *messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": "Please answer in JSON."},
        ]


def test_response_has_usage_model_and_zero_cost():
    response = complete(ask("Say something about metrics."), seed=1)
    words_in = len("You are a data science manager. Say something about metrics.".split())
    assert response.model == "promptlog/offline"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens >= words_in
    assert response.usage.completion_tokens >= len(content(response).split())
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    assert response._hidden_params["response_cost"] == 0
    assert litellm.completion_cost(response) == 0


def test_any_model_name_under_the_provider_works():
    response = litellm.completion(model="promptlog/tiny", messages=ask("Hello there."))
    assert response.model == "promptlog/tiny"
    assert content(response)
    assert litellm.completion_cost(response) == 0


def test_latency_parameter_delays_the_reply():
    start = time.perf_counter()
    complete(ask("Take your time."), latency=0.2)
    assert time.perf_counter() - start >= 0.2


def test_streaming_gives_the_same_text():
    messages = ask("Stream a short answer about gardens.")
    chunks = list(complete(messages, seed=2, stream=True))
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert streamed == content(complete(messages, seed=2))


def test_acompletion_matches_completion():
    messages = ask("Name an async job queue.")

    async def call() -> litellm.ModelResponse:
        return await litellm.acompletion(
            model=offline.MODEL_NAME, messages=messages, seed=4, response_format=JobName
        )

    response = asyncio.run(call())
    assert content(response) == content(complete(messages, seed=4, response_format=JobName))
    JobName.model_validate_json(content(response))


def test_sixteen_threads_register_and_call_at_once():
    # Start unregistered, with a model name not priced yet, so both happen under contention.
    litellm.custom_provider_map[:] = [
        item for item in litellm.custom_provider_map if item["provider"] != "promptlog"
    ]
    barrier = threading.Barrier(16)
    results: list[str] = []
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            offline.register()
            response = litellm.completion(
                model="promptlog/threads",
                messages=ask("Name a parallel job."),
                seed=index % 2,
                response_format=Job,
            )
            Job.model_validate_json(content(response))
            results.append(content(response))
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(results) == 16
    assert len(set(results)) == 2
    providers = [item["provider"] for item in litellm.custom_provider_map]
    assert providers.count("promptlog") == 1
    assert litellm.model_cost["promptlog/threads"]["input_cost_per_token"] == 0


def test_a_request_for_n_items_gets_a_list_of_n():
    schema = {"type": "object", "properties": {"return_value": {"type": "array",
              "items": {"type": "string"}}}, "required": ["return_value"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    for n in (1, 3, 7):
        text = offline.reply([{"role": "user", "content": f"Create {n} mock customers."}],
                     response_format=fmt)
        assert len(json.loads(text)["return_value"]) == n


def test_a_proposal_nudges_floats_as_floats_step_after_step():
    # 1.0 x 1.25 x 0.8 is 1.0: written "1", the next step would nudge it as an int,
    # to 0 or -1, which code such as svm.SVC(C=...) refuses.
    x = "clf = svm.SVC(C=1.0, gamma=0.01)"
    numbers = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?")
    for seed in range(40):
        shown = x
        for step in range(6):
            asked = f"Best so far:\n```\n{shown}\n```\nPropose the next x in a fenced block."
            reply = content(complete(ask(asked), seed=seed * 10 + step))
            shown = re.findall(r"```\n(.*?)\n```", reply, re.DOTALL)[-1]
            values = numbers.findall(shown)
            assert len(values) == 2 and all(float(v) > 0 and ("." in v or "e" in v)
                                            for v in values), (seed, step, shown)
