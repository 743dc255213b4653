"""Notebook support: ``%load_ext promptlog`` adds the ``%%experiment`` cell magic.

    %%experiment job-names -n 10 --workers 8
    response = name_generator()
    name_length(response)

runs the cell ten times as one experiment, with the semantics of a ``with
Experiment(...)`` block: the notebook's own pass is execution 0 and leaves its
names in the notebook; the others run at the same time in copies of it. The
cell's value is the experiment, shown as its summary.
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from .errors import ExperimentError
from .experiments import Experiment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%experiment", add_help=False, exit_on_error=False)
    parser.add_argument("name")
    parser.add_argument("-n", "--num-executions", type=int, default=1)
    parser.add_argument("-w", "--workers", type=int, default=None)
    parser.add_argument("-m", "--metadata", default=None, help="a JSON object")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def parse_line(line: str) -> dict[str, Any]:
    """The Experiment arguments written on a ``%%experiment`` line."""
    try:
        args = _parser().parse_args(shlex.split(line))
        metadata = json.loads(args.metadata) if args.metadata else None
    except (argparse.ArgumentError, SystemExit, ValueError) as e:
        raise ExperimentError(
            f"Cannot read '%%experiment {line}' ({e}). Write: "
            f"%%experiment NAME -n 10 [--workers 8] [--metadata '{{\"k\": \"v\"}}']"
        ) from None
    return {
        "name": args.name,
        "num_executions": args.num_executions,
        "max_workers": args.workers,
        "metadata": metadata,
        "progress": False if args.no_progress else None,
    }


def experiment_magic(line: str, cell: str) -> Experiment:
    """``%%experiment NAME -n N [--workers W]``: run the cell N times as an experiment."""
    from IPython import get_ipython

    shell = get_ipython()
    exp = Experiment(**parse_line(line))
    source = shell.transform_cell(cell)
    # Compiled through IPython so that tracebacks show the cell's lines.
    filename = shell.compile.cache(source)
    code = shell.compile(source, filename, "exec")
    exp.run_code(code, shell.user_ns)
    return exp


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magic_function(experiment_magic, magic_kind="cell", magic_name="experiment")
