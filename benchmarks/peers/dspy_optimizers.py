"""Compile ``dspy.Predict("question -> answer")`` with one DSPy teleprompter against the
stand-in model at the given OpenAI-compatible base URL; print the valset score, the
calls compiling made and those scoring made, as JSON. Runs in DSPy's own environment.

    python dspy_optimizers.py BASE_URL TELEPROMPTER OPTIONS_JSON TRAIN_JSON VAL_JSON
"""

from __future__ import annotations

import json
import sys
import time

import dspy
from dspy import teleprompt


def main() -> None:
    base_url, name = sys.argv[1], sys.argv[2]
    options, train, val = (json.loads(arg) for arg in sys.argv[3:6])
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM(
        "openai/fake-model", api_base=base_url, api_key="sk-fake", cache=False, temperature=0
    )
    dspy.configure(lm=lm)
    trainset = [dspy.Example(**e).with_inputs("question") for e in train]
    valset = [dspy.Example(**e).with_inputs("question") for e in val]

    def exact(example, prediction, trace=None):
        return prediction.answer.strip() == example.answer

    cls = getattr(teleprompt, name)
    if name == "LabeledFewShot":
        optimiser = cls(**options)
    else:
        optimiser = cls(metric=exact, **options)
    kwargs = {"valset": valset} if name == "BootstrapFewShotWithRandomSearch" else {}
    started = time.perf_counter()
    compiled = optimiser.compile(dspy.Predict("question -> answer"), trainset=trainset, **kwargs)
    seconds = time.perf_counter() - started
    compiling = len(lm.history)
    evaluate = dspy.Evaluate(devset=valset, metric=exact, num_threads=4, display_progress=False)
    score = evaluate(compiled).score / 100
    print(
        json.dumps(
            {
                "score": score,
                "calls": compiling,
                "evaluate_calls": len(lm.history) - compiling,
                "seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
