"""Instruction search: a proposer model writes new instructions for each typed function
from the instructions tried so far and their scores, as DSPy's COPRO does, every
proposal scored on the valset.

    search = optimizers.InstructionSearch(metric=exact, proposer="gpt-4o-mini",
                                          breadth=4, depth=3)
    result = search.compile(program, trainset=train, valset=dev)

Each round, for each typed function, the proposer sees the best instructions tried so
far with their valset scores, lowest first, and writes ``breadth`` new ones; each is a
candidate (a prompt version) scored on the valset, the other functions keeping their
best instructions so far. Unlike COPRO, which scores on its trainset and overfits it,
candidates are scored on the valset. The proposer's prompt is a typed function
(:func:`propose_instruction`), so it is versioned in the log and can itself be tuned
with ``promptlog.overrides``; its calls run inside runs of the optimisation, so they
count in its calls and cost.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from .. import knobs
from ..bots import SimpleBot
from ..errors import KnobError, OptimizerError
from ..functions import LLMFunction, llm_function
from .compile import Candidate, Compilation, Optimizer

__all__ = ["InstructionSearch", "propose_instruction"]

# How many of the best attempts the proposer is shown (COPRO shows its top candidates).
ATTEMPTS_SHOWN = 8


@llm_function(temperature=1.0)
def propose_instruction(signature: str, attempts: str, proposal: int) -> str:  # type: ignore[empty-body]
    """You write the instructions of one step of a program that calls a language model.
    The step is the Python function `{{ signature }}`: a language model reads its
    instructions and its inputs, and replies with its return value.

    These instructions were tried, each with its score on validation examples (higher is
    better), lowest score first:

    {{ attempts }}

    Write new instructions that will score higher than all of them (proposal
    {{ proposal }}: make it differ from the instructions above). Keep what the best ones
    do well, and be specific about what a good reply does. Reply with the instructions
    alone, without quotes, headings or comments."""


class InstructionSearch(Optimizer):
    """DSPy's COPRO, scored on the valset: ``depth`` rounds in which ``proposer``
    writes ``breadth`` new instructions per typed function, given the best tried so far
    and their scores (lowest first); the best candidate wins.

    ``proposer`` is a model name, a bot (``SimpleBot``) whose model writes through
    :func:`propose_instruction`, or a callable ``proposer(signature, attempts, n)``
    (``attempts`` a list of ``(instructions, score)``, lowest first) returning up to
    ``n`` instructions (a list, or one string), called once per round and function.
    Without one, the default model (``promptlog.configure(model_name=…)``) proposes.
    ``temperature`` is the proposer model's. Instructions that are not a valid
    template for the function (a ``{{ name }}`` it does not take) are skipped.
    """

    def __init__(
        self,
        metric: Callable[..., Any],
        proposer: str | SimpleBot | Callable[..., Any] | None = None,
        breadth: int = 4,
        depth: int = 3,
        *,
        temperature: float = 1.0,
        **options: Any,
    ):
        super().__init__(metric, **options)
        self.proposer = _check_model(proposer, "proposer")
        self.breadth = _count(breadth, "breadth")
        self.depth = _count(depth, "depth")
        self.temperature = temperature

    def settings(self) -> dict[str, Any]:
        return {
            "breadth": self.breadth,
            "depth": self.depth,
            "proposer": describe_model(self.proposer),
            "temperature": self.temperature,
        }

    def planned_runs(self, compilation: Compilation) -> int:
        functions = max(1, len(compilation.functions))
        return (1 + self.breadth * self.depth * functions) * compilation.evaluation_size

    def search(self, compilation: Compilation) -> None:
        c = compilation
        earlier = earlier_results(c, "propose")
        prompt = cast(LLMFunction, propose_instruction)
        writer = model_function(prompt, self.proposer, self.temperature)
        tried: dict[str, dict[str, Candidate]] = {
            name: {fn.template: c.baseline} for name, fn in c.functions.items()
        }
        chosen: dict[str, str] = {}  # each function's best instructions so far
        several = len(c.functions) > 1
        for round_ in range(1, self.depth + 1):
            for name, fn in c.functions.items():
                attempts = _best_first(tried[name])[:ATTEMPTS_SHOWN][::-1]
                texts = self._propose(c, writer, fn, attempts, round_, earlier)
                for number, text in enumerate(texts, 1):
                    overrides: dict[str, Any] = {
                        other: {"template": t} for other, t in chosen.items() if other != name
                    }
                    overrides[name] = {"template": text}
                    label = f"round {round_} proposal {number}"
                    if several:
                        label = f"{short_name(name)}: {label}"
                    candidate = c.evaluate(overrides, label=label)
                    tried[name].setdefault(text, candidate)
                best = _best_first(tried[name])[0][0]
                if best == fn.template:
                    chosen.pop(name, None)
                else:
                    chosen[name] = best

    def _propose(
        self,
        c: Compilation,
        writer: LLMFunction | None,
        fn: LLMFunction,
        attempts: list[tuple[str, float]],
        round_: int,
        earlier: dict[str, Any],
    ) -> list[str]:
        """This round's valid, new instructions for ``fn`` (at most ``breadth``)."""
        signature = signature_of(fn)
        shown = _attempts_text(attempts)
        first = (round_ - 1) * self.breadth + 1
        if writer is None:  # a callable: one call for the round
            items = [(step_key("propose", fn.name, round_, shown), first)]
        else:  # a model: one call per proposal, numbered so that each request differs
            numbers = range(first, first + self.breadth)
            items = [(step_key("propose", fn.name, round_, shown, n), n) for n in numbers]
        raw: list[str] = []
        todo = []
        for key, number in items:
            if key in earlier:
                raw.extend(earlier[key]["texts"])
            else:
                todo.append((key, number))
        if todo:

            def one(item: tuple[str, int]) -> dict[str, Any]:
                key, number = item
                if writer is None:
                    found = self.proposer(signature, list(attempts), self.breadth)
                    texts = [found] if isinstance(found, str) else list(found)
                else:
                    texts = [writer(signature=signature, attempts=shown, proposal=number)]
                return {"step": "propose", "key": key, "function": fn.name,
                        "round": round_, "texts": [str(t) for t in texts]}  # fmt: skip

            c.charge(0)  # honour max_calls and max_cost before calling the proposer
            runs = c.map(one, todo)
            done = [run for run in runs if run.status == "succeeded"]
            if not done:
                error = runs[0].error
                raise OptimizerError(
                    f"The proposer failed on every proposal for {fn.name} in round {round_}: "
                    f"{type(error).__name__}: {error}. Check its model (proposer=…)."
                )
            for run in done:
                raw.extend(run.result["texts"])
        kept = valid_instructions(fn, raw, exclude=[text for text, _ in attempts])
        return kept[: self.breadth]


# --- shared with ReflectiveSearch -------------------------------------------------------


def _check_model(model: Any, what: str) -> Any:
    if model is None or isinstance(model, (str, SimpleBot)) or callable(model):
        if isinstance(model, str) and not model.strip():
            raise OptimizerError(f"{what} is an empty model name; pass e.g. 'gpt-4o-mini'.")
        return model
    raise OptimizerError(
        f"{what} must be a model name, a SimpleBot or a callable, not {model!r}."
    )


def describe_model(model: Any) -> str | None:
    """How the optimisation's metadata names a proposer or reflection model."""
    if model is None or isinstance(model, str):
        return model
    if isinstance(model, SimpleBot):
        return model.model_name
    return getattr(model, "__qualname__", None) or type(model).__name__


def model_function(prompt: LLMFunction, model: Any, temperature: float) -> LLMFunction | None:
    """The typed function ``prompt`` calling ``model`` (a name, a bot, or the default
    model for None), under the same name, versions and knobs; None when ``model`` is a
    plain callable."""
    if model is not None and not isinstance(model, (str, SimpleBot)):
        return None
    if model is None:
        return prompt.calling(temperature=temperature)
    if isinstance(model, str):
        return prompt.calling(model_name=model, temperature=temperature)
    if model.system_prompt.content.strip():
        return prompt.calling(bot=model)
    return prompt.calling(**model.options())


def earlier_results(c: Compilation, step: str) -> dict[str, Any]:
    """The results of this step logged by earlier sessions of a resumed optimisation
    (the parent's runs), by key, so that a resume asks no model again."""
    parent = c.parent
    found: dict[str, Any] = {}
    for run in getattr(parent, "runs", None) or ():
        result = getattr(run, "result", None)
        if getattr(run, "status", None) == "succeeded" and isinstance(result, dict):
            if result.get("step") == step and isinstance(result.get("key"), str):
                found[result["key"]] = result
    return found


def step_key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def signature_of(fn: LLMFunction) -> str:
    """``name(parameter: type, …) -> type``, as the proposer is told the step."""
    try:
        signature = inspect.signature(fn.fn)
    except (TypeError, ValueError):
        return fn.fn.__name__
    return f"{fn.fn.__name__}{signature}".replace("'", "")


def short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


_FENCE = re.compile(r"\A```[^\n]*\n(.*?)\n?```\Z", re.DOTALL)
_LABEL = re.compile(r"\A(?:new |improved )?instructions?\s*:\s*", re.IGNORECASE)


def clean_instructions(text: str) -> str:
    """A model's reply as instructions: without a code fence, a leading
    "Instructions:" label or the quotes around it."""
    text = str(text).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    text = _LABEL.sub("", text).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def valid_instructions(
    fn: LLMFunction, texts: Sequence[str], *, exclude: Sequence[str] = ()
) -> list[str]:
    """The texts that are new (not in ``exclude``, nor repeated) and valid templates
    for ``fn``, cleaned, in order."""
    seen = set(exclude)
    kept = []
    for raw in texts:
        text = clean_instructions(raw)
        if not text or text in seen:
            continue
        seen.add(text)
        try:
            checked = knobs.resolve({fn.name: {"template": text}})
        except KnobError:
            continue
        kept.append(checked[fn.name]["template"])
    return kept


def _best_first(tried: Mapping[str, Candidate]) -> list[tuple[str, float]]:
    """(instructions, score), the highest score first, the earliest among equals."""
    ordered = sorted(tried.items(), key=lambda kv: (-_finite(kv[1].score), kv[1].index))
    return [(text, candidate.score) for text, candidate in ordered]


def _attempts_text(attempts: Sequence[tuple[str, float]]) -> str:
    return "\n\n".join(
        f"Attempt {number}, score {score:.3f}:\n```\n{text}\n```"
        for number, (text, score) in enumerate(attempts, 1)
    )


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _count(value: Any, name: str, *, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise OptimizerError(f"{name} must be a whole number of at least {least}, not {value!r}.")
    return value
