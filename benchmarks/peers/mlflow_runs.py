"""Run inside MLflow's own virtual environment: log N runs, each with three
hyperparameters and three metrics, to MLflow's tracking on a SQLite backend.
Prints one JSON object. Standard library and MLflow only.

    python mlflow_runs.py DB_PATH N
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


def main() -> None:
    db_path, runs = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    import mlflow

    imported = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{db_path}")
    mlflow.set_experiment("bench")  # creates the database and its schema: not timed
    ready = time.perf_counter()
    for index in range(runs):
        with mlflow.start_run():
            mlflow.log_params({"lr": 0.01, "layers": 4, "optimizer": "adam"})
            mlflow.log_metrics({"accuracy": 0.5, "loss": index / runs, "tokens": 42})
    done = time.perf_counter()
    print(json.dumps({
        "runs": runs,
        "seconds": done - ready,
        "runs_per_s": runs / (done - ready),
        "import_s": imported - started,
        "setup_s": ready - imported,
        "version": mlflow.__version__,
    }))


if __name__ == "__main__":
    main()
