"""Reading the log: DataFrames for notebooks, plain records for the terminal.

    log = promptlog.open()            # the current log, or open("path/to/message_log.db")
    log.experiments()                 # one row per experiment, metric means as columns
    log.runs("job-names")             # one row per run, one column per metric
    log.calls(model="gpt-4o-mini")    # one row per call attempt
    log.prompts(); log.prompt_history("namer_user")
    log.summary("job-names")          # per metric: n, mean, std, stderr, 95% CI
    promptlog.compare("job-names", "job-names-v2")

Every DataFrame accessor has a pandas-free twin ending in ``_records`` that the
CLI uses, so a terminal command never pays for importing pandas. Read
connections are opened through :mod:`promptlog.store` and the queries here only
read; metrics are pivoted into columns in SQL, not in Python.
"""

from __future__ import annotations

import html
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stats, store
from .errors import ExperimentError, PromptNotFoundError
from .metrics import KINDS, widest_kind

if TYPE_CHECKING:
    import pandas as pd

    from .prompts import PromptFunction

# Bot fields that describe the bot rather than set the model; the rest of a
# bot's record (model, temperature, max_tokens, …) becomes run columns.
_BOT_IDENTITY = ("name", "class", "system_prompt_version_id", "system_prompt_name")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    """Values known to the log (experiment ids, names) as a SQL list for ``IN (...)``."""
    return ", ".join(map(_sql_literal, values)) or "NULL"


def _used_by_runs(runs: str) -> str:
    """SQL for the prompt versions that the runs selected by ``runs`` (a subquery of
    run ids) used: rendered in the run or sent by one of its bots."""
    return f"SELECT run_id, prompt_version_id FROM run_prompt_versions WHERE run_id IN ({runs})"


def _metric_value(run_id: str, name: str) -> str:
    """SQL for one metric's value in the run whose id is the SQL ``run_id``: a
    primary-key lookup, the cheapest way to pivot a metric into a column."""
    return f"(SELECT value FROM metrics WHERE run_id = {run_id} AND name = {_sql_literal(name)})"


def _like_escaped(text: str) -> str:
    """``text`` matched literally by ``LIKE ? ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def make_query_only(conn: sqlite3.Connection) -> None:
    """Make a connection that someone else opened on the log refuse every write."""
    conn.execute("PRAGMA query_only = 1")


def short_name(name: str) -> str:
    """The last part of a prompt's ``module.qualname``: ``namer_user``."""
    return name.rsplit(".", 1)[-1]


# --- records ------------------------------------------------------------------------


_CONVERT: dict[str, Any] = {"bool": bool, "int": int, "float": float, "json": json.loads}


@dataclass
class Records:
    """The rows of one read, with what each column holds, so that pandas, JSON and
    the terminal each get the right types.

    ``types`` maps a column to ``bool``, ``int``, ``float``, ``json`` (decoded) or
    ``time`` (UTC ISO 8601 text; a datetime in pandas). ``nested`` maps columns
    whose names depend on the data (metrics, flattened hyperparameters) to a
    ``(group, key)`` pair, so that JSON output keeps fixed top-level fields.
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    types: dict[str, str] = field(default_factory=dict)
    nested: dict[str, tuple[str, str]] = field(default_factory=dict)
    index: str | None = None
    groups: tuple[str, ...] = ()  # nested groups present even with no columns

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_html_(self) -> str:
        return _html_table(self)

    def add_metric(self, taken: set[str], name: str, kind: str) -> str:
        """Add a column for metric ``name`` holding ``kind`` values, named after the
        metric unless an earlier column (in ``taken``) has that name; return it."""
        column = _columns(taken, "metric", name)
        self.types[column] = kind
        self.nested[column] = ("metrics", name)
        return column

    def group(self, name: str) -> dict[str, str]:
        """Column -> key of the columns nested under ``name`` ("metrics", …)."""
        return {column: key for column, (group, key) in self.nested.items() if group == name}

    def dicts(self, *, nest: bool = False) -> list[dict[str, Any]]:
        """Each row as a dict of plain Python values (JSON decoded, bools as bools);
        with ``nest`` the data-dependent columns go under their group's key
        (``"metrics"``, ``"hyperparameters"``), present even when empty."""
        convert = {c: _CONVERT[t] for c, t in self.types.items() if t in _CONVERT}
        groups = dict.fromkeys([*self.groups, *(group for group, _ in self.nested.values())])
        result = []
        for row in self.rows:
            item: dict[str, Any] = {}
            inner: dict[str, dict[str, Any]] = {group: {} for group in groups} if nest else {}
            for column, value in zip(self.columns, row, strict=True):
                if value is not None and column in convert:
                    value = convert[column](value)
                if nest and column in self.nested:
                    group, key = self.nested[column]
                    inner[group][key] = value
                else:
                    item[column] = value
            item.update(inner)
            result.append(item)
        return result

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame: nullable ``boolean``/``Int64`` metric columns,
        decoded JSON, timestamps as UTC datetimes."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.rows, columns=self.columns)
        for column, kind in self.types.items():
            values = frame[column]
            if kind == "bool":
                frame[column] = values.astype("boolean")
            elif kind == "int":
                frame[column] = values.astype("Int64")
            elif kind == "float":
                frame[column] = values.astype("float64")
            elif kind == "json":  # from the raw texts: pandas may have made None NaN
                at = self.columns.index(column)
                frame[column] = _decode_all(row[at] for row in self.rows)
            elif kind == "time":
                frame[column] = pd.to_datetime(values, utc=True, format="ISO8601")
        return frame.set_index(self.index) if self.index else frame


def _decode_all(texts: Iterable[str | None]) -> list[Any]:
    """Decode many JSON texts in one call: far faster than one ``json.loads`` each."""
    return json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]")


def _columns(taken: set[str], group: str, name: str) -> str:
    """A free column name for ``name``: itself, or ``group.name`` when a column
    earlier in the frame already has it."""
    column = name if name not in taken else f"{group}.{name}"
    taken.add(column)
    return column


# --- the log ------------------------------------------------------------------------


class Log:
    """A promptlog log file, read through DataFrames (or plain records)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path).expanduser().absolute() if path is not None else store.db_path()
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = store.connect_readonly(self.path)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<promptlog.Log {self.path}>"

    def _repr_html_(self) -> str:
        status = self.status()
        counts = ", ".join(
            f"{status[key]:,} {key.replace('_', ' ')}"
            for key in ("experiments", "runs", "calls", "prompts", "prompt_versions")
        )
        return (
            f"<p><b>promptlog log</b> <code>{html.escape(str(self.path))}</code>: {counts}</p>"
            + _html_table(self.experiment_records())
        )

    def fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] = (), **types: str) -> Records:
        """Any read-only SQL over the log, as :class:`Records` (``types``: column kinds)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: sqlite3.Row costs more than the query
        cursor.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return Records(columns, cursor.fetchall(), dict(types))

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> pd.DataFrame:
        """Any read-only SQL over the log, as a DataFrame."""
        return self.fetch(sql, params).to_pandas()

    # finding things ------------------------------------------------------------------

    def experiment_ids(self, experiments: str | Iterable[str] | None) -> list[str]:
        """Ids for experiments named by id or by name (a name means the latest
        experiment of that name); ``None`` means every experiment, oldest first."""
        if experiments is None:
            return [row[0] for row in self.conn.execute("SELECT id FROM experiments ORDER BY id")]
        wanted = [experiments] if isinstance(experiments, str) else list(experiments)
        ids = []
        for key in wanted:
            row = self.conn.execute(
                "SELECT id FROM experiments WHERE id = ? OR name = ? "
                "ORDER BY (id = ?) DESC, created_at DESC, id DESC LIMIT 1",
                [key, key, key],
            ).fetchone()
            if row is None:
                raise ExperimentError(
                    f"No experiment named or with id {key!r} in {self.path}; "
                    f"list them with `promptlog experiments`."
                )
            ids.append(row[0])
        return ids

    def prompt_name(self, prompt: str | PromptFunction) -> str:
        """The full ``module.qualname`` of a logged prompt, given it, a prompt
        function, or its last part when that is unambiguous (``namer_user``)."""
        name = prompt if isinstance(prompt, str) else prompt.name
        names = [
            row[0]
            for row in self.conn.execute(
                "SELECT DISTINCT name FROM prompt_versions WHERE name = ? OR name LIKE ? "
                "ESCAPE '\\' ORDER BY name",
                [name, "%." + _like_escaped(name)],
            )
        ]
        if name in names:
            return name
        if len(names) == 1:
            return names[0]
        if names:
            raise PromptNotFoundError(
                f"Prompt name {name!r} is ambiguous in {self.path}: it could be "
                f"{', '.join(names)}; give the full name."
            )
        raise PromptNotFoundError(
            f"No prompt named {name!r} is logged in {self.path}; list them with "
            f"`promptlog prompts`."
        )

    def metric_kinds(self, experiment_ids: list[str] | None = None) -> dict[str, str]:
        """Metric name -> kind over the given experiments (default all). A metric
        logged with several kinds takes the widest: float, then int, then bool."""
        if experiment_ids is None:
            rows = self.conn.execute(_ALL_METRIC_KINDS).fetchall()
        else:
            rows = self.conn.execute(
                f"SELECT DISTINCT m.name, m.kind FROM metrics m JOIN runs r ON r.id = m.run_id "
                f"WHERE r.experiment_id IN ({_sql_list(experiment_ids)})"
            ).fetchall()
        kinds: dict[str, list[str]] = {}
        for name, kind in rows:
            kinds.setdefault(name, []).append(kind)
        return {name: widest_kind(kinds[name]) for name in sorted(kinds)}

    # experiments -------------------------------------------------------------------

    def experiment_records(
        self, experiments: str | Iterable[str] | None = None, *, limit: int | None = None
    ) -> Records:
        """One row per experiment: status, times, run counts and the mean of each
        metric (for a bool metric, its pass rate). ``limit`` keeps the latest N."""
        ids = None if experiments is None else self.experiment_ids(experiments)
        if ids is None and limit:
            # Only the latest experiments' runs are read: fast on a log of any size.
            ids = [
                row[0]
                for row in self.conn.execute(
                    "SELECT id FROM experiments ORDER BY created_at DESC, id DESC LIMIT ?",
                    [limit],
                )
            ]
        taken = set(_EXPERIMENT_COLUMNS)
        records = Records([], [], dict(_EXPERIMENT_TYPES), groups=("metrics",))
        pivot = ""
        for name in self.metric_kinds(ids):
            column = records.add_metric(taken, name, "float")
            pivot += (
                f", AVG(CASE WHEN m.name = {_sql_literal(name)} THEN m.value END) "
                f"AS {_quote(column)}"
            )
        chosen = "" if ids is None else f"IN ({_sql_list(ids)})"
        # Grouping by experiment alone lets SQLite walk the runs in index order
        # with no sort: the pivot costs one pass over the metrics.
        found = self.fetch(
            f"SELECT e.id AS experiment_id, e.name AS experiment, e.status, e.created_at, "
            f"e.finished_at, e.num_executions, COALESCE(c.runs, 0) AS runs, "
            f"COALESCE(c.succeeded, 0) AS succeeded, COALESCE(c.failed, 0) AS failed, "
            f"COALESCE(c.interrupted, 0) AS interrupted, c.duration_s"
            f"{''.join(f', mm.{_quote(c)}' for c in records.nested)} "
            f"FROM experiments e "
            f"LEFT JOIN (SELECT experiment_id, COUNT(*) AS runs, "
            f"  SUM(status = 'succeeded') AS succeeded, SUM(status = 'failed') AS failed, "
            f"  SUM(status = 'interrupted') AS interrupted, AVG(duration_s) AS duration_s "
            f"  FROM runs {chosen and 'WHERE experiment_id ' + chosen} "
            f"  GROUP BY experiment_id) c ON c.experiment_id = e.id "
            f"LEFT JOIN (SELECT r.experiment_id{pivot} FROM runs r "
            f"  JOIN metrics m ON m.run_id = r.id {chosen and 'WHERE r.experiment_id ' + chosen}"
            f"  GROUP BY r.experiment_id) mm ON mm.experiment_id = e.id "
            f"{chosen and 'WHERE e.id ' + chosen} ORDER BY e.created_at, e.id"
        )
        records.columns, records.rows = found.columns, found.rows
        return records

    def experiments(
        self, experiments: str | Iterable[str] | None = None, *, limit: int | None = None
    ) -> pd.DataFrame:
        """One row per experiment (default all, oldest first; ``limit``: the latest N):
        status, times, run counts and the mean of each metric as a column."""
        return self.experiment_records(experiments, limit=limit).to_pandas()

    # optimisations -----------------------------------------------------------------

    def optimization_records(self, *, limit: int | None = None) -> Records:
        """One row per optimisation (an experiment of kind ``optimisation``), newest
        first: its optimiser, status and times, its own runs, its candidates (child
        experiments), the best score and why it stopped (from its outcome), and the
        calls and cost over its own and its candidates' runs."""
        found = self.fetch(
            "WITH opt AS (SELECT * FROM experiments WHERE kind = 'optimisation' "
            "  ORDER BY created_at DESC, id DESC LIMIT ?), "
            "family AS (SELECT id AS top, id AS member FROM opt UNION ALL "
            "  SELECT e.parent_id, e.id FROM experiments e JOIN opt ON e.parent_id = opt.id), "
            "spent AS (SELECT f.top, COUNT(c.id) AS calls, SUM(c.cost) AS cost FROM family f "
            "  JOIN runs r ON r.experiment_id = f.member JOIN calls c ON c.run_id = r.id "
            "  GROUP BY f.top) "
            "SELECT opt.id, opt.name, json_extract(opt.metadata, '$.optimiser') AS optimiser, "
            "opt.status, opt.created_at, opt.finished_at, "
            "(SELECT COUNT(*) FROM runs r WHERE r.experiment_id = opt.id) AS runs, "
            "(SELECT COUNT(*) FROM experiments e WHERE e.parent_id = opt.id) AS candidates, "
            "json_extract(opt.outcome, '$.best_score') AS best_score, "
            "json_extract(opt.outcome, '$.stopped') AS stopped, "
            "COALESCE(spent.calls, 0) AS calls, spent.cost, opt.outcome "
            "FROM opt LEFT JOIN spent ON spent.top = opt.id "
            "ORDER BY opt.created_at DESC, opt.id DESC",
            [-1 if limit is None else limit],
            created_at="time", finished_at="time", runs="int", candidates="int",
            best_score="float", calls="int", cost="float", outcome="json",
        )
        return found

    def optimizations(self, *, limit: int | None = None) -> pd.DataFrame:
        """One row per optimisation, newest first (see :meth:`optimization_records`)."""
        return self.optimization_records(limit=limit).to_pandas()

    def children(self, experiment: str) -> list[str]:
        """The ids of the experiments that belong to an optimisation (its
        candidates' evaluations), oldest first."""
        (parent,) = self.experiment_ids(experiment)
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM experiments WHERE parent_id = ? ORDER BY created_at, id",
                [parent],
            )
        ]

    def search(self, experiment: str) -> dict[str, Any]:
        """One search of ``promptlog.optimize`` (a name, meaning the latest, or an id):
        its experiment row (metadata and outcome decoded), its evaluations in the
        order tried (step, candidate, x, x_hash, score, feedback, error, run_id),
        and ``best_by_step``: after each step, how many x it evaluated and the best
        score so far."""
        (experiment_id,) = self.experiment_ids(experiment)
        details = self.experiment_details(experiment_id)
        if details["kind"] != "optimisation":
            raise ExperimentError(
                f"{experiment!r} is an experiment, not an optimisation; show its runs with "
                f"`promptlog runs {experiment}`."
            )
        rows = self.fetch(
            "SELECT id AS run_id, json_extract(result, '$.step') AS step, "
            "json_extract(result, '$.candidate') AS candidate, json_extract(result, '$.x') AS x, "
            "json_extract(result, '$.x_hash') AS x_hash, "
            "json_extract(result, '$.score') AS score, "
            "json_extract(result, '$.feedback') AS feedback, "
            "json_extract(result, '$.error') AS error FROM runs "
            "WHERE experiment_id = ? AND result_format = 'json' "
            "AND json_extract(result, '$.role') = 'evaluation' "
            "ORDER BY step, candidate, execution_index",
            [experiment_id],
            step="int", candidate="int", score="float",
        ).dicts()
        minimize = bool(details["metadata"].get("minimize"))
        by_step: list[dict[str, Any]] = []
        best: float | None = None
        for row in rows:
            score = row["score"]
            if score is not None and (best is None or (score < best if minimize else score > best)):
                best = score
            if by_step and by_step[-1]["step"] == row["step"]:
                by_step[-1].update(evaluations=by_step[-1]["evaluations"] + 1, best_so_far=best)
            else:
                by_step.append({"step": row["step"], "evaluations": 1, "best_so_far": best})
        return {**details, "evaluations": rows, "best_by_step": by_step}

    def run_exists(self, run_id: str) -> bool:
        """Whether the log holds a run with this id."""
        return self.conn.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is not None

    # runs --------------------------------------------------------------------------

    def run_records(self, experiments: str | Iterable[str] | None = None) -> Records:
        """One row per run: identity and status, one column per metric, then the
        run's hyperparameters flattened (the bots' model, temperature and other
        settings; each declared hyperparameter, by its name; ``<name>.<knob>`` for
        each other knob overridden; ``<prompt>_version`` for each prompt it
        rendered or gave a bot; the experiment's metadata), then timing, result
        and error."""
        ids = self.experiment_ids(experiments)
        records = Records(
            [], [], {"started_at": "time", "result": "json"}, groups=("metrics", "hyperparameters")
        )
        taken = set(_RUN_COLUMNS)
        metrics = ""
        for name, kind in self.metric_kinds(None if experiments is None else ids).items():
            column = records.add_metric(taken, name, kind)
            metrics += f", {_metric_value('r.id', name)} AS {_quote(column)}"
        found = self.fetch(
            f"SELECT r.id AS run_id, r.experiment_id, e.name AS experiment, "
            f"r.execution_index, r.status{metrics}, r.hyperparameters, r.started_at, "
            f"r.duration_s, CASE WHEN r.result_format = 'repr' THEN json_quote(r.result) "
            f"ELSE r.result END AS result, r.error_type, r.error_message "
            f"FROM runs r JOIN experiments e ON e.id = r.experiment_id "
            f"WHERE r.experiment_id IN ({_sql_list(ids)}) "
            f"ORDER BY r.experiment_id, r.execution_index"
        )
        at = found.columns.index("hyperparameters")
        flat = _Hyperparameters(self)
        texts = {row[at] for row in found.rows}
        keys = flat.keys(texts)
        prompts = [key for group, key in keys if group == "prompt"]
        overridden = [key.rsplit(".", 1)[0] for group, key in keys if group == "override"]
        names = []
        for group, key in keys:
            if group == "prompt":
                key = _version_column(key, prompts)
            elif group == "override":
                key = _knob_column(key, overridden)
            names.append(_columns(taken, group, key))
            records.nested[names[-1]] = ("hyperparameters", names[-1])
            if group == "prompt":
                records.types[names[-1]] = "int"
        records.columns = [*found.columns[:at], *names, *found.columns[at + 1 :]]
        values = {text: flat.values(text, keys) for text in texts}
        records.rows = [row[:at] + values[row[at]] + row[at + 1 :] for row in found.rows]
        self._add_examples(records, ids, taken)
        return records

    def _add_examples(self, records: Records, ids: list[str], taken: set[str]) -> None:
        """After ``execution_index``: each run's example id, repeat index and the
        example's fields (``input.question`` …), when the experiments ran over inputs."""
        found = self.conn.execute(
            f"SELECT r.id, r.example_id, r.repeat_index, x.data FROM runs r "
            f"JOIN examples x ON x.id = r.example_id "
            f"WHERE r.experiment_id IN ({_sql_list(ids)}) AND r.example_id IS NOT NULL"
        ).fetchall()
        if not found:
            return
        fields = _ExampleFields()
        by_run = {run_id: (example_id, repeat, data) for run_id, example_id, repeat, data in found}
        keys = fields.keys(data for *_, data in found)
        names = [_columns(taken, "input", f"input.{key}" if key else "input") for key in keys]
        for name, key in zip(names, keys, strict=True):
            records.nested[name] = ("input", key or "value")
        at = records.columns.index("execution_index") + 1
        records.columns[at:at] = ["example_id", "repeat_index", *names]
        records.types["repeat_index"] = "int"
        blank = (None,) * (2 + len(names))
        rows = []
        for row in records.rows:
            example = by_run.get(row[0])
            if example is None:
                rows.append(row[:at] + blank + row[at:])
            else:
                example_id, repeat, data = example
                rows.append(row[:at] + (example_id, repeat, *fields.values(data, keys)) + row[at:])
        records.rows = rows

    def example_records(self, *experiments: str) -> Records:
        """One row per example of these experiments over inputs (names, meaning
        the latest of each, or ids): the example's id and fields, then for each
        metric each experiment's mean over the example's repeats, and, with two
        experiments, what changed (``better``, ``worse`` or ``same``: higher is
        better) and whether the metric flips (differs between repeats of one
        experiment)."""
        if not 1 <= len(experiments) <= 2:
            raise ExperimentError("examples() reads one experiment or compares two: A and B.")
        ids = [self.experiment_ids(experiment)[0] for experiment in experiments]
        sides = ["a", "b"][: len(ids)] if len(ids) == 2 else [""]
        data: dict[str, str] = {}
        values: dict[str, dict[str, dict[str, list[float]]]] = {}  # example -> metric -> side
        for side, experiment_id in zip(sides, ids, strict=True):
            rows = self.conn.execute(
                "SELECT r.example_id, x.data, m.name, m.value FROM runs r "
                "JOIN examples x ON x.id = r.example_id "
                "LEFT JOIN metrics m ON m.run_id = r.id "
                "WHERE r.experiment_id = ? AND r.status = 'succeeded' "
                "ORDER BY r.execution_index",
                [experiment_id],
            ).fetchall()
            if not rows and not self.run_examples(experiment_id):
                raise ExperimentError(
                    f"Experiment {experiment_id} did not run over inputs, so it has no "
                    f"examples; run it with Experiment(..., inputs=dataset)."
                )
            for example_id, text, name, value in rows:
                data.setdefault(example_id, text)
                metrics = values.setdefault(example_id, {})
                if name is not None:
                    metrics.setdefault(name, {}).setdefault(side, []).append(value)
        kinds = self.metric_kinds(ids)
        fields = _ExampleFields()
        keys = fields.keys(data.values())
        taken = {"example_id"}
        columns = ["example_id", *(
            _columns(taken, "input", f"input.{key}" if key else "input") for key in keys
        )]
        records = Records(columns, [])
        for column, key in zip(columns[1:], keys, strict=True):
            records.nested[column] = ("input", key or "value")
        for name in kinds:
            for side in sides:
                column = f"{name}_{side}" if side else name
                columns.append(column)
                records.types[column] = "float"
            if len(sides) == 2:
                columns += [f"{name}_change", f"{name}_flips"]
            else:
                columns.append(f"{name}_flips")
            records.types[f"{name}_flips"] = "bool"
        for example_id, text in data.items():
            row: list[Any] = [example_id, *fields.values(text, keys)]
            for name in kinds:
                found = values[example_id].get(name, {})
                means = []
                for side in sides:
                    side_values = found.get(side)
                    mean = sum(side_values) / len(side_values) if side_values else None
                    means.append(mean)
                    row.append(mean)
                if len(sides) == 2:
                    a, b = means
                    row.append(
                        None if a is None or b is None
                        else "better" if b > a else "worse" if b < a else "same"
                    )
                row.append(any(len(set(v)) > 1 for v in found.values()))
            records.rows.append(tuple(row))
        return records

    def examples(self, *experiments: str) -> pd.DataFrame:
        """Per example, each experiment's metric means and what changed between A
        and B (see :meth:`example_records`)."""
        return self.example_records(*experiments).to_pandas()

    def runs(self, experiments: str | Iterable[str] | None = None) -> pd.DataFrame:
        """One row per run of the given experiments (names or ids; default all), with
        run id, execution index, status, one column per metric, the model and
        other bot settings, prompt versions, metadata, call totals, duration,
        result and error."""
        return self.run_records(experiments).to_pandas()

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with everything logged about it: status, result, error and
        traceback, hyperparameters, the prompt versions it used, its metrics and
        its calls (with their messages)."""
        row = self.conn.execute(
            "SELECT r.id AS run_id, r.experiment_id, e.name AS experiment, "
            "r.execution_index, r.status, r.started_at, r.ended_at, r.duration_s, "
            "r.result, r.result_format, r.error_type, r.error_message, r.traceback, "
            "r.hyperparameters FROM runs r JOIN experiments e ON e.id = r.experiment_id "
            "WHERE r.id = ?",
            [run_id],
        ).fetchone()
        if row is None:
            raise ExperimentError(
                f"No run with id {run_id!r} in {self.path}; list the runs of an experiment "
                f"with `promptlog runs EXPERIMENT`."
            )
        run = dict(row)
        fmt = run.pop("result_format")
        if run["result"] is not None and fmt == "json":
            run["result"] = json.loads(run["result"])
        run["hyperparameters"] = json.loads(run["hyperparameters"] or "{}")
        run["prompt_versions"] = self.fetch(
            f"SELECT pv.id AS prompt_version_id, pv.name AS prompt, pv.version, pv.hash "
            f"FROM prompt_versions pv WHERE pv.id IN "
            f"(SELECT prompt_version_id FROM ({_used_by_runs('?')})) ORDER BY pv.name",
            [run_id],
        ).dicts()
        run["metrics"] = {
            name: _CONVERT[kind](value)
            for name, value, kind in self.conn.execute(
                "SELECT name, value, kind FROM metrics WHERE run_id = ? ORDER BY name", [run_id]
            )
        }
        run["calls"] = self.call_records(run=run_id).dicts()
        return run

    def summary(self, experiment: str) -> pd.DataFrame:
        """Per metric of one experiment: kind, n, mean, std, stderr and 95% CI. For
        bool metrics the mean is the pass rate and the interval is Wilson's."""
        return self.summary_records(experiment).to_pandas()

    def summary_records(self, experiment: str) -> Records:
        """:meth:`summary` without pandas."""
        (experiment_id,) = self.experiment_ids(experiment)
        summaries = self.metric_summaries([experiment_id])[experiment_id]
        columns = ["metric", "kind", "n", "mean", "std", "stderr", "ci_low", "ci_high"]
        rows = [
            (name, found["kind"], *(found[c] for c in columns[2:]))
            for name, found in summaries.items()
        ]
        return Records(columns, rows, {"n": "int"}, index="metric")

    def metric_summaries(
        self, experiment_ids: Iterable[str]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Experiment id -> metric -> kind, n, mean, std, stderr, 95% interval
        (Wilson's for a bool metric, whose mean is its pass rate) and the values
        themselves, in execution order; metrics sorted by name."""
        ids = list(experiment_ids)
        rows = self.conn.execute(
            f"SELECT r.experiment_id, m.name, m.value, m.kind FROM metrics m "
            f"JOIN runs r ON r.id = m.run_id WHERE r.experiment_id IN ({_sql_list(ids)}) "
            f"ORDER BY r.experiment_id, m.name, r.execution_index"
        ).fetchall()
        found = _summaries(rows)
        return {id_: found.get(id_, {}) for id_ in ids}

    # calls -------------------------------------------------------------------------

    def call_records(
        self,
        experiments: str | Iterable[str] | None = None,
        *,
        run: str | None = None,
        model: str | None = None,
        prompt: str | PromptFunction | None = None,
        limit: int | None = None,
    ) -> Records:
        """One row per call attempt, oldest first: the run and experiment it belongs
        to, bot, model, status, tokens, cost, latency, the prompt versions its
        messages came from, the messages, parameters and reply. ``limit`` keeps the
        most recent calls."""
        where, params = [], []
        if experiments is not None:
            ids = self.experiment_ids(experiments)
            where.append(f"r.experiment_id IN ({_sql_list(ids)})")
        if run is not None:
            where.append("c.run_id = ?")
            params.append(run)
        if model is not None:
            where.append("c.model = ?")
            params.append(model)
        if prompt is not None:
            where.append(
                "EXISTS (SELECT 1 FROM call_prompt_versions cpv JOIN prompt_versions pv "
                "ON pv.id = cpv.prompt_version_id WHERE cpv.call_id = c.id AND pv.name = ?)"
            )
            params.append(self.prompt_name(prompt))
        newest = "" if limit is None else f"ORDER BY c.id DESC LIMIT {int(limit)}"
        found = self.fetch(
            f"SELECT * FROM (SELECT c.id AS call_id, c.run_id, r.experiment_id, "
            f"e.name AS experiment, r.execution_index, c.created_at, c.bot_name, c.bot_class, "
            f"c.model, c.status, c.attempt, c.input_tokens, c.output_tokens, c.cost, "
            f"c.cached, c.saved_cost, c.latency_s, "
            f"(SELECT group_concat(label, ', ') FROM (SELECT pv.name || ' v' || "
            f"  pv.version AS label FROM call_prompt_versions cpv JOIN prompt_versions pv "
            f"  ON pv.id = cpv.prompt_version_id WHERE cpv.call_id = c.id "
            f"  ORDER BY cpv.position)) AS prompt_versions, "
            f"c.messages, c.parameters, c.response_text, c.response_parsed, c.error "
            f"FROM calls c LEFT JOIN runs r ON r.id = c.run_id "
            f"LEFT JOIN experiments e ON e.id = r.experiment_id "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} {newest}) "
            f"ORDER BY call_id",
            params,
        )
        found.types = {
            "created_at": "time",
            "cached": "bool",
            "messages": "json",
            "parameters": "json",
            "response_parsed": "json",
        }
        return found

    def calls(
        self,
        experiments: str | Iterable[str] | None = None,
        *,
        run: str | None = None,
        model: str | None = None,
        prompt: str | PromptFunction | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One row per call attempt (filter by experiments, run, model or prompt):
        tokens, cost, latency, prompt versions, messages and reply."""
        return self.call_records(
            experiments, run=run, model=model, prompt=prompt, limit=limit
        ).to_pandas()

    # the response cache ----------------------------------------------------------------

    def cache_records(self, *, model: str | None = None, limit: int | None = None) -> Records:
        """One row per response cache entry, newest first: its key, model, tokens,
        cost, when it was made, how often it was hit and the cost those hits saved."""
        where = "WHERE model = ?" if model is not None else ""
        found = self.fetch(
            f"SELECT key, model, created_at, hits, last_hit_at, input_tokens, output_tokens, "
            f"cost, hits * COALESCE(cost, 0) AS saved_cost, response_text "
            f"FROM cache {where} ORDER BY created_at DESC, key"
            f"{'' if limit is None else f' LIMIT {int(limit)}'}",
            [model] if model is not None else [],
        )
        found.types = {"created_at": "time", "last_hit_at": "time"}
        return found

    def cache_totals(self, *, model: str | None = None) -> dict[str, Any]:
        """How many entries the response cache holds, how many hits they had and the
        cost the hits saved."""
        where = "WHERE model = ?" if model is not None else ""
        row = self.conn.execute(
            f"SELECT COUNT(*) AS entries, COALESCE(SUM(hits), 0) AS hits, "
            f"COALESCE(SUM(hits * COALESCE(cost, 0)), 0.0) AS saved_cost FROM cache {where}",
            [model] if model is not None else [],
        ).fetchone()
        return dict(row)

    # prompts ---------------------------------------------------------------------------

    def prompt_records(self) -> Records:
        """One row per prompt name: role, number of versions, the latest version
        and its hash, when the prompt first appeared and last changed."""
        return self.fetch(
            "SELECT pv.name AS prompt, latest.role, COUNT(*) AS versions, "
            "latest.version AS latest_version, latest.hash AS latest_hash, "
            "MIN(pv.created_at) AS created_at, latest.created_at AS changed_at "
            "FROM prompt_versions pv JOIN prompt_versions latest ON latest.name = pv.name "
            "AND latest.version = (SELECT MAX(version) FROM prompt_versions x "
            "  WHERE x.name = pv.name) "
            "GROUP BY pv.name ORDER BY pv.name",
            created_at="time",
            changed_at="time",
        )

    def prompts(self) -> pd.DataFrame:
        """One row per prompt name: role, versions, latest version, first and last change."""
        return self.prompt_records().to_pandas()

    def prompt_version_records(self, prompt: str | PromptFunction | None = None) -> Records:
        """One row per prompt version (of one prompt, or all): number, role, hash,
        when it appeared, the version before it, and the template."""
        name = None if prompt is None else self.prompt_name(prompt)
        return self.fetch(
            "SELECT id AS prompt_version_id, name AS prompt, version, role, hash, created_at, "
            "previous_version_id, template FROM prompt_versions "
            f"{'WHERE name = ?' if name else ''} ORDER BY name, version",
            [name] if name else [],
            created_at="time",
            previous_version_id="int",
        )

    def prompt_versions(self, prompt: str | PromptFunction | None = None) -> pd.DataFrame:
        """Every version of one prompt (or of all prompts) with its template."""
        return self.prompt_version_records(prompt).to_pandas()

    def prompt_history_records(self, prompt: str | PromptFunction) -> Records:
        """For one prompt, each version with when it appeared and, for every
        experiment whose runs used it, the number of runs and the mean of each
        metric, so that a person sees what each edit did. A version no experiment
        used has one row with no experiment."""
        name = self.prompt_name(prompt)
        versions = f"SELECT id FROM prompt_versions WHERE name = {_sql_literal(name)}"
        usage = (
            f"SELECT run_id, prompt_version_id FROM run_prompt_versions "
            f"WHERE prompt_version_id IN ({versions})"
        )
        taken = set(_HISTORY_COLUMNS)
        records = Records([], [], {"created_at": "time"}, groups=("metrics",))
        means, pivot = "", ""
        # Every metric in the log (a cheap index skip); those these runs never
        # recorded come out empty and are dropped below.
        for metric in self.metric_kinds():
            column = records.add_metric(taken, metric, "float")
            means += f", g.{_quote(column)}"
            pivot += f", AVG({_metric_value('u.run_id', metric)}) AS {_quote(column)}"
        found = self.fetch(
            f"WITH groups AS (SELECT u.prompt_version_id, r.experiment_id, COUNT(*) AS runs"
            f"{pivot} FROM ({usage}) u JOIN runs r ON r.id = u.run_id GROUP BY 1, 2) "
            f"SELECT pv.id AS prompt_version_id, pv.version, pv.hash, pv.created_at, "
            f"e.id AS experiment_id, e.name AS experiment, COALESCE(g.runs, 0) AS runs{means} "
            f"FROM prompt_versions pv LEFT JOIN groups g ON g.prompt_version_id = pv.id "
            f"LEFT JOIN experiments e ON e.id = g.experiment_id "
            f"WHERE pv.name = {_sql_literal(name)} ORDER BY pv.version, e.created_at, e.id"
        )
        empty = [
            at for at, column in enumerate(found.columns)
            if column in records.nested and all(row[at] is None for row in found.rows)
        ]  # fmt: skip
        for column in (found.columns[at] for at in empty):
            del records.types[column], records.nested[column]
        records.columns = [c for at, c in enumerate(found.columns) if at not in empty]
        records.rows = [
            tuple(v for at, v in enumerate(row) if at not in empty) for row in found.rows
        ]
        return records

    def prompt_history(self, prompt: str | PromptFunction) -> pd.DataFrame:
        """Each version of one prompt with when it appeared and, per experiment that
        used it, its runs and metric means (bool metrics: pass rates)."""
        return self.prompt_history_records(prompt).to_pandas()

    # the whole file ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Where the log is, how big, and how many of each thing it holds."""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM experiments) AS experiments, "
            "(SELECT COUNT(*) FROM runs) AS runs, "
            "(SELECT COUNT(*) FROM runs WHERE status = 'failed') AS failed_runs, "
            "(SELECT COUNT(*) FROM metrics) AS metrics, "
            "(SELECT COUNT(*) FROM calls) AS calls, "
            "(SELECT COUNT(DISTINCT name) FROM prompt_versions) AS prompts, "
            "(SELECT COUNT(*) FROM prompt_versions) AS prompt_versions, "
            "(SELECT SUM(cost) FROM calls) AS cost, "
            "MAX((SELECT MAX(created_at) FROM experiments), "
            "    COALESCE((SELECT created_at FROM calls ORDER BY id DESC LIMIT 1), '')) "
            "AS last_activity"
        ).fetchone()
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return {"path": str(self.path), "size_bytes": size, **dict(row)}

    # what comparisons read ------------------------------------------------------

    def experiment_info(self, experiment_id: str) -> dict[str, Any]:
        """Id, name, creation time, status and number of runs of one experiment."""
        row = self.conn.execute(
            "SELECT e.id AS experiment_id, e.name AS experiment, e.created_at, e.status, "
            "(SELECT COUNT(*) FROM runs r WHERE r.experiment_id = e.id) AS runs "
            "FROM experiments e WHERE e.id = ?",
            [experiment_id],
        ).fetchone()
        return dict(row)

    def run_inputs(self, experiment_id: str) -> list[tuple[str, int, str | None]]:
        """(run id, execution index, input) of each run of one experiment, in
        execution order: the input is the user messages of the run's first call (as
        JSON text), or None for a run that made no call."""
        rows = self.conn.execute(
            "SELECT r.id, r.execution_index, (SELECT c.messages FROM calls c "
            "WHERE c.run_id = r.id ORDER BY c.id LIMIT 1) FROM runs r "
            "WHERE r.experiment_id = ? ORDER BY r.execution_index",
            [experiment_id],
        ).fetchall()
        result = []
        for run_id, index, messages in rows:
            user = None
            if messages:
                user = json.dumps(
                    [m.get("content") for m in json.loads(messages) if m.get("role") == "user"]
                )
            result.append((run_id, index, user))
        return result

    def run_examples(self, experiment_id: str) -> dict[tuple[str, int], str]:
        """(example id, repeat index) -> run id, for the runs of an experiment over
        inputs (empty for one without)."""
        rows = self.conn.execute(
            "SELECT example_id, repeat_index, id FROM runs "
            "WHERE experiment_id = ? AND example_id IS NOT NULL ORDER BY execution_index",
            [experiment_id],
        ).fetchall()
        return {(example_id, repeat): run_id for example_id, repeat, run_id in rows}

    def metric_values_by_run(
        self, experiment_ids: Iterable[str]
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Experiment id -> metric name -> run id -> value, for these experiments."""
        ids = list(experiment_ids)
        values: dict[str, dict[str, dict[str, float]]] = {id_: {} for id_ in ids}
        for run_id, experiment_id, name, value in self.conn.execute(
            f"SELECT m.run_id, r.experiment_id, m.name, m.value FROM metrics m "
            f"JOIN runs r ON r.id = m.run_id WHERE r.experiment_id IN ({_sql_list(ids)})"
        ):
            values[experiment_id].setdefault(name, {})[run_id] = value
        return values

    def prompt_versions_used(self, experiment_id: str) -> dict[str, list[dict[str, Any]]]:
        """Prompt name -> the versions of it that the runs of one experiment used
        (rows of ``prompt_versions``: id, name, role, template, hash, version,
        created_at), oldest first."""
        selected = "SELECT id FROM runs WHERE experiment_id = ?"
        rows = self.conn.execute(
            f"SELECT id, name, role, template, hash, version, created_at FROM prompt_versions "
            f"WHERE id IN (SELECT prompt_version_id FROM ({_used_by_runs(selected)})) "
            f"ORDER BY name, version",
            [experiment_id],
        )
        used: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            used.setdefault(row["name"], []).append(dict(row))
        return used

    def bot_settings(self, experiment_id: str) -> dict[str, list[Any]]:
        """Setting -> the distinct values the bots of one experiment's runs used
        (model, temperature, …; not the bots' names and prompts)."""
        rows = self.conn.execute(
            f"SELECT DISTINCT s.key, s.value FROM runs r, "
            f"json_each(r.hyperparameters, '$.bots') b, json_each(b.value) s "
            f"WHERE r.experiment_id = ? AND s.key NOT IN ({_sql_list(_BOT_IDENTITY)}) "
            f"ORDER BY s.key, s.value",
            [experiment_id],
        )
        found: dict[str, list[Any]] = {}
        for key, value in rows:
            found.setdefault(key, []).append(value)
        return found

    # what the viewer reads ---------------------------------------------------------

    def latest_experiment_ids(self, *, name_contains: str = "", limit: int = 100) -> list[str]:
        """Ids of the latest experiments, newest first, whose name contains
        ``name_contains`` (any case)."""
        pattern = "%" + _like_escaped(name_contains) + "%"
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM experiments WHERE name LIKE ? ESCAPE '\\' "
                "ORDER BY created_at DESC, id DESC LIMIT ?",
                [pattern, limit],
            )
        ]

    def experiment_kinds(self, experiment_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Experiment id -> its ``kind``, its ``parent_id`` and the parent's name
        (``parent``), its optimiser (an optimisation's ``metadata["optimiser"]``) and
        its candidate number (a candidate's ``metadata["candidate"]``)."""
        return {
            row[0]: {"kind": row[1], "parent_id": row[2], "parent": row[3], "optimiser": row[4],
                     "candidate": row[5]}
            for row in self.conn.execute(
                f"SELECT e.id, e.kind, e.parent_id, p.name, "
                f"json_extract(e.metadata, '$.optimiser'), json_extract(e.metadata, '$.candidate') "
                f"FROM experiments e LEFT JOIN experiments p ON p.id = e.parent_id "
                f"WHERE e.id IN ({_sql_list(experiment_ids)})"
            )
        }  # fmt: skip

    def experiment_usage(self, experiment_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Experiment id -> the models its runs called, and its calls, input and
        output tokens and cost (None where no call reported them)."""
        ids = list(experiment_ids)
        usage: dict[str, dict[str, Any]] = {
            id_: {"models": [], "calls": 0, "input_tokens": None, "output_tokens": None,
                  "cost": None}
            for id_ in ids
        }  # fmt: skip
        for experiment_id, models, calls, input_tokens, output_tokens, cost in self.conn.execute(
            f"SELECT r.experiment_id, json_group_array(DISTINCT c.model), COUNT(*), "
            f"SUM(c.input_tokens), SUM(c.output_tokens), SUM(c.cost) FROM calls c "
            f"JOIN runs r ON r.id = c.run_id WHERE r.experiment_id IN ({_sql_list(ids)}) "
            f"GROUP BY r.experiment_id"
        ):
            usage[experiment_id] = {
                "models": sorted(json.loads(models)), "calls": calls,
                "input_tokens": input_tokens, "output_tokens": output_tokens, "cost": cost,
            }  # fmt: skip
        return usage

    def experiment_details(self, experiment_id: str) -> dict[str, Any]:
        """Everything the ``experiments`` row of one experiment holds, its metadata
        and environment decoded."""
        row = self.conn.execute(
            "SELECT id AS experiment_id, name AS experiment, status, num_executions, "
            "max_workers, metadata, environment, created_at, finished_at, kind, parent_id, "
            "outcome FROM experiments WHERE id = ?",
            [experiment_id],
        ).fetchone()
        if row is None:
            raise ExperimentError(f"No experiment with id {experiment_id!r} in {self.path}.")
        details = dict(row)
        for key in ("metadata", "environment"):
            details[key] = json.loads(details[key] or "{}")
        details["outcome"] = json.loads(details["outcome"]) if details["outcome"] else None
        return details

    def run_tracebacks(self, experiment_id: str) -> dict[str, str]:
        """Run id -> traceback, for the runs of one experiment that have one."""
        return dict(
            self.conn.execute(
                "SELECT id, traceback FROM runs WHERE experiment_id = ? "
                "AND traceback IS NOT NULL ORDER BY execution_index",
                [experiment_id],
            ).fetchall()
        )

    def bots_used(self, experiment_id: str) -> list[dict[str, Any]]:
        """Each distinct bot (name, class, model, settings, system prompt version)
        that the runs of one experiment used."""
        rows = self.conn.execute(
            "SELECT DISTINCT b.value FROM runs r, json_each(r.hyperparameters, '$.bots') b "
            "WHERE r.experiment_id = ? ORDER BY b.value",
            [experiment_id],
        )
        return [json.loads(row[0]) for row in rows]

    def prompt_version_labels(self) -> dict[int, tuple[str, int]]:
        """Prompt version id -> (prompt name, version number), for every version."""
        return {
            row[0]: (row[1], row[2])
            for row in self.conn.execute("SELECT id, name, version FROM prompt_versions")
        }

    def prompt_metric_summaries(
        self, prompt: str | PromptFunction
    ) -> dict[tuple[int, str], dict[str, dict[str, Any]]]:
        """(version number, experiment id) -> metric -> summary (as
        :meth:`metric_summaries`) over the runs of that experiment that used that
        version of one prompt."""
        rows = self.conn.execute(
            "SELECT pv.version, r.experiment_id, m.name, m.value, m.kind "
            "FROM run_prompt_versions u JOIN prompt_versions pv ON pv.id = u.prompt_version_id "
            "JOIN runs r ON r.id = u.run_id JOIN metrics m ON m.run_id = r.id "
            "WHERE pv.name = ? ORDER BY pv.version, r.experiment_id, m.name, r.execution_index",
            [self.prompt_name(prompt)],
        ).fetchall()
        return _summaries(((version, id_), name, value, kind)
                          for version, id_, name, value, kind in rows)  # fmt: skip

    # what optimisers read ---------------------------------------------------------

    def function_call_records(self, function: str, metric: str) -> Records:
        """The succeeded calls of the typed function ``function`` (full name) made in
        succeeded runs that recorded ``metric``, oldest first: the run's ``score``,
        its ``example`` (JSON text, or None), the call's messages and reply, and the
        ``version_text`` of the function's version it used."""
        return self.fetch(
            "SELECT c.id AS call_id, c.run_id, r.experiment_id, m.value AS score, "
            "x.data AS example, c.messages, c.response_text, c.response_parsed, "
            "pv.template AS version_text "
            "FROM prompt_versions pv JOIN call_prompt_versions cpv "
            "ON cpv.prompt_version_id = pv.id JOIN calls c ON c.id = cpv.call_id "
            "JOIN runs r ON r.id = c.run_id JOIN metrics m ON m.run_id = r.id AND m.name = ? "
            "LEFT JOIN examples x ON x.id = r.example_id "
            "WHERE pv.name = ? AND pv.role = 'function' AND c.status = 'succeeded' "
            "AND r.status = 'succeeded' ORDER BY c.id",
            [metric, function],
            messages="json",
            response_parsed="json",
        )

    def scored_runs(self, experiment_ids: Iterable[str], metric: str) -> Records:
        """Each run of these experiments over inputs: its experiment, example id and
        repeat, status, the value of ``metric`` (None when it recorded none) and its
        result (``result_format`` says how it is stored)."""
        ids = list(experiment_ids)
        return self.fetch(
            f"SELECT r.experiment_id, r.id AS run_id, r.example_id, r.repeat_index, r.status, "
            f"{_metric_value('r.id', metric)} AS score, r.result, r.result_format "
            f"FROM runs r WHERE r.experiment_id IN ({_sql_list(ids)}) "
            f"ORDER BY r.experiment_id, r.execution_index"
        )

    def call_totals(self, experiment_ids: Iterable[str]) -> dict[str, Any]:
        """The model calls made in the runs of these experiments (``calls``: those a
        provider answered, not the response cache) and their total ``cost``."""
        ids = list(experiment_ids)
        calls, cost = self.conn.execute(
            f"SELECT COALESCE(SUM(c.cached = 0), 0), COALESCE(SUM(c.cost), 0.0) FROM calls c "
            f"JOIN runs r ON r.id = c.run_id WHERE r.experiment_id IN ({_sql_list(ids)})"
        ).fetchone()
        return {"calls": int(calls), "cost": float(cost)}

    # plots ---------------------------------------------------------------------------

    def metric_values(
        self,
        metric: str,
        experiments: str | Iterable[str] | None = None,
        *,
        prompt: str | PromptFunction | None = None,
    ) -> Records:
        """Every value of one metric with its group: the experiment (``label``:
        its name, with the id's tail where names repeat), or with ``prompt`` the
        version of that prompt each run used."""
        ids = self.experiment_ids(experiments)
        kind = self.metric_kinds(ids).get(metric)
        if kind is None:
            raise ExperimentError(
                f"No metric {metric!r} is logged for these experiments; their metrics are "
                f"{', '.join(self.metric_kinds(ids)) or 'none'}."
            )
        selected = f"SELECT id FROM runs WHERE experiment_id IN ({_sql_list(ids)})"
        if prompt is None:
            label = (
                "e.name || CASE WHEN (SELECT COUNT(*) FROM experiments x WHERE x.name = e.name "
                f"AND x.id IN ({_sql_list(ids)})) > 1 THEN ' ' || substr(e.id, -6) ELSE '' END"
            )
            join = ""
        else:
            label = "g.label"
            join = (
                f"JOIN (SELECT u.run_id, 'v' || MAX(pv.version) AS label "
                f"FROM ({_used_by_runs(selected)}) u "
                f"JOIN prompt_versions pv ON pv.id = u.prompt_version_id "
                f"WHERE pv.name = {_sql_literal(self.prompt_name(prompt))} "
                f"GROUP BY u.run_id) g ON g.run_id = r.id "
            )
        found = self.fetch(
            f"SELECT {label} AS label, m.value FROM metrics m JOIN runs r ON r.id = m.run_id "
            f"JOIN experiments e ON e.id = r.experiment_id {join}"
            f"WHERE m.name = ? AND r.experiment_id IN ({_sql_list(ids)}) "
            f"ORDER BY r.experiment_id, r.execution_index",
            [metric],
        )
        found.types["value"] = kind
        return found


# Every metric name with each kind it was logged with, found by skipping through
# the index on metrics(name, kind) (a few seeks per name) rather than reading
# every value; widest_kind picks the metric's kind.
_ALL_METRIC_KINDS = f"""
WITH RECURSIVE names(name) AS (
    SELECT MIN(name) FROM metrics
    UNION ALL
    SELECT (SELECT MIN(name) FROM metrics WHERE name > names.name)
    FROM names WHERE name IS NOT NULL
)
SELECT names.name, kinds.kind FROM names
JOIN ({" UNION ALL ".join(f"SELECT '{kind}' AS kind" for kind in KINDS)}) kinds
WHERE names.name IS NOT NULL
AND EXISTS (SELECT 1 FROM metrics WHERE name = names.name AND kind = kinds.kind)
"""

_EXPERIMENT_COLUMNS = (
    "experiment_id", "experiment", "status", "created_at", "finished_at", "num_executions",
    "runs", "succeeded", "failed", "interrupted", "duration_s",
)  # fmt: skip
_EXPERIMENT_TYPES = {"created_at": "time", "finished_at": "time"}
_RUN_COLUMNS = (
    "run_id", "experiment_id", "experiment", "execution_index", "status", "started_at",
    "duration_s", "result", "error_type", "error_message",
)  # fmt: skip


class _Hyperparameters:
    """Flattens runs' hyperparameters into columns, decoding each distinct JSON text
    once: the runs of an experiment nearly always share theirs."""

    def __init__(self, log: Log):
        self._log = log
        self._cache: dict[str | None, dict[tuple[str, str], Any]] = {}
        self._versions: dict[int, tuple[str, int]] | None = None

    def _version(self, version_id: Any) -> tuple[str, int] | None:
        if self._versions is None:
            self._versions = self._log.prompt_version_labels()
        return self._versions.get(version_id)

    def flatten(self, text: str | None) -> dict[tuple[str, str], Any]:
        """(group, key) -> value for one run: ("bot", "model"), ("prompt", name), …"""
        found = self._cache.get(text)
        if found is not None:
            return found
        data = json.loads(text or "{}")
        found = {}
        bots = [bot for bot in data.get("bots", []) if isinstance(bot, dict)]
        for key in dict.fromkeys(k for bot in bots for k in bot if k not in _BOT_IDENTITY):
            values = list(dict.fromkeys(_scalar(bot.get(key)) for bot in bots if key in bot))
            found[("bot", key)] = values[0] if len(values) == 1 else ", ".join(map(str, values))
        version_ids = [p.get("id") for p in data.get("prompt_versions", [])]
        version_ids += [bot.get("system_prompt_version_id") for bot in bots]
        for version_id in version_ids:
            named = self._version(version_id)
            if named is not None:
                key = ("prompt", named[0])
                found[key] = max(found.get(key, 0), named[1])
        for key, value in (data.get("declared") or {}).items():
            found[("hyperparameter", key)] = _scalar(value)
        for name, knobs in (data.get("overrides") or {}).items():
            for knob, value in knobs.items():
                if knob != "template":  # a template shows as the prompt's version
                    found[("override", f"{name}.{knob}")] = _scalar(value)
        for key, value in (data.get("metadata") or {}).items():
            found[("metadata", key)] = _scalar(value)
        self._cache[text] = found
        return found

    def keys(self, texts: Iterable[str | None]) -> list[tuple[str, str]]:
        """The (group, key) pairs of all these runs: model and temperature first,
        then other bot settings, declared hyperparameters, other knobs overridden,
        prompts and metadata keys, each sorted."""
        found = dict.fromkeys(key for text in texts for key in self.flatten(text))
        order = {"bot": 0, "hyperparameter": 1, "override": 2, "prompt": 3, "metadata": 4}
        return sorted(
            found,
            key=lambda k: (order[k[0]], k != ("bot", "model"), k != ("bot", "temperature"), k[1]),
        )

    def values(self, text: str | None, keys: list[tuple[str, str]]) -> tuple[Any, ...]:
        found = self.flatten(text)
        return tuple(found.get(key) for key in keys)


class _ExampleFields:
    """Flattens examples' JSON into columns (``input.question`` …), decoding each
    distinct example once. An example that is not a dict is one ``input`` column."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any]] = {}

    def flatten(self, text: str) -> dict[str, Any]:
        found = self._cache.get(text)
        if found is None:
            value = json.loads(text)
            if isinstance(value, dict):
                found = {str(key): _scalar(item) for key, item in value.items()}
            else:
                found = {"": _scalar(value)}
            self._cache[text] = found
        return found

    def keys(self, texts: Iterable[str]) -> list[str]:
        """Every field of these examples, in the order first seen."""
        return list(dict.fromkeys(key for text in texts for key in self.flatten(text)))

    def values(self, text: str, keys: list[str]) -> tuple[Any, ...]:
        found = self.flatten(text)
        return tuple(found.get(key) for key in keys)


def _scalar(value: Any) -> Any:
    """A hyperparameter value fit for one cell: lists and dicts as JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _knob_column(key: str, names: list[str]) -> str:
    """``summarise.temperature`` for an overridden knob; the full name where two
    overridden prompts or functions share the last part."""
    name, knob = key.rsplit(".", 1)
    label = short_name(name)
    if len({other for other in names if short_name(other) == label}) > 1:
        label = name
    return f"{label}.{knob}"


def _version_column(name: str, names: list[str]) -> str:
    """``namer_user_version``; the full name where two prompts share the last part."""
    label = short_name(name)
    if sum(short_name(other) == label for other in names) > 1:
        label = name
    return f"{label}_version"
_HISTORY_COLUMNS = (
    "prompt_version_id", "version", "hash", "created_at", "experiment_id", "experiment", "runs",
)  # fmt: skip


def _summarise(values: list[float], kind: str) -> dict[str, float]:
    """n, mean, std, stderr and 95% interval of one metric's values."""
    result = stats.mean_interval(values)
    if kind == "bool" and values:
        result["ci_low"], result["ci_high"] = stats.wilson_interval(
            int(sum(values)), len(values)
        )
        if len(values) < 2:
            result["std"] = result["stderr"] = math.nan
    return result


def _summaries(
    rows: Iterable[tuple[Any, str, float, str]],
) -> dict[Any, dict[str, dict[str, Any]]]:
    """(group, metric, value, kind) rows -> group -> metric -> kind, n, mean, std,
    stderr, 95% interval and values; a metric logged with several kinds takes
    the widest."""
    values: dict[Any, dict[str, list[float]]] = {}
    kinds: dict[str, set[str]] = {}
    for group, name, value, kind in rows:
        values.setdefault(group, {}).setdefault(name, []).append(value)
        kinds.setdefault(name, set()).add(kind)
    result: dict[Any, dict[str, dict[str, Any]]] = {}
    for group, metrics in values.items():
        result[group] = {}
        for name in sorted(metrics):
            kind = widest_kind(kinds[name])
            found = metrics[name]
            result[group][name] = {"kind": kind, **_summarise(found, kind), "values": found}
    return result


def open(path: str | os.PathLike[str] | None = None) -> Log:  # noqa: A001
    """Open a log for reading (default: the current log, see ``promptlog path``)."""
    return Log(path)


# --- HTML ---------------------------------------------------------------------------


def _html_table(records: Records, limit: int = 50) -> str:
    """A small HTML table of records, for notebooks (no pandas needed)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in records.columns)
    body = []
    for item in records.dicts()[:limit]:
        cells = "".join(
            f"<td>{html.escape('' if v is None else str(v))}</td>" for v in item.values()
        )
        body.append(f"<tr>{cells}</tr>")
    more = (
        f"<p>… {len(records) - limit} more rows</p>" if len(records) > limit else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"
