"""Reading the log into pandas DataFrames.

    log = promptlog.open()            # the current log, or open("path/to/message_log.db")
    log.runs("job-names")             # one row per run, one column per metric
    log.summary("job-names")          # per metric: n, mean, std, stderr, 95% CI

Read connections are opened through :mod:`promptlog.store`; queries here only
read. Metrics are pivoted into columns in SQL, not in Python.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stats, store
from .errors import ExperimentError

if TYPE_CHECKING:
    import pandas as pd


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _decode_result(text: str | None, fmt: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text) if fmt == "json" else text


class Log:
    """A promptlog log file, read through DataFrames."""

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

    def query(self, sql: str, params: Any = ()) -> pd.DataFrame:
        """Any read-only SQL over the log, as a DataFrame."""
        import pandas as pd

        cursor = self.conn.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)

    # experiments ---------------------------------------------------------------

    def experiment_ids(self, experiments: str | list[str] | None) -> list[str]:
        """Ids for experiments named by id or by name (a name means its latest run)."""
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

    def metric_kinds(self, experiment_ids: list[str]) -> dict[str, str]:
        """Metric name -> kind (bool, int, float) over the given experiments."""
        marks = ", ".join("?" * len(experiment_ids))
        rows = self.conn.execute(
            f"SELECT m.name, MAX(m.kind) FROM metrics m JOIN runs r ON r.id = m.run_id "
            f"WHERE r.experiment_id IN ({marks}) GROUP BY m.name ORDER BY m.name",
            experiment_ids,
        )
        return {name: kind for name, kind in rows}

    def runs(self, experiments: str | list[str] | None = None) -> pd.DataFrame:
        """One row per run of the given experiments (names or ids; default all), with
        run id, execution index, status, duration, result and one column per metric."""
        ids = self.experiment_ids(experiments)
        kinds = self.metric_kinds(ids) if ids else {}
        pivot = "".join(
            f", MAX(CASE WHEN m.name = {_sql_literal(name)} THEN m.value END) AS {_quote(name)}"
            for name in kinds
        )
        marks = ", ".join("?" * len(ids)) or "NULL"
        frame = self.query(
            f"SELECT r.id AS run_id, r.experiment_id, e.name AS experiment, "
            f"r.execution_index, r.status, r.started_at, r.duration_s, "
            f"r.result, r.result_format, r.error_type, r.error_message{pivot} "
            f"FROM runs r JOIN experiments e ON e.id = r.experiment_id "
            f"LEFT JOIN metrics m ON m.run_id = r.id "
            f"WHERE r.experiment_id IN ({marks}) "
            f"GROUP BY r.id ORDER BY r.experiment_id, r.execution_index",
            ids,
        )
        frame["result"] = [
            _decode_result(text, fmt)
            for text, fmt in zip(frame["result"], frame["result_format"], strict=True)
        ]
        frame = frame.drop(columns=["result_format"])
        for name, kind in kinds.items():
            if kind == "bool":
                frame[name] = frame[name].astype("boolean")
            elif kind == "int":
                frame[name] = frame[name].astype("Int64")
        return frame

    def summary(self, experiment: str) -> pd.DataFrame:
        """Per metric of one experiment: kind, n, mean, std, stderr and 95% CI. For
        bool metrics the mean is the pass rate and the interval is Wilson's."""
        import pandas as pd

        (experiment_id,) = self.experiment_ids(experiment)
        rows = []
        for name, kind in self.metric_kinds([experiment_id]).items():
            values = [
                row[0]
                for row in self.conn.execute(
                    "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id "
                    "WHERE r.experiment_id = ? AND m.name = ?",
                    [experiment_id, name],
                )
            ]
            rows.append({"metric": name, "kind": kind, **summarise(values, kind)})
        columns = ["metric", "kind", "n", "mean", "std", "stderr", "ci_low", "ci_high"]
        return pd.DataFrame(rows, columns=columns).set_index("metric")


def summarise(values: list[float], kind: str) -> dict[str, float]:
    """n, mean, std, stderr and 95% interval of one metric's values."""
    result = stats.mean_interval(values)
    if kind == "bool" and values:
        result["ci_low"], result["ci_high"] = stats.wilson_interval(
            int(sum(values)), len(values)
        )
        if len(values) < 2:
            result["std"] = result["stderr"] = math.nan
    return result


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open(path: str | os.PathLike[str] | None = None) -> Log:  # noqa: A001
    """Open a log for reading (default: the current log, see ``promptlog path``)."""
    return Log(path)


def compare(*args: Any, **kwargs: Any) -> Any:
    """Compare two experiments' metrics (see :mod:`promptlog.read`)."""
    raise NotImplementedError
