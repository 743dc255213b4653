"""Notebook support: ``%load_ext promptlog`` adds the ``%%experiment`` cell magic.

    %%experiment job-names -n 10 --workers 8 -o exp
    response = name_generator()
    name_length(response)

runs the cell ten times as one experiment, with the semantics of a ``with
Experiment(...) as exp`` block: the notebook's own pass is execution 0 and leaves
its names in the notebook; the others run at the same time in copies of it. The
cell's value is the experiment, shown as its summary; ``-o VAR`` also keeps it in
the notebook as ``VAR`` (set before the cell runs, kept if the cell fails).

A failing cell shows its traceback as any cell's would: the cell's own lines,
numbered as in the notebook, and none of promptlog's frames. A line that cannot be
read gets a usage message, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
from types import TracebackType
from typing import Any, NoReturn

from .errors import ExperimentError
from .experiments import Experiment

_USAGE = (
    "%%experiment NAME -n 10 [--workers 8] [--metadata '{\"k\": \"v\"}'] [-o VAR] "
    "[--no-progress] [--resume]"
)


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises on a bad line instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ExperimentError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%%experiment", add_help=False, exit_on_error=False)
    parser.add_argument("name")
    parser.add_argument("-n", "--num-executions", type=int, default=1)
    parser.add_argument("-w", "--workers", type=int, default=None)
    parser.add_argument("-m", "--metadata", default=None, help="a JSON object")
    parser.add_argument("-o", "--output", default=None, metavar="VAR")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--resume", action="store_true")
    return parser


def _read_line(line: str) -> tuple[dict[str, Any], str | None]:
    """The Experiment arguments on a ``%%experiment`` line, and the ``-o`` name."""
    try:
        args = _parser().parse_args(shlex.split(line))
        metadata = json.loads(args.metadata) if args.metadata else None
        if args.output is not None and not args.output.isidentifier():
            raise ValueError(f"-o needs a Python name, not {args.output!r}")
    except (argparse.ArgumentError, ExperimentError, ValueError) as e:
        raise ExperimentError(f"Cannot read '%%experiment {line}' ({e}). Write: {_USAGE}") from None
    arguments = {
        "name": args.name,
        "num_executions": args.num_executions,
        "max_workers": args.workers,
        "metadata": metadata,
        "progress": False if args.no_progress else None,
    }
    if args.resume:
        arguments["resume"] = True
    return arguments, args.output


def parse_line(line: str) -> dict[str, Any]:
    """The Experiment arguments written on a ``%%experiment`` line."""
    return _read_line(line)[0]


def _from_cell(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """The part of a traceback that starts in the cell: promptlog's frames cut off."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def _show_from_cell(shell: Any, error: BaseException, filename: str) -> None:
    """Make IPython show ``error`` from the cell down, as it shows any cell's error.

    IPython asks an exception for ``_render_traceback_`` before formatting it (the
    kernel too); the rendering is used once, then dropped."""
    tb = _from_cell(error.__traceback__, filename)
    if tb is None:
        return
    rendered = shell.InteractiveTB.structured_traceback(type(error), error, tb, tb_offset=0)

    def render() -> list[str]:
        error.__dict__.pop("_render_traceback_", None)
        return rendered

    try:
        error._render_traceback_ = render  # type: ignore[attr-defined]
    except AttributeError:  # an exception type without a __dict__: IPython's own view
        pass


def _experiment_magic(line: str, cell: str) -> Experiment:
    """``%%experiment NAME -n N [--workers W] [-o VAR]``: run the cell N times as an
    experiment."""
    from IPython import get_ipython
    from IPython.core.error import UsageError

    __tracebackhide__ = True  # noqa: F841 (read by IPython)
    shell = get_ipython()
    try:
        arguments, output = _read_line(line)
        exp = Experiment(**arguments)
    except ExperimentError as e:
        raise UsageError(str(e)) from None
    if output is not None:
        shell.user_ns[output] = exp
    # Compiled through IPython so that tracebacks show the cell as it reads in the
    # notebook, magic line included and numbered from it, under this cell's number.
    source = shell.transform_cell(cell)
    shown = f"%%experiment {line}\n{source}"
    filename = shell.compile.cache(shown, shell.execution_count, raw_code=shown)
    code = shell.compile("\n" + source, filename, "exec")
    try:
        exp.run_code(code, shell.user_ns)
    except BaseException as error:
        _show_from_cell(shell, error, filename)
        raise
    return exp


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magic_function(_experiment_magic, magic_kind="cell", magic_name="experiment")
