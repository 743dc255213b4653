"""Comparing two experiments: paired (or Welch) differences of each metric with
95% intervals, exact McNemar for bool metrics, and the prompt versions and bot
settings that differ between them.

    promptlog.compare("job-names", "job-names-v2")
"""

from __future__ import annotations

import html
import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import stats
from .errors import ExperimentError
from .read import Log, Records

if TYPE_CHECKING:
    import pandas as pd

    from .diffs import PromptDiff


@dataclass(frozen=True)
class MetricComparison:
    """One metric in two experiments: B minus A with its 95% interval.

    Paired, the means are over the pairs that have the metric on both sides,
    the interval is the paired t interval of the differences and, for a bool
    metric, ``p_value`` is the exact McNemar test on the discordant pairs
    (``a_only``: pass in A only, ``b_only``: pass in B only). Unpaired, the
    interval and p are Welch's.
    """

    metric: str
    kind: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    a_only: int | None = None
    b_only: int | None = None


@dataclass(frozen=True)
class PromptChange:
    """A prompt whose versions differ between two experiments; ``diff`` is set when
    each experiment used exactly one version of it."""

    prompt: str
    versions_a: tuple[int, ...]
    versions_b: tuple[int, ...]
    diff: PromptDiff | None

    @property
    def title(self) -> str:
        """``Prompt x.namer_user: A used v1, B used v2``."""

        def versions(numbers: tuple[int, ...]) -> str:
            return ", ".join(f"v{n}" for n in numbers) or "not used"

        return (
            f"Prompt {self.prompt}: A used {versions(self.versions_a)}, "
            f"B used {versions(self.versions_b)}"
        )


@dataclass(frozen=True)
class Comparison:
    """What changed between two experiments, and what it did to their metrics.

    ``pairing`` is ``"example"`` (runs of experiments over inputs matched by
    example and repeat), ``"input"`` (runs matched by the user messages of their
    first call), ``"execution_index"`` or ``"unpaired"``; ``note`` says it in words.
    """

    a: dict[str, Any]
    b: dict[str, Any]
    pairing: str
    note: str
    metrics: list[MetricComparison]
    prompt_changes: list[PromptChange]
    setting_changes: dict[str, tuple[list[Any], list[Any]]]

    def records(self) -> Records:
        """One row per metric, pandas-free."""
        columns = list(MetricComparison.__dataclass_fields__)
        rows = [tuple(getattr(m, c) for c in columns) for m in self.metrics]
        return Records(
            columns, rows, {"n_a": "int", "n_b": "int", "a_only": "int", "b_only": "int"},
            index="metric",
        )

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric: means, difference (B - A), 95% CI, p-value, test."""
        return self.records().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-able data (the ``promptlog compare --json`` form)."""
        return {
            "a": self.a,
            "b": self.b,
            "pairing": self.pairing,
            "note": self.note,
            "metrics": [_json_safe(m.__dict__) for m in self.metrics],
            "prompt_changes": [
                {
                    "prompt": change.prompt,
                    "versions_a": list(change.versions_a),
                    "versions_b": list(change.versions_b),
                    "diff": change.diff.unified if change.diff else None,
                }
                for change in self.prompt_changes
            ],
            "setting_changes": {
                key: {"a": a, "b": b} for key, (a, b) in self.setting_changes.items()
            },
        }

    def _title(self, side: dict[str, Any]) -> str:
        return f"{side['experiment']} ({side['experiment_id']}, {side['runs']} runs)"

    def __str__(self) -> str:
        lines = [f"A: {self._title(self.a)}", f"B: {self._title(self.b)}", self.note, ""]
        for m in self.metrics:
            lines.append(
                f"{m.metric}: A {format_value(m.mean_a, m.kind)}, B "
                f"{format_value(m.mean_b, m.kind)}, B - A {format_difference(m)}, "
                f"p = {format_p(m.p_value)} ({m.test})"
            )
        for key, (a, b) in self.setting_changes.items():
            lines.append(f"{key}: A {', '.join(map(str, a))}; B {', '.join(map(str, b))}")
        for change in self.prompt_changes:
            lines.append("")
            lines.append(change.title)
            if change.diff is not None:
                lines.append(change.diff.unified.rstrip("\n"))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m.metric)}</td><td>{m.kind}</td>"
            f"<td>{format_value(m.mean_a, m.kind)}</td><td>{format_value(m.mean_b, m.kind)}</td>"
            f"<td>{html.escape(format_difference(m))}</td><td>{format_p(m.p_value)}</td>"
            f"<td>{'' if m.a_only is None else f'{m.a_only} / {m.b_only}'}</td>"
            f"<td>{m.test}</td></tr>"
            for m in self.metrics
        )
        parts = [
            f"<p><b>A</b>: {html.escape(self._title(self.a))}<br>"
            f"<b>B</b>: {html.escape(self._title(self.b))}<br>{html.escape(self.note)}</p>",
            "<table><thead><tr><th>metric</th><th>kind</th><th>A</th><th>B</th>"
            "<th>B - A [95% CI]</th><th>p</th><th>A only / B only</th><th>test</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>",
        ]
        if self.setting_changes:
            items = "".join(
                f"<li>{html.escape(key)}: A {html.escape(', '.join(map(str, a)))}; "
                f"B {html.escape(', '.join(map(str, b)))}</li>"
                for key, (a, b) in self.setting_changes.items()
            )
            parts.append(f"<p>Settings that differ:</p><ul>{items}</ul>")
        for change in self.prompt_changes:
            parts.append(f"<p>{html.escape(change.title)}</p>")
            if change.diff is not None:
                parts.append(change.diff._repr_html_())
        return "\n".join(parts)


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in data.items()}


def format_value(value: float | None, kind: str) -> str:
    """A metric value or mean as a person reads it: pass rates as percentages."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "bool":
        return f"{value:.0%}" if value in (0, 1) else f"{value:.1%}"
    return f"{value:.4g}"


def format_difference(m: MetricComparison) -> str:
    """``+0.12 [+0.03, +0.21]``; percentage points for bool metrics."""
    if math.isnan(m.difference):
        return "-"
    scale, unit, spec = (100, " pp", "+.1f") if m.kind == "bool" else (1, "", "+.3g")
    text = format(m.difference * scale, spec)
    if not math.isnan(m.ci_low):
        text += f" [{m.ci_low * scale:{spec}}, {m.ci_high * scale:{spec}}]"
    return text + unit


def format_p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _pairs(
    runs_a: list[tuple[str, int, str | None]], runs_b: list[tuple[str, int, str | None]]
) -> tuple[str, list[tuple[str, str]]]:
    """How to pair two experiments' runs, and the pairs (run id in A, run id in B)."""
    if len(runs_a) != len(runs_b):
        return "unpaired", []
    inputs_a = [run[2] for run in runs_a]
    inputs_b = [run[2] for run in runs_b]
    if (
        None not in inputs_a
        and len(set(inputs_a)) > 1
        and Counter(inputs_a) == Counter(inputs_b)
    ):
        # Equal inputs pair in execution order: (input, how many times seen before).
        def keyed(runs: list[tuple[str, int, str | None]]) -> dict[tuple[Any, int], str]:
            seen: Counter[Any] = Counter()
            keys = {}
            for run_id, _, user in runs:
                keys[(user, seen[user])] = run_id
                seen[user] += 1
            return keys

        keys_a, keys_b = keyed(runs_a), keyed(runs_b)
        return "input", [(keys_a[k], keys_b[k]) for k in keys_a]
    by_index = {index: run_id for run_id, index, _ in runs_b}
    return "execution_index", [
        (run_id, by_index[index]) for run_id, index, _ in runs_a if index in by_index
    ]


def _compare_metric(
    name: str,
    kind: str,
    values_a: dict[str, float],
    values_b: dict[str, float],
    pairs: list[tuple[str, str]] | None,
) -> MetricComparison:
    if pairs is None:
        a, b = list(values_a.values()), list(values_b.values())
        result = _bounded(kind, stats.welch_difference(a, b))
        return MetricComparison(
            name, kind, len(a), len(b), _mean(a), _mean(b), result["difference"],
            result["ci_low"], result["ci_high"], result["p_value"], "Welch t",
        )  # fmt: skip
    both = [(values_a[x], values_b[y]) for x, y in pairs if x in values_a and y in values_b]
    if not both:  # recorded in one experiment only: nothing to pair
        a, b = list(values_a.values()), list(values_b.values())
        return MetricComparison(
            name, kind, len(a), len(b), _mean(a), _mean(b), math.nan, math.nan, math.nan,
            math.nan, "none (no pair has it on both sides)",
        )  # fmt: skip
    a = [x for x, _ in both]
    b = [y for _, y in both]
    result = _bounded(kind, stats.paired_difference(a, b))
    a_only = b_only = None
    p, test = result["p_value"], "paired t"
    if kind == "bool":
        a_only = sum(x > y for x, y in both)
        b_only = sum(y > x for x, y in both)
        p, test = stats.mcnemar_exact(a_only, b_only), "McNemar exact"
    return MetricComparison(
        name, kind, len(a), len(b), _mean(a), _mean(b), result["difference"],
        result["ci_low"], result["ci_high"], p, test, a_only, b_only,
    )  # fmt: skip


def _bounded(kind: str, result: dict[str, float]) -> dict[str, float]:
    """A difference of pass rates lies in [-1, 1]: its t interval, which on few runs
    reaches past that, is cut there."""
    if kind == "bool":
        result = {**result, "ci_low": max(-1.0, result["ci_low"]),
                  "ci_high": min(1.0, result["ci_high"])}  # fmt: skip
    return result


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def compare(
    experiment_a: str,
    experiment_b: str,
    metrics: Iterable[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Compare two experiments (each a name, meaning its latest experiment, or an id)
    in the log at ``path`` (default: the current log).

    Runs are paired by execution index, or by input where both experiments' runs
    sent the same user messages; each metric gets the mean on each side, the
    difference B - A with its 95% interval (paired t) and a p-value (the exact
    McNemar test for bool metrics). When the run counts differ the comparison is
    unpaired (Welch) and says so. The result also lists the prompt versions and
    bot settings that differ, with the diff of each changed prompt.
    """
    with Log(path) as log:
        return _compare_in(log, experiment_a, experiment_b, metrics)


def _compare_in(
    log: Log, experiment_a: str, experiment_b: str, metrics: Iterable[str] | None
) -> Comparison:
    # Imported here: prompts brings Jinja, which the CLI's other commands that
    # format metrics with this module do not need.
    from .diffs import PromptDiff
    from .prompts import PromptVersion

    (id_a,) = log.experiment_ids(experiment_a)
    (id_b,) = log.experiment_ids(experiment_b)
    kinds = log.metric_kinds([id_a, id_b])
    if metrics is not None:
        wanted = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [name for name in wanted if name not in kinds]
        if unknown:
            raise ExperimentError(
                f"Neither experiment has a metric named {unknown[0]!r}; their metrics are "
                f"{', '.join(kinds) or 'none'}."
            )
        kinds = {name: kinds[name] for name in wanted}
    runs_a, runs_b = log.run_inputs(id_a), log.run_inputs(id_b)
    examples_a, examples_b = log.run_examples(id_a), log.run_examples(id_b)
    if examples_a and examples_b:
        pairing = "example"
        pairs = [(run_a, examples_b[key]) for key, run_a in examples_a.items() if key in examples_b]
    else:
        pairing, pairs = _pairs(runs_a, runs_b)
    if pairing == "example":
        note = (
            f"Paired by example: {len(pairs)} runs of A matched to runs of B on the same "
            f"example and repeat."
        )
    elif pairing == "unpaired":
        note = (
            f"Unpaired (Welch): A has {len(runs_a)} runs and B has {len(runs_b)}, so runs "
            f"cannot be matched one to one."
        )
    elif pairing == "input":
        note = f"Paired by input: {len(pairs)} runs of A matched to runs of B with the same input."
    else:
        note = f"Paired by execution index: {len(pairs)} pairs of runs."
    values = log.metric_values_by_run([id_a, id_b])
    compared = [
        _compare_metric(
            name,
            kind,
            values[id_a].get(name, {}),
            values[id_b].get(name, {}),
            None if pairing == "unpaired" else pairs,
        )
        for name, kind in kinds.items()
    ]
    used_a, used_b = log.prompt_versions_used(id_a), log.prompt_versions_used(id_b)
    changes = []
    for name in sorted(set(used_a) | set(used_b)):
        a, b = used_a.get(name, []), used_b.get(name, [])
        if [v["id"] for v in a] == [v["id"] for v in b]:
            continue
        diff = None
        if len(a) == 1 and len(b) == 1:
            diff = PromptDiff(PromptVersion.from_row(a[0]), PromptVersion.from_row(b[0]))
        changes.append(
            PromptChange(name, tuple(v["version"] for v in a), tuple(v["version"] for v in b), diff)
        )
    settings_a, settings_b = log.bot_settings(id_a), log.bot_settings(id_b)
    setting_changes = {
        key: (settings_a.get(key, []), settings_b.get(key, []))
        for key in sorted(set(settings_a) | set(settings_b))
        if settings_a.get(key) != settings_b.get(key)
    }
    return Comparison(
        log.experiment_info(id_a),
        log.experiment_info(id_b),
        pairing,
        note,
        compared,
        changes,
        setting_changes,
    )
