"""A missing or rejected credential is not retried, and says which variable to set.

No network is needed: a real provider's name with no key fails before any request,
and the fake server answers 401 for a rejected one.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from faults_support import query
from pydantic import BaseModel

import promptlog
from promptlog import CredentialsError, Experiment, SimpleBot, StructuredBot, experiment, store
from promptlog.cli import cli
from promptlog.errors import BotError

PROVIDER_VARIABLES = (
    "OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
    "GEMINI_API_KEY", "GOOGLE_API_KEY",
)


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class JobName(BaseModel):
    name: str


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("gpt-4o-mini", "OPENAI_API_KEY"),  # litellm raises it as a (transient) server error
        ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
        ("gemini/gemini-2.0-flash", "GEMINI_API_KEY"),  # … and this one as a connection error
    ],
)
def test_a_missing_key_fails_at_once_naming_the_variable(db_path, no_provider_keys, model,
                                                          variable):
    bot = SimpleBot("You answer.", model_name=model, num_retries=5, retry_backoff=5)
    started = time.perf_counter()
    with pytest.raises(CredentialsError, match=variable) as raised:
        bot("hello")
    assert time.perf_counter() - started < 30  # no retry, no backoff
    assert isinstance(raised.value, BotError) and isinstance(raised.value, promptlog.PromptlogError)
    message = str(raised.value)
    assert message.count(". ") == 0 or message.index(variable) < message.index(". ")
    promptlog.flush()
    assert query(db_path, "SELECT status, attempt FROM calls") == [("failed", 1)]


def test_the_readme_tour_without_a_key_fails_once_per_run_with_one_traceback(
    db_path, no_provider_keys
):
    @experiment
    def name_generator() -> JobName:
        bot = StructuredBot("You name jobs.", model_name="gpt-4o-mini", pydantic_model=JobName)
        return bot("someone who builds full stack AI apps")

    with pytest.raises(CredentialsError, match="OPENAI_API_KEY"):
        with Experiment("job-names", num_executions=10, quiet=True):
            name_generator()
    promptlog.flush()
    assert query(db_path, "SELECT COUNT(*), MAX(attempt) FROM calls") == [(10, 1)]
    runs = query(db_path, "SELECT status, error_type, error_message, traceback FROM runs")
    assert len(runs) == 10
    for status, error_type, message, traceback in runs:
        assert (status, error_type) == ("failed", "CredentialsError")
        assert "OPENAI_API_KEY" in message
        assert traceback.count("Traceback (most recent call last)") == 1, traceback


def test_a_rejected_key_is_not_retried(db_path, fake_openai):
    fake_openai.enqueue(status=401, times=3, body={"error": {
        "message": "Incorrect API key provided: sk-wrong********1234."}})
    bot = SimpleBot("You answer.", model_name=fake_openai.model, num_retries=2,
                    api_base=fake_openai.base_url, api_key="sk-wrong-key-1234")
    with pytest.raises(CredentialsError, match="api_key") as raised:
        bot("hello")
    assert "Incorrect API key" in str(raised.value)  # what the provider said, kept
    assert "sk-wrong" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    promptlog.flush()
    assert len(fake_openai.requests) == 1
    assert query(db_path, "SELECT status, attempt FROM calls") == [("failed", 1)]


def test_a_rejected_key_from_the_environment_names_its_variable(db_path, fake_openai,
                                                                 monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-expired-key-5678")
    fake_openai.enqueue(status=401)
    bot = SimpleBot("You answer.", model_name=fake_openai.model, api_base=fake_openai.base_url)
    with pytest.raises(CredentialsError, match="OPENAI_API_KEY"):
        bot("hello")
    assert len(fake_openai.requests) == 1


def test_demo_with_a_real_model_and_no_key_prints_one_sentence(db_path, no_provider_keys):
    try:
        result = CliRunner().invoke(cli, ["demo", "--model", "gpt-4o-mini"])
    finally:
        store.configure(None)  # the demo configures the log it writes to
    assert result.exit_code == 1, result.output
    assert "OPENAI_API_KEY" in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0, result.output


def test_a_server_error_that_only_mentions_a_token_is_still_retried(db_path, fake_openai):
    fake_openai.enqueue(status=500, body={"error": {"message": "Missing end token in stream"}})
    bot = SimpleBot("You answer.", model_name=fake_openai.model, retry_backoff=0.01,
                    **{k: v for k, v in fake_openai.bot_kwargs.items() if k != "model_name"})
    assert bot("hello").content
    promptlog.flush()
    assert query(db_path, "SELECT status FROM calls ORDER BY attempt") == [
        ("failed",), ("succeeded",)
    ]
