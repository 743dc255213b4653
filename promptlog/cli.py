"""The ``promptlog`` command: read the log in a terminal, diff and compare, export,
open it in datasette, run the demo.

A thin face over :mod:`promptlog.read`, :mod:`promptlog.diffs` and
:mod:`promptlog.ui`: each command parses its arguments, asks the library,
prints. Reading commands never import litellm or pandas, so they answer at
once; ``--json`` prints a stable machine-readable form (documented in
docs/reading.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import store
from ._version import __version__
from .errors import PromptlogError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .read import Log, Records

_F = TypeVar("_F", bound=Callable[..., Any])

# Help is wrapped at 80 columns whatever the terminal, so docs/reading.md can
# include it verbatim (cog checks it stays in sync).
_CONTEXT_SETTINGS = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 80,
    "terminal_width": 80,
}


class _Group(click.Group):
    """Turns promptlog's own errors into their message, whole (what was wrong and
    what to do), and exit status 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PromptlogError as error:
            raise click.ClickException(str(error).strip()) from None


@contextmanager
def _log_path(path: str | None) -> Iterator[None]:
    """Make ``path`` the log for this command, as PROMPTLOG_DB would."""
    if path is None:
        yield
        return
    before = os.environ.get(store.ENV_VAR)
    os.environ[store.ENV_VAR] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(store.ENV_VAR, None)
        else:
            os.environ[store.ENV_VAR] = before


@click.group(cls=_Group, context_settings=_CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="promptlog")
@click.option(
    "--db",
    "db",
    metavar="PATH",
    help="The log to read (default: $PROMPTLOG_DB, else message_log.db at the project root).",
)
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """Read what promptlog logged: experiments, runs, calls and prompt versions.

    Run `promptlog demo` for a first log, then `promptlog experiments`.
    """
    ctx.with_resource(_log_path(db))


def _json_option(fn: _F) -> _F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _limit_option(default: int, help: str) -> Callable[[_F], _F]:
    """``-n/--limit``: a count of 0 or more (0 for all)."""
    return click.option(
        "-n", "--limit", type=click.IntRange(min=0), default=default, show_default=True,
        metavar="N", help=help,
    )  # fmt: skip


def _open() -> Log:
    from .read import Log

    return Log()


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _console() -> Console:
    from rich.console import Console

    # Rich follows the terminal's width and colours; piped, it prints plain
    # text 80 columns wide.
    return Console(highlight=False, soft_wrap=False)


def _table(*columns: str | tuple[str, dict[str, Any]]) -> Table:
    """A borderless table; a column is a header, or (header, rich column options)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        header, options = column if isinstance(column, tuple) else (column, {})
        justify = "right" if header in _NUMERIC else "left"
        table.add_column(_plain(header), **{"justify": justify, "overflow": "fold", **options})
    return table


# An id column never wraps, so it can be copied from the terminal.
_ID = {"min_width": 26, "no_wrap": True}
_NUMERIC = {"#", "runs", "versions", "tokens", "cost", "latency", "p"}


def _plain(text: Any) -> str:
    """Text from the log, escaped so that rich never reads it as markup."""
    from rich.markup import escape as escape_markup

    return escape_markup(str(text))


def _when(stamp: str | None) -> str:
    """``2025-05-14 10:38`` from a UTC ISO 8601 timestamp."""
    return "" if not stamp else stamp[:16].replace("T", " ")


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric_lines(item: dict[str, Any], kinds: dict[str, str]) -> str:
    from .comparisons import format_value

    return "\n".join(
        f"{_plain(name)} {format_value(value, kinds.get(name, 'float'))}"
        for name, value in item["metrics"].items()
        if value is not None
    )


def _no_rows(what: str) -> None:
    click.echo(f"No {what} in {store.db_path()}.")


# --- the log itself ---------------------------------------------------------------


@cli.command()
@_json_option
def path(as_json: bool) -> None:
    """Print where the log is.

    With --json, also whether a log file is there ("exists": false for a missing
    file or a folder).
    """
    where = store.db_path()
    if as_json:
        _echo_json({"path": str(where), "exists": where.is_file()})
        return
    click.echo(str(where))
    if where.is_dir():
        click.echo(f"{where} is a folder, not a log: point --db or {store.ENV_VAR} at a "
                   f"file in it, e.g. {where / store.DB_FILENAME}.", err=True)


@cli.command()
@_json_option
def status(as_json: bool) -> None:
    """Count what the log holds, and show its size."""
    with _open() as log:
        found = log.status()
    if as_json:
        _echo_json(found)
        return
    size = found["size_bytes"]
    shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"
    cost = found["cost"]
    click.echo(
        f"log:         {found['path']} ({shown})\n"
        f"experiments: {found['experiments']:,}\n"
        f"runs:        {found['runs']:,} ({found['failed_runs']:,} failed)\n"
        f"metrics:     {found['metrics']:,}\n"
        f"calls:       {found['calls']:,}"
        + (f" (cost ${cost:,.4f})" if cost else "")
        + "\n"
        f"prompts:     {found['prompts']:,} ({found['prompt_versions']:,} versions)\n"
        f"last change: {_when(found['last_activity']) or '-'}"
    )


# --- experiments and runs ---------------------------------------------------------


@cli.command()
@_limit_option(20, "Show the latest N (0 for all).")
@_json_option
def experiments(limit: int, as_json: bool) -> None:
    """List experiments with their runs and metric means."""
    with _open() as log:
        records = log.experiment_records(limit=limit or None)
        kinds = log.metric_kinds() if not as_json else {}
    items = records.dicts(nest=True)
    if as_json:
        _echo_json(items)
        return
    if not items:
        _no_rows("experiments")
        return
    table = _table(("experiment / id", _ID), "created", "runs", "metric means")
    for item in items:
        runs = str(item["runs"])
        problems = [
            f"{item[key]} {key}" for key in ("failed", "interrupted") if item[key]
        ]
        if problems:
            runs += f"\n({', '.join(problems)})"
        table.add_row(
            f"{_plain(item['experiment'])}\n[dim]{item['experiment_id']}[/]",
            _when(item["created_at"]),
            runs,
            _metric_lines(item, kinds),
        )
    _console().print(table)


@cli.command()
@_limit_option(20, "Show the latest N (0 for all).")
@_json_option
def optimizations(limit: int, as_json: bool) -> None:
    """List optimisations: optimiser, steps, candidates, best score and cost."""
    with _open() as log:
        records = log.optimization_records(limit=limit or None)
    items = records.dicts()
    if as_json:
        _echo_json(items)
        return
    if not items:
        _no_rows("optimisations")
        return
    table = _table(("optimisation / id", _ID), "optimiser", "runs", "best", "spent")
    for item in items:
        status = "" if item["status"] == "succeeded" else f" ({item['status']})"
        table.add_row(
            f"{_plain(item['name'])}\n[dim]{item['id']}[/]",
            f"{_plain(item['optimiser'] or '-')}\n[dim]{_when(item['created_at'])}{status}[/]",
            f"{item['runs']}\n{item['candidates']} candidates",
            _number(item["best_score"]),
            f"{item['calls']} calls\n{_number(item['cost'])}",
        )
    _console().print(table)


@cli.command()
@click.argument("experiment")
@_limit_option(50, "Show the first N runs (0 for all).")
@_json_option
def runs(experiment: str, limit: int, as_json: bool) -> None:
    """List the runs of an experiment.

    EXPERIMENT is a name (meaning the latest experiment of that name) or an id.
    """
    from .comparisons import format_value

    with _open() as log:
        records = log.run_records(experiment)
    items = records.dicts(nest=True)
    shown = items[:limit] if limit else items
    if as_json:
        _echo_json(shown)
        return
    if not items:
        _no_rows(f"runs of {experiment!r}")
        return
    metrics = records.group("metrics")
    kinds = {key: records.types.get(column, "float") for column, key in metrics.items()}
    first = items[0]
    settings = ", ".join(
        f"{key} {value}"
        for key, value in first["hyperparameters"].items()
        if value is not None and all(i["hyperparameters"].get(key) == value for i in items)
    )
    console = _console()
    console.print(f"{_plain(first['experiment'])} ({first['experiment_id']})")
    if settings:
        console.print(f"same in every run: {_plain(settings)}")
    table = _table("#", ("run_id", _ID), "status", *metrics.values())
    for item in shown:
        status_text = item["status"]
        if item["error_type"]:
            status_text += f"\n{_plain(item['error_type'])}"
        table.add_row(
            str(item["execution_index"]),
            item["run_id"],
            status_text,
            *(format_value(item["metrics"][key], kinds[key]) for key in metrics.values()),
        )
    console.print(table)
    if len(shown) < len(items):
        console.print(f"… and {len(items) - len(shown)} more runs (-n 0 shows all).")


@cli.command()
@click.argument("run_id")
@_json_option
def show(run_id: str, as_json: bool) -> None:
    """Show one run with its metrics and calls, or a search.

    RUN_ID is a run's id: its status, result, error and traceback, settings,
    prompt versions, metrics, and each call with its messages and reply. Given the
    name (or id) of a search of promptlog.optimize instead, it shows the best score
    so far after each step and the best x.
    """
    with _open() as log:
        if not log.run_exists(run_id):
            try:
                log.experiment_ids(run_id)
            except PromptlogError:
                raise click.ClickException(
                    f"No run with id {run_id!r} and no search named {run_id!r} in "
                    f"{store.db_path()}; list a search's runs with `promptlog runs NAME` "
                    f"and the searches with `promptlog optimizations`."
                ) from None
            search = log.search(run_id)
            run = None
        else:
            run = log.run(run_id)
    if run is None:
        _show_search(search, as_json)
        return
    if as_json:
        _echo_json(run)
        return
    console = _console()
    console.print(
        f"[bold]run {run['run_id']}[/]: execution {run['execution_index']} of "
        f"{_plain(run['experiment'])} ({run['experiment_id']})"
    )
    duration = f", {run['duration_s']:.3f}s" if run["duration_s"] is not None else ""
    console.print(f"status: {run['status']}, started {_when(run['started_at'])}{duration}")
    for bot in run["hyperparameters"].get("bots", []):
        settings = ", ".join(
            f"{key} {value}" for key, value in bot.items() if key not in ("name", "class")
            and value is not None
        )
        console.print(f"bot {_plain(str(bot.get('name')))}: {_plain(settings)}")
    if run["prompt_versions"]:
        used = ", ".join(f"{v['prompt']} v{v['version']}" for v in run["prompt_versions"])
        console.print(f"prompts: {_plain(used)}")
    if run["metrics"]:
        console.print(
            "metrics: "
            + ", ".join(f"{_plain(k)} {_number(v)}" for k, v in run["metrics"].items())
        )
    if run["result"] is not None:
        result = run["result"]
        text = result if isinstance(result, str) else json.dumps(result, indent=2)
        console.print("result:")
        console.print(_plain(text))
    if run["error_type"]:
        console.print(f"[red]error: {_plain(run['error_type'])}: "
                      f"{_plain(run['error_message'] or '')}[/]")
        if run["traceback"]:
            console.print(_plain(run["traceback"].rstrip()))
    for call in run["calls"]:
        console.print()
        console.print(f"{_call_heading(call)}, {_call_numbers(call)}")
        for message in call["messages"] or []:
            console.print(f"[cyan]{message.get('role')}[/]: {_plain(str(message.get('content')))}")
        if call["response_text"] is not None:
            console.print(f"[green]reply[/]: {_plain(call['response_text'])}")
        if call["error"]:
            console.print(f"[red]error[/]: {_plain(call['error'])}")


def _show_search(search: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _echo_json(search)
        return
    console = _console()
    metadata, outcome = search["metadata"], search["outcome"] or {}
    goal = "minimise" if metadata.get("minimize") else "maximise"
    console.print(
        f"[bold]optimisation {_plain(search['experiment'])}[/] ({search['experiment_id']}): "
        f"{_plain(metadata.get('optimiser') or '-')}, {goal}, {search['status']}"
    )
    if outcome.get("stopped"):
        console.print(f"stopped: {_plain(outcome['stopped'])}. {_plain(outcome.get('reason', ''))}")
    table = _table("step", "evaluated", "best so far")
    for row in search["best_by_step"]:
        table.add_row(str(row["step"]), str(row["evaluations"]), _number(row["best_so_far"]))
    console.print(table)
    if outcome.get("best_x") is not None:
        console.print(
            f"best x (score {_number(outcome.get('best_score'))}, step {outcome.get('best_step')}):"
        )
        console.print(_plain(outcome["best_x"]))


def _call_heading(call: dict[str, Any]) -> str:
    """``call ID namer -> gpt-4o-mini: succeeded (attempt 1)``, as markup. Statuses
    are the log's own words: succeeded, failed, invalid."""
    status = call["status"] if call["status"] == "succeeded" else f"[red]{call['status']}[/]"
    return (
        f"[bold]call {call['call_id']}[/] {_plain(call['bot_name'])} -> "
        f"{_plain(call['model'])}: {status} (attempt {call['attempt']})"
    )


def _call_numbers(call: dict[str, Any]) -> str:
    """``12 in / 5 out, $0.00012, 0.10s``: tokens, cost (when known) and latency."""
    tokens = f"{_number(call['input_tokens'])} in / {_number(call['output_tokens'])} out"
    cost = f", ${call['cost']:.5f}" if call["cost"] is not None else ""
    latency = f", {call['latency_s']:.2f}s" if call["latency_s"] is not None else ""
    return tokens + cost + latency


def _preview(text: str, width: int = 66) -> str:
    """The start of a reply on one line, cut at ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@cli.command()
@click.option("-m", "--model", help="Only calls to this model.")
@click.option("-p", "--prompt", help="Only calls whose messages came from this prompt.")
@click.option("-e", "--experiment", help="Only calls of this experiment's runs.")
@_limit_option(20, "Show the latest N (0 for all).")
@_json_option
def calls(
    model: str | None, prompt: str | None, experiment: str | None, limit: int, as_json: bool
) -> None:
    """List recent calls, with their ids and replies.

    Each call with its id, run, model, status, tokens, cost, latency, prompt
    versions and the start of its reply (or error). Oldest first, the latest at
    the bottom; filter by model, prompt or experiment. `promptlog show RUN_ID`
    shows a run's calls in full.
    """
    from .read import short_name

    with _open() as log:
        records = log.call_records(experiment, model=model, prompt=prompt, limit=limit or None)
    items = records.dicts()
    if as_json:
        _echo_json(items)
        return
    if not items:
        _no_rows("calls" + (" that match" if model or prompt or experiment else ""))
        return
    console = _console()
    for at, item in enumerate(items):
        if at:
            console.print()
        when = (item["created_at"] or "")[:19].replace("T", " ")
        console.print(f"{_call_heading(item)}\n  {when}, {_call_numbers(item)}")
        if item["run_id"]:
            console.print(
                f"  run {item['run_id']} ({_plain(item['experiment'])} "
                f"#{item['execution_index']})"
            )
        prompts = ", ".join(
            short_name(label.rsplit(" ", 1)[0]) + " " + label.rsplit(" ", 1)[1]
            for label in (item["prompt_versions"] or "").split(", ")
            if label
        )
        if prompts:
            console.print(f"  prompts: {_plain(prompts)}")
        if item["response_text"] is not None:
            console.print(f"  [green]reply[/]: {_plain(_preview(item['response_text']))}")
        if item["error"]:
            console.print(f"  [red]error[/]: {_plain(_preview(item['error']))}")


# --- prompts --------------------------------------------------------------------------


@cli.command()
@click.argument("name", required=False)
@_json_option
def prompts(name: str | None, as_json: bool) -> None:
    """List prompts, or one prompt's versions and metrics.

    With NAME, each version of that prompt with when it appeared and the metric
    means of the experiments that used it. NAME is a prompt's full
    module.qualname, or its last part when no other prompt shares it.
    """
    if name is None:
        with _open() as log:
            items = log.prompt_records().dicts()
        if as_json:
            _echo_json(items)
            return
        if not items:
            _no_rows("prompts")
            return
        table = _table("prompt", "role", "versions", "latest", "changed")
        for item in items:
            table.add_row(
                _plain(item["prompt"]),
                item["role"],
                str(item["versions"]),
                f"v{item['latest_version']} {item['latest_hash'][7:19]}",
                _when(item["changed_at"]),
            )
        _console().print(table)
        return
    with _open() as log:
        full = log.prompt_name(name)
        history = log.prompt_history_records(full)
        kinds = log.metric_kinds()
    items = history.dicts(nest=True)
    if as_json:
        _echo_json({"prompt": full, "history": items})
        return
    click.echo(full)
    table = _table("version", ("experiment / id", _ID), "runs", "metric means")
    for item in items:
        experiment = (
            f"{_plain(item['experiment'])}\n[dim]{item['experiment_id']}[/]"
            if item["experiment_id"]
            else "[dim](not used in an experiment)[/]"
        )
        table.add_row(
            f"v{item['version']} {item['hash'][7:15]}\n[dim]{_when(item['created_at'])}[/]",
            experiment,
            str(item["runs"]),
            _metric_lines(item, kinds),
        )
    _console().print(table)


_DIFF_STYLES = (("+++", {"bold": True}), ("---", {"bold": True}), ("@@", {"fg": "cyan"}),
                ("+", {"fg": "green"}), ("-", {"fg": "red"}))  # fmt: skip


def _echo_diff(text: str) -> None:
    """A unified diff, coloured in a terminal (click drops the colours when piped)."""
    for line in text.splitlines():
        style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), {})
        click.echo(click.style(line, **style) if style else line)


@cli.command()
@click.argument("name")
@click.argument("a", required=False)
@click.argument("b", required=False)
@_json_option
def diff(name: str, a: str | None, b: str | None, as_json: bool) -> None:
    """Show what changed between two versions of a prompt.

    NAME is a prompt (its module.qualname, or the last part of it). A and B are
    versions: a number (3, or v3 as printed) or a hash. A unique prefix of a hash
    will do if it has 6 characters or more or starts with sha256: (up to 5 digits
    are a version number). By default the last two versions; with only A, A
    against the latest.
    """
    from .diffs import diff as prompt_diff

    found = prompt_diff(name, a, b)
    if as_json:
        _echo_json(found.to_dict())
    else:
        _echo_diff(str(found))


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option(
    "-m", "--metric", "metrics", multiple=True, help="Compare only this metric (repeatable)."
)
@click.option(
    "--by-example",
    is_flag=True,
    help="Per example of experiments over inputs: each side's metric means, what changed.",
)
@_json_option
def compare(
    a: str, b: str, metrics: tuple[str, ...], by_example: bool, as_json: bool
) -> None:
    """Compare the metrics of two experiments.

    A and B are names (meaning the latest experiment of each name) or ids. Runs
    are paired by execution index (or by input); each metric gets both means, the
    difference B - A with its 95% interval and a p-value (exact McNemar for bool
    metrics; Welch when the run counts differ). The prompt versions and settings
    that differ are shown, with the diff of each changed prompt.
    """
    from .comparisons import compare as compare_experiments
    from .comparisons import format_difference, format_p, format_value

    if by_example:
        _compare_by_example(a, b, metrics, as_json)
        return
    found = compare_experiments(a, b, metrics or None)
    if as_json:
        _echo_json(found.to_dict())
        return
    console = _console()
    for label, side in (("A", found.a), ("B", found.b)):
        console.print(
            f"[bold]{label}[/]: {_plain(side['experiment'])} ({side['experiment_id']}, "
            f"{side['runs']} runs, {_when(side['created_at'])})"
        )
    console.print(found.note)
    table = _table("metric", "A", "B", ("B - A [95% CI]", {"no_wrap": True}), "p", "test")
    for m in found.metrics:
        test = m.test if m.a_only is None else f"{m.test}\n{m.a_only} A only\n{m.b_only} B only"
        table.add_row(
            _plain(m.metric),
            format_value(m.mean_a, m.kind),
            format_value(m.mean_b, m.kind),
            format_difference(m),
            format_p(m.p_value),
            test,
        )
    console.print(table)
    for key, (values_a, values_b) in found.setting_changes.items():
        console.print(
            f"{_plain(key)}: A {_plain(', '.join(map(str, values_a)) or '-')}, "
            f"B {_plain(', '.join(map(str, values_b)) or '-')}"
        )
    for change in found.prompt_changes:
        click.echo()
        click.echo(change.title)
        if change.diff is not None:
            _echo_diff(change.diff.unified)


def _compare_by_example(a: str, b: str, metrics: tuple[str, ...], as_json: bool) -> None:
    """``promptlog compare A B --by-example``: one row per example."""
    records = _open().example_records(a, b)
    wanted = [
        column for column in records.columns
        if not metrics or column.rsplit("_", 1)[0] in metrics or column == "example_id"
        or column in records.nested
    ]
    if as_json:
        _echo_json([
            {key: value for key, value in row.items() if key in wanted or key == "input"}
            for row in records.dicts(nest=True)
        ])
        return
    rows = records.dicts()
    shown = [column for column in wanted if column != "example_id"]  # the fields say which
    table = _table(*shown)
    for row in rows:
        table.add_row(*(_plain(_cell(row[column])) for column in shown))
    _console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# --- getting data out ---------------------------------------------------------------


@cli.command()
@click.argument("what", type=click.Choice(["runs", "calls"]))
@click.option(
    "-e", "--experiment", "experiments", multiple=True,
    help="Only this experiment (repeatable; default all).",
)  # fmt: skip
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
    show_default=True, help="CSV, or JSON lines (one object per line).",
)  # fmt: skip
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write.")
def export(what: str, experiments: tuple[str, ...], fmt: str, output: Any) -> None:
    """Export runs or calls as CSV or JSON lines.

    Runs have one column per metric and the flattened hyperparameters, as in
    promptlog.open().runs().
    """
    with _open() as log:
        chosen = list(experiments) or None
        records = log.run_records(chosen) if what == "runs" else log.call_records(chosen)
    _write(records, fmt, output)


def _write(records: Records, fmt: str, output: Any) -> None:
    if fmt == "jsonl":
        for item in records.dicts(nest=True):
            output.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        return
    import csv

    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(records.columns)
    bools = [i for i, c in enumerate(records.columns) if records.types.get(c) == "bool"]
    ints = [i for i, c in enumerate(records.columns) if records.types.get(c) == "int"]
    for row in records.rows:
        if not (bools or ints):
            writer.writerow(row)
            continue
        values = list(row)
        for i in bools:
            values[i] = None if values[i] is None else bool(values[i])
        for i in ints:
            values[i] = None if values[i] is None else int(values[i])
        writer.writerow(values)


# --- the response cache --------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("-m", "--model", help="Only entries of this model.")
@_limit_option(20, "Show the latest N entries (0 for all).")
@_json_option
@click.pass_context
def cache(ctx: click.Context, model: str | None, limit: int, as_json: bool) -> None:
    """Show the response cache: its entries, their hits and the cost they saved.

    Each entry is a reply kept for a request (model, messages, parameters and
    sample index); a call answered from it is logged with cached set. `promptlog
    cache clear` deletes entries.
    """
    if ctx.invoked_subcommand is not None:
        return
    with _open() as log:
        totals = log.cache_totals(model=model)
        items = log.cache_records(model=model, limit=limit or None).dicts()
    if as_json:
        _echo_json({**totals, "items": items})
        return
    if not items:
        _no_rows("cache entries" + (" of that model" if model else ""))
        return
    table = _table("key", "model", "created", "hits", "saved", "reply")
    for item in items:
        table.add_row(
            item["key"].split(":", 1)[-1][:12], _plain(item["model"]),
            _when(item["created_at"]), str(item["hits"]),
            f"${item['saved_cost']:,.4f}" if item["saved_cost"] else "-",
            _plain(_preview(item["response_text"] or "", 40)),
        )
    console = _console()
    console.print(table)
    console.print(
        f"{totals['entries']:,} entries, {totals['hits']:,} hits, "
        f"saved ${totals['saved_cost']:,.4f}"
    )


@cache.command("clear")
@click.option("--all", "clear_all", is_flag=True, help="Clear every entry.")
@click.option("--older-than", metavar="DATE",
              help="Clear entries made before DATE (2025-01-31 or 2025-01-31T12:00, UTC).")
@click.option("-m", "--model", help="Clear the entries of this model.")
@_json_option
def cache_clear(
    clear_all: bool, older_than: str | None, model: str | None, as_json: bool
) -> None:
    """Delete response cache entries: --all, or those --older-than a date and/or
    of --model. The calls logged stay."""
    from .cache import clear_cache

    if not (clear_all or older_than or model):
        raise click.UsageError("Say which entries: --all, --older-than DATE or --model NAME.")
    if not store.db_path().is_file():
        raise click.ClickException(f"No promptlog log at {store.db_path()}: nothing to clear.")
    try:
        cleared = clear_cache(older_than=older_than, model=model)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--older-than") from None
    if as_json:
        _echo_json({"cleared": cleared})
        return
    click.echo(f"Cleared {cleared:,} cache {'entry' if cleared == 1 else 'entries'}.")


# --- datasette and the demo ----------------------------------------------------------


@cli.command()
@click.option("-p", "--port", default=8001, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("-o", "--open", "open_browser", is_flag=True, help="Open a browser at the log.")
def ui(port: int, host: str, open_browser: bool) -> None:
    """Browse the log in datasette, read-only.

    Opens on promptlog's pages (/-/promptlog: experiments, an experiment's runs,
    comparisons, prompt timelines); the tables stay browsable with promptlog's
    descriptions, facets and canned queries (leaderboard, prompt_version_history,
    side_by_side, experiment_runs). Needs the ui extra: pip install 'promptlog[ui]'.
    """
    from .ui import serve

    serve(store.db_path(), host=host, port=port, open_browser=open_browser)


@cli.command()
@click.option("--model", help="A litellm model name (default: the offline stand-in model).")
def demo(model: str | None) -> None:
    """Run a small demo and show what it logged.

    Two versions of a prompt, an experiment on each, on the built-in offline
    model (or --model with a provider key set).
    """
    from . import demo as demo_module

    demo_module.main(db_path=str(store.db_path()), model=model)


def main() -> None:
    """Entry point for ``python -m promptlog.cli``."""
    cli(prog_name="promptlog")


if __name__ == "__main__":  # pragma: no cover
    main()
