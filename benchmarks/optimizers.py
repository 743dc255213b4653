"""11. Optimisers: promptlog's few-shot optimisers and DSPy's, on the same stand-in model.

The task is the "follows examples" stand-in's (``promptlog.testing.FollowsExamples``,
served by the fake OpenAI-compatible server): it answers a question right only when a
demo shows it, or one sharing its first word, and reads DSPy's prompt layout as well
as promptlog's. Two tasks: *train-like* (the valset's questions share their first words
with the trainset's, no two training questions do) and *paired* (training questions
come in pairs sharing a first word, covering half the valset's words). For each
optimiser: the best candidate's valset score and the model calls its compile made (the
stand-in counts them); promptlog's compile scores the baseline and every candidate on
the valset, DSPy's LabeledFewShot and BootstrapFewShot score nothing, so their valset
score is measured afterwards with ``dspy.Evaluate`` (its calls not counted). The stand-in
is deterministic, so one run of each gives its figures; the time is one run's.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Figure, PeerUnavailable, Row, Section, peer_python, run_json, worker

WORDS = ["apple", "berry", "cherry", "grape", "lemon", "mango", "olive", "peach"]
TRAIN = [{"question": f"{w} one", "answer": w.upper()} for w in WORDS]
DEV = [{"question": f"{w} two", "answer": w.upper()} for w in WORDS]
PAIRED = [{"question": f"{w} {n}", "answer": w.upper()} for w in WORDS[:4] for n in ("one", "six")]
TASKS = {"train-like": (TRAIN, DEV), "paired": (PAIRED, DEV)}

# (label, task, promptlog optimiser and options, DSPy teleprompter and options)
CASES: list[tuple[str, str, str, dict[str, Any], str, dict[str, Any]]] = [
    ("labelled demos, k=8", "train-like", "LabeledFewShot", {"k": 8},
     "LabeledFewShot", {"k": 8}),
    ("bootstrap, 4 traced + 16 labelled", "train-like", "BootstrapFewShot",
     {"max_demos": 4, "max_labeled": 16},
     "BootstrapFewShot", {"max_bootstrapped_demos": 4, "max_labeled_demos": 16}),
    ("bootstrap, 2 traced + 2 labelled", "paired", "BootstrapFewShot",
     {"max_demos": 2, "max_labeled": 2},
     "BootstrapFewShot", {"max_bootstrapped_demos": 2, "max_labeled_demos": 2}),
    ("random search, 3 candidates + 3 seeds", "paired", "RandomSearch",
     {"num_candidates": 3, "max_demos": 2, "max_labeled": 4},
     "BootstrapFewShotWithRandomSearch",
     {"num_candidate_programs": 3, "max_bootstrapped_demos": 2, "max_labeled_demos": 4}),
]  # fmt: skip


def promptlog_optimiser(task: str, optimiser: str, options: dict[str, Any]) -> dict[str, Any]:
    """One compile in this (fresh) process, against its own stand-in server."""
    os.environ["PROMPTLOG_DB"] = str(Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "log.db")
    import litellm  # noqa: F401 - imported before the clock starts, as DSPy's peer does

    from promptlog import llm_function, optimizers, store
    from promptlog.testing import FakeOpenAIServer, FollowsExamples

    store.writer().flush()  # the log created before the clock starts

    trainset, valset = TASKS[task]
    model = FollowsExamples(TRAIN + DEV + PAIRED)
    with FakeOpenAIServer(responder=model) as server:

        @llm_function(**server.bot_kwargs, temperature=0)
        def answer(question: str) -> str:
            """Answer the question in one word."""

        def qa(question: str) -> str:
            return answer(question).strip()

        def exact(example: dict[str, str], prediction: str) -> bool:
            return prediction == example["answer"]

        metric_options = {"metric": exact}
        cls = getattr(optimizers, optimiser)
        started = time.perf_counter()
        result = cls(**metric_options, **options).compile(
            qa, trainset=trainset, valset=valset, quiet=True
        )
        seconds = time.perf_counter() - started
    return {"score": result.best_score, "calls": model.requests, "seconds": seconds,
            "candidates": len(result.candidates_)}  # fmt: skip


def dspy_optimiser(task: str, teleprompter: str, options: dict[str, Any]) -> dict[str, Any]:
    """One DSPy compile in DSPy's own environment, against a stand-in served from here."""
    from promptlog.testing import FakeOpenAIServer, FollowsExamples

    trainset, valset = TASKS[task]
    model = FollowsExamples(TRAIN + DEV + PAIRED)
    script = Path(__file__).parent / "peers" / "dspy_optimizers.py"
    with FakeOpenAIServer(responder=model) as server:
        found = run_json([
            str(peer_python("dspy")), str(script), server.base_url, teleprompter,
            json.dumps(options), json.dumps(trainset), json.dumps(valset),
        ])  # fmt: skip
    # The stand-in's count is the truth; DSPy's history says which were the scoring's.
    found["calls"] = model.requests - found["evaluate_calls"]
    return found


def bench(reps: int) -> Section:
    section = Section(
        "11. Optimisers",
        "promptlog's few-shot optimisers and DSPy's (in a virtual environment of its own) "
        "on the same programs — one typed function / `dspy.Predict('question -> answer')` — "
        "and the same stand-in model (`FollowsExamples` behind the fake server): the "
        "best program's valset score (exact match) and the model calls compiling it made. "
        "promptlog's calls include scoring the baseline and every candidate on the "
        "valset; DSPy's LabeledFewShot and BootstrapFewShot score nothing while compiling.",
    )
    dspy_error = None
    for label, task, optimiser, options, teleprompter, dspy_options in CASES:
        print(f"  optimisers: {label}", flush=True)
        ours = worker("optimizers.promptlog_optimiser", task, optimiser, options)
        section.rows.append(Row(
            f"promptlog `{optimiser}`, {label} ({task})", Figure([ours["score"]]),
            "valset score", note=f"{ours['calls']} model calls, {ours['candidates']} "
            f"candidates, {ours['seconds']:.1f} s",
        ))  # fmt: skip
        if dspy_error is not None:
            continue
        try:
            theirs = dspy_optimiser(task, teleprompter, dspy_options)
        except (PeerUnavailable, RuntimeError) as e:
            dspy_error = str(e).splitlines()[0]
            continue
        section.rows.append(Row(
            f"DSPy `{teleprompter}`, {label} ({task})", Figure([theirs["score"]]),
            "valset score", note=f"{theirs['calls']} model calls compiling (+ "
            f"{theirs['evaluate_calls']} to score on the valset), {theirs['seconds']:.1f} s",
        ))  # fmt: skip
    if dspy_error is not None:
        section.notes.append(f"DSPy could not be measured: {dspy_error}")
    section.notes.append(
        "Zero-shot the stand-in scores 0 on both tasks; on the paired task at most half the "
        "valset's first words can be shown, so 0.5 is the best any optimiser can reach."
    )
    return section
