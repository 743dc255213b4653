"""A provider that fails in the middle of an experiment (500s, 429s, timeouts,
replies that are not the JSON a StructuredBot asked for): each failed attempt is
a failed (or invalid) call, each run whose bot gave up is a failed run with its
error, the experiment completes, and the counts add up."""

from __future__ import annotations

from faults_support import integrity, query
from pydantic import BaseModel

from promptlog import Experiment, StructuredBot, current_run, experiment, metric, store

TIMEOUT = 0.5


class Verdict(BaseModel):
    label: str
    confidence: float


@metric
def confident(verdict: Verdict) -> bool:
    return verdict.confidence > 0.5


def _script_failures(server, *, errors_500: int, errors_429: int, timeouts: int, malformed: int):
    # Spread out, so that with concurrent runs the bad replies meet different runs.
    script = (
        [dict(status=500)] * errors_500
        + [dict(status=429, headers={"retry-after": "0"})] * errors_429
        + [dict(delay=TIMEOUT * 6)] * timeouts  # answered long after the client gave up
        + [dict(content='{"label": "spam", "confidence": ')] * malformed  # cut-off JSON
    )
    for entry in script:
        server.enqueue(**entry)
        server.enqueue()  # a good reply in between


def _run_experiment(server, runs: int, **bot_options) -> Experiment:
    bot = StructuredBot(
        "You classify messages.",
        pydantic_model=Verdict,
        model_name=server.model,
        api_base=server.base_url,
        api_key="sk-fake",
        timeout=TIMEOUT,
        retry_backoff=0.01,
        **bot_options,
    )

    @experiment
    def classify(index: int) -> Verdict:
        return bot(f"message {index}")

    def execution() -> Verdict:
        verdict = classify(current_run().execution_index)
        confident(verdict)
        return verdict

    exp = Experiment("flaky-provider", num_executions=runs, max_workers=4, quiet=True)
    exp.run(execution)
    store.flush()
    return exp


def _counts(db_path, sql: str) -> dict:
    return dict(query(db_path, sql))


def test_a_failing_provider_without_retries_fails_exactly_the_runs_it_failed(
    db_path, fake_openai
):
    _script_failures(fake_openai, errors_500=3, errors_429=3, timeouts=2, malformed=3)
    exp = _run_experiment(fake_openai, runs=30, num_retries=0, max_retries=0)

    assert exp.status == "succeeded"  # it completed: not every run failed
    assert query(db_path, "SELECT status FROM experiments") == [("succeeded",)]
    # One request per run, each one call row.
    assert fake_openai.request_count == 30
    assert _counts(db_path, "SELECT status, COUNT(*) FROM calls GROUP BY status") == {
        "failed": 8,
        "invalid": 3,
        "succeeded": 19,
    }
    assert _counts(db_path, "SELECT status, COUNT(*) FROM runs GROUP BY status") == {
        "failed": 11,
        "succeeded": 19,
    }
    assert _counts(
        db_path, "SELECT error_type, COUNT(*) FROM runs WHERE status = 'failed' GROUP BY 1"
    ) == {
        "InternalServerError": 3,
        "RateLimitError": 3,
        "Timeout": 2,
        "StructuredOutputError": 3,
    }
    _assert_every_run_accounted_for(db_path, runs=30)
    assert len(exp.failures) == 11 and exp.results.count(None) == 11


def test_a_failing_provider_with_retries_logs_every_attempt(db_path, fake_openai):
    _script_failures(fake_openai, errors_500=2, errors_429=2, timeouts=2, malformed=2)
    exp = _run_experiment(fake_openai, runs=16, num_retries=2, max_retries=2)

    assert exp.status == "succeeded"
    calls = _counts(db_path, "SELECT status, COUNT(*) FROM calls GROUP BY status")
    # Every attempt is a row, the retried ones too.
    assert sum(calls.values()) == fake_openai.request_count
    assert calls["failed"] == 6 and calls["invalid"] == 2
    runs = _counts(db_path, "SELECT status, COUNT(*) FROM runs GROUP BY status")
    assert sum(runs.values()) == 16
    assert runs["succeeded"] == calls["succeeded"]
    # A retried attempt is numbered after the one before it, in the same run.
    assert query(
        db_path,
        "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM calls c WHERE c.run_id = r.id)"
        " != (SELECT MAX(attempt) FROM calls c WHERE c.run_id = r.id)",
    ) == [(0,)]
    _assert_every_run_accounted_for(db_path, runs=16)


def _assert_every_run_accounted_for(db_path, runs: int) -> None:
    # Each succeeded run has its result, its metric and exactly one succeeded call
    # (its last); each failed run has its error and no result or metric.
    assert query(
        db_path,
        "SELECT COUNT(*) FROM runs r WHERE r.status = 'succeeded' AND ("
        " r.result IS NULL"
        " OR (SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.id) != 1"
        " OR (SELECT COUNT(*) FROM calls c WHERE c.run_id = r.id AND c.status = 'succeeded') != 1"
        " OR (SELECT status FROM calls c WHERE c.run_id = r.id ORDER BY attempt DESC LIMIT 1)"
        "    != 'succeeded')",
    ) == [(0,)]
    assert query(
        db_path,
        "SELECT COUNT(*) FROM runs r WHERE r.status = 'failed' AND ("
        " r.error_type IS NULL OR r.traceback IS NULL OR r.result IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id)"
        " OR EXISTS (SELECT 1 FROM calls c WHERE c.run_id = r.id AND c.status = 'succeeded'))",
    ) == [(0,)]
    assert query(db_path, "SELECT COUNT(DISTINCT execution_index) FROM runs") == [(runs,)]
    assert query(db_path, "SELECT COUNT(*) FROM calls WHERE run_id IS NULL") == [(0,)]
    assert query(
        db_path, "SELECT COUNT(*) FROM calls WHERE status != 'succeeded' AND error IS NULL"
    ) == [(0,)]
    assert integrity(db_path) == "ok"
