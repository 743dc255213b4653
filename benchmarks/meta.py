"""10. What ``promptlog.meta_optimize`` costs beyond its model calls.

A six-round meta-optimisation (round 0 on two task parameters, then five rounds of
two task parameters × two hyperparameter sets, the older task infos summarised past
eight) on the fake OpenAI server, whose responder answers each of the optimiser's
typed functions at once; the task itself is plain Python. One worker, so that the
calls do not overlap: the search's wall time minus the time inside its model calls
(their logged latency, litellm included) is the loop's own work — starting and
finishing runs, reading each round's chat chains back from the log, building and
validating the seed's models, the summary, the result.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .common import Figure, Row, Section, worker

ROUNDS = 5
_FUNCTION = re.compile(r"implementation of the Python function `(\w+)\(")


class Hyper(BaseModel):
    length: int


def _reply(request: dict[str, Any]) -> str:
    function = _FUNCTION.search(request["messages"][0]["content"])
    name = function.group(1) if function else ""
    if name == "reflect_on_task_run":
        return json.dumps({
            "feedback": "too short", "evaluation": "fine", "hyperparameter_suggestion": "longer",
            "hyperparameter_missing": "none",
        })
    if name == "summarize_optimization_info":
        return "Longer was better so far."
    if name == "probability_for_improvement":
        return json.dumps({"considerations": ["more to try"], "probability": 0.9})
    asked = len(request["messages"][-1]["content"])  # a different step as the info grows
    return json.dumps({
        "best_hyperparameters": {"length": 3},
        "suggestion": "try longer",
        "task_parameters_suggestions": ["sea", "sky"],
        "hyperparameter_suggestions": [{"length": asked % 11 + 1}, {"length": asked % 7 + 2}],
    })


def search() -> dict[str, float]:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    import promptlog
    from promptlog.testing import FakeOpenAIServer

    def write(topic: str, hyperparameters: Hyper) -> str:
        return (topic * 20)[: hyperparameters.length]

    def closeness(topic: str, text: str) -> float:
        return -abs(len(text) - 7)

    with FakeOpenAIServer(responder=_reply) as server:
        options = dict(max_workers=1, max_task_infos=8, **server.bot_kwargs)
        promptlog.meta_optimize(write, Hyper(length=3), ["ink"], closeness, rounds=1,
                                name="warm-up", **options)  # litellm imported, the log open
        started = time.perf_counter()
        result = promptlog.meta_optimize(write, Hyper(length=3), ["ink", "owl"], closeness,
                                         rounds=ROUNDS, name="bench", **options)
        wall = time.perf_counter() - started  # on disk when it returns
    log = promptlog.open()
    calls = log.calls(result.experiment.id)
    runs = len(log.runs(result.experiment.id))
    return {"wall": wall, "calls_s": float(calls.latency_s.sum()), "calls": len(calls),
            "runs": runs}


def bench(reps: int) -> Section:
    section = Section(
        "10. Meta-optimisation overhead",
        f"`promptlog.meta_optimize`, {ROUNDS + 1} rounds on the fake OpenAI server answering "
        f"at once, one worker: its wall time minus the time inside its logged model calls, "
        f"per run; {reps} repetitions, a fresh process each.",
    )
    results = []
    for rep in range(reps):
        print(f"  meta repetition {rep + 1}/{reps}", flush=True)
        results.append(worker("meta.search"))
    overhead = Figure([(r["wall"] - r["calls_s"]) / r["runs"] * 1e3 for r in results])
    section.rows.append(Row("search wall time", Figure([r["wall"] for r in results]), "s",
                            note=f"{results[0]['runs']} runs, {results[0]['calls']} calls"))
    section.rows.append(Row(
        "loop overhead beyond the model calls, per run", overhead, "ms",
        ratio=Figure([r["wall"] / r["calls_s"] for r in results]),
        ratio_label="× the calls' time", goal="≤ 10 ms", met=overhead.median <= 10,
    ))
    return section
