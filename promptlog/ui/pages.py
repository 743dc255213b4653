"""What each page of the viewer shows, as JSON-able data read through
:class:`promptlog.read.Log`: the ``.json`` form of a page is exactly this, and
its HTML template draws the same data (see :mod:`.routes`).

A page is a :class:`Page`: a name, a URL pattern, a template and a function
from (log, url variables, query arguments) to data. Later pages (an optimiser's
candidates, a per-example comparison) are one more entry in :data:`PAGES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..comparisons import Comparison, compare
from ..diffs import PromptDiff
from ..errors import ExperimentError
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
    kinds = log.experiment_kinds(ids)
    found = []
    for id_ in _parents_first(ids, kinds):
        row = rows[id_]
        row.pop("metrics", None)
        found.append({**row, **usage[id_], **kinds[id_],
                      "metrics": _without_values(summaries[id_])})  # fmt: skip
    metric_kinds: dict[str, str] = {}
    for row in found:
        for metric, summary in row["metrics"].items():
            metric_kinds.setdefault(metric, summary["kind"])
    return {"filter": name, "limit": limit, "metrics": dict(sorted(metric_kinds.items())),
            "experiments": found}  # fmt: skip


def _parents_first(ids: list[str], kinds: dict[str, dict[str, Any]]) -> list[str]:
    """``ids`` (newest first) with each optimisation's candidates moved under it,
    oldest first, when the optimisation is among them."""
    children: dict[str, list[str]] = {}
    for id_ in ids:
        parent = kinds[id_]["parent_id"]
        if parent in kinds:
            children.setdefault(parent, []).insert(0, id_)
    ordered: list[str] = []

    def add(id_: str) -> None:
        ordered.append(id_)
        for child in children.get(id_, []):
            add(child)

    for id_ in ids:
        if kinds[id_]["parent_id"] not in kinds:
            add(id_)
    return ordered


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
    details.update(log.experiment_kinds([experiment_id])[experiment_id])
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
    data["prompt_changes"] = _prompt_changes(result)
    examples = None
    if result.pairing == "example":
        examples = _examples(log, result.a["experiment_id"], result.b["experiment_id"])
    return {"a": a, "b": b, "choices": choices, "comparison": data, "examples": examples}


def _prompt_changes(result: Comparison) -> list[dict[str, Any]]:
    """The prompts that changed between two compared experiments (as
    ``Comparison.to_dict`` gives them), each with its short name and its
    side-by-side diff as HTML."""
    diffs = {change.prompt: change.diff for change in result.prompt_changes}
    changes = result.to_dict()["prompt_changes"]
    for change in changes:
        found = diffs[change["prompt"]]
        change["short_name"] = short_name(change["prompt"])
        change["diff_html"] = None if found is None else found._repr_html_()
    return changes


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


# --- optimisations ------------------------------------------------------------------


def optimizations(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """Every optimisation, newest first: optimiser, status, runs, candidates, best
    score, why it stopped, calls and cost (``promptlog optimizations``)."""
    found = log.optimization_records().dicts()
    for row in found:
        row["experiment_id"] = row.pop("id")
        row["experiment"] = row.pop("name")
    return {"optimizations": found}


# Outcome keys that say what an optimisation spent, each with the metadata key of
# its limit, in the order the page shows them.
BUDGET = [("steps", "max_steps"), ("evaluations", None), ("metric_calls", "max_metric_calls"),
          ("calls", "max_calls"), ("cost", "max_cost")]  # fmt: skip


def _is_baseline(metadata: dict[str, Any]) -> bool:
    return bool(
        metadata.get("baseline") is True or metadata.get("label") == "baseline"
        or metadata.get("role") == "baseline" or metadata.get("optimiser") == "baseline"
    )  # fmt: skip


def _best_so_far(points: list[dict[str, Any]], minimize: bool) -> list[dict[str, Any]]:
    """After each point (in order), the best score so far."""
    best: float | None = None
    found = []
    for point in points:
        score = point["y"]
        if score is not None and (best is None or (score < best if minimize else score > best)):
            best = score
        found.append({"x": point["x"], "y": best})
    return found


# The roles of a search's runs that are evaluations: promptlog.optimize's, and
# meta_optimize's task runs (whose x is their hyperparameters, and step their round).
EVALUATION_ROLES = ("evaluation", "task")


def _evaluations(runs: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """A search's evaluations among its runs, in step order: a result that is an
    object with a ``score`` (or with an ``x``, on a run that recorded the metric), and
    whose ``role``, if it has one, is an evaluation's (not a proposal, a reflection,
    nor a compile's own program run)."""
    found = []
    for run in runs:
        result = run["result"]
        if not isinstance(result, dict) or result.get("role", "evaluation") not in EVALUATION_ROLES:
            continue
        x = result.get("x", result.get("hyperparameters"))
        if "score" not in result and not (x is not None and metric in run["metrics"]):
            continue
        step = result.get("step", result.get("round"))
        if step is not None and not isinstance(step, (int, float)):
            continue  # a named stage of the optimiser's own work, not a step
        score = result.get("score", run["metrics"].get(metric))
        found.append({
            "run_id": run["run_id"], "execution_index": run["execution_index"],
            "status": run["status"],
            "step": step if isinstance(step, (int, float)) else run["execution_index"],
            "candidate": result.get("candidate", result.get("index")), "x": x,
            "score": score if isinstance(score, (int, float)) else None,
            "baseline": result.get("baseline") is True,
            "feedback": result.get("feedback"), "error": result.get("error"),
        })  # fmt: skip
    found.sort(key=lambda e: (e["step"], e["baseline"], e["candidate"] or 0,
                              e["execution_index"]))  # fmt: skip
    return found


def _series(label: str, evaluations: list[dict[str, Any]], *, baseline: bool, minimize: bool,
            experiment_id: str) -> dict[str, Any]:  # fmt: skip
    """One line of the plot: a point per x tried at each step, its score (the mean,
    when the x ran several times in the step, as meta_optimize runs each setting on
    several tasks), and the best so far."""
    groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for e in evaluations:
        groups.setdefault((e["step"], json.dumps(e["x"], sort_keys=True)), []).append(e)
    points = []
    for (step, _), found in groups.items():
        scores = [e["score"] for e in found if e["score"] is not None]
        mean = sum(scores) / len(scores) if scores else None
        title = f"{label}, step {step}: {mean}"
        if len(scores) > 1:
            title += f" (mean of {len(scores)})"
        points.append({"x": step, "y": mean, "run_ids": [e["run_id"] for e in found],
                       "title": title})  # fmt: skip
    return {"label": label, "experiment_id": experiment_id, "baseline": baseline,
            "points": points, "best": _best_so_far(points, minimize)}  # fmt: skip


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _text_diff(a: Any, b: Any) -> str | None:
    """Two candidates' x side by side, when both are text (a prompt, a piece of
    code) and differ; not when both are JSON data (numbers, a list of parameters),
    which the table shows whole."""
    if not (isinstance(a, str) and isinstance(b, str)) or a == b:
        return None
    if _is_json(a) and _is_json(b):
        return None
    from ..diffs import side_by_side_html

    return side_by_side_html(a, b, "the first x", "this x")


def optimization(log: Log, url: Arguments, query: Arguments) -> dict[str, Any]:
    """One optimisation: its score per step (a search's evaluations, its runs) or
    per candidate (a compile's candidates, its child experiments), each series
    with its best-so-far line, a baseline when there is one; its candidates with
    what they changed (prompt diffs against the baseline, or a search's x against
    the first); and its budget, as the optimiser recorded it and as the log counts
    it."""
    (experiment_id,) = log.experiment_ids(url["experiment"])
    details = log.experiment_details(experiment_id)
    if details["kind"] != "optimisation":
        parent = details["parent_id"]
        raise ExperimentError(
            f"Experiment {details['experiment']!r} ({experiment_id}) is not an optimisation"
            + (f"; it belongs to optimisation {parent}." if parent else ".")
        )
    metadata = details["metadata"]
    outcome = details["outcome"] or {}
    if not isinstance(outcome, dict):
        outcome = {"outcome": outcome}
    minimize = bool(metadata.get("minimize"))
    child_ids = log.children(experiment_id)
    family = [experiment_id, *child_ids]
    records = {row["experiment_id"]: row for row in log.experiment_records(family).dicts()}
    usage = log.experiment_usage(family)
    children = [log.experiment_details(id_) for id_ in child_ids]
    # The metric its metadata names when its runs recorded it; else ``score``, or
    # the one metric they recorded.
    metric = metadata.get("metric")
    names = log.metric_kinds(family)
    if metric not in names:
        metric = "score" if "score" in names or len(names) != 1 else next(iter(names))

    # A compile's candidates say which they are in their metadata; its own runs are
    # its work (traces, proposals). Without such candidates, the children of an
    # optimisation with no evaluations of its own are its candidates.
    own = log.run_records([experiment_id]).dicts(nest=True)
    plain = [c for c in children if c["kind"] != "optimisation"]
    marked = [c for c in plain if "candidate" in c["metadata"]]
    evaluations = [] if marked else _evaluations(own, metric)
    chosen = marked or ([] if evaluations else plain)
    series = []
    main = [e for e in evaluations if not e["baseline"]]
    if main:
        series.append(_series(details["experiment"], main, baseline=False, minimize=minimize,
                              experiment_id=experiment_id))  # fmt: skip
    if len(main) != len(evaluations):
        series.append(_series("baseline", [e for e in evaluations if e["baseline"]],
                              baseline=True, minimize=minimize,
                              experiment_id=experiment_id))  # fmt: skip
    for child in children:
        if child["kind"] != "optimisation":
            continue
        found = _evaluations(log.run_records([child["experiment_id"]]).dicts(nest=True), metric)
        if found:
            series.append(_series(child["experiment"], found,
                                  baseline=_is_baseline(child["metadata"]), minimize=minimize,
                                  experiment_id=child["experiment_id"]))  # fmt: skip
    first_x = evaluations[0]["x"] if evaluations else None
    for e in evaluations:
        e["diff_html"] = _text_diff(first_x, e["x"])

    candidates = _candidates(log, chosen, metric, minimize, records, usage,
                             outcome.get("best_candidate"))  # fmt: skip
    if candidates:
        points = [
            {"x": c["candidate"], "y": c["score"]["mean"], "low": c["score"]["ci_low"],
             "high": c["score"]["ci_high"], "experiment_id": c["experiment_id"],
             "title": f"candidate {c['candidate']}: {c['score']['mean']}"}
            for c in candidates
        ]  # fmt: skip
        series.append({"label": "candidates", "experiment_id": experiment_id, "baseline": False,
                       "points": points, "best": _best_so_far(points, minimize)})  # fmt: skip
        baseline = next((c for c in candidates if c["baseline"]), None)
        if baseline is not None and baseline["score"]["mean"] is not None:
            at = [c["candidate"] for c in candidates]
            level = baseline["score"]["mean"]
            series.append({
                "label": "baseline", "experiment_id": baseline["experiment_id"],
                "baseline": True, "points": [],
                "best": [{"x": min(at), "y": level}, {"x": max(at), "y": level}],
            })  # fmt: skip

    proposals = sum(
        isinstance(r["result"], dict) and r["result"].get("role") == "proposal" for r in own
    )
    totals = {key: sum((usage[id_][key] or 0) for id_ in family)
              for key in ("calls", "input_tokens", "output_tokens")}  # fmt: skip
    costs = [usage[id_]["cost"] for id_ in family if usage[id_]["cost"] is not None]
    budget = {
        "recorded": [
            {"key": key, "value": outcome[key], "limit": metadata.get(limit) if limit else None}
            for key, limit in BUDGET if key in outcome
        ],
        "runs": sum(records[id_]["runs"] for id_ in family),
        "own_runs": records[experiment_id]["runs"],
        "failed": sum(records[id_]["failed"] for id_ in family),
        "evaluations": len(evaluations),
        "proposals": proposals,
        "candidates": len(candidates),
        "others": len(children) - len(candidates),
        **totals,
        "cost": sum(costs) if costs else None,
    }
    details.update(records[experiment_id])
    scores = [p["y"] for s in series if not s["baseline"] for p in s["points"]
              if p["y"] is not None]  # fmt: skip
    best_score = outcome.get("best_score")
    if best_score is None and scores:  # not recorded (yet): the best the log holds
        best_score = min(scores) if minimize else max(scores)
    return {
        "optimization": details,
        "best_score": best_score,
        "optimiser": metadata.get("optimiser"),
        "metric": metric,
        "minimize": minimize,
        "outcome": outcome,
        "form": "candidates" if candidates else "search" if evaluations else "runs",
        "step_name": "round" if any(
            isinstance(r["result"], dict) and "round" in r["result"] and "step" not in r["result"]
            for r in own
        ) else "step",  # fmt: skip
        "best_x": outcome.get("best_x", outcome.get("best_hyperparameters")),
        "series": series,
        "evaluations": evaluations,
        "candidates": candidates,
        "budget": budget,
        # What else belongs to it: a search's baseline and repeats, summaries.
        "others": [
            {"experiment_id": c["experiment_id"], "experiment": c["experiment"],
             "kind": c["kind"], "status": c["status"], "runs": records[c["experiment_id"]]["runs"]}
            for c in children if c not in chosen
        ],  # fmt: skip
    }


def _candidates(
    log: Log,
    children: list[dict[str, Any]],
    metric: str,
    minimize: bool,
    records: dict[str, dict[str, Any]],
    usage: dict[str, dict[str, Any]],
    best_candidate: Any = None,
) -> list[dict[str, Any]]:
    """A compile's candidates, one per child experiment in the order they ran: the
    metric's mean and interval over the valset, the prompt versions their runs used,
    and, against the baseline (the candidate labelled so, or the first when its
    overrides are empty), the metric's difference and the prompts that changed, as
    diffs. The best is the optimiser's pick (``best_candidate`` of its outcome), else
    the first of the best means."""
    if not children:
        return []
    ids = [c["experiment_id"] for c in children]
    summaries = log.metric_summaries(ids)
    found = []
    for position, child in enumerate(children):
        id_ = child["experiment_id"]
        meta = child["metadata"]
        score = summaries[id_].get(metric, {})
        versions = [
            {"prompt": name, "short_name": short_name(name), "version": v["version"]}
            for name, used in log.prompt_versions_used(id_).items() for v in used
        ]  # fmt: skip
        found.append({
            "experiment_id": id_, "experiment": child["experiment"], "status": child["status"],
            "candidate": meta.get("candidate", position), "label": meta.get("label"),
            "overrides": meta.get("overrides"), "baseline": _is_baseline(meta),
            "runs": records[id_]["runs"], "failed": records[id_]["failed"],
            "score": {k: score.get(k) for k in ("kind", "n", "mean", "ci_low", "ci_high")},
            "calls": usage[id_]["calls"], "cost": usage[id_]["cost"],
            "prompt_versions": versions, "vs_baseline": None, "changes": [],
        })  # fmt: skip
    if not any(c["baseline"] for c in found) and found[0]["overrides"] == {}:
        found[0]["baseline"] = True
    baseline = next((c for c in found if c["baseline"]), None)
    if baseline is not None:
        for c in found:
            if c is baseline:
                continue
            scored = bool(baseline["score"]["n"] or c["score"]["n"])
            result = compare(baseline["experiment_id"], c["experiment_id"],
                             [metric] if scored else [], path=log.path)  # fmt: skip
            if scored:
                c["vs_baseline"] = result.to_dict()["metrics"][0]
            c["changes"] = _prompt_changes(result)
    means = [c["score"]["mean"] for c in found if c["score"]["mean"] is not None]
    best = (min if minimize else max)(means) if means else None
    # The optimiser's pick when it recorded one, else the first of the best.
    chosen = next((c for c in found if c["candidate"] == best_candidate), None) or next(
        (c for c in found if best is not None and c["score"]["mean"] == best), None
    )
    for c in found:
        c["best"] = c is chosen
    return found


PAGES = [
    Page("experiments", r"", "promptlog_experiments.html", experiments, "Experiments"),
    Page("experiment", r"/experiments/(?P<experiment>[^/]+?)", "promptlog_experiment.html",
         experiment, "Experiment"),
    Page("compare", r"/compare", "promptlog_compare.html", comparison, "Compare"),
    Page("prompts", r"/prompts", "promptlog_prompts.html", prompts, "Prompts"),
    Page("prompt", r"/prompts/(?P<prompt>[^/]+?)", "promptlog_prompt.html", prompt, "Prompt"),
    Page("optimizations", r"/optimizations", "promptlog_optimizations.html", optimizations,
         "Optimisations"),
    Page("optimization", r"/optimizations/(?P<experiment>[^/]+?)",
         "promptlog_optimization.html", optimization, "Optimisation"),
]  # fmt: skip
"""Every page of the viewer; the navigation bar links those without URL variables."""
