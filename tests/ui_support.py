"""A log for the viewer's tests, built on the offline model: the demo's two
versions of namer_user, two experiments with known metric values (exp-a, exp-b)
and one whose runs 3 and 7 fail."""

from __future__ import annotations

from typing import Any

from test_read import build_constructed_log

import promptlog
from promptlog import Experiment, current_run, demo
from promptlog.offline import MODEL_NAME

DEMO_RUNS = 10
FLAKY_RUNS = 8


def flaky() -> dict[str, int]:
    index = current_run().execution_index
    if index % 4 == 3:
        raise ValueError(f"no name for execution {index}\nthe second line")
    return {"index": index}


def build_ui_log() -> dict[str, Any]:
    """The experiments by label: v1, v2 (offline demo), a, b (known values), flaky."""
    found: dict[str, Any] = {
        label: demo.run_experiment(label, MODEL_NAME, DEMO_RUNS) for label in ("v1", "v2")
    }
    found["a"], found["b"] = build_constructed_log()
    found["flaky"] = Experiment("flaky", num_executions=FLAKY_RUNS, quiet=True)
    found["flaky"].run(flaky)
    promptlog.open().status()  # everything written
    return found
