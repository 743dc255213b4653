"""llm-strategy's meta-optimisation, logged: a model reflects on runs of a task and
suggests its next hyperparameters, among them the instructions of a typed function.

    python examples/meta_optimize.py                         # the offline stand-in model
    PROMPTLOG_MODEL=gpt-4o-mini python examples/meta_optimize.py

The task writes a tagline with a typed function; the hyperparameters are that
function's instructions (a prompt knob: each new text is a new version of
``write_tagline``) and its temperature. A metric scores each tagline, so "best" is
the best mean score, not the optimiser's opinion. Afterwards:

    promptlog optimizations           # this search, its best score and cost
    promptlog diff write_tagline      # how the instructions changed
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

import promptlog
from promptlog import llm_function

MODEL = os.environ.get("PROMPTLOG_MODEL", "promptlog/offline")


@llm_function(model_name=MODEL, max_tokens=60)
def write_tagline(product: str) -> str:
    """Write a tagline for {{ product }}."""


class TaglineSettings(BaseModel):
    instructions: str = Field(
        description="The instructions of the tagline writer, a Jinja2 template that may "
        "name {{ product }}."
    )
    temperature: float = Field(ge=0, le=1, description="The tagline writer's temperature.")


def tagline(product: str, settings: TaglineSettings) -> str:
    """Write a tagline of at most six words for a product, naming the product."""
    return write_tagline(product)


def fits(product: str, text: str) -> float:
    """1 for naming the product's last word, plus up to 1 for brevity (six words or fewer)."""
    words = len(text.split())
    named = product.split()[-1].lower() in text.lower()
    return float(named) + min(1.0, 6 / max(words, 1))


def main() -> promptlog.MetaOptimization:
    result = promptlog.meta_optimize(
        tagline,
        hyperparameters=TaglineSettings(instructions=write_tagline.template, temperature=0.7),
        task_parameters=["a solar kettle", "a chess app for beginners"],
        metric=fits,
        knobs={"instructions": write_tagline, "temperature": (write_tagline, "temperature")},
        model_name=MODEL,
        rounds=3,
        max_task_infos=6,
        name="taglines",
    )
    print(result.rounds[["round", "hyperparameters", "score", "probability"]].to_string())
    print("stopped:", result.stopped)
    print("best:", result.best_hyperparameters, "score:", result.best_score)
    return result


if __name__ == "__main__":
    main()
