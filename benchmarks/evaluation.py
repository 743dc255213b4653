"""9. Evaluation over a dataset: ``promptlog.evaluate`` against a plain loop.

A program (a ``SimpleBot`` on the offline model, answering a question) and a metric
run over every example × repeat, once through ``promptlog.evaluate`` (each execution
a logged run with its example, repeat and metric) and once in a plain ``for`` loop
calling the same program and metric (the bot's calls logged, no runs), in the same
process, alternating. Ratio = evaluate's runs/s ÷ the loop's.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Figure, Row, Section, ratios, worker


def evaluate_vs_loop(examples: int, repeats: int) -> dict[str, float]:
    path = Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db"
    os.environ["PROMPTLOG_DB"] = str(path)
    import promptlog
    from promptlog import SimpleBot, store

    dataset = [{"question": f"What is {n} + {n}?", "answer": str(2 * n)}
               for n in range(examples)]  # fmt: skip
    bot = SimpleBot("Answer with a number.", model_name="promptlog/offline", max_tokens=16)

    def program(question: str) -> str:
        return bot(question).content

    def exact(example: dict[str, Any], prediction: str) -> bool:
        return prediction.strip() == example["answer"]

    program(dataset[0]["question"])  # warm up: litellm imported, the log opened
    store.flush()
    started = time.perf_counter()
    for example in dataset:
        for _ in range(repeats):
            exact(example, program(example["question"]))
    store.flush()
    loop = time.perf_counter() - started
    started = time.perf_counter()
    promptlog.evaluate(program, dataset, [exact], repeats=repeats, name="bench", quiet=True,
                       progress=False)
    evaluated = time.perf_counter() - started  # the experiment is on disk when it returns
    runs = examples * repeats
    return {"loop": runs / loop, "evaluate": runs / evaluated}


def bench(reps: int, examples: int, repeats: int = 3) -> Section:
    section = Section(
        "9. Evaluation over a dataset",
        f"`promptlog.evaluate` of a `SimpleBot` program on the offline model and an exact-match "
        f"metric over {examples:,} examples × {repeats} repeats, against a plain loop calling "
        f"the same program and metric; {reps} repetitions, a fresh process each.",
    )
    results = [worker("evaluation.evaluate_vs_loop", examples, repeats) for _ in range(reps)]
    loop = [r["loop"] for r in results]
    evaluated = [r["evaluate"] for r in results]
    section.rows.append(Row("plain loop, the program's calls logged", Figure(loop), "runs/s"))
    ratio = ratios(evaluated, loop)
    section.rows.append(Row(
        "`promptlog.evaluate`, every run and metric logged", Figure(evaluated), "runs/s",
        ratio=ratio, ratio_label="× the plain loop", goal="≥ 0.8×", met=ratio.median >= 0.8,
    ))
    return section
