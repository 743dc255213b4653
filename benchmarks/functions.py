"""7. What a typed function adds over the StructuredBot call it makes.

Calls on litellm's ``mock_response`` (no network, no model), the same reply to both: a
``StructuredBot`` asked for a pydantic model, and an ``@llm_function`` returning that
model, interleaved one for one in the same process, both logging. The difference of
their medians is what the typed function adds: binding and validating the arguments,
reading its knobs, rendering the template, the inputs as JSON, the version lookup.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .common import Figure, Row, Section, interleaved, worker

MODEL = "gpt-4o-mini"
REPLY = '{"title": "Pipelines", "bullet_points": ["They move data.", "Nightly."]}'


class Summary(BaseModel):
    title: str
    bullet_points: list[str]


def function_calls(calls: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    from promptlog import StructuredBot, llm_function, store

    bot = StructuredBot("You summarize.", pydantic_model=Summary, model_name=MODEL,
                        mock_response=REPLY)

    @llm_function(model_name=MODEL, mock_response=REPLY)
    def summarize(text: str, max_bullets: int = 3) -> Summary:
        """Summarize the text in at most {{ max_bullets }} bullet points."""

    text = "Pipelines move data from sources to models, nightly."

    def structured() -> None:
        bot(f"Summarize the text in at most 3 bullet points.\n\n{text}")

    def typed() -> None:
        summarize(text)

    for _ in range(20):
        structured()
        typed()
    samples = interleaved({"structured": structured, "typed": typed}, calls)
    store.flush()
    return samples


def bench(reps: int, calls: int) -> Section:
    section = Section(
        "7. Typed function overhead",
        f"{calls:,} calls of an `@llm_function` returning a pydantic model, interleaved one "
        f"for one with a `StructuredBot` call for the same model with the same reply on "
        f"litellm's `mock_response`, both logged; added latency = typed − StructuredBot "
        f"(median), {reps} repetitions, a fresh process each.",
    )
    results = []
    for rep in range(reps):
        print(f"  functions repetition {rep + 1}/{reps}", flush=True)
        results.append(worker("functions.function_calls", calls))
    structured = Figure([statistics.median(r["structured"]) * 1e3 for r in results])
    added = Figure([(statistics.median(r["typed"]) - statistics.median(r["structured"])) * 1e3
                    for r in results])
    section.rows.append(Row("`StructuredBot` call (mock), median", structured, "ms"))
    section.rows.append(Row("`@llm_function` added latency over it, median", added, "ms",
                            goal="≤ 0.3 ms", met=added.median <= 0.3))
    return section
