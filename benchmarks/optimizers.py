"""11. Prompt optimisers: ``promptlog.optimizers`` side by side with DSPy's own.

The same one-step question-answering program (question in, answer out, instructions
"Answer the question."), the same examples and the same deterministic stand-in
models, served over HTTP by the fake OpenAI-compatible server:

- ``FollowsExamples``: answers a question right only if a demo in its prompt shows it,
  or one sharing its first word; zero-shot it scores 0;
- ``Keyword``: answers right only if its instructions contain the word ``carefully``;
- ``Proposer``: writes the instructions an instruction search asks for, in a fixed
  order, the word appearing in the fourth; ``Reflector``: adds the word to the
  instructions it is shown when the feedback says an answer was wrong.

All four (from ``promptlog.testing``) read what promptlog sends and what DSPy's chat
and JSON adapters send, and answer in the layout each asks for. promptlog's optimisers
run in a fresh process with a fresh log; each of DSPy's in its own virtual
environment (``benchmarks/peers/dspy_optimizers.py``), against a server in this
process. A run's model calls are the requests its server received; the valset score
is the tuned program's accuracy on the validation examples, measured the same way for
both. Response caches are off on both sides, so the calls are what each
algorithm asks of a model.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import HERE, Figure, PeerUnavailable, Row, Section, peer_python, peer_version, run_json

INSTRUCTIONS = "Answer the question."
KEYWORD = "carefully"
UNKNOWN = "I do not know."
# What the proposer writes, in turn; the fourth has the keyword.
PROPOSALS = (
    "Answer the question briefly.",
    "Answer the question in plain words.",
    "Answer the question politely.",
    "Read the question carefully, then answer it.",
    "Answer the question in one line.",
)
# The models' names, as the requests carry them (litellm sends what follows "openai/").
PROPOSER, REFLECTOR = "proposer", "reflector"

# --- the data ---------------------------------------------------------------------------

WORDS = ["apple", "berry", "cherry", "grape", "lemon", "mango", "olive", "peach"]
# Every training question starts with a word of its own; the validation questions share
# those first words ("train-like").
TRAIN = [{"question": f"{w} one", "answer": w.upper()} for w in WORDS]
DEV = [{"question": f"{w} two", "answer": w.upper()} for w in WORDS]
# Training questions in pairs sharing their first word, covering half the valset's.
PAIRED = [{"question": f"{w} {n}", "answer": w.upper()} for w in WORDS[:4] for n in ("one", "six")]
EVERYTHING = TRAIN + DEV + PAIRED
DATASETS = {"train-like": (TRAIN, DEV), "paired": (PAIRED, DEV)}


# --- the stand-in models ----------------------------------------------------------------


class StandIns:
    """The responder of the fake server: each request answered by the stand-in of
    ``promptlog.testing`` that its model names. Each reads promptlog's requests and
    DSPy's alike, and answers in the layout the request asks for. Deterministic: the
    task models depend on the request alone, the proposer on how many proposals it
    has written (one server per optimisation)."""

    def __init__(self) -> None:
        from promptlog.testing import FollowsExamples, Keyword, Proposer, Reflector

        self.models: dict[str, Callable[[dict[str, Any]], str]] = {
            "follows-examples": FollowsExamples(EVERYTHING, wrong=UNKNOWN),
            "keyword": Keyword(EVERYTHING, word=KEYWORD, wrong=UNKNOWN),
            PROPOSER: Proposer(PROPOSALS),
            REFLECTOR: Reflector(KEYWORD, failing="wrong: expected"),
        }

    def __call__(self, body: dict[str, Any]) -> str:
        model = str(body.get("model") or "").removeprefix("openai/")
        if model not in self.models:
            raise ValueError(f"no stand-in model {model!r}")
        return self.models[model](body)


def model_calls(requests: list[dict[str, Any]]) -> Counter[str]:
    """Requests per model name."""
    return Counter(str(r.get("model") or "").removeprefix("openai/") for r in requests)


def feedback(example: dict[str, Any], prediction: Any) -> tuple[float, str]:
    """The exact-match score, and a sentence on what was wrong (for reflection)."""
    got = str(prediction).strip()
    if got == example["answer"]:
        return 1.0, "right"
    return 0.0, f"wrong: expected {example['answer']!r}, got {got!r}"


# --- what is compared -------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One of promptlog's optimisers and DSPy's counterpart, with the same settings
    written in each one's own words, on one dataset and stand-in task model."""

    data: str
    model: str
    ours: str
    our_options: dict[str, Any]
    theirs: str
    their_options: dict[str, Any]


PAIRS = (
    Pair("train-like", "follows-examples", "LabeledFewShot", {"k": 8}, "LabeledFewShot",
         {"k": 8}),
    Pair("train-like", "follows-examples", "BootstrapFewShot",
         {"max_demos": 4, "max_labeled": 16},
         "BootstrapFewShot", {"max_bootstrapped_demos": 4, "max_labeled_demos": 16}),
    Pair("paired", "follows-examples", "BootstrapFewShot", {"max_demos": 2, "max_labeled": 2},
         "BootstrapFewShot", {"max_bootstrapped_demos": 2, "max_labeled_demos": 2}),
    Pair("paired", "follows-examples", "RandomSearch",
         {"num_candidates": 3, "max_demos": 2, "max_labeled": 4},
         "BootstrapFewShotWithRandomSearch",
         {"num_candidate_programs": 3, "max_bootstrapped_demos": 2, "max_labeled_demos": 4}),
    Pair("train-like", "keyword", "InstructionSearch", {"breadth": 3, "depth": 3},
         "COPRO", {"breadth": 3, "depth": 3}),
    Pair("train-like", "keyword", "ReflectiveSearch", {"max_metric_calls": 48, "minibatch": 3},
         "GEPA", {"max_metric_calls": 48, "reflection_minibatch_size": 3}),
)  # fmt: skip


def promptlog_run(data: str, task: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """One of promptlog's optimisers, in a fresh process with a fresh log: compile the
    program against the stand-ins, then score the tuned program on the valset."""
    os.environ["PROMPTLOG_DB"] = str(
        Path(tempfile.mkdtemp(prefix="promptlog-bench-")) / "message_log.db")
    import promptlog
    from promptlog import llm_function, optimizers
    from promptlog.testing import FakeOpenAIServer

    optimiser_class = getattr(optimizers, name, None)
    if optimiser_class is None:
        return {"missing": True}
    train, val = DATASETS[data]
    with FakeOpenAIServer(responder=StandIns(), max_requests=100_000,
                          max_seconds=3600) as server:  # fmt: skip
        endpoint: dict[str, Any] = {"api_base": server.base_url, "api_key": "sk-fake"}

        @llm_function(model_name=f"openai/{task}", temperature=0.0, max_tokens=200,
                      name="bench.answer", **endpoint)  # fmt: skip
        def answer(question: str) -> str:
            """Answer the question."""

        def program(question: str) -> str:
            return answer(question)

        def exact(example: dict[str, Any], prediction: Any) -> bool:
            return feedback(example, prediction)[0] == 1.0

        extra: dict[str, Any] = {}
        if name == "InstructionSearch":
            extra["proposer"] = promptlog.SimpleBot(
                "", model_name=f"openai/{PROPOSER}", **endpoint)
        if name == "ReflectiveSearch":
            extra["reflection_model"] = promptlog.SimpleBot(
                "", model_name=f"openai/{REFLECTOR}", **endpoint)
        metric = feedback if name == "ReflectiveSearch" else exact
        optimiser = optimiser_class(metric=metric, **options, **extra)
        _warm_up()
        started = time.perf_counter()
        result = optimiser.compile(program, trainset=train, valset=val, cache=False,
                                   quiet=True, name=f"bench {name}")
        seconds = time.perf_counter() - started
        compiled = model_calls(server.requests)
        with promptlog.overrides(result.best):
            scores = [float(exact(example, program(example["question"]))) for example in val]
        checked = model_calls(server.requests)
    best = result.best.get("bench.answer", {}) if result.best else {}
    return {
        "optimiser": name,
        "seconds": seconds,
        "task_calls": compiled[task],
        "eval_calls": checked[task] - compiled[task],
        "instruction_calls": compiled[PROPOSER] + compiled[REFLECTOR],
        "valset_score": sum(scores) / len(scores),
        "reported_score": result.best_score,
        "baseline_score": result.baseline_score,
        "demos": len(best.get("demos") or ()),
        "instructions": best.get("template", INSTRUCTIONS),
        "candidates": len(result.candidates),
    }


def _warm_up() -> None:
    """Import what a compile imports on first use (DSPy's process has imported its
    own before its clock starts), with no request to the stand-ins."""
    import litellm
    import pandas  # noqa: F401

    litellm.completion(model="openai/warm-up", messages=[{"role": "user", "content": "hi"}],
                       mock_response="ok")  # fmt: skip


def dspy_run(python: Path, pair: Pair) -> dict[str, Any]:
    """One of DSPy's optimisers in DSPy's virtual environment, against a server here;
    the model calls are the requests the server received."""
    from promptlog.testing import FakeOpenAIServer

    train, val = DATASETS[pair.data]
    with FakeOpenAIServer(responder=StandIns(), max_requests=100_000,
                          max_seconds=3600) as server:  # fmt: skip
        spec = {
            "base_url": server.base_url, "task": pair.model, "instructions": INSTRUCTIONS,
            "trainset": train, "valset": val, "optimiser": pair.theirs,
            "options": pair.their_options, "proposer": PROPOSER, "reflector": REFLECTOR,
        }  # fmt: skip
        result = run_json([str(python), str(HERE / "peers" / "dspy_optimizers.py"),
                           json.dumps(spec)], timeout=600)  # fmt: skip
        served = model_calls(server.requests)
    # The server's counts; DSPy's own history only splits tuning from scoring.
    counted = result["task_calls"] + result["eval_calls"] + result["instruction_calls"]
    result["history"] = counted
    result["served"] = sum(served.values())
    result["task_calls"] = served[pair.model] - result["eval_calls"]
    result["instruction_calls"] = served[PROPOSER] + served[REFLECTOR]
    return result


def bench() -> Section:
    from .common import worker

    section = Section(
        "11. Prompt optimisers",
        f"promptlog's optimisers and DSPy's on the same one-step program (a typed function / "
        f"a `dspy.Predict`, question in, answer out), the same examples and the same "
        f"deterministic stand-in models over HTTP: `FollowsExamples` (right only when a demo "
        f"shows the question or one sharing its first word) for the few-shot optimisers, "
        f"`Keyword` (right only when the instructions say \"{KEYWORD}\") for the instruction "
        f"optimisers, with a proposer and a reflection model (see benchmarks/optimizers.py). "
        f"Train-like: {len(TRAIN)} training questions, each with a first word of its own, and "
        f"{len(DEV)} validation questions sharing those words; paired: {len(PAIRED)} training "
        f"questions in pairs sharing a first word, covering half the validation questions' "
        f"words (0.5 is the best reachable). The figure is the tuned program's accuracy on "
        f"the validation questions, measured the same way for both; the calls are the "
        f"requests the stand-ins' server received until that score was known: promptlog's "
        f"compile scores the baseline and its candidates on the valset, DSPy's tuned program "
        f"is then run on the valset once. One run each: the stand-ins are deterministic. "
        f"Response caches off on both sides.",
    )
    try:
        python: Path | None = peer_python("dspy")
        version = peer_version("dspy")
    except PeerUnavailable as e:
        python, version = None, ""
        section.notes.append(f"DSPy could not be installed, so it has no rows: {e}")
    baselines: dict[str, float] = {}
    ran: list[str] = []
    for pair in PAIRS:
        what = f"{pair.data}, {pair.model}"
        print(f"  {pair.ours} vs {pair.theirs} ({what})", flush=True)
        ours = _attempt(section, f"promptlog `{pair.ours}`", worker,
                        "optimizers.promptlog_run", pair.data, pair.model, pair.ours,
                        pair.our_options)
        theirs = None
        if python is not None:
            theirs = _attempt(section, f"DSPy `{pair.theirs}`", dspy_run, python, pair)
        their_calls = _calls(theirs, valset_run=True) if theirs is not None else None
        if theirs is not None:
            ran.append(pair.theirs)
        if ours is not None and ours.get("missing"):
            section.notes.append(f"promptlog has no `{pair.ours}` yet: only DSPy's row.")
        elif ours is not None:
            baselines[pair.model] = ours["baseline_score"]
            our_calls = _calls(ours, valset_run=False)
            options = ", ".join(f"{k}={v}" for k, v in pair.our_options.items())
            section.rows.append(Row(
                f"promptlog `{pair.ours}({options})`, {what}",
                Figure([ours["valset_score"]]), "valset accuracy",
                ratio=Figure([our_calls / their_calls]) if their_calls else None,
                ratio_label="× DSPy's calls",
                goal="≥ DSPy's score" if theirs is not None else "",
                met=ours["valset_score"] >= theirs["valset_score"] if theirs else None,
                note=_note(ours, our_calls),
            ))
            if abs(ours["reported_score"] - ours["valset_score"]) > 1e-9:
                section.notes.append(
                    f"promptlog `{pair.ours}` reported a valset score of "
                    f"{ours['reported_score']:.3f}; run again it scored "
                    f"{ours['valset_score']:.3f}.")  # fmt: skip
        if theirs is not None and their_calls is not None:
            options = ", ".join(f"{k}={v}" for k, v in pair.their_options.items())
            section.rows.append(Row(
                f"DSPy {version} `{pair.theirs}({options})`, {what}",
                Figure([theirs["valset_score"]]), "valset accuracy",
                note=_note(theirs, their_calls),
            ))
            if theirs["history"] != theirs["served"]:
                section.notes.append(
                    f"DSPy `{pair.theirs}`: its LMs' history holds {theirs['history']} calls, "
                    f"its server received {theirs['served']} requests (a request for n "
                    f"completions is one history entry and n requests); the table counts "
                    f"requests.")
    if len(ran) == len(PAIRS):
        section.notes.append(
            f"DSPy {version} has all five optimisers compared (GEPA through the gepa "
            f"package, which it installs), and each ran.")
    if baselines:
        scores = ", ".join(f"{score:.3f} on {task}" for task, score in baselines.items())
        section.notes.append(f"Untuned (zero-shot), the program scores {scores} "
                             f"(promptlog's baseline candidate).")
    return section


def _attempt(section: Section, what: str, run: Callable[..., Any], *args: Any) -> Any:
    """``run(*args)``, or None with a note saying how it failed."""
    try:
        return run(*args)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        section.notes.append(f"{what} failed: {last}")
        return None


def _calls(result: dict[str, Any], *, valset_run: bool) -> int:
    """The calls until the tuned program's valset score was known."""
    return (result["task_calls"] + result["instruction_calls"]
            + (result["eval_calls"] if valset_run else 0))  # fmt: skip


def _note(result: dict[str, Any], calls: int) -> str:
    helper = result["instruction_calls"]
    helped = f", {helper} to the proposer or reflection model" if helper else ""
    if "candidates" in result:  # promptlog's: its compile scored the candidates
        spent = (f"{calls} model calls ({result['task_calls']} to the task model{helped}) "
                 f"to tune and to score {result['candidates']} candidates on the valset")
    else:
        spent = (f"{calls} model calls: {result['task_calls']} to the task model to "
                 f"tune{helped}, then {result['eval_calls']} to score the tuned program on "
                 f"the valset")
    what = f"{result['demos']} demos"
    if result["instructions"] != INSTRUCTIONS:
        what += f", instructions {result['instructions']!r}"
    return f"{spent}. Tuned: {what}; {result['seconds']:.1f} s."
