"""The prompts of ``promptlog.optimize``, as prompt functions: versioned in the log,
diffable with ``promptlog diff``, and knobs that ``promptlog.overrides`` can change
(so a search's own prompts can themselves be tuned).

Two forms share the system prompt: llm_optimize's conversation (one proposal per
step, each step's x and score sent as the next user turn) and OPRO's meta-prompt
(the ``top_k`` best solutions so far, sorted by score with the best last).
"""

from __future__ import annotations

from typing import Any

from ..prompts import prompt


@prompt("system", name="promptlog.optimize.system")
def search_system(task: str, minimize: bool) -> None:
    """You are an optimisation assistant. You are shown values of x that were tried
    and how well each did, and you propose the next x to try.

    You always reply with a new x, even when unsure. You try one idea at a time,
    keep what works and drop what does not, and prefer the simplest x that does
    the task. {% if minimize %}Lower{% else %}Higher{% endif %} scores are better.

    Task
    ----
    {{ task }}"""


@prompt("user", name="promptlog.optimize.step")
def search_step(
    x: str,
    score: str,
    feedback: str | None,
    question: str,
    reused: bool = False,
    best_x: str | None = None,
    best_score: str | None = None,
) -> None:
    """x =
    ```
    {{ x }}
    ```

    score = {{ score }}
    {%- if feedback %}
    feedback:
    {{ feedback }}
    {%- endif %}
    {%- if reused %}

    This x was tried before, so it was not evaluated again: its score is the one
    it got then. Try a different x.
    {%- endif %}
    {%- if best_x is not none %}

    The best x so far scored {{ best_score }}:
    ```
    {{ best_x }}
    ```
    {%- endif %}

    {{ question }}

    Reply briefly with what might improve the score and why the last x did or did
    not do better, then give the full next x inside one ``` fenced block. Use ```
    for nothing else."""


@prompt("user", name="promptlog.optimize.meta_prompt")
def meta_prompt(
    solutions: list[dict[str, Any]], question: str, minimize: bool, reused: int = 0
) -> None:
    """Below are solutions tried so far, each with its score, in ascending order of
    quality: {% if minimize %}lower{% else %}higher{% endif %} scores are better, and
    the best solution is the last one.
    {% for solution in solutions %}
    solution:
    ```
    {{ solution.x }}
    ```
    score: {{ solution.score }}
    {%- if solution.feedback %}
    feedback: {{ solution.feedback }}
    {%- endif %}
    {% endfor %}
    {%- if reused %}
    {{ reused }} of the last proposals had been tried before, so they were not
    evaluated again.
    {% endif %}
    {{ question }}

    Give a new solution that is different from all solutions above and has a score
    better than any of them. Reply with the new solution inside one ``` fenced
    block, after any reasoning; use ``` for nothing else."""


@prompt("user", name="promptlog.optimize.correction")
def correction() -> None:
    """Your reply has no fenced block, so no x could be read from it. Reply with
    the next x to try inside one ``` fenced block, like this:

    ```
    the next x
    ```"""


@prompt("user", name="promptlog.optimize.unguided")
def unguided(x0: str, question: str) -> None:
    """Here is an example x:
    ```
    {{ x0 }}
    ```

    {{ question }}

    Give a new x, different from the example, inside one ``` fenced block; use ```
    for nothing else."""


@prompt("system", name="promptlog.optimize.judge_system")
def judge_system() -> None:
    """You are a careful judge. You rate a text against a rubric, explain briefly,
    and end your reply with final_score=<number>."""


@prompt("user", name="promptlog.optimize.judge")
def judge(rubric: str, x: str) -> None:
    """{{ rubric }}

    The text to rate:
    ```
    {{ x }}
    ```

    At the end, reply with `final_score=<score>` (e.g. `final_score=5`)."""
