"""13. LLM-guided search: OPRO against random search on OPRO's linear regression, and
what ``promptlog.optimize`` costs per step beyond the model's calls.

Steps to the optimum: 50 points of y = 15x + 14 with fixed noise (one draw per seed),
f the squared error of an integer line [w, b], 5 starting points in [10, 20]², 8
candidates per step. The proposer is the deterministic stand-in of the tests
(``promptlog.testing.NumericProposer``, served by the fake OpenAI server: it reads the
meta-prompt's solutions and moves from the best one), so the figure says that the
search shows the model what it needs, not how well a real model proposes. Random
search draws 8 lines a step uniformly from [0, 30]² until it draws [15, 14].

Overhead per step: the same search (llm_optimize's conversation, one proposal a step,
a trivial f) through ``promptlog.optimize`` on the offline model, against a plain loop
making the same calls with litellm and parsing them the same way, nothing logged.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, ratios, worker

MAX_STEPS = 60


def _line_problem(seed: int) -> tuple[Any, list[str], float]:
    import numpy as np

    x = np.arange(50) + 1.0
    y = x * 15 + 14 + np.random.RandomState(seed + 1).randn(50)

    def f(text: str) -> float:
        import json

        w, b = json.loads(text)
        return float(np.sum((y - (x * w + b)) ** 2))

    starts = np.round(np.random.RandomState((seed + 1) * 10).uniform(10, 20, (5, 2)))
    return f, [f"[{int(w)}, {int(b)}]" for w, b in starts], f("[15, 14]")


def steps_to_optimum(seeds: int) -> dict[str, Any]:
    """Per seed: the steps OPRO (the stand-in proposer) and random search take to find
    [15, 14] (None past MAX_STEPS for OPRO, 10,000 for random search)."""
    os.environ["PROMPTLOG_DB"] = str(Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "l.db")
    import promptlog
    from promptlog import SimpleBot
    from promptlog.testing import FakeOpenAIServer, NumericProposer

    opro: list[int | None] = []
    randomly: list[int | None] = []
    with FakeOpenAIServer(responder=NumericProposer(seed=0), max_seconds=1800) as server:
        bot = SimpleBot("", **server.bot_kwargs, max_tokens=64)
        for seed in range(seeds):
            f, starts, optimum = _line_problem(seed)
            result = promptlog.optimize(
                f, starts, task="Find the line [w, b] that fits the points best.", bot=bot,
                candidates_per_step=8, max_steps=MAX_STEPS, minimize=True,
                stop_score=optimum, name=f"line-{seed}",
            )  # fmt: skip
            opro.append(result.steps if result.best_x == "[15, 14]" else None)
            rng = random.Random(seed)
            found = None
            for step in range(1, 10_001):
                if any((rng.randint(0, 30), rng.randint(0, 30)) == (15, 14) for _ in range(8)):
                    found = step
                    break
            randomly.append(found)
    return {"opro": opro, "random": randomly}


def overhead_per_step(steps: int) -> dict[str, float]:
    """Seconds per step of ``promptlog.optimize`` and of a plain loop making the same
    calls, and the seconds per step the search's calls took by their logged latency."""
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "o.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    import promptlog
    from promptlog import SimpleBot, store
    from promptlog.bots import _get_litellm
    from promptlog.tuning.fenced import last_fenced_block
    from promptlog.tuning.search_prompts import search_step, search_system

    litellm = _get_litellm()
    task = "Decrease f(x). x is a list of two integers."

    def f(x: str) -> float:
        a, b = (int(v) for v in x.strip("[]").split(","))
        return float((a - 3) ** 2 + (b + 1) ** 2)

    SimpleBot("warm up", model_name="promptlog/offline")("hello")  # imports, first call
    started = time.perf_counter()
    result = promptlog.optimize(f, "[0, 0]", task=task, model_name="promptlog/offline",
                                max_steps=steps, temperature=0.7, name="overhead")  # fmt: skip
    searched = time.perf_counter() - started
    store.flush()
    with promptlog.open() as log:
        latency = float(log.calls("overhead")["latency_s"].sum())

    # The plain loop: the same conversation, calls and parsing, nothing logged.
    started = time.perf_counter()
    system = search_system.render(task, True)
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": search_step.render("[0, 0]", "10", None, "Next?")}]
    for _ in range(steps):
        reply = litellm.completion(model="promptlog/offline", messages=messages,
                                   temperature=0.7).choices[0].message.content  # fmt: skip
        x = last_fenced_block(reply) or "[0, 0]"
        score = f(x)
        messages += [{"role": "assistant", "content": reply},
                     {"role": "user", "content": search_step.render(x, str(score), None, "Next?")}]
    plain = time.perf_counter() - started
    return {"search": searched / result.steps, "latency": latency / result.steps,
            "plain": plain / steps}  # fmt: skip


def _steps_row(what: str, values: list[int | None]) -> Row:
    found = [v for v in values if v is not None]
    note = f"found on {len(found)} of {len(values)} seeds"
    return Row(what, Figure([float(v) for v in found]) if found else None, "steps", note=note)


def bench(reps: int, seeds: int = 10, steps: int = 30) -> Section:
    section = Section(
        "13. LLM-guided search",
        f"`promptlog.optimize` in OPRO's form on OPRO's linear regression (50 points, "
        f"8 candidates a step) with a deterministic stand-in proposer, against random "
        f"search, over {seeds} seeds; and a {steps}-step search in llm_optimize's form on "
        f"the offline model against a plain loop making the same calls unlogged, "
        f"{reps} repetitions, a fresh process each.",
    )
    found = worker("search.steps_to_optimum", seeds)
    section.rows.append(_steps_row("OPRO (stand-in proposer): steps to [15, 14]", found["opro"]))
    section.rows.append(_steps_row("random search: steps to [15, 14]", found["random"]))
    opro = [v for v in found["opro"] if v is not None]
    randomly = [v if v is not None else 10_000 for v in found["random"]]
    if opro:
        ratio = Figure([statistics.median(randomly) / statistics.median(opro)])
        section.rows.append(Row(
            "random search / OPRO, median steps", None, "", ratio=ratio,
            ratio_label="× fewer steps", goal="≥ 5×", met=ratio.median >= 5,
        ))  # fmt: skip
    results = [worker("search.overhead_per_step", steps) for _ in range(reps)]
    search = [r["search"] * 1e3 for r in results]
    plain = [r["plain"] * 1e3 for r in results]
    beyond = [(r["search"] - r["latency"]) * 1e3 for r in results]
    section.rows.append(Row("plain loop of the same calls, per step", Figure(plain), "ms"))
    section.rows.append(Row("`promptlog.optimize`, per step", Figure(search), "ms",
                            ratio=ratios(search, plain), ratio_label="× the plain loop"))
    section.rows.append(Row(
        "`promptlog.optimize` beyond its calls' latency, per step", Figure(beyond), "ms",
        goal="< 50 ms", met=statistics.median(beyond) < 50,
    ))  # fmt: skip
    section.notes.append(
        "The stand-in proposer is no model: how many steps a real model needs depends on "
        "the model (independent reproductions of OPRO found weak models do no better than "
        "random search); `baseline=\"random\"` measures it for yours."
    )
    return section
