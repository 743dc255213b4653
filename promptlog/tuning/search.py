"""``promptlog.optimize``: a model proposes the next x from the history of (x, f(x)),
as llm_optimize and OPRO do, and every evaluation is a logged run.

    result = promptlog.optimize(f, x0="[0, 0]", task="Decrease f(x) ...",
                                model_name="gpt-4o-mini", max_steps=10, minimize=True)
    result.best_x, result.best_score, result.history

A search is an experiment of kind ``"optimisation"``. Its runs are the proposals
(the model's calls, result ``{"role": "proposal", ...}``) and the evaluations (result
``{"role": "evaluation", "step", "candidate", "x", "x_hash", "score", "feedback",
"reply"}`` and the metric ``score``); its outcome says the best x and why it stopped.
Two forms: llm_optimize's (one proposal per step, the conversation kept) and OPRO's
(``candidates_per_step`` proposals at temperature 1.0 from a meta-prompt holding the
``top_k`` best solutions sorted by score, the best last).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from .. import metrics, store
from ..errors import OptimizerError
from ..prompts import Message
from . import search_prompts
from .fenced import last_fenced_block
from .scoring import llm_judge, run_python
from .search_prompts import correction, meta_prompt, search_step, search_system, unguided

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..bots import SimpleBot
    from ..comparisons import Comparison
    from ..experiments import Experiment

Method = Literal["optimize", "OPRO"]
_TAIL_LINES = 12  # lines of a traceback kept as feedback
_TAIL_CHARS = 2000

QUESTION = "What is the next x to try, such that its score is better?"


def x_hash(x: str) -> str:
    """The identity of a candidate: ``sha256:`` of its text."""
    return "sha256:" + hashlib.sha256(x.encode("utf-8", "surrogatepass")).hexdigest()


def _shown(score: float | None) -> str:
    """A score as the model reads it."""
    return "none (f failed)" if score is None else f"{score:.10g}"


def _tail(error: BaseException) -> str:
    """The end of an exception's traceback, without the optimiser's own frame."""
    tb = error.__traceback__.tb_next if error.__traceback__ is not None else None
    lines = "".join(traceback.format_exception(type(error), error, tb)).rstrip().splitlines()
    text = "\n".join(lines[-_TAIL_LINES:])
    return text[-_TAIL_CHARS:]


@dataclass
class _Tried:
    """One evaluated x. ``score`` is what was logged (None when f failed with no
    score yet to give it); ``value`` ranks it (the worst possible when None)."""

    step: int
    candidate: int
    x: str
    x_hash: str
    score: float | None
    value: float
    feedback: str | None
    reply: str | None
    error: str | None
    run_id: str | None

    def row(self) -> dict[str, Any]:
        return {
            "step": self.step, "candidate": self.candidate, "x": self.x,
            "x_hash": self.x_hash, "score": self.score, "feedback": self.feedback,
            "error": self.error, "reply": self.reply, "run_id": self.run_id,
        }  # fmt: skip


@dataclass
class _Settings:
    f: Callable[[str], Any]
    x0: list[str]
    task: str
    question: str
    minimize: bool
    max_steps: int
    candidates_per_step: int
    top_k: int
    stop_score: float | None
    patience: int | None
    max_cost: float | None
    method: Method
    bot_options: dict[str, Any]
    max_workers: int | None
    executor: Any
    model: str | None
    quiet: bool


@dataclass
class SearchResult:
    """What a search found: the best x and its score, every evaluation, the
    experiment that holds them, and (with ``baseline=``) the baseline's searches and
    the comparison of the best scores."""

    best_x: str | None
    best_score: float | None
    steps: int
    stopped: str
    reason: str
    experiment: Experiment
    minimize: bool
    tried: list[_Tried] = field(repr=False)
    searches: list[SearchResult] = field(default_factory=list, repr=False)
    baselines: list[SearchResult] = field(default_factory=list, repr=False)
    comparison: Comparison | None = field(default=None, repr=False)

    @property
    def history(self) -> pd.DataFrame:
        """One row per evaluated x, in the order tried: step, candidate, x, x_hash,
        score, feedback, error, the proposer's reply, run id, and the best score so
        far."""
        import pandas as pd

        columns = ["step", "candidate", "x", "x_hash", "score", "feedback", "error", "reply",
                   "run_id"]  # fmt: skip
        frame = pd.DataFrame([t.row() for t in self.tried], columns=columns)
        best: list[float | None] = []
        current: _Tried | None = None
        for t in self.tried:
            if current is None or _better(t.value, current.value, self.minimize):
                current = t
            best.append(current.score)
        frame["best_so_far"] = pd.Series(best, dtype="float64")
        return frame

    def __str__(self) -> str:
        best = "no score" if self.best_score is None else f"best score {self.best_score:.10g}"
        return (
            f"Search {self.experiment.name!r} ({self.experiment.id}): {best} after "
            f"{self.steps} steps, {len(self.tried)} x evaluated; stopped: {self.stopped}. "
            f"{self.reason}\nbest x:\n{self.best_x}"
        )

    def _repr_html_(self) -> str:
        import html

        head, _, best_x = str(self).partition("\nbest x:\n")
        table = self.history[["step", "candidate", "x", "score", "best_so_far"]].to_html(
            index=False
        )
        return (
            f"<p><b>{html.escape(head)}</b></p><p>best x:</p><pre>{html.escape(best_x)}</pre>"
            + table
        )

    @property
    def baseline(self) -> SearchResult | None:
        """The first baseline search, when there is one."""
        return self.baselines[0] if self.baselines else None

    def best_by_step(self) -> list[tuple[int, float | None]]:
        """(step, best score so far) after each step."""
        return _best_by_step(self.tried, self.minimize)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Score per step (each evaluation a point) with the best-so-far line, and
        the baseline's best-so-far line when there is one; returns the axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "result.plot() needs matplotlib: pip install 'promptlog[plot]'."
            ) from None
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        scored = [(t.step, t.score) for t in self.tried if t.score is not None]
        ax.scatter([step for step, _ in scored], [score for _, score in scored], s=14, alpha=0.5,
                   color="C0", label="evaluations")  # fmt: skip
        for i, search in enumerate(self.searches or [self]):
            steps, best = zip(*search.best_by_step(), strict=True) if search.tried else ((), ())
            ax.step(steps, best, where="post", color="C0", alpha=1.0 if i == 0 else 0.4,
                    label="best so far" if i == 0 else None)  # fmt: skip
        for i, baseline in enumerate(self.baselines):
            steps, best = zip(*baseline.best_by_step(), strict=True) if baseline.tried else ((), ())
            ax.step(steps, best, where="post", color="C1", linestyle="--",
                    alpha=1.0 if i == 0 else 0.4,
                    label="baseline best so far" if i == 0 else None)  # fmt: skip
        ax.set_xlabel("step")
        ax.set_ylabel("score")
        ax.set_title(self.experiment.name)
        ax.legend(frameon=False)
        return ax


def _better(a: float, b: float, minimize: bool) -> bool:
    return a < b if minimize else a > b


def _best_by_step(tried: list[_Tried], minimize: bool) -> list[tuple[int, float | None]]:
    out: list[tuple[int, float | None]] = []
    best: _Tried | None = None
    for step in sorted({t.step for t in tried}):
        for t in tried:
            if t.step == step and (best is None or _better(t.value, best.value, minimize)):
                best = t
        out.append((step, best.score if best is not None else None))
    return out


# --- proposing -----------------------------------------------------------------------


@dataclass
class _Candidate:
    """A proposed x, to evaluate."""

    candidate: int
    x: str
    x_hash: str
    reply: str | None


class _Search:
    """One search: its experiment, its history, its loop."""

    def __init__(
        self,
        settings: _Settings,
        *,
        name: str,
        role: str,
        proposer: str | Callable[[random.Random], str],
        max_steps: int,
        resume: bool,
        parent: Any = None,
        seed: str = "",
    ):
        self.s = settings
        self.name = name
        self.role = role
        self.proposer = proposer  # "model", "random" (the model, shown no scores) or a function
        self.max_steps = max_steps
        self.resume = resume
        self.parent = parent
        self.seed = seed
        self.tried: dict[str, _Tried] = {}
        self.order: list[_Tried] = []
        self.proposals: list[dict[str, Any]] = []
        self.step = 0
        self.best: _Tried | None = None
        self.best_step = 0
        self.stopped = ""
        self.reason = ""
        self.bot: SimpleBot | None = None
        self.exp: Experiment | None = None

    # the experiment -------------------------------------------------------------------

    def _experiment(self) -> Experiment:
        from ..experiments import Experiment

        s = self.s
        metadata = {
            "optimiser": s.method if self.proposer == "model" else "baseline",
            "minimize": s.minimize,
            "task": s.task,
            "question": s.question,
            "candidates_per_step": s.candidates_per_step,
            "top_k": s.top_k,
            "max_steps": self.max_steps,
            "stop_score": s.stop_score,
            "patience": s.patience,
            "max_cost": s.max_cost,
            "model": s.model,
            "role": self.role,
        }
        if self.proposer != "model":
            metadata["baseline"] = self.proposer if isinstance(self.proposer, str) else getattr(
                self.proposer, "__qualname__", "function"
            )
        return Experiment(
            self.name, kind="optimisation", parent=self.parent, metadata=metadata,
            max_workers=s.max_workers, resume=self.resume, quiet=True, progress=False,
        )  # fmt: skip

    def run(self) -> SearchResult:
        self.exp = exp = self._experiment()
        if self.proposer in ("model", "random"):
            from ..bots import SimpleBot

            self.bot = SimpleBot(
                search_system(self.s.task, self.s.minimize), name="proposer",
                **self.s.bot_options,
            )  # fmt: skip
        with exp.session():
            try:
                self._take_up(exp.runs)
                if self.step == 0:
                    self._evaluate_x0()
                while not self._stop_reason():
                    self._step()
            finally:
                exp.outcome = self._outcome()
        if not self.s.quiet:
            best = "no score" if self.best is None else f"best {_shown(self.best.score)}"
            print(
                f"promptlog: search {self.name!r} {exp.id}: {best} after {self.step} steps, "
                f"{len(self.order)} evaluated ({self.stopped}) -> {store.db_path()}",
                file=sys.stderr,
            )
        return self._result()

    def _take_up(self, runs: Sequence[Any]) -> None:
        """Continue from the runs a resumed experiment kept: their evaluations are
        the history, their proposals the conversation."""
        results = [(run.result, run.id) for run in runs if isinstance(run.result, dict)]
        evaluations = sorted(
            (r for r in results if r[0].get("role") == "evaluation"),
            key=lambda r: (r[0]["step"], r[0]["candidate"]),
        )
        for result, run_id in evaluations:
            score = result.get("score")
            self._add(_Tried(
                step=result["step"], candidate=result["candidate"], x=result["x"],
                x_hash=result["x_hash"], score=score,
                value=score if score is not None else self._worst_value(),
                feedback=result.get("feedback"), reply=result.get("reply"),
                error=result.get("error"), run_id=run_id,
            ))  # fmt: skip
        proposals = [r for r, _ in results if r.get("role") == "proposal"]
        self.proposals = sorted(proposals, key=lambda r: (r["step"], r["candidate"]))
        steps = [r["step"] for r, _ in results if r.get("role") in ("evaluation", "proposal")]
        self.step = max(steps, default=0)

    def _worst_value(self) -> float:
        return math.inf if self.s.minimize else -math.inf

    def _add(self, tried: _Tried) -> None:
        self.tried[tried.x_hash] = tried
        self.order.append(tried)
        if self.best is None or _better(tried.value, self.best.value, self.s.minimize):
            self.best = tried
            self.best_step = tried.step

    # one step ----------------------------------------------------------------------------

    def _evaluate_x0(self) -> None:
        candidates, seen = [], set()
        for i, x in enumerate(self.s.x0):
            h = x_hash(x)
            if h not in self.tried and h not in seen:
                seen.add(h)
                candidates.append(_Candidate(i, x, h, None))
        self._evaluate(0, candidates)

    def _step(self) -> None:
        step = self.step + 1
        k = self.s.candidates_per_step
        if callable(self.proposer):
            function = self.proposer
            candidates = []
            for c in range(k):
                rng = random.Random(f"{self.seed}:{self.name}:{step}:{c}")
                x = str(function(rng)).strip()
                candidates.append(_Candidate(c, x, x_hash(x), None))
            proposals: list[dict[str, Any]] = [
                {"x": c.x, "x_hash": c.x_hash, "candidate": c.candidate, "reply": None}
                for c in candidates
            ]
        else:
            proposals = self._propose(step)
        self.step = step
        fresh: list[_Candidate] = []
        seen: set[str] = set()
        for p in proposals:
            h = p.get("x_hash")
            if h is None or h in self.tried or h in seen:
                continue
            seen.add(h)
            fresh.append(_Candidate(p["candidate"], p["x"], h, p.get("reply")))
        if not any(p.get("x") is not None for p in proposals):
            last = next((p.get("reply") for p in reversed(proposals) if p.get("reply")), "")
            self.stopped = "unparsed"
            self.reason = (
                f"Step {step}: no x could be read from the model's reply, even after a "
                f"correction (no ``` fenced block). Its last reply began: "
                f"{(last or '')[:200]!r}"
            )
            return
        self._evaluate(step, fresh)

    def _messages(self, step: int) -> list[Message]:
        """What the model is sent at ``step``, after the system prompt."""
        s = self.s
        if self.proposer == "random":
            return [unguided(s.x0[0], s.question)]
        if s.method == "OPRO":
            ranked = sorted(self.order, key=lambda t: t.value, reverse=s.minimize)
            top = ranked[-s.top_k:]
            solutions = [
                {"x": t.x, "score": _shown(t.score), "feedback": t.feedback} for t in top
            ]
            reused = sum(1 for p in self.proposals if p["step"] == step - 1 and p.get("reused"))
            return [meta_prompt(solutions, s.question, s.minimize, reused)]
        # llm_optimize's conversation: x0, then each proposal and what it scored.
        messages: list[Message] = []
        for t in self.order:
            if t.step == 0:
                messages.append(search_step(t.x, _shown(t.score), t.feedback, s.question))
        exchanges = [p for p in self.proposals if p.get("x_hash") in self.tried]
        window = exchanges[-s.top_k:]
        for i, p in enumerate(window):
            t = self.tried[p["x_hash"]]
            best = self.best
            show_best = i == len(window) - 1 and best is not None and best is not t
            messages.append(Message(role="assistant", content=p["reply"]))
            messages.append(search_step(
                t.x, _shown(t.score), t.feedback, s.question, reused=bool(p.get("reused")),
                best_x=best.x if show_best and best is not None else None,
                best_score=_shown(best.score) if show_best and best is not None else None,
            ))  # fmt: skip
        return messages

    def _propose(self, step: int) -> list[dict[str, Any]]:
        """Ask the model for ``candidates_per_step`` proposals, each a run."""
        assert self.exp is not None and self.bot is not None
        messages = self._messages(step)
        bot = self.bot
        known = dict(self.tried)  # read-only while the proposals run

        def propose(candidate: int) -> dict[str, Any]:
            reply = bot(*messages).content
            x = last_fenced_block(reply)
            result: dict[str, Any] = {"role": "proposal", "step": step, "candidate": candidate}
            if x is None:
                result["unparsed_reply"] = reply
                reply = bot(*messages, Message(role="assistant", content=reply),
                            correction()).content  # fmt: skip
                x = last_fenced_block(reply)
            result.update(reply=reply, x=x)
            if x is not None:
                h = result["x_hash"] = x_hash(x)
                if h in known:
                    result.update(reused=True, score=known[h].score)
            return result

        runs = self.exp.map(propose, list(range(self.s.candidates_per_step)))
        proposals = []
        for run in runs:
            if run.status == "succeeded" and isinstance(run.result, dict):
                proposals.append(run.result)
        if not proposals:
            errors = [run.error for run in runs if run.error is not None]
            if errors:
                raise errors[0]
        self.proposals.extend(proposals)
        return proposals

    def _evaluate(self, step: int, candidates: list[_Candidate]) -> None:
        """Evaluate the candidates of one step at once, each a run."""
        assert self.exp is not None
        if not candidates:
            return
        finite = [t.score for t in self.order if t.score is not None]
        worst = (max(finite) if self.s.minimize else min(finite)) if finite else None
        # Only the evaluations go to the executor, as a module-level function over f:
        # the proposer's calls stay here, in this search's session on its threads.
        runs = self.exp.map(
            partial(_evaluate_one, self.s.f, worst, step), candidates, executor=self.s.executor
        )
        for run in runs:
            if run.status != "succeeded":
                if run.error is not None:
                    raise run.error
                continue
            result = run.result
            score = result["score"]
            self._add(_Tried(
                step=step, candidate=result["candidate"], x=result["x"],
                x_hash=result["x_hash"], score=score,
                value=score if score is not None else self._worst_value(),
                feedback=result["feedback"], reply=result["reply"], error=result["error"],
                run_id=run.id,
            ))  # fmt: skip

    # stopping ----------------------------------------------------------------------------

    def _stop_reason(self) -> bool:
        """Set why the search stops, if it does; True then."""
        if self.stopped:
            return True
        s = self.s
        best = self.best.score if self.best is not None else None
        if s.stop_score is not None and best is not None and not _better(
            s.stop_score, best, s.minimize
        ):
            self.stopped, self.reason = "stop_score", (
                f"The best score {best:.10g} reached stop_score {s.stop_score:g}."
            )
        elif s.max_cost is not None and (cost := self._cost()) >= s.max_cost:
            self.stopped, self.reason = "max_cost", (
                f"The calls cost ${cost:.6g}, reaching max_cost ${s.max_cost:g}."
            )
        elif s.patience is not None and self.step - self.best_step >= s.patience:
            self.stopped, self.reason = "patience", (
                f"No better score in the last {s.patience} steps."
            )
        elif self.step >= self.max_steps:
            self.stopped, self.reason = "max_steps", f"{self.max_steps} steps were taken."
        return bool(self.stopped)

    def _cost(self) -> float:
        """What this search's calls cost so far, from the log."""
        return float(self._usage()["cost"] or 0.0)

    def _usage(self) -> dict[str, Any]:
        """This search's calls so far, their tokens and cost, from the log."""
        from ..read import Log

        assert self.exp is not None and self.exp.id is not None
        store.flush()
        with Log() as log:
            return log.experiment_usage([self.exp.id])[self.exp.id]

    # the outcome -------------------------------------------------------------------------

    def _outcome(self) -> dict[str, Any]:
        best = self.best
        try:
            usage = self._usage()
        except Exception:  # written as the search ends, perhaps on an error: never mask it
            usage = {"calls": None, "cost": None}
        return {
            "best_score": best.score if best is not None else None,
            "best_x": best.x if best is not None else None,
            "best_x_hash": best.x_hash if best is not None else None,
            "best_step": self.best_step if best is not None else None,
            "steps": self.step,
            "evaluations": len(self.order),
            "calls": usage["calls"],
            "cost": usage["cost"],
            "stopped": self.stopped or "interrupted",
            "reason": self.reason or "The search was interrupted.",
        }

    def _result(self) -> SearchResult:
        assert self.exp is not None
        best = self.best
        return SearchResult(
            best_x=best.x if best is not None else None,
            best_score=best.score if best is not None else None,
            steps=self.step, stopped=self.stopped, reason=self.reason,
            experiment=self.exp, minimize=self.s.minimize, tried=list(self.order),
        )  # fmt: skip


def _evaluate_one(
    f: Callable[[str], Any], worst: float | None, step: int, c: _Candidate
) -> dict[str, Any]:
    """One evaluation, in its run (perhaps on an executor's worker): ``f(c.x)`` as a
    score recorded under ``score``, the worst score so far where f raised or gave no
    number."""
    error = feedback = None
    try:
        value = f(c.x)
    except Exception as raised:
        score, feedback = worst, _tail(raised)
        error = f"{type(raised).__name__}: {raised}"[:500]
    else:
        score, feedback = _read(value)
        if score is None:
            error = feedback
            score = worst
    if score is not None:
        metrics.record("score", score)
    return {
        "role": "evaluation", "step": step, "candidate": c.candidate, "x": c.x,
        "x_hash": c.x_hash, "score": score, "feedback": feedback,
        "reply": c.reply, "error": error,
    }  # fmt: skip


def _read(value: Any) -> tuple[float | None, str | None]:
    """``(score, feedback)`` from what f returned: a number, or (number, feedback).
    A score that is not a finite number is (None, why)."""
    feedback = None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise OptimizerError(
                f"f returned a tuple of {len(value)} values; return a score, or "
                f"(score, feedback) where feedback is a text the model reads."
            )
        value, feedback = value
        feedback = None if feedback is None else str(feedback)
    try:
        score, _ = metrics.validate("score", value)
    except Exception as error:
        numpy_scalar = type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()
        if isinstance(value, (int, float)) or numpy_scalar:
            return None, f"f returned {value!r}, which is not a finite number."
        raise OptimizerError(
            f"f returned {type(value).__name__} {value!r:.80}; return a number (the score), "
            f"or (score, feedback)."
        ) from error
    return score, feedback


# --- the public function -------------------------------------------------------------


class _Optimize:
    """``promptlog.optimize(f, x0, task=...)``, its helpers
    ``promptlog.optimize.run_python`` and ``promptlog.optimize.llm_judge``, and its
    prompts, knobs like any other: ``promptlog.optimize.prompts.meta_prompt`` …"""

    run_python = staticmethod(run_python)
    llm_judge = staticmethod(llm_judge)
    prompts = search_prompts

    def __call__(
        self,
        f: Callable[[str], Any],
        x0: str | Sequence[str],
        *,
        task: str,
        question: str = QUESTION,
        model_name: str | None = None,
        bot: SimpleBot | None = None,
        max_steps: int = 10,
        candidates_per_step: int = 1,
        top_k: int = 20,
        stop_score: float | None = None,
        minimize: bool = False,
        patience: int | None = None,
        max_cost: float | None = None,
        method: Method | None = None,
        temperature: float | None = None,
        baseline: Literal["random"] | Callable[[random.Random], str] | None = None,
        repeats: int = 1,
        name: str = "optimize",
        resume: bool = False,
        max_workers: int | None = None,
        executor: Any = None,
        quiet: bool = False,
    ) -> SearchResult:
        """Search for the x that scores best under ``f``, a model proposing each next x.

        ``f(x)`` returns a score, or ``(score, feedback)`` where feedback is text the
        model reads; it may raise (the candidate then scores the worst seen so far,
        with the traceback's end as feedback). ``x0`` is the first x (or several).
        ``task`` says what x is and what makes it good; ``question`` is asked each step.

        The proposer is ``bot`` (its model and options; the search sets its system
        prompt and temperature) or a bot on ``model_name``. ``method="optimize"`` (the
        default with one candidate per step) keeps llm_optimize's conversation, the
        last ``top_k`` exchanges of it; ``"OPRO"`` (the default with several) sends a
        meta-prompt of the ``top_k`` best solutions sorted by score, the best last.
        ``temperature`` defaults to 1.0 for OPRO and 0.7 for the conversation.

        Stops after ``max_steps`` steps, when the best score reaches ``stop_score``,
        after ``patience`` steps without a better score, when the calls' logged cost
        reaches ``max_cost`` (dollars), or when no x can be read from a reply even
        after one correction. ``resume=True`` continues the latest search named
        ``name`` from its logged history, evaluating nothing twice.

        ``baseline="random"`` also runs the same budget with the model shown no
        scores (``baseline=fn`` proposes with ``fn(random.Random) -> x`` instead);
        ``repeats`` runs that many independent searches of each, and
        ``result.comparison`` compares their best scores (``promptlog.compare``).
        ``executor`` (a ``concurrent.futures.Executor``: a ``ProcessPoolExecutor``,
        ``promptlog.executors.dask(client)`` …) evaluates each step's candidates
        (``f`` is sent there) instead of the search's own threads (``max_workers``
        of them); the proposer's calls stay in this process. Each search prints a
        line saying what it found, unless ``quiet``.
        """
        settings = _settings(
            f, x0, task=task, question=question, model_name=model_name, bot=bot,
            max_steps=max_steps, candidates_per_step=candidates_per_step, top_k=top_k,
            stop_score=stop_score, minimize=minimize, patience=patience, max_cost=max_cost,
            method=method, temperature=temperature, max_workers=max_workers,
            executor=executor, quiet=quiet,
        )  # fmt: skip
        if baseline is not None and baseline != "random" and not callable(baseline):
            raise OptimizerError(
                f"baseline must be \"random\" or a function of a random.Random returning "
                f"an x, not {baseline!r}."
            )
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise OptimizerError(
                f"repeats must be a whole number of at least 1, not {repeats!r}."
            )
        if not isinstance(name, str) or not name.strip():
            raise OptimizerError("A search needs a name: optimize(..., name=\"my-search\").")
        searches: list[SearchResult] = []
        parent = None
        for r in range(repeats):
            label = name if r == 0 else f"{name} #{r + 1}"
            search = _Search(
                settings, name=label, role="search", proposer="model", max_steps=max_steps,
                resume=resume, parent=parent, seed=str(r),
            ).run()  # fmt: skip
            searches.append(search)
            parent = searches[0].experiment
        main = searches[0]
        main.searches = searches
        if baseline is not None:
            kind = "random" if baseline == "random" else "baseline"
            # The same budget as each search: its steps, without an early stop of its own.
            unlimited = dataclasses.replace(settings, patience=None, max_cost=None)
            for r, search in enumerate(searches):
                label = f"{name} {kind}" + ("" if repeats == 1 else f" #{r + 1}")
                main.baselines.append(_Search(
                    unlimited, name=label, role="baseline", proposer=baseline,
                    max_steps=search.steps, resume=resume, parent=main.experiment,
                    seed=str(r),
                ).run())  # fmt: skip
            main.comparison = _compare(name, kind, main)
        return main


def _settings(
    f: Callable[[str], Any],
    x0: str | Sequence[str],
    *,
    task: str,
    question: str,
    model_name: str | None,
    bot: SimpleBot | None,
    max_steps: int,
    candidates_per_step: int,
    top_k: int,
    stop_score: float | None,
    minimize: bool,
    patience: int | None,
    max_cost: float | None,
    method: Method | None,
    temperature: float | None,
    max_workers: int | None,
    executor: Any,
    quiet: bool,
) -> _Settings:
    """Check the arguments of a search, each with an error that says what to pass."""
    if not callable(f):
        raise OptimizerError(f"f must be a function of x returning a score, not {f!r}.")
    starts = [x0] if isinstance(x0, str) else list(x0) if isinstance(x0, Sequence) else None
    if not starts or not all(isinstance(x, str) and x.strip() for x in starts):
        raise OptimizerError(
            f"x0 must be the first x as a non-empty string (or a list of them), not {x0!r:.80}."
        )
    if not isinstance(task, str) or not task.strip():
        raise OptimizerError("optimize needs a task: what x is and what makes it good.")
    for label, value, least in (
        ("max_steps", max_steps, 0), ("candidates_per_step", candidates_per_step, 1),
        ("top_k", top_k, 1), ("patience", patience, 1),
    ):  # fmt: skip
        if value is None and label == "patience":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise OptimizerError(
                f"{label} must be a whole number of at least {least}, not {value!r}."
            )
    if max_cost is not None and (not isinstance(max_cost, (int, float)) or max_cost <= 0):
        raise OptimizerError(f"max_cost must be a positive number of dollars, not {max_cost!r}.")
    if method is None:
        method = "OPRO" if candidates_per_step > 1 else "optimize"
    if method not in ("optimize", "OPRO"):
        raise OptimizerError(f"method must be \"optimize\" or \"OPRO\", not {method!r}.")
    if (model_name is None) == (bot is None):
        raise OptimizerError(
            "optimize needs the model that proposes: model_name=\"gpt-4o-mini\" (or "
            "\"promptlog/offline\"), or bot=SimpleBot(...), one of them."
        )
    options: dict[str, Any] = bot.options() if bot is not None else {"model_name": model_name}
    if temperature is None:
        temperature = 1.0 if method == "OPRO" else 0.7
    options["temperature"] = temperature
    return _Settings(
        f=f, x0=[x.strip() for x in starts], task=task, question=question,
        minimize=bool(minimize), max_steps=max_steps, candidates_per_step=candidates_per_step,
        top_k=top_k, stop_score=stop_score, patience=patience, max_cost=max_cost,
        method=method, bot_options=options, max_workers=max_workers, executor=executor,
        model=options.get("model_name"), quiet=quiet,
    )  # fmt: skip


def _compare(name: str, kind: str, main: SearchResult) -> Comparison:
    """The best scores of the searches and of their baselines, each side an experiment
    with one run per search (metric ``best_score``), compared by ``promptlog.compare``:
    B is the model's searches, A the baseline's."""
    from ..comparisons import compare
    from ..context import current_run
    from ..experiments import Experiment

    ids: list[str] = []
    for label, results in ((f"{name} {kind} best", main.baselines),
                           (f"{name} best", main.searches)):  # fmt: skip

        def record(results: list[SearchResult] = results) -> dict[str, Any]:
            run = current_run()
            assert run is not None
            search = results[run.execution_index]
            if search.best_score is not None:
                metrics.record("best_score", search.best_score)
            return {"search": search.experiment.id, "best_x": search.best_x,
                    "steps": search.steps}  # fmt: skip

        exp = Experiment(label, num_executions=len(results), parent=main.experiment,
                         quiet=True, progress=False)  # fmt: skip
        exp.run(record)
        assert exp.id is not None
        ids.append(exp.id)
    return compare(ids[0], ids[1], metrics=["best_score"])


optimize = _Optimize()
