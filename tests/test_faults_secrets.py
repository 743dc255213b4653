"""No secret reaches the file: api keys, bearer headers, credentials in URLs and
provider keys passed through ``litellm_kwargs`` appear nowhere in the database,
its write-ahead log or its shared memory, whatever the calls did (succeeded,
failed, retried, or echoed the key back in an error)."""

from __future__ import annotations

import base64
import json

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
