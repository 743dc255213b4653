"""A deterministic stand-in for a model that proposes the next x of a numeric search,
for tests and benchmarks of ``promptlog.optimize``: a ``responder`` of
:class:`~promptlog.testing.FakeOpenAIServer`.

It reads the solutions the search shows it — OPRO's meta-prompt (sorted by score, the
best last) or llm_optimize's conversation (each x with its score) — and moves from the
best one: a small step, or a jump along the line from another good solution to the
best. So it finds the optimum of a smooth function only if the search shows it the
right solutions in the right order, which is what a test of the search needs.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections import Counter
from typing import Any

_SOLUTION = re.compile(r"solution:\n```\n(.*?)\n```\nscore: (\S+)", re.DOTALL)
_TURN = re.compile(r"x =\n```\n(.*?)\n```\n\nscore = (\S+)", re.DOTALL)
_BEST = re.compile(r"The best x so far scored (\S+):\n```\n(.*?)\n```", re.DOTALL)
_EXAMPLE = re.compile(r"```\n(.*?)\n```", re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class NumericProposer:
    """``responder(request) -> reply``: proposes a variant of the best x shown, its
    numbers (integers) moved. Identical requests get a sequence of different
    proposals (as sampling at temperature 1.0 would), the same sequence every run."""

    def __init__(self, seed: int = 0, small: tuple[int, int] = (1, 3)):
        self.seed = seed
        self.small = small  # the largest small step of the first number, and of the others
        self._asked: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> str:
        messages = request.get("messages") or []
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")
        last = users[-1] if users else ""
        key = hashlib.sha256("\n".join(users).encode()).hexdigest()
        with self._lock:
            self._asked[key] += 1
            n = self._asked[key]
        rng = random.Random(f"{self.seed}:{key}:{n}")
        ranked = self._ranked(last, users, system)
        if not ranked:
            shown = _EXAMPLE.findall(last)
            template = shown[-1] if shown else "[0, 0]"
            values = [int(float(v)) + rng.randint(-10, 10) for v in _NUMBER.findall(template)]
            return self._reply(template, values)
        best = ranked[-1]
        numbers = [int(round(float(v))) for v in _NUMBER.findall(best)]
        if len(ranked) >= 2 and rng.random() < 0.5:
            other = _NUMBER.findall(rng.choice(ranked[-4:-1]))
            t = rng.choice((0.5, 1, 2, 3))
            moved = [round(b + t * (b - float(o))) for b, o in zip(numbers, other, strict=False)]
        else:
            first, rest = self.small
            moved = [
                b + rng.randint(-(first if i == 0 else rest), first if i == 0 else rest)
                for i, b in enumerate(numbers)
            ]
        return self._reply(best, moved)

    @staticmethod
    def _ranked(last: str, users: list[str], system: str) -> list[str]:
        """The solutions shown, worst first."""
        solutions = _SOLUTION.findall(last)
        if solutions:
            return [x for x, _ in solutions]  # the meta-prompt's order: the best last
        turns = [(x, score) for text in users for x, score in _TURN.findall(text)]
        turns += [(x, score) for text in users for score, x in _BEST.findall(text)]
        scored = [(x, float(s)) for x, s in turns if _is_number(s)]
        lower = "Lower scores are better" in system
        return [x for x, _ in sorted(scored, key=lambda p: p[1], reverse=lower)]

    @staticmethod
    def _reply(template: str, values: list[int]) -> str:
        numbers = iter(values)
        x = _NUMBER.sub(lambda m: str(next(numbers, m.group(0))), template)
        return f"Moving from the best so far.\n```\n{x}\n```"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
