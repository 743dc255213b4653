"""4. Start-up: each command in a fresh process, wall time to exit.

``import promptlog``, ``promptlog --help`` and ``promptlog experiments`` on a large
log, against ``python -c pass`` and ``import mlflow`` (in MLflow's environment),
all interleaved round by round.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .common import Figure, Row, Section, child_env, peer_python, timed

CLI = Path(sys.executable).parent / "promptlog"

_HEAVY = (
    "import sys\n{run}\n"
    "print(' '.join(m for m in ('litellm', 'pandas') if m in sys.modules) or 'none')"
)


def _run(command: list[str], db: Path | None) -> None:
    extra = {"PROMPTLOG_DB": str(db)} if db else {}
    subprocess.run(command, check=True, capture_output=True, env=child_env(**extra))


def heavy_imports(code: str, db: Path | None) -> str:
    """Which heavy modules a command imports (none, litellm, pandas)."""
    extra = {"PROMPTLOG_DB": str(db)} if db else {}
    done = subprocess.run([sys.executable, "-c", _HEAVY.format(run=code)], check=True,
                          capture_output=True, text=True, env=child_env(**extra))
    return done.stdout.strip().splitlines()[-1]


def bench(reps: int, large_log: Path | None, large_log_label: str) -> Section:
    section = Section(
        "4. Start-up",
        f"Wall time of a fresh process, {reps} rounds interleaved; `promptlog experiments` "
        f"on {large_log_label}.",
    )
    commands: dict[str, tuple[list[str], Path | None]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "import promptlog": ([sys.executable, "-c", "import promptlog"], None),
        "promptlog --help": ([str(CLI), "--help"], None),
    }
    if large_log is not None:
        commands["promptlog experiments"] = ([str(CLI), "experiments"], large_log)
    mlflow_error = None
    try:
        commands["import mlflow"] = ([str(peer_python("mlflow")), "-c", "import mlflow"], None)
    except Exception as e:  # noqa: BLE001 - the table says why the peer is missing
        mlflow_error = str(e)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for rep in range(reps):
        print(f"  start-up round {rep + 1}/{reps}", flush=True)
        for name, (command, db) in commands.items():
            times[name].append(timed(lambda c=command, d=db: _run(c, d)))
    imports = {
        "import promptlog": heavy_imports("import promptlog", None),
        "promptlog --help": heavy_imports(
            "from promptlog.cli import cli\ntry: cli(['--help'])\nexcept SystemExit: pass", None
        ),
    }
    if large_log is not None:
        imports["promptlog experiments"] = heavy_imports(
            "from promptlog.cli import cli\ntry: cli(['experiments'])\nexcept SystemExit: pass",
            large_log,
        )
    for name, values in times.items():
        goal = "< 0.3 s" if name in ("import promptlog", "promptlog --help") else ""
        row = Row(f"`{name}`", Figure(values), "s", goal=goal,
                  met=Figure(values).median < 0.3 if goal else None)
        if name in imports:
            row.note = f"heavy modules imported: {imports[name]}"
        if "import mlflow" in times and name != "import mlflow":
            row.ratio = Figure([a / b for a, b in zip(values, times["import mlflow"],
                                                      strict=True)])
            row.ratio_label = "× `import mlflow`"
        section.rows.append(row)
    if mlflow_error:
        section.notes.append(f"MLflow could not be measured: {mlflow_error}")
    return section
