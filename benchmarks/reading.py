"""How fast the log reads: a 100k-run log, read through pandas and the CLI.

    python benchmarks/reading.py                 # 100 experiments x 1,000 runs
    python benchmarks/reading.py --runs 2000     # a smaller log

The log is written in bulk straight into the real schema (``store.writer``
creates and migrates it first), which is fine for test data: it is what a
long-used log looks like, without hours of experiments. Every figure is shown
next to a baseline measured in the same run (a plain ``SELECT *`` into pandas,
``python -c pass``), so the ratios travel between machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

METRICS = (("accuracy", "bool"), ("name_length", "int"), ("score", "float"))
MODELS = ("gpt-4o-mini", "claude-3-5-haiku")


def _ulid(ms: int, n: int) -> str:
    """A ULID-shaped id that sorts by ``ms`` then ``n``."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = (ms << 80) | n
    return "".join(alphabet[(value >> shift) & 31] for shift in range(125, -1, -5))


def _stamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}000Z"


def build_log(
    path: Path, experiments: int = 100, runs_per_experiment: int = 1000, calls_per_run: int = 1
) -> Path:
    """Write a log of ``experiments`` x ``runs_per_experiment`` runs, each with three
    metrics (bool, int, float), ``calls_per_run`` calls and two prompt versions."""
    from promptlog import store

    store.writer(path).flush()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    start = 1_700_000_000_000
    with conn:
        versions = []
        for version in (1, 2):
            for pid, (name, role) in enumerate(
                (("bench.namer_system", "system"), ("bench.namer_user", "user")), start=1
            ):
                vid = (version - 1) * 2 + pid
                versions.append((vid, name, role, f"{name} template v{version}\nline two",
                                 f"sha256:{vid:064x}", version,
                                 vid - 2 if version > 1 else None, _stamp(start)))
        conn.executemany(
            "INSERT INTO prompt_versions (id, name, role, template, hash, version, "
            "previous_version_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", versions)
        for e in range(experiments):
            ms = start + e * 60_000
            exp_id = _ulid(ms, e)
            conn.execute(
                "INSERT INTO experiments (id, name, status, num_executions, max_workers, "
                "metadata, environment, created_at, finished_at) "
                "VALUES (?, ?, 'succeeded', ?, 8, ?, '{}', ?, ?)",
                [exp_id, f"bench-{e % 10}", runs_per_experiment,
                 json.dumps({"variant": e % 3}), _stamp(ms), _stamp(ms + 50_000)])
            version = 1 + e % 2
            model = MODELS[e % 2]
            hyper = json.dumps({
                "bots": [{"name": "namer", "class": "StructuredBot", "model": model,
                          "temperature": 0.7, "system_prompt_version_id": version * 2 - 1,
                          "system_prompt_name": "bench.namer_system"}],
                "prompt_versions": [{"id": version * 2, "name": "bench.namer_user"}],
                "metadata": {"variant": e % 3},
            })
            runs, metrics, calls, links, call_links = [], [], [], [], []
            for i in range(runs_per_experiment):
                run_id = _ulid(ms + i, e * runs_per_experiment + i)
                runs.append((run_id, exp_id, i, "succeeded" if i % 50 else "failed",
                             _stamp(ms + i), _stamp(ms + i + 900), 0.9,
                             json.dumps({"name": f"Name {i}"}), "json", hyper))
                if i % 50:
                    metrics += [(run_id, "accuracy", float((i * 7 + e) % 3 != 0), "bool"),
                                (run_id, "name_length", float(5 + (i * 13 + e) % 20), "int"),
                                (run_id, "score", ((i * 31 + e * 17) % 100) / 100, "float")]
                links.append((run_id, version * 2))
                messages = json.dumps([
                    {"role": "system", "content": "You name jobs.",
                     "prompt_version_id": version * 2 - 1},
                    {"role": "user", "content": f"Name job {i}.", "prompt_version_id": version * 2},
                ])
                for c in range(calls_per_run):
                    call_id = _ulid(
                        ms + i, 10**10 + (e * runs_per_experiment + i) * calls_per_run + c
                    )
                    calls.append((call_id, run_id, "namer", "StructuredBot", model,
                                  '{"temperature": 0.7}', messages, f"Name {i}", 40 + i % 7,
                                  12 + i % 5, 0.00002, 0.4 + (i % 10) / 20, _stamp(ms + i)))
                    call_links += [(call_id, 0, version * 2 - 1), (call_id, 1, version * 2)]
            conn.executemany(
                "INSERT INTO runs (id, experiment_id, execution_index, status, started_at, "
                "ended_at, duration_s, result, result_format, hyperparameters) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
            conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", metrics)
            conn.executemany("INSERT INTO run_prompt_versions VALUES (?, ?)", links)
            conn.executemany(
                "INSERT INTO calls (id, run_id, bot_name, bot_class, model, parameters, "
                "messages, response_text, input_tokens, output_tokens, cost, latency_s, "
                "status, attempt, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'succeeded', 1, ?)", calls)
            conn.executemany("INSERT INTO call_prompt_versions VALUES (?, ?, ?)", call_links)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of ``repeat`` timings of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _cli(path: Path, *args: str) -> float:
    env = {**os.environ, "PROMPTLOG_DB": str(path)}
    command = [sys.executable, "-c", "from promptlog.cli import cli; cli()", *args]

    def run() -> None:
        subprocess.run(command, env=env, check=True, capture_output=True)

    return best_of(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1000, help="runs per experiment")
    args = parser.parse_args()
    import pandas as pd

    import promptlog

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "message_log.db"
        started = time.perf_counter()
        build_log(path, args.experiments, args.runs)
        total = args.experiments * args.runs
        print(f"built a log of {total:,} runs in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        log = promptlog.open(path)
        log.experiments()  # warm the page cache, as a second read would be

        def raw_runs() -> None:
            conn = sqlite3.connect(path)
            pd.read_sql_query("SELECT * FROM runs", conn)
            conn.close()

        baseline = best_of(raw_runs)
        print(f"\nbaseline: SELECT * FROM runs into pandas, {total:,} rows: {baseline:.3f} s")
        one = log.experiment_ids("bench-0")[0]
        rows = [
            ("log.experiments()", lambda: log.experiments()),
            (f"log.runs(one experiment of {args.runs:,} runs)", lambda: log.runs(one)),
            (f"log.runs() all {total:,} runs", lambda: log.runs()),
            ("log.calls(limit=20)", lambda: log.calls(limit=20)),
            ("log.prompt_history('namer_user')", lambda: log.prompt_history("namer_user")),
            ("promptlog.compare(bench-0, bench-1)",
             lambda: promptlog.compare("bench-0", "bench-1", path=path)),
        ]
        for label, fn in rows:
            seconds = best_of(fn)
            print(f"  {label:<45} {seconds:6.3f} s  ({seconds / baseline:5.2f}x baseline)")

        python = best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
        print(f"\nbaseline: python -c pass: {python:.3f} s")
        for command in (["--help"], ["status"], ["experiments"], ["runs", "bench-0"],
                        ["calls"], ["prompts", "namer_user"], ["compare", "bench-0", "bench-1"]):
            seconds = _cli(path, *command)
            print(f"  promptlog {' '.join(command):<38} {seconds:6.3f} s  "
                  f"({seconds / python:5.1f}x python)")
        modules = subprocess.run(
            [sys.executable, "-c",
             "import sys; from promptlog.cli import cli\n"
             "try: cli(['experiments'])\nexcept SystemExit: pass\n"
             "heavy = [m for m in ('litellm', 'pandas', 'scipy') if m in sys.modules]\n"
             "print('heavy:', ' '.join(heavy) or 'none')"],
            env={**os.environ, "PROMPTLOG_DB": str(path)}, capture_output=True, text=True,
        ).stdout.splitlines()
        print(f"\nmodules imported by `promptlog experiments`: {modules[-1]}")


if __name__ == "__main__":
    main()
