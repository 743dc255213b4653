"""The response cache: a request asked again is answered from the log, with no
provider request, per sample index (repeats stay distinct), logged as a cached call
with the cost it saved. Offline: the fake server counts the requests it serves."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pydantic
import pytest
from click.testing import CliRunner
from faults_support import file_bytes_with_wal, query

import promptlog
from promptlog import Experiment, SimpleBot, StructuredBot, llm_function, store
from promptlog.cache import _sample_index
from promptlog.cli import cli
from promptlog.context import RunContext, reset_current_run, set_current_run


class JobName(pydantic.BaseModel):
    name: str
    description: str


PRICED = "openai/gpt-4o-mini"


@pytest.fixture(autouse=True)
def _cache_off_after():
    yield
    promptlog.configure(cache=False)


def _calls(db_path):
    store.flush()
    return query(
        db_path,
        "SELECT c.cached, c.cost, c.saved_cost, c.response_text, r.execution_index "
        "FROM calls c LEFT JOIN runs r ON r.id = c.run_id ORDER BY c.id",
    )


def _run_twelve(fake_openai, cache):
    """Twelve executions of one request; each execution's reply, by index."""
    # A model litellm knows the price of, so that each reply has a cost.
    bot = SimpleBot("You name jobs.", **{**fake_openai.bot_kwargs, "model_name": PRICED})

    def name_a_job():
        return bot("Name a job for someone who builds AI apps.").content

    replies = Experiment("names", num_executions=12, quiet=True, cache=cache).run(name_a_job)
    return dict(enumerate(replies))


def test_an_experiment_run_again_makes_no_request_and_logs_what_it_saved(
    db_path, fake_openai
):
    for i in range(12):
        fake_openai.enqueue(content=f"Job {i}")
    first = _run_twelve(fake_openai, cache=True)
    assert len(fake_openai.requests) == 12  # twelve executions, twelve samples
    assert sorted(first.values()) == sorted(f"Job {i}" for i in range(12))

    again = _run_twelve(fake_openai, cache=True)
    assert len(fake_openai.requests) == 12  # not one more
    assert again == first  # each execution gets back its own sample

    calls = _calls(db_path)
    fresh, cached = calls[:12], calls[12:]
    assert [c[0] for c in fresh] == [0] * 12 and [c[0] for c in cached] == [1] * 12
    assert all(c[1] > 0 for c in fresh)
    cost_of = {c[3]: c[1] for c in fresh}
    for _, cost, saved, text, _ in cached:
        assert cost == 0 and saved == pytest.approx(cost_of[text])
    assert query(db_path, "SELECT COUNT(*), SUM(hits) FROM cache") == [(12, 12)]

    frame = promptlog.open(db_path).calls()
    assert frame["cached"].sum() == 12
    assert frame["saved_cost"].sum() == pytest.approx(sum(cost_of.values()))


def test_refresh_calls_the_model_again_and_replaces_the_entries(db_path, fake_openai):
    for i in range(12):
        fake_openai.enqueue(content=f"Old {i}")
    _run_twelve(fake_openai, cache=True)
    for i in range(12):
        fake_openai.enqueue(content=f"New {i}")
    refreshed = _run_twelve(fake_openai, cache="refresh")
    assert len(fake_openai.requests) == 24
    assert sorted(refreshed.values()) == sorted(f"New {i}" for i in range(12))
    store.flush()
    assert sorted(t for (t,) in query(db_path, "SELECT response_text FROM cache")) == sorted(
        f"New {i}" for i in range(12)
    )
    again = _run_twelve(fake_openai, cache=True)
    assert len(fake_openai.requests) == 24
    assert again == refreshed


def test_without_cache_every_call_reaches_the_model(db_path, fake_openai):
    _run_twelve(fake_openai, cache=None)
    _run_twelve(fake_openai, cache=None)
    assert len(fake_openai.requests) == 24
    assert query(db_path, "SELECT COUNT(*) FROM cache") == [(0,)]


def test_a_bot_outside_experiments_hits_the_cache(db_path, fake_openai):
    fake_openai.enqueue(content="Hello once.")
    bot = SimpleBot("You greet.", cache=True, **fake_openai.bot_kwargs)
    first = bot("Hi")
    second = bot("Hi")  # before the writer has committed the entry: still a hit
    assert second.content == first.content == "Hello once."
    assert second is not first
    assert len(fake_openai.requests) == 1
    other = bot("Hi there")  # another request: its own entry
    assert len(fake_openai.requests) == 2
    assert other.content != first.content
    assert [c[0] for c in _calls(db_path)] == [0, 1, 0]


def test_the_key_holds_what_shapes_the_reply_and_not_what_does_not(db_path, fake_openai):
    kwargs = fake_openai.bot_kwargs
    SimpleBot("s", cache=True, **kwargs)("q")
    SimpleBot("s", cache=True, timeout=30, **kwargs)("q")  # timeout: the same request
    assert len(fake_openai.requests) == 1
    SimpleBot("s", cache=True, temperature=0.5, **kwargs)("q")
    SimpleBot("s", cache=True, **{**kwargs, "model_name": "openai/other-model"})("q")
    SimpleBot("another system prompt", cache=True, **kwargs)("q")
    assert len(fake_openai.requests) == 4


def test_configure_turns_the_cache_on_and_a_bot_can_turn_it_off(db_path, fake_openai):
    promptlog.configure(cache=True)
    bot = SimpleBot("s", **fake_openai.bot_kwargs)
    bot("q")
    bot("q")
    assert len(fake_openai.requests) == 1
    uncached = SimpleBot("s", cache=False, **fake_openai.bot_kwargs)
    uncached("q")
    assert len(fake_openai.requests) == 2
    with Experiment("off", num_executions=2, quiet=True, cache=False):
        bot("q")
    assert len(fake_openai.requests) == 4


def test_the_sample_index_is_the_repeat_index_when_the_run_has_one(db_path, fake_openai):
    class RepeatedRun(RunContext):
        __slots__ = ("repeat_index",)

    assert _sample_index() == 0
    bot = SimpleBot("s", cache=True, **fake_openai.bot_kwargs)
    db = store.writer()
    experiment_id = store.new_id()
    store.start_experiment(db, id=experiment_id, name="repeats", num_executions=5,
                           max_workers=1, metadata={}, environment={},
                           process=store.process_token(), created_at=store.now())
    seen = []
    for execution, repeat in [(0, 0), (1, 1), (2, 0), (3, 1), (4, None)]:
        run = RepeatedRun(store.new_id(), experiment_id, execution, db)
        store.start_run(db, id=run.id, experiment_id=experiment_id, execution_index=execution,
                        started_at=store.now(), process=store.process_token())
        run.repeat_index = repeat
        token = set_current_run(run)
        try:
            seen.append(_sample_index())
            bot("q")
        finally:
            reset_current_run(token)
    assert seen == [0, 1, 0, 1, 4]
    assert len(fake_openai.requests) == 3  # samples 0, 1 and 4; 0 and 1 again were hits


def test_a_structured_bot_hits_the_cache_with_a_copy(db_path, fake_openai):
    bot = StructuredBot("You name jobs.", pydantic_model=JobName, cache=True,
                        **fake_openai.bot_kwargs)
    first = bot("Name a job.")
    second = bot("Name a job.")
    assert len(fake_openai.requests) == 1
    assert second == first and second is not first
    second.name = "changed"
    assert bot("Name a job.").name == first.name != "changed"
    store.flush()
    parsed = query(db_path, "SELECT response_parsed FROM cache")
    assert [json.loads(p) for (p,) in parsed] == [first.model_dump()]


def test_an_invalid_reply_is_not_cached(db_path, fake_openai):
    fake_openai.enqueue(content='{"name": "Only a name"}')
    fake_openai.enqueue(content='{"name": "AI Builder", "description": "Builds."}')
    bot = StructuredBot("You name jobs.", pydantic_model=JobName, cache=True,
                        **fake_openai.bot_kwargs)
    assert bot("Name a job.").name == "AI Builder"
    assert len(fake_openai.requests) == 2
    store.flush()
    kept = [text for (text,) in query(db_path, "SELECT response_text FROM cache")]
    assert kept == ['{"name": "AI Builder", "description": "Builds."}']
    # The invalid first reply was not kept: that request is asked again, and its
    # valid reply is kept from then on.
    again = bot("Name a job.")
    assert len(fake_openai.requests) == 3
    assert bot("Name a job.") == again
    assert len(fake_openai.requests) == 3


def test_an_awaited_call_hits_the_cache(db_path, fake_openai):
    bot = SimpleBot("s", cache=True, **fake_openai.bot_kwargs)
    first = asyncio.run(bot.acall("q"))
    second = asyncio.run(bot.acall("q"))
    assert second.content == first.content
    assert len(fake_openai.requests) == 1


def test_a_typed_function_hits_the_cache(db_path, fake_openai):
    @llm_function(cache=True, **fake_openai.bot_kwargs)
    def name_job(description: str) -> JobName:
        """Give a name for a job that follows this description: {{ description }}."""

    first = name_job("builds AI apps")
    assert name_job("builds AI apps") == first
    assert len(fake_openai.requests) == 1
    name_job("tends gardens")
    assert len(fake_openai.requests) == 2
    with Experiment("typed", num_executions=3, quiet=True):
        name_job("builds AI apps")  # the bot's own cache=True: samples 0, 1, 2
    assert len(fake_openai.requests) == 4  # sample 0 was a hit


def test_no_secret_in_any_cache_row_or_key(db_path, fake_openai):
    from test_faults_secrets import SECRETS, _secret_kwargs, _with_password_in_url

    kwargs = {**_secret_kwargs(fake_openai.base_url),
              "api_base": _with_password_in_url(fake_openai.base_url)}
    bot = SimpleBot("You answer.", model_name=fake_openai.model, cache=True, **kwargs)
    bot("first")
    bot("first")
    structured = StructuredBot("You answer.", pydantic_model=JobName, cache=True,
                               model_name=fake_openai.model, **kwargs)
    with Experiment("with-keys", num_executions=3, quiet=True):
        structured("second")
    with Experiment("with-keys", num_executions=3, quiet=True):
        structured("second")
    assert len(fake_openai.requests) == 4
    store.flush()
    data = file_bytes_with_wal(db_path)
    for secret in SECRETS:
        assert secret.encode() not in data, secret
    rows = query(db_path, "SELECT * FROM cache")
    assert len(rows) == 4
    for row in rows:
        assert row[0].startswith("sha256:")
        for secret in SECRETS:
            assert secret not in repr(row)
    # Another key is the same request: the key never holds a credential.
    other = {**kwargs, "api_key": "sk-another-key-9999"}
    SimpleBot("You answer.", model_name=fake_openai.model, cache=True, **other)("first")
    assert len(fake_openai.requests) == 4


def test_a_wrong_cache_mode_is_refused():
    with pytest.raises(promptlog.BotError, match="not a cache mode"):
        SimpleBot("s", model_name="gpt-4o-mini", cache="yes")
    with pytest.raises(promptlog.ExperimentError, match="not a cache mode"):
        Experiment("x", cache=1)
    with pytest.raises(ValueError, match="not a cache mode"):
        promptlog.configure(cache="always")


def _fill(bot_kwargs, models):
    for model in models:
        bot = SimpleBot("s", cache=True, **{**bot_kwargs, "model_name": model})
        bot("q")
        bot("q")
    store.flush()


def test_the_cli_shows_the_cache_and_clears_it_by_model_and_date(db_path, fake_openai):
    _fill(fake_openai.bot_kwargs, ["openai/gpt-4o-mini", "openai/gpt-4o-mini-2", "openai/x"])
    runner = CliRunner()
    shown = runner.invoke(cli, ["cache", "--json"])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    assert found["entries"] == 3 and found["hits"] == 3
    assert found["saved_cost"] == pytest.approx(sum(i["saved_cost"] for i in found["items"]))
    assert {i["model"] for i in found["items"]} == {
        "openai/gpt-4o-mini", "openai/gpt-4o-mini-2", "openai/x"
    }
    table = runner.invoke(cli, ["cache"])
    assert table.exit_code == 0 and "3 entries, 3 hits" in table.output

    refused = runner.invoke(cli, ["cache", "clear"])
    assert refused.exit_code != 0 and "--all" in refused.output

    by_model = runner.invoke(cli, ["cache", "clear", "--model", "openai/x", "--json"])
    assert json.loads(by_model.output) == {"cleared": 1}
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    old = runner.invoke(cli, ["cache", "clear", "--older-than", yesterday, "--json"])
    assert json.loads(old.output) == {"cleared": 0}
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    both = runner.invoke(
        cli, ["cache", "clear", "--older-than", tomorrow, "--model", "openai/gpt-4o-mini"]
    )
    assert both.exit_code == 0 and "Cleared 1 cache entry." in both.output
    bad = runner.invoke(cli, ["cache", "clear", "--older-than", "last week"])
    assert bad.exit_code != 0 and "not a date" in bad.output
    assert json.loads(runner.invoke(cli, ["cache", "--json"]).output)["entries"] == 1
    everything = runner.invoke(cli, ["cache", "clear", "--all", "--json"])
    assert json.loads(everything.output) == {"cleared": 1}
    assert "No cache entries" in runner.invoke(cli, ["cache"]).output

    # Cleared entries are asked for again; the calls logged stay.
    requests = len(fake_openai.requests)
    SimpleBot("s", cache=True, **fake_openai.bot_kwargs)("q")
    assert len(fake_openai.requests) == requests + 1
    store.flush()
    assert query(db_path, "SELECT COUNT(*) FROM calls") == [(7,)]


def test_clear_cache_in_the_library(db_path, fake_openai):
    _fill(fake_openai.bot_kwargs, ["openai/a", "openai/b"])
    assert promptlog.clear_cache(model="openai/a") == 1
    assert promptlog.clear_cache(older_than=datetime.now(timezone.utc) + timedelta(1)) == 1
    assert promptlog.clear_cache() == 0


def test_a_changed_schema_is_another_request(db_path, fake_openai):
    def model_with(*fields):
        return pydantic.create_model("JobName", **{f: (str, ...) for f in fields})

    for fields in [("name",), ("name",), ("name", "description")]:
        bot = StructuredBot("You name jobs.", pydantic_model=model_with(*fields), cache=True,
                            **fake_openai.bot_kwargs)
        bot("Name a job.")
    assert len(fake_openai.requests) == 2


def test_an_evaluation_over_examples_and_repeats_runs_again_from_the_cache(
    db_path, fake_openai
):
    dataset = [{"question": f"What is {n}+{n}?", "answer": str(2 * n)} for n in range(4)]
    bot = SimpleBot("You answer.", **fake_openai.bot_kwargs)

    def ask(question):
        return bot(question).content

    def exact(example, prediction):
        return prediction == example["answer"]

    for n in range(4):  # the examples run in order; each repeat is its own sample
        for repeat in range(3):
            fake_openai.enqueue(content=f"{2 * n} (sample {repeat})")
    first = promptlog.evaluate(ask, dataset, [exact], repeats=3, name="qa", quiet=True,
                               cache=True, max_workers=1)
    assert len(fake_openai.requests) == 12
    again = promptlog.evaluate(ask, dataset, [exact], repeats=3, name="qa", quiet=True,
                               cache=True)
    assert len(fake_openai.requests) == 12  # the second evaluation asked nothing

    runs = {exp: promptlog.open(db_path).runs(exp.id) for exp in (first, again)}
    replies = {
        exp: {(r.example_id, r.repeat_index): r.result for r in frame.itertuples()}
        for exp, frame in runs.items()
    }
    assert replies[again] == replies[first]  # each (example, repeat) got its own sample
    assert len(set(replies[first].values())) == 12
    cached = query(db_path, "SELECT COUNT(*) FROM calls WHERE cached = 1")
    assert cached == [(12,)]
