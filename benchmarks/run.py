"""Run every benchmark against its peers and write the table to benchmarks/results.md.

    python -m benchmarks                 # everything (about half an hour; peers installed once)
    python -m benchmarks --quick         # fewer repetitions and smaller logs: a smoke run
    python -m benchmarks --only overhead,startup

MLflow and llamabot are installed into virtual environments of their own under
benchmarks/.venvs/ on first use (pip; nothing else needs the network). The large
logs are written to a temporary folder and removed at the end (--keep-logs DIR
keeps them there, and reuses them on the next run).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from . import (
    cache,
    cluster,
    evaluation,
    functions,
    memory,
    meta,
    optimizers,
    overhead,
    parallel,
    scale,
    search,
    startup,
    throughput,
)
from .common import HERE, ROOT, Figure, Row, Section

BENCHMARKS = (
    "throughput", "overhead", "parallel", "startup", "scale", "memory", "functions", "cache",
    "evaluation", "meta", "optimizers", "cluster", "search",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated, from: {', '.join(BENCHMARKS)}")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 2 quick)")
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="write (and reuse) the large logs in this folder")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    reps = args.reps or (2 if args.quick else 5)
    folder = args.keep_logs or Path(tempfile.mkdtemp(prefix="promptlog-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = ["10k", "100k"] if args.quick else ["10k", "100k", "1M"]
    machine = _machine()  # the code measured is the code at the start
    started = time.perf_counter()
    sections: list[Section] = []
    large_log: Path | None = None
    try:
        plan: list[tuple[str, Callable[[], Section]]] = [
            ("throughput", lambda: throughput.bench(
                reps, runs=2_000 if args.quick else 10_000,
                mlflow_runs_n=50 if args.quick else 300)),
            ("overhead", lambda: overhead.bench(
                reps, calls=300 if args.quick else 2_000, threads=32,
                per_thread=10 if args.quick else 50)),
            ("parallel", lambda: parallel.bench(reps)),
            ("functions", lambda: functions.bench(reps, calls=300 if args.quick else 2_000)),
            ("cache", lambda: cache.bench(reps, calls=300 if args.quick else 2_000)),
            ("evaluation", lambda: evaluation.bench(reps, examples=200 if args.quick else 1_000)),
            ("meta", lambda: meta.bench(reps)),
            ("optimizers", lambda: optimizers.bench(reps)),
            ("cluster", lambda: cluster.bench(reps)),
            ("search", lambda: search.bench(reps, seeds=5 if args.quick else 10,
                                            steps=10 if args.quick else 30)),
        ]
        for name, run in plan:
            if name in chosen:
                print(f"{name}:", flush=True)
                sections.append(run())
        if "scale" in chosen:
            print("scale:", flush=True)
            section, large_log = scale.bench(reps=7, folder=folder, sizes=sizes)
            sections.append(section)
        if "startup" in chosen:
            print("startup:", flush=True)
            label = f"the {sizes[-1]}-call log of section 5" if large_log else "no log"
            sections.append(startup.bench(10 if not args.quick else 3, large_log, label))
        if "memory" in chosen:
            print("memory:", flush=True)
            sections.append(memory.bench(20_000 if args.quick else 100_000))
    finally:
        if args.keep_logs is None:
            shutil.rmtree(folder, ignore_errors=True)
    text = render(sections, time.perf_counter() - started, args, machine)
    args.output.write_text(text)
    print(f"\nwrote {args.output}")
    if not args.quick and chosen == list(BENCHMARKS) and args.output == HERE / "results.md":
        _update_docs(text)


def _update_docs(text: str) -> None:
    """Put a complete run's tables into docs/performance.md, between its markers."""
    start, end = "<!-- results: written by python -m benchmarks -->", "<!-- /results -->"
    doc = ROOT / "docs" / "performance.md"
    current = doc.read_text() if doc.exists() else ""
    if start not in current or end not in current:
        print(f"{doc} has no results markers; not updated")
        return
    body = text.split("\n", 2)[2]  # without the results file's own title
    before, rest = current.split(start, 1)
    after = rest.split(end, 1)[1]
    doc.write_text(f"{before}{start}\n{body.replace('## ', '### ')}{end}{after}")
    print(f"updated {doc}")


def render(
    sections: list[Section], seconds: float, args: argparse.Namespace, machine: str
) -> str:
    lines = [
        "# promptlog benchmarks",
        "",
        f"Written by `python -m benchmarks{' --quick' if args.quick else ''}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {seconds / 60:.0f} min: "
        f"{machine}. Every ratio is taken within one repetition, promptlog and its "
        f"baseline measured side by side; figures are the median over the repetitions, "
        f"with min and max.",
        "",
        "## Goals",
        "",
        "| section | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for section in sorted(sections, key=lambda s: int(s.title.split(".")[0])):
        for row in section.rows:
            if row.goal:
                shown = row.ratio if row.ratio is not None and "×" in row.goal else row.figure
                unit = row.ratio_label if shown is row.ratio else row.unit
                measured = _figure(shown, unit) if shown is not None else row.note
                lines.append(f"| {_cell(section.title + ': ' + row.what)} | {_cell(measured)} | "
                             f"{row.goal} | {_met(row.met)} |")
    for section in sorted(sections, key=lambda s: int(s.title.split(".")[0])):
        lines += ["", f"## {section.title}", "", section.about, "",
                  "| what | median | min | max | unit | ratio: median (min–max) | goal | met | "
                  "notes |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in section.rows:
            lines.append(_row(row))
        if section.notes:
            lines.append("")
            lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines) + "\n"


def _row(row: Row) -> str:
    figure = row.figure
    cells = [row.what]
    if figure is None:
        cells += ["", "", "", ""]
    else:
        cells += [_number(figure.median), _number(figure.low), _number(figure.high), row.unit]
    cells.append(_figure(row.ratio, row.ratio_label) if row.ratio is not None else "")
    cells += [row.goal, _met(row.met), row.note]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    """A table cell is one line, and a pipe in it (an error message's) is no column."""
    return text.replace("\n", " ").replace("|", "\\|")


def _figure(figure: Figure, unit: str) -> str:
    if len(figure.values) == 1:
        return f"{_number(figure.median)} {unit}".strip()
    return (f"{_number(figure.median)} {unit} ({_number(figure.low)}–"
            f"{_number(figure.high)})").strip()


def _number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "**no**")


def _machine() -> str:
    import os

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                              "promptlog"], cwd=ROOT, capture_output=True, text=True).stdout
    if commit and changed.strip():
        commit += " with uncommitted changes"
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite "
            f"{sqlite3.sqlite_version}, promptlog at {commit or 'an unknown commit'}, "
            f"{platform.system()} {platform.release()}")


if __name__ == "__main__":
    main(sys.argv[1:])
