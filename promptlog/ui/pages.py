"""What each page of the viewer shows, as JSON-able data read through
:class:`promptlog.read.Log`: the ``.json`` form of a page is exactly this, and
its HTML template draws the same data (see :mod:`.routes`).

A page is a :class:`Page`: a name, a URL pattern, a template and a function
from (log, url variables, query arguments) to data. Later pages (an optimiser's
candidates, a per-example comparison) are one more entry in :data:`PAGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..comparisons import compare
from ..diffs import PromptDiff
from ..prompts import PromptVersion
from ..read import Log, short_name

Arguments = Mapping[str, str]


@dataclass(frozen=True)
class Page:
    """One page of the viewer: ``/-/promptlog/<path>``, and the same with ``.json``."""

    name: str
    path: str  # a regular expression for the part after /-/promptlog
    template: str
    data: Callable[[Log, Arguments, Arguments], dict[str, Any]]
    title: str


def _without_values(summaries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {k: v for k, v in found.items() if k != "values"} for name, found in summaries.items()
    }


# --- experiments ------------------------------------------------------------------


def experiments(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """The latest experiments, newest first, with run counts, usage and metrics."""
    name = query.get("name", "").strip()
    limit = min(int(query.get("limit") or 100), 1000)
    ids = log.latest_experiment_ids(name_contains=name, limit=limit)
    rows = {row["experiment_id"]: row for row in log.experiment_records(ids).dicts(nest=True)}
    usage = log.experiment_usage(ids)
    summaries = log.metric_summaries(ids)
    found = []
    for id_ in ids:
        row = rows[id_]
        row.pop("metrics", None)
        found.append({**row, **usage[id_], "metrics": _without_values(summaries[id_])})
    kinds: dict[str, str] = {}
    for row in found:
        for metric, summary in row["metrics"].items():
            kinds.setdefault(metric, summary["kind"])
    return {"filter": name, "limit": limit, "metrics": dict(sorted(kinds.items())),
            "experiments": found}  # fmt: skip


# --- one experiment ---------------------------------------------------------------


def experiment(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """One experiment: its runs with metrics as columns, each metric's summary and
    values, its prompt versions and bots, and the environment it ran in."""
    (experiment_id,) = log.experiment_ids(url["experiment"])
    details = log.experiment_details(experiment_id)
    (counts,) = log.experiment_records([experiment_id]).dicts()
    for key in ("runs", "succeeded", "failed", "interrupted", "duration_s"):
        details[key] = counts[key]
    details.update(log.experiment_usage([experiment_id])[experiment_id])
    summaries = log.metric_summaries([experiment_id])[experiment_id]
    tracebacks = log.run_tracebacks(experiment_id)
    runs = log.run_records([experiment_id]).dicts(nest=True)
    for run in runs:
        run["traceback"] = tracebacks.get(run["run_id"])
    versions = [
        {
            "prompt_version_id": v["id"], "prompt": name, "short_name": short_name(name),
            "version": v["version"], "role": v["role"], "hash": v["hash"],
            "created_at": v["created_at"],
        }
        for name, used in log.prompt_versions_used(experiment_id).items()
        for v in used
    ]  # fmt: skip
    return {
        "experiment": details,
        "metrics": summaries,
        "runs": runs,
        "prompt_versions": versions,
        "bots": log.bots_used(experiment_id),
    }


# --- two experiments ----------------------------------------------------------------


def comparison(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """Experiments A and B: each metric's difference B - A with its 95% interval
    and p-value (as ``promptlog.compare`` gives them), and the prompts that changed
    between them, each as a side-by-side diff."""
    a, b = query.get("a", "").strip(), query.get("b", "").strip()
    choices = [
        {"experiment_id": row["experiment_id"], "experiment": row["experiment"],
         "created_at": row["created_at"]}
        for row in log.experiment_records(log.latest_experiment_ids(limit=200)).dicts()[::-1]
    ]  # fmt: skip
    if not (a and b):
        return {"a": a, "b": b, "choices": choices, "comparison": None}
    result = compare(a, b, path=log.path)
    data = result.to_dict()
    data["a"]["summary"] = _without_values(
        log.metric_summaries([result.a["experiment_id"]])[result.a["experiment_id"]]
    )
    data["b"]["summary"] = _without_values(
        log.metric_summaries([result.b["experiment_id"]])[result.b["experiment_id"]]
    )
    diffs = {change.prompt: change.diff for change in result.prompt_changes}
    for change in data["prompt_changes"]:
        found = diffs[change["prompt"]]
        change["short_name"] = short_name(change["prompt"])
        change["diff_html"] = None if found is None else found._repr_html_()
    examples = None
    if result.pairing == "example":
        examples = _examples(log, result.a["experiment_id"], result.b["experiment_id"])
    return {"a": a, "b": b, "choices": choices, "comparison": data, "examples": examples}


def _examples(log: Log, id_a: str, id_b: str) -> dict[str, Any]:
    """Per example of two experiments over inputs: its fields, each side's runs
    (output, status and metrics per repeat), each metric's mean on each side and
    what changed, most changed first.

    An example's ``change`` is the largest change of its metrics, each as a share of
    that metric's range over every example's means (a pass rate's range is 1), so
    that metrics in different units rank together; ``flips`` says a metric differed
    between repeats of one side (``promptlog.open().examples``)."""
    kinds = log.metric_kinds([id_a, id_b])
    found = log.example_records(id_a, id_b).dicts(nest=True)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in log.run_records([id_a, id_b]).dicts(nest=True):
        if run.get("example_id") is None:
            continue
        shown = {
            "run_id": run["run_id"], "repeat_index": run["repeat_index"],
            "status": run["status"], "result": run["result"],
            "error_type": run["error_type"], "error_message": run["error_message"],
            "metrics": {k: v for k, v in run["metrics"].items() if v is not None},
        }  # fmt: skip
        for side, experiment_id in (("a", id_a), ("b", id_b)):
            if run["experiment_id"] == experiment_id:
                runs.setdefault((run["example_id"], side), []).append(shown)
    spans = {}
    for name, kind in kinds.items():
        means = [row[f"{name}_{side}"] for row in found for side in "ab"]
        present = [m for m in means if m is not None]
        spread = max(present) - min(present) if present else 0.0
        spans[name] = 1.0 if kind == "bool" else spread or 1.0
    examples = []
    for row in found:
        metrics = {}
        for name, kind in kinds.items():
            a, b = row[f"{name}_a"], row[f"{name}_b"]
            metrics[name] = {
                "kind": kind, "a": a, "b": b,
                "difference": None if a is None or b is None else b - a,
                "change": row[f"{name}_change"], "flips": bool(row[f"{name}_flips"]),
            }  # fmt: skip
        moved = [abs(m["difference"]) / spans[n] for n, m in metrics.items()
                 if m["difference"] is not None]  # fmt: skip
        directions = {m["change"] for m in metrics.values()} - {"same", None}
        examples.append({
            "example_id": row["example_id"], "input": row["input"],
            "change": max(moved, default=0.0),
            # None: no metric on both sides (the example ran, or succeeded, on one only)
            "direction": (None if not moved else directions.pop() if len(directions) == 1
                          else "mixed" if directions else "same"),
            "flips": any(m["flips"] for m in metrics.values()),
            "metrics": metrics,
            "a": runs.get((row["example_id"], "a"), []),
            "b": runs.get((row["example_id"], "b"), []),
        })  # fmt: skip
    examples.sort(key=lambda example: -example["change"])  # stable: ties keep A's order
    counts = {
        direction: sum(e["direction"] == direction for e in examples)
        for direction in ("better", "worse", "mixed", "same")
    }
    return {"metrics": kinds, "counts": counts, "flips": sum(e["flips"] for e in examples),
            "examples": examples}  # fmt: skip


# --- prompts ----------------------------------------------------------------------


def prompts(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """Every prompt: role, number of versions, latest version, first and last change."""
    found = log.prompt_records().dicts()
    for row in found:
        row["short_name"] = short_name(row["prompt"])
    return {"prompts": found}


def prompt(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """One prompt's timeline, newest version first: each version's diff against
    the one before it, when it appeared, and the metrics of the experiments that
    used it (over the runs that used it)."""
    name = log.prompt_name(url["prompt"])
    rows = log.prompt_version_records(name).dicts()
    history = log.prompt_history_records(name).dicts()
    summaries = log.prompt_metric_summaries(name)
    versions = []
    previous: PromptVersion | None = None
    for row in rows:
        current = PromptVersion(
            id=row["prompt_version_id"], name=name, role=row["role"], template=row["template"],
            hash=row["hash"], version=row["version"], created_at=row["created_at"],
        )  # fmt: skip
        change = None if previous is None else PromptDiff(previous, current)
        used = [
            {"experiment_id": h["experiment_id"], "experiment": h["experiment"],
             "runs": h["runs"],
             "metrics": _without_values(summaries.get((row["version"], h["experiment_id"]), {}))}
            for h in history
            if h["version"] == row["version"] and h["experiment_id"] is not None
        ]  # fmt: skip
        versions.append({
            **row,
            "diff": None if change is None else change.unified,
            "diff_html": None if change is None else change._repr_html_(),
            "experiments": used,
        })  # fmt: skip
        previous = current
    kinds = {
        metric: found["kind"]
        for version in versions for used in version["experiments"]
        for metric, found in used["metrics"].items()
    }  # fmt: skip
    return {"prompt": name, "short_name": short_name(name), "metrics": dict(sorted(kinds.items())),
            "versions": versions[::-1]}  # fmt: skip


PAGES = [
    Page("experiments", r"", "promptlog_experiments.html", experiments, "Experiments"),
    Page("experiment", r"/experiments/(?P<experiment>[^/]+?)", "promptlog_experiment.html",
         experiment, "Experiment"),
    Page("compare", r"/compare", "promptlog_compare.html", comparison, "Compare"),
    Page("prompts", r"/prompts", "promptlog_prompts.html", prompts, "Prompts"),
    Page("prompt", r"/prompts/(?P<prompt>[^/]+?)", "promptlog_prompt.html", prompt, "Prompt"),
]  # fmt: skip
"""Every page of the viewer; the navigation bar links those without URL variables."""
