"""8. What a response cache hit costs, against the litellm call it saves.

A ``SimpleBot`` and a ``StructuredBot`` on litellm's ``mock_response`` (no network, no
model): each call with the cache off (a litellm call, logged) is interleaved one for
one with a call answered from the cache (the entry made beforehand, in the file), both
logged. The ratio hit / litellm call, per repetition, is what a hit costs of a call.
Interleaved, a hit shares the process with the background work litellm leaves after
each call; the hits are also timed back to back, on their own.
"""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .common import Figure, Row, Section, interleaved, ratios, worker

MODEL = "gpt-4o-mini"
REPLY = '{"title": "Pipelines", "bullet_points": ["They move data.", "Nightly."]}'


class Summary(BaseModel):
    title: str
    bullet_points: list[str]


def cache_calls(calls: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import SimpleBot, StructuredBot, store

    question = "Summarize: pipelines move data from sources to models, nightly."
    options: dict[str, Any] = {"model_name": MODEL, "mock_response": REPLY}
    bots = {
        "simple": SimpleBot("You summarize.", cache=False, **options),
        "simple_hit": SimpleBot("You summarize.", cache=True, **options),
        "structured": StructuredBot("You summarize.", pydantic_model=Summary, cache=False,
                                    **options),
        "structured_hit": StructuredBot("You summarize.", pydantic_model=Summary, cache=True,
                                        **options),
    }
    for bot in bots.values():  # warm up; the cached bots make their entries here
        for _ in range(20):
            bot(question)
    store.flush()  # the hits below read the file, not the writer's queue
    samples = interleaved({name: functools.partial(bot, question)
                           for name, bot in bots.items()}, calls)
    store.flush()
    for name in ("simple_hit", "structured_hit"):
        alone = interleaved({name: functools.partial(bots[name], question)}, calls)[name]
        samples[f"{name}_alone"] = alone
    store.flush()
    return samples


def bench(reps: int, calls: int) -> Section:
    section = Section(
        "8. Response cache hit",
        f"{calls:,} calls each of a `SimpleBot` and a `StructuredBot` on litellm's "
        f"`mock_response` with the cache off, interleaved one for one with the same calls "
        f"answered from the response cache (entries in the file), all logged; ratio = hit "
        f"/ litellm call (median), {reps} repetitions, a fresh process each.",
    )
    results = []
    for rep in range(reps):
        print(f"  cache repetition {rep + 1}/{reps}", flush=True)
        results.append(worker("cache.cache_calls", calls))
    for kind, label in (("simple", "`SimpleBot`"), ("structured", "`StructuredBot`")):
        call = [statistics.median(r[kind]) * 1e3 for r in results]
        hit = [statistics.median(r[f"{kind}_hit"]) * 1e3 for r in results]
        ratio = ratios(hit, call)
        section.rows.append(Row(f"{label} call on `mock_response`, median", Figure(call), "ms"))
        section.rows.append(Row(
            f"{label} cache hit, median", Figure(hit), "ms", ratio=ratio,
            ratio_label="× a call", goal="< 0.5×", met=ratio.median < 0.5,
        ))
        alone = [statistics.median(r[f"{kind}_hit_alone"]) * 1e3 for r in results]
        section.rows.append(Row(
            f"{label} cache hits back to back, median", Figure(alone), "ms",
            ratio=ratios(alone, call), ratio_label="× a call",
        ))
    return section
