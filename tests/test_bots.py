"""Bots: every call attempt is one complete ``calls`` row, and nothing secret is written."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import litellm
import pytest
from faults_support import calls
from jobs import JobName, namer_system, namer_user
from pydantic import BaseModel

import promptlog
from promptlog import SimpleBot, StructuredBot, bots
from promptlog.errors import BotError, StructuredOutputError


def test_simple_bot_returns_the_reply_and_logs_a_complete_row(db_path):
    bot = SimpleBot(
        namer_system("data science manager"),
        model_name="gpt-4o-mini",
        temperature=0.3,
        name="namer",
        max_tokens=50,
        mock_response="Full-Stack AI Builder",
    )
    reply = bot(namer_user("someone who builds full stack AI apps"))
    assert reply.role == "assistant"
    assert reply.content == "Full-Stack AI Builder"

    (row,) = calls(db_path)
    assert row["bot_name"] == "namer"
    assert row["bot_class"] == "SimpleBot"
    assert row["model"] == "gpt-4o-mini"
    assert row["parameters"]["temperature"] == 0.3
    assert row["parameters"]["max_tokens"] == 50
    assert row["status"] == "succeeded" and row["error"] is None
    assert row["attempt"] == 1
    assert row["response_text"] == "Full-Stack AI Builder"
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["cost"] is not None and row["cost"] >= 0
    assert row["latency_s"] > 0
    assert row["created_at"].endswith("Z")
    assert row["run_id"] is None
    system, user = row["messages"]
    assert system["role"] == "system"
    assert system["content"] == "You are an data science manager."
    assert user["content"].endswith("full stack AI apps.")
    assert system["prompt_version_id"] == namer_system("x").prompt_version.id
    links = sqlite3.connect(db_path).execute(
        "SELECT position, prompt_version_id FROM call_prompt_versions WHERE call_id = ?",
        [row["id"]],
    ).fetchall()
    assert links == [(0, system["prompt_version_id"]), (1, user["prompt_version_id"])]


def test_plain_strings_are_user_messages(db_path):
    bot = SimpleBot("You are terse.", model_name="gpt-4o-mini", mock_response="ok")
    bot("first", "second")
    (row,) = calls(db_path)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "user"]
    assert all(m["prompt_version_id"] is None for m in row["messages"])
    with pytest.raises(BotError, match="no messages"):
        bot()


def test_structured_bot_returns_a_validated_model(db_path):
    bot = StructuredBot(
        namer_system("manager"),
        pydantic_model=JobName,
        model_name="gpt-4o-mini",
        mock_response='{"name": "AI Builder", "description": "Builds AI apps."}',
    )
    result = bot(namer_user("builds apps"))
    assert result == JobName(name="AI Builder", description="Builds AI apps.")
    (row,) = calls(db_path)
    assert row["response_parsed"] == {"name": "AI Builder", "description": "Builds AI apps."}
    assert row["parameters"]["response_format"] == {
        "type": "json_schema",
        "schema_name": "JobName",
    }


def test_structured_bot_retries_with_the_error_fed_back(db_path, fake_openai):
    fake_openai.enqueue(content="{not json")
    fake_openai.enqueue(content='{"name": "Only a name"}')
    fake_openai.enqueue(content='{"name": "AI Builder", "description": "Builds."}')
    bot = StructuredBot(
        "You name jobs.",
        pydantic_model=JobName,
        **fake_openai.bot_kwargs,
    )
    assert bot("name it").name == "AI Builder"
    rows = calls(db_path)
    assert [(r["attempt"], r["status"]) for r in rows] == [
        (1, "invalid"),
        (2, "invalid"),
        (3, "succeeded"),
    ]
    assert rows[0]["error"].startswith("ValidationError:")
    assert "description" in rows[1]["error"]
    # The second request carried the bad reply and the error back to the model.
    second = fake_openai.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "{not json"}
    assert "did not validate" in second[-1]["content"]


def test_structured_bot_gives_up_after_max_retries(db_path, fake_openai):
    fake_openai.enqueue(content="no JSON here", times=3)
    bot = StructuredBot(
        "You name jobs.",
        pydantic_model=JobName,
        **fake_openai.bot_kwargs,
        max_retries=2,
    )
    with pytest.raises(StructuredOutputError, match="after 3 attempts") as caught:
        bot("name it")
    assert [reply for reply, _ in caught.value.attempts] == ["no JSON here"] * 3
    assert [r["status"] for r in calls(db_path)] == ["invalid"] * 3


def test_usage_counts_come_from_the_provider(db_path, fake_openai):
    bot = SimpleBot("one two three", **fake_openai.bot_kwargs)
    bot("four five")
    (row,) = calls(db_path)
    assert row["input_tokens"] == 5  # the fake server counts words
    assert row["output_tokens"] == len(row["response_text"].split())
    assert row["parameters"]["api_base"] == fake_openai.base_url


def test_a_server_error_is_logged_as_a_failed_call_and_raised_as_it_came(db_path, fake_openai):
    fake_openai.enqueue(status=500)
    bot = SimpleBot("s", **fake_openai.bot_kwargs, num_retries=0)
    with pytest.raises(litellm.InternalServerError):
        bot("hello")
    (row,) = calls(db_path)
    assert row["status"] == "failed"
    assert row["error"].startswith("InternalServerError")
    assert row["response_text"] is None and row["latency_s"] > 0


def test_a_rate_limit_is_retried_and_each_attempt_logged(db_path, fake_openai):
    fake_openai.enqueue(status=429, headers={"retry-after": "0"})
    bot = SimpleBot("s", **fake_openai.bot_kwargs, retry_backoff=0.01)
    assert bot("hello").content
    rows = calls(db_path)
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "succeeded")]
    assert rows[0]["error"].startswith("RateLimitError")


def test_a_slow_reply_is_timed(db_path, fake_openai):
    fake_openai.enqueue(delay=0.3)
    bot = SimpleBot("s", **fake_openai.bot_kwargs)
    bot("hello")
    (row,) = calls(db_path)
    assert row["latency_s"] >= 0.3


def test_32_threads_of_50_calls_log_exactly_1600_complete_rows(db_path):
    bots = [
        SimpleBot(namer_system("manager"), model_name="gpt-4o-mini", name=f"bot{i}",
                  mock_response=f"reply {i}")
        for i in range(32)
    ]
    errors: list[BaseException] = []

    def work(bot: SimpleBot) -> None:
        try:
            for j in range(50):
                bot(namer_user(f"job {j}"))
        except BaseException as e:  # collected, then asserted empty
            errors.append(e)

    threads = [threading.Thread(target=work, args=(bot,)) for bot in bots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    conn = sqlite3.connect(db_path)
    promptlog.flush()
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1600
    assert dict(conn.execute("SELECT bot_name, COUNT(*) FROM calls GROUP BY bot_name")) == {
        f"bot{i}": 50 for i in range(32)
    }
    incomplete = conn.execute(
        "SELECT COUNT(*) FROM calls WHERE status != 'succeeded' OR response_text IS NULL "
        "OR input_tokens IS NULL OR latency_s IS NULL OR messages = '[]'"
    ).fetchone()[0]
    assert incomplete == 0
    assert conn.execute("SELECT COUNT(*) FROM call_prompt_versions").fetchone()[0] == 3200


def test_no_secret_reaches_the_database_file(db_path, fake_openai):
    secret = "sk-test-SECRET"
    fake_openai.enqueue(status=401, body={"error": {"message": f"Incorrect API key {secret}"}})
    bot = SimpleBot("s", model_name=fake_openai.model, api_base=fake_openai.base_url,
                    api_key=secret, extra_headers={"Authorization": "Bearer hdr-SECRET-123"},
                    num_retries=0)
    with pytest.raises(promptlog.CredentialsError):  # a rejected key: not retried
        bot("hello")
    bot("hello again")
    mocked = SimpleBot("s", model_name="gpt-4o-mini", api_key=secret, mock_response="fine")
    mocked(f"my key is {secret}")
    promptlog.flush()
    files = [db_path, Path(f"{db_path}-wal")]
    data = b"".join(p.read_bytes() for p in files if p.exists())
    assert b"SECRET" not in data
    assert len(calls(db_path)) == 3


# --- how the schema reaches the model ----------------------------------------


@pytest.fixture(autouse=True)
def fresh_structured_output_choices(monkeypatch):
    """Each test starts with no mode learnt: a port a server used may come back."""
    monkeypatch.setattr(bots, "_chosen_modes", {}, raising=False)


def sent_format(request: dict) -> str | None:
    response_format = request.get("response_format")
    return response_format["type"] if response_format else None


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
def test_each_structured_output_mode_sends_the_schema_its_way(db_path, fake_openai, mode):
    bot = StructuredBot(namer_system("manager"), pydantic_model=JobName,
                        structured_output=mode, **fake_openai.bot_kwargs)
    assert isinstance(bot(namer_user("builds apps")), JobName)
    (request,) = fake_openai.requests
    assert sent_format(request) == {"prompt": None}.get(mode, mode)
    system = request["messages"][0]["content"]
    assert system.startswith("You are an manager.")
    assert ('"description"' in system) == (mode != "json_schema")  # the schema, in the prompt
    (row,) = calls(db_path)
    assert row["status"] == "succeeded"
    assert row["parameters"]["structured_output"] == mode
    assert row["messages"][0]["content"] == system  # logged as sent
    assert row["messages"][0]["prompt_version_id"] == namer_system("x").prompt_version.id


@pytest.mark.fake_openai(response_formats=["text", "json_object"])
def test_a_server_that_refuses_json_schema_gets_json_mode_from_then_on(db_path, fake_openai):
    # litellm knows that gpt-4o-mini takes a JSON schema; this server does not.
    bot = StructuredBot("You name jobs.", pydantic_model=JobName, model_name="openai/gpt-4o-mini",
                        api_base=fake_openai.base_url, api_key="sk-fake")
    assert bot.structured_output_mode() == "json_schema"
    assert isinstance(bot("name it"), JobName)
    assert [sent_format(r) for r in fake_openai.requests] == ["json_schema", "json_object"]
    rows = calls(db_path)
    assert [(r["attempt"], r["status"], r["parameters"]["structured_output"]) for r in rows] == [
        (1, "failed", "json_schema"),
        (2, "succeeded", "json_object"),
    ]
    assert "response_format" in rows[0]["error"]

    # Remembered for this model and server, by any bot of the process.
    other = StructuredBot("You name jobs.", pydantic_model=JobName,
                          model_name="openai/gpt-4o-mini", api_base=fake_openai.base_url,
                          api_key="sk-fake")
    assert isinstance(other("name it again"), JobName)
    assert [sent_format(r) for r in fake_openai.requests[2:]] == ["json_object"]


@pytest.mark.fake_openai(response_formats=["text"])
def test_a_server_that_refuses_both_formats_gets_the_schema_in_the_prompt(db_path, fake_openai):
    fake_openai.enqueue(content="not JSON")  # a validation retry is a step of its own
    bot = StructuredBot("You name jobs.", pydantic_model=JobName, model_name="openai/gpt-4o-mini",
                        api_base=fake_openai.base_url, api_key="sk-fake")
    assert isinstance(bot("name it"), JobName)
    assert [sent_format(r) for r in fake_openai.requests] == ["json_schema", "json_object",
                                                              None, None]
    rows = calls(db_path)
    assert [(r["attempt"], r["status"], r["parameters"]["structured_output"]) for r in rows] == [
        (1, "failed", "json_schema"),
        (2, "failed", "json_object"),
        (3, "invalid", "prompt"),
        (4, "succeeded", "prompt"),
    ]
    assert bot.structured_output_mode() == "prompt"


@pytest.mark.fake_openai(response_formats=["text", "json_object"])
def test_a_forced_mode_never_falls_back(db_path, fake_openai):
    bot = StructuredBot("You name jobs.", pydantic_model=JobName, structured_output="json_schema",
                        **fake_openai.bot_kwargs)
    with pytest.raises(litellm.BadRequestError, match="response_format"):
        bot("name it")
    assert len(fake_openai.requests) == 1
    assert bot.describe()["structured_output"] == "json_schema"
    with pytest.raises(BotError, match="structured_output='xml'"):
        StructuredBot("s", pydantic_model=JobName, model_name="gpt-4o-mini",
                      structured_output="xml")
    with pytest.raises(BotError, match="structured_output="):
        StructuredBot("s", pydantic_model=JobName, model_name="gpt-4o-mini",
                      response_format={"type": "json_object"})


def test_the_mode_follows_what_litellm_knows_of_the_model():
    def mode(model: str) -> str:
        return StructuredBot("s", pydantic_model=JobName, model_name=model).structured_output_mode()

    assert mode("gpt-4o-mini") == "json_schema"
    assert mode("promptlog/offline") == "json_schema"
    assert mode("openai/some-local-model") == "json_object"  # OpenAI-style, schema unknown
    assert mode("replicate/some-model") == "prompt"  # no response_format at all


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
def test_the_offline_model_answers_in_every_mode(db_path, mode):
    bot = StructuredBot(namer_system("manager"), pydantic_model=JobName,
                        model_name="promptlog/offline", structured_output=mode)
    result = bot(namer_user("someone who builds full stack AI apps"))
    assert isinstance(result, JobName) and result.name
    (row,) = calls(db_path)
    assert (row["status"], row["parameters"]["structured_output"]) == ("succeeded", mode)


# --- models that no reply can satisfy -----------------------------------------


class Endless(BaseModel):
    me: Endless


class Ping(BaseModel):
    pong: Pong


class Pong(BaseModel):
    ping: Ping | Endless


class Tree(BaseModel):
    name: str
    children: list[Tree]
    parent: Tree | None = None


def test_a_model_that_recurses_with_no_way_to_end_is_refused_when_the_bot_is_made():
    for model in (Endless, Ping):
        with pytest.raises(BotError, match="no finite instance"):
            StructuredBot("s", pydantic_model=model, model_name="promptlog/offline")


def test_a_model_with_no_json_schema_is_refused_when_the_bot_is_made():
    class Handle(BaseModel, arbitrary_types_allowed=True):
        thread: threading.Thread

    with pytest.raises(BotError, match="Handle has no JSON schema"):
        StructuredBot("s", pydantic_model=Handle, model_name="promptlog/offline")


def test_a_recursive_model_with_a_way_to_end_works_on_the_offline_model(db_path):
    bot = StructuredBot("You draw trees.", pydantic_model=Tree, model_name="promptlog/offline")
    assert isinstance(bot("a family tree"), Tree)
    assert [r["status"] for r in calls(db_path)] == ["succeeded"]


# --- constructor arguments ------------------------------------------------------


def test_max_retries_on_a_simple_bot_says_to_pass_num_retries():
    with pytest.raises(BotError, match="num_retries=3"):
        SimpleBot("s", model_name="gpt-4o-mini", max_retries=3, mock_response="ok")
    with pytest.raises(BotError, match="model_name="):
        SimpleBot("s", model_name="gpt-4o-mini", model="gpt-4o")
    # StructuredBot's max_retries is its own: how often an invalid reply is asked again.
    bot = StructuredBot("s", pydantic_model=JobName, model_name="gpt-4o-mini", max_retries=0,
                        mock_response="no JSON")
    with pytest.raises(StructuredOutputError, match="after 1 attempts"):
        bot("name it")


def test_arguments_after_the_system_prompt_are_keyword_only():
    with pytest.raises(TypeError, match=r"by keyword: SimpleBot\(system_prompt, model_name="):
        SimpleBot("s", "gpt-4o-mini")  # type: ignore[misc]
    with pytest.raises(TypeError, match="pydantic_model=..., model_name="):
        StructuredBot("s", JobName, "gpt-4o-mini")  # type: ignore[misc]
    with pytest.raises(TypeError, match="model_name"):
        SimpleBot("s")  # type: ignore[call-arg]


# --- any type, and awaiting -------------------------------------------------------


def test_a_structured_bot_takes_any_type_pydantic_validates(db_path):
    bot = StructuredBot("You name jobs.", pydantic_model=list[JobName],
                        model_name="promptlog/offline")
    names = bot("three names")
    assert names and all(isinstance(n, JobName) for n in names)
    (row,) = calls(db_path)
    assert list(row["response_parsed"]) == ["return_value"]  # travelled wrapped
    assert bot.describe()["pydantic_model"] == "list[JobName]"


def test_acall_awaits_the_same_call_with_the_same_retries_and_log(db_path, fake_openai):
    import asyncio

    fake_openai.enqueue(status=429, headers={"retry-after": "0"})
    fake_openai.enqueue(content="{broken")
    fake_openai.enqueue(content='{"name": "AI Builder", "description": "Builds."}')
    bot = StructuredBot("You name jobs.", pydantic_model=JobName, **fake_openai.bot_kwargs)
    assert asyncio.run(bot.acall("name it")).name == "AI Builder"
    assert [(r["attempt"], r["status"]) for r in calls(db_path)] == [
        (1, "failed"), (2, "invalid"), (3, "succeeded")
    ]
    plain = SimpleBot("You are terse.", model_name="gpt-4o-mini", mock_response="ok")
    assert asyncio.run(plain.acall("hi")).content == "ok"
