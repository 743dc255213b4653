"""The fake OpenAI server, driven through litellm's real HTTP path."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from promptlog.testing import FakeOpenAIServer

MESSAGES = [
    {"role": "system", "content": "You are a helpful bot."},
    {"role": "user", "content": "Say hello to me"},
]

# Both are needed to see exactly one HTTP request per call: `max_retries` is the openai
# SDK's own retry count (litellm's default is 2), `num_retries` litellm's retry wrapper.
NO_RETRIES: dict[str, Any] = {"max_retries": 0, "num_retries": 0}


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def complete(litellm: ModuleType, server: FakeOpenAIServer, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    return litellm.completion(
        model=server.model, api_base=server.base_url, api_key="sk-fake", **kwargs
    )


def assert_port_closed(server: FakeOpenAIServer) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_reply_with_deterministic_usage(litellm, fake_openai):
    response = complete(litellm, fake_openai)

    assert response.choices[0].message.content == "Hello from the fake server."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens == 9  # 5 + 4 words
    assert response.usage.completion_tokens == 5
    assert response.usage.total_tokens == 14
    assert fake_openai.request_count == 1
    (request,) = fake_openai.requests
    assert request["model"] == "fake-model"
    assert request["messages"] == MESSAGES
    assert fake_openai.request_headers[0]["authorization"] == "Bearer sk-fake"


def test_scripted_500_raises_internal_server_error(litellm, fake_openai):
    fake_openai.enqueue(status=500)

    with pytest.raises(litellm.InternalServerError) as excinfo:
        complete(litellm, fake_openai, **NO_RETRIES)

    assert "Scripted 500" in str(excinfo.value)
    assert fake_openai.request_count == 1


def test_429_raises_rate_limit_error_then_next_call_succeeds(litellm, fake_openai):
    fake_openai.enqueue(status=429, headers={"retry-after": "0"})

    with pytest.raises(litellm.RateLimitError):
        complete(litellm, fake_openai, **NO_RETRIES)
    response = complete(litellm, fake_openai, **NO_RETRIES)

    assert response.choices[0].message.content == "Hello from the fake server."
    assert fake_openai.request_count == 2


def test_openai_sdk_retries_a_429_after_retry_after_ms(litellm, fake_openai):
    # The SDK ignores a retry-after of 0 and backs off 0.5-1 s; a small positive
    # retry-after-ms is honoured, which keeps retry tests fast.
    fake_openai.enqueue(status=429, headers={"retry-after-ms": "10"})

    start = time.perf_counter()
    response = complete(litellm, fake_openai, max_retries=1)

    assert time.perf_counter() - start < 0.4
    assert response.choices[0].message.content == "Hello from the fake server."
    retry_counts = [h.get("x-stainless-retry-count") for h in fake_openai.request_headers]
    assert retry_counts == ["0", "1"]


def test_scripted_content_and_body(litellm, fake_openai):
    fake_openai.enqueue(content="{not json")
    fake_openai.enqueue(
        status=400,
        body={"error": {"message": "maximum context length exceeded", "type": "x", "code": None}},
    )

    assert complete(litellm, fake_openai).choices[0].message.content == "{not json"
    with pytest.raises(litellm.BadRequestError, match="maximum context length"):
        complete(litellm, fake_openai, **NO_RETRIES)


def test_slow_reply_and_latency(litellm, fake_openai):
    complete(litellm, fake_openai)  # warm litellm's client cache
    fake_openai.enqueue(delay=0.5)

    start = time.perf_counter()
    complete(litellm, fake_openai)
    slow = time.perf_counter() - start
    fake_openai.latency = 0.2
    start = time.perf_counter()
    complete(litellm, fake_openai)
    default = time.perf_counter() - start

    assert 0.5 <= slow < 1.5
    assert 0.2 <= default < 1.2


def test_structured_reply_fits_the_json_schema(litellm, fake_openai):
    class Address(BaseModel):
        city: str
        zip_code: int

    class Person(BaseModel):
        name: str
        score: float
        active: bool
        tags: list[str]
        kind: Literal["a", "b"]
        address: Address
        nickname: str | None = None

    response = complete(litellm, fake_openai, response_format=Person)

    person = Person.model_validate_json(response.choices[0].message.content)
    assert person.address.city == "example"
    assert fake_openai.requests[0]["response_format"]["type"] == "json_schema"


@pytest.mark.fake_openai(response_formats=["text", "json_object"])
def test_a_response_format_the_server_does_not_take_gets_a_400_naming_it(litellm, fake_openai):
    class Person(BaseModel):
        name: str

    fake_openai.enqueue(content='{"name": "queued"}')
    with pytest.raises(litellm.BadRequestError, match="response_format") as caught:
        complete(litellm, fake_openai, response_format=Person, **NO_RETRIES)
    assert "json_schema" in str(caught.value)

    # The refusal used no queued response; the formats the server takes are answered.
    reply = complete(litellm, fake_openai, response_format={"type": "json_object"})
    assert reply.choices[0].message.content == '{"name": "queued"}'
    assert complete(litellm, fake_openai).choices[0].message.content.startswith("Hello")
    assert [r.get("response_format", {}).get("type") for r in fake_openai.requests] == [
        "json_schema", "json_object", None
    ]


def test_a_schema_in_the_prompt_gets_a_reply_that_fits_it(litellm, fake_openai):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    system = f"Answer with this JSON schema:\n```json\n{json.dumps(schema)}\n```"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Where?"}]
    for response_format in (None, {"type": "json_object"}):
        response = complete(litellm, fake_openai, messages=messages,
                            response_format=response_format)
        assert json.loads(response.choices[0].message.content) == {"city": "example"}


def test_streaming_reply(litellm, fake_openai):
    chunks = complete(litellm, fake_openai, stream=True)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)

    assert text == "Hello from the fake server."


def test_models_list_and_unknown_path(fake_openai):
    with urllib.request.urlopen(f"{fake_openai.base_url}/models", timeout=5) as response:
        models = json.load(response)
    assert models["data"][0]["id"] == "fake-model"

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{fake_openai.base_url}/nothing", timeout=5)
    assert excinfo.value.code == 404
    assert "error" in json.load(excinfo.value)


def test_stops_by_itself_after_max_requests(litellm):
    with FakeOpenAIServer(max_requests=2) as server:
        complete(litellm, server)
        complete(litellm, server)

        assert server.wait_stopped(timeout=5)
        assert not server.running
        # litellm 1.106 maps the openai SDK's APIConnectionError (refused) to a 500.
        with pytest.raises(litellm.InternalServerError, match="Connection error"):
            complete(litellm, server, **NO_RETRIES)
        assert server.request_count == 2
        assert_port_closed(server)


def test_stops_by_itself_after_max_seconds_even_mid_reply(litellm):
    server = FakeOpenAIServer(max_seconds=0.5).start()  # never stopped by the test
    server.enqueue(delay=60)

    start = time.perf_counter()
    with pytest.raises(litellm.InternalServerError, match="Connection error"):
        complete(litellm, server, **NO_RETRIES)

    assert time.perf_counter() - start < 5
    assert server.wait_stopped(timeout=5)
    assert_port_closed(server)
    assert not any(t.name.startswith("FakeOpenAIServer") for t in threading.enumerate())


def test_32_concurrent_calls_all_succeed(litellm):
    with FakeOpenAIServer(latency=0.3) as server:
        complete(litellm, server)  # warm up outside the timing
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            responses = list(pool.map(lambda _: complete(litellm, server, **NO_RETRIES), range(32)))
        elapsed = time.perf_counter() - start

    assert all(r.choices[0].message.content == "Hello from the fake server." for r in responses)
    assert server.request_count == 33
    assert elapsed < 32 * 0.3 / 4  # the replies overlapped


def test_call_overhead_is_small(litellm, fake_openai):
    for _ in range(3):
        complete(litellm, fake_openai)
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        complete(litellm, fake_openai)
        timings.append(time.perf_counter() - start)

    assert statistics.median(timings) < 0.25


def post(port: int, connection: http.client.HTTPConnection | None = None) -> int:
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"model": "fake-model", "messages": MESSAGES})
    connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def test_keep_alive_replies_do_not_wait_for_delayed_acks(fake_openai):
    # With Nagle's algorithm on, every keep-alive reply took ~40 ms on Linux.
    connection = http.client.HTTPConnection("127.0.0.1", fake_openai.port, timeout=10)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        assert post(fake_openai.port, connection) == 200
        timings.append(time.perf_counter() - start)

    assert statistics.median(timings) < 0.02


def test_100_concurrent_connections(fake_openai):
    fake_openai.latency = 0.5

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(lambda _: post(fake_openai.port), range(100)))

    assert statuses == [200] * 100
    assert time.perf_counter() - start < 0.5 * 4


def _echo_temperature(request: dict[str, Any]) -> str:
    last = request["messages"][-1]["content"]
    if "boom" in last:
        raise ValueError("the stand-in cannot answer this")
    return f"{last.upper()} at {request.get('temperature')}"


@pytest.mark.fake_openai(responder=_echo_temperature)
def test_a_responder_writes_each_reply_from_its_request(litellm, fake_openai):
    fake_openai.enqueue(content="queued first")
    replies = [
        complete(litellm, fake_openai, messages=[{"role": "user", "content": text}],
                 temperature=0.5, **NO_RETRIES)
        for text in ("one", "two")
    ]
    assert [r.choices[0].message.content for r in replies] == ["queued first", "TWO at 0.5"]
    with pytest.raises(litellm.InternalServerError, match="ValueError: the stand-in cannot"):
        complete(litellm, fake_openai, messages=[{"role": "user", "content": "boom"}],
                 **NO_RETRIES)
