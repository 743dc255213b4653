"""No secret reaches the file: api keys, bearer headers, credentials in URLs and
provider keys passed through ``litellm_kwargs`` appear nowhere in the database,
its write-ahead log or its shared memory, whatever the calls did (succeeded,
failed, retried, or echoed the key back in an error)."""

from __future__ import annotations

import base64
import json
import re

import pydantic
import pytest
from faults_support import file_bytes_with_wal, query

import promptlog
from promptlog import Experiment, SimpleBot, StructuredBot, store

API_KEY = "sk-proj-Zq8KeyAAAA1111"
HEADER_TOKEN = "hdrTokenBBBB2222"
CUSTOM_HEADER = "xapikeyCCCC3333"
URL_PASSWORD = "urlPassDDDD4444"
AWS_SECRET = "awsSecretFFFF6666"
VERTEX_PRIVATE_KEY = "vertexPrivGGGG7777"
AZURE_TOKEN = "azureTokHHHH8888"
SECRETS = [
    API_KEY,
    HEADER_TOKEN,
    CUSTOM_HEADER,
    URL_PASSWORD,
    AWS_SECRET,
    VERTEX_PRIVATE_KEY,
    AZURE_TOKEN,
]


class Answer(pydantic.BaseModel):
    text: str


def _secret_kwargs(base_url: str) -> dict:
    return {
        "api_key": API_KEY,
        "api_base": base_url,
        "extra_headers": {"Authorization": f"Bearer {HEADER_TOKEN}", "x-api-key": CUSTOM_HEADER},
        "aws_secret_access_key": AWS_SECRET,
        "vertex_credentials": json.dumps({"private_key": VERTEX_PRIVATE_KEY}),
        "azure_ad_token": AZURE_TOKEN,
    }


def _with_password_in_url(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return f"{scheme}://alice:{URL_PASSWORD}@{rest}"


def _assert_no_secret_in(db_path) -> None:
    data = file_bytes_with_wal(db_path)
    assert data, "nothing was written"
    for secret in SECRETS:
        assert secret.encode() not in data, secret
        # Nor a large piece of one (a truncated or partly masked copy).
        assert secret[:10].encode() not in data and secret[-10:].encode() not in data, secret


def test_no_secret_in_the_file_whatever_the_calls_did(db_path, fake_openai):
    kwargs = _secret_kwargs(fake_openai.base_url)
    # The provider echoes the key back in its error, as some do.
    echoed = (
        f"Incorrect API key provided: {API_KEY}; header {HEADER_TOKEN} "
        f"from {_with_password_in_url(fake_openai.base_url)}"
    )
    fake_openai.enqueue(status=401, body={"error": {"message": echoed, "type": "auth"}})
    fake_openai.enqueue(status=500, body={"error": {"message": echoed}})  # then retried
    fake_openai.enqueue(status=429, headers={"retry-after": "0"})  # retried again

    bot = SimpleBot("You answer.", model_name=fake_openai.model, name="keyed",
                    retry_backoff=0.01, **kwargs)
    with pytest.raises(Exception, match="Incorrect API key"):
        bot("first")
    bot(f"second, and my key is {API_KEY}")  # 500, 429, then an answer: three attempts

    structured = StructuredBot("You answer in JSON.", pydantic_model=Answer,
                               model_name=fake_openai.model, name="structured", **kwargs)
    with Experiment("with-keys", num_executions=4, quiet=True) as exp:
        structured("third")
    assert exp.status == "succeeded"

    # Credentials in the URL (httpx sends them as Basic auth, instead of the bearer).
    in_url = SimpleBot("You answer.", model_name=fake_openai.model, name="in-url",
                       **{**kwargs, "api_base": _with_password_in_url(fake_openai.base_url)})
    in_url("fifth")
    fake_openai.enqueue(status=403, body={"error": {"message": f"denied: {echoed}"}})
    with pytest.raises(Exception, match="denied"):
        in_url("sixth")

    mocked = SimpleBot("You answer.", model_name="gpt-4o-mini", mock_response="fine",
                       name="mocked", api_key=API_KEY, aws_secret_access_key=AWS_SECRET)
    mocked("fourth")
    store.flush()

    # Every request really carried the secrets, so the log had a chance to leak them.
    basic = "Basic " + base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode()
    sent = [h.get("authorization") for h in fake_openai.request_headers]
    assert sent == [f"Bearer {HEADER_TOKEN}"] * 8 + [basic] * 2
    assert all(h.get("x-api-key") == CUSTOM_HEADER for h in fake_openai.request_headers)
    rows = dict(query(db_path, "SELECT bot_name, COUNT(*) FROM calls GROUP BY bot_name"))
    assert rows == {"keyed": 4, "structured": 4, "in-url": 2, "mocked": 1}
    assert query(db_path, "SELECT COUNT(*) FROM calls WHERE status = 'failed'") == [(4,)]
    assert basic[6:].encode() not in file_bytes_with_wal(db_path)
    _assert_no_secret_in(db_path)  # the file and its WAL, with the writer still open
    # What is logged instead is still useful: the host of the api_base, the error.
    bases = query(db_path, "SELECT DISTINCT json_extract(parameters, '$.api_base') FROM calls "
                           "WHERE bot_name IN ('keyed', 'in-url')")
    assert bases == [(fake_openai.base_url,)]
    errors = [e for (e,) in query(db_path, "SELECT error FROM calls WHERE error IS NOT NULL")]
    assert any("Incorrect API key provided" in e for e in errors)

    store.writer(db_path).close()  # and once the WAL is folded into the file
    _assert_no_secret_in(db_path)


def test_no_secret_in_the_file_when_the_provider_cannot_be_reached(db_path):
    kwargs = _secret_kwargs("http://127.0.0.1:9/v1")  # nothing listens on port 9
    bot = SimpleBot("You answer.", model_name="openai/fake-model", num_retries=0, timeout=2,
                    **kwargs)
    with pytest.raises(Exception):  # noqa: B017 - whatever litellm raises for a refused connection
        bot("hello")
    promptlog.flush()
    assert query(db_path, "SELECT status FROM calls") == [("failed",)]
    _assert_no_secret_in(db_path)


# --- what an error carries: the run, the exception the caller catches ----------------

ENV_KEY = "sk-envKeyJJJJ9999zz"
ENV_TOKEN = "envTokenKKKK0000"
SHORT_KEY = "k3y9Z"
QUERY_TOKEN = "queryTokLLLL1212"
MASKED_KEY = "sk-proj-ABCDEFGHzzzzzzzzzzzz4068"
META_SECRET = "metaSecretMMMM3434"
META_PASSWORD = "metaPassNNNN5656"


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, (secret, text)
        if len(secret) >= 10:
            assert secret[:10] not in text and secret[-10:] not in text, (secret, text)


def _exception_texts(error: BaseException) -> str:
    """Everything the caller can read off an exception: its traceback (every chained
    cause included), and each cause's str, repr, args and message."""
    import traceback

    parts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args),
                  str(getattr(current, "message", ""))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _run_errors(db_path) -> str:
    rows = query(db_path, "SELECT error_message, traceback FROM runs WHERE status = 'failed'")
    assert rows, "no failed run"
    return "\n".join(f"{message}\n{tb}" for message, tb in rows)


def test_an_echoed_key_stays_out_of_the_runs_and_the_exception_raised(db_path, fake_openai):
    url_with_password = _with_password_in_url(fake_openai.base_url)
    echoed = (f"Incorrect API key provided: {API_KEY}. Sent Authorization: Bearer {HEADER_TOKEN} "
              f"to {url_with_password}")
    fake_openai.enqueue(status=400, body={"error": {"message": echoed}}, times=2)
    bot = SimpleBot("You answer.", model_name=fake_openai.model, name="keyed", num_retries=0,
                    api_key=API_KEY, api_base=url_with_password,
                    extra_headers={"Authorization": f"Bearer {HEADER_TOKEN}"})

    def ask() -> str:
        return bot("hello").content

    with pytest.raises(promptlog.PromptlogError) as raised:
        Experiment("echoes", num_executions=2, quiet=True).run(ask)
    failures = raised.value.failures
    assert len(failures) == 2
    assert all("Incorrect API key provided" in str(f) for f in failures)  # still useful
    promptlog.flush()

    secrets = [API_KEY, HEADER_TOKEN, URL_PASSWORD]
    _assert_clean(_run_errors(db_path), secrets)
    for failure in failures:
        _assert_clean(_exception_texts(failure), secrets)
    _assert_clean(_exception_texts(raised.value), secrets)
    assert query(db_path, "SELECT COUNT(*) FROM calls WHERE status = 'failed'") == [(2,)]
    _assert_no_secret_in(db_path)


def test_a_key_read_from_the_environment_is_kept_out_of_the_log(db_path, fake_openai,
                                                                  monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", ENV_TOKEN)  # no provider's, but named like a secret
    echoed = f"Incorrect API key provided: {ENV_KEY}; also saw {ENV_TOKEN}"
    fake_openai.enqueue(status=400, body={"error": {"message": echoed}}, times=2)
    fake_openai.enqueue(status=401, body={"error": {"message": echoed}}, times=2)
    bot = SimpleBot("You answer.", model_name=fake_openai.model, name="from-env", num_retries=0,
                    api_base=fake_openai.base_url)  # no api_key: litellm reads OPENAI_API_KEY

    for _ in range(2):  # a bad request, then a rejected key
        with pytest.raises(Exception) as raised:  # noqa: PT011
            with Experiment("env-key", num_executions=2, quiet=True):
                bot(f"hello, my token is {ENV_TOKEN}")
        assert "Incorrect API key provided" in str(raised.value)
        _assert_clean(_exception_texts(raised.value), [ENV_KEY, ENV_TOKEN])
    promptlog.flush()

    assert fake_openai.request_headers[0]["authorization"] == f"Bearer {ENV_KEY}"
    _assert_clean(_run_errors(db_path), [ENV_KEY, ENV_TOKEN])
    data = file_bytes_with_wal(db_path)
    for secret in (ENV_KEY, ENV_TOKEN):
        assert secret.encode() not in data and secret[:10].encode() not in data, secret


def test_every_provider_key_variable_litellm_knows_is_named_like_a_secret():
    import inspect

    import litellm

    from promptlog.redaction import _is_secret_name

    source = inspect.getsource(litellm.validate_environment)
    names = set(re.findall(r'"([A-Z][A-Z0-9_]*(?:KEY|TOKEN|SECRET)[A-Z0-9_]*)"', source))
    assert {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY"} <= names
    assert [name for name in names if not _is_secret_name(name)] == []
    for name in ("api_key", "apiKey", "x-api-key", "Authorization", "aws_session_token",
                 "vertex_credentials", "client_secret", "WATSONX_APIKEY", "password", "HF_TOKEN"):
        assert _is_secret_name(name), name
    for name in ("max_tokens", "input_tokens", "keyword", "author", "model", "temperature"):
        assert not _is_secret_name(name), name


def test_query_tokens_short_keys_and_masked_echoes_stay_out_of_the_calls(db_path, fake_openai):
    # A token in the api_base's query string: the server's 404 quotes the whole path.
    in_query = SimpleBot("You answer.", model_name=fake_openai.model, name="in-query",
                         num_retries=0, api_key="sk-fake",
                         api_base=f"{fake_openai.base_url}?key={QUERY_TOKEN}")
    with pytest.raises(Exception, match="Unknown path"):
        in_query("hello")
    # A short key, and the masked copy of a key a provider echoes.
    fake_openai.enqueue(status=400, body={"error": {"message": f"Bad key {SHORT_KEY}."}})
    fake_openai.enqueue(status=401, body={"error": {
        "message": "Incorrect API key provided: sk-proj-ABCDEFGH****4068."}})
    short = SimpleBot("You answer.", model_name=fake_openai.model, name="short",
                      num_retries=0, api_key=SHORT_KEY, api_base=fake_openai.base_url)
    masked = SimpleBot("You answer.", model_name=fake_openai.model, name="masked",
                       num_retries=0, api_key=MASKED_KEY, api_base=fake_openai.base_url)
    with pytest.raises(Exception, match="Bad key") as bad:
        short("hello")
    with pytest.raises(Exception, match="Incorrect API key") as rejected:
        masked("hello")
    promptlog.flush()

    errors = "\n".join(e for (e,) in query(db_path, "SELECT error FROM calls"))
    assert "Unknown path" in errors and "Bad key" in errors and "Incorrect API key" in errors
    secrets = [QUERY_TOKEN, SHORT_KEY, MASKED_KEY, "sk-proj-ABCDEFGH"]
    _assert_clean(errors, secrets)
    _assert_clean(_exception_texts(bad.value) + _exception_texts(rejected.value), secrets)
    data = file_bytes_with_wal(db_path)
    for secret in secrets:
        assert secret.encode() not in data, secret


def test_secret_metadata_is_masked_in_the_experiment_and_every_run(db_path):
    metadata = {
        "api_key": META_SECRET,
        "endpoint": {"url": "https://bob:" + META_PASSWORD + "@example.com/v1",
                     "password": META_PASSWORD},
        "dataset": "jobs-v2",
        "max_tokens": 64,
    }

    def leak() -> None:
        raise ValueError(f"could not connect with {META_SECRET}")

    with pytest.raises(promptlog.PromptlogError):
        Experiment("with-metadata", num_executions=3, metadata=metadata, quiet=True).run(leak)
    promptlog.flush()

    ((stored,),) = query(db_path, "SELECT metadata FROM experiments")
    stored = json.loads(stored)
    assert stored["api_key"] == "[REDACTED]" and stored["endpoint"]["password"] == "[REDACTED]"
    assert stored["endpoint"]["url"] == "https://bob:[REDACTED]@example.com/v1"
    assert stored["dataset"] == "jobs-v2" and stored["max_tokens"] == 64
    runs = query(db_path, "SELECT json_extract(hyperparameters, '$.metadata') FROM runs")
    assert [json.loads(m) for (m,) in runs] == [stored] * 3
    _assert_clean(_run_errors(db_path), [META_SECRET])
    data = file_bytes_with_wal(db_path)
    for secret in (META_SECRET, META_PASSWORD):
        assert secret.encode() not in data and secret[:10].encode() not in data, secret
