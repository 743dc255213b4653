"""Plots of metric distributions, per experiment or per prompt version (the ``plot``
extra: ``pip install 'promptlog[plot]'``).

    from promptlog import plot
    plot.distributions("name_length")                          # one box per experiment
    plot.distributions("short_name", prompt="namer_user")      # one bar per version

A numeric metric is drawn as a box plot with every run's value on top; a bool
metric as its pass rate with a 95% Wilson interval.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import stats
from .read import Log

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .prompts import PromptFunction


def distributions(
    metric: str,
    experiments: str | Iterable[str] | None = None,
    *,
    prompt: str | PromptFunction | None = None,
    path: str | os.PathLike[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot one metric's values in each experiment (names or ids; default all), or
    with ``prompt`` in each version of that prompt, and return the axes."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "promptlog.plot needs matplotlib: pip install 'promptlog[plot]'."
        ) from None

    with Log(path) as log:
        records = log.metric_values(metric, experiments, prompt=prompt)
    groups: dict[str, list[float]] = {}
    for label, value in records.rows:
        groups.setdefault(str(label), []).append(float(value))
    if prompt is not None:
        groups = dict(sorted(groups.items(), key=lambda item: int(item[0].lstrip("v") or 0)))
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(groups) + 2), 3.5))
    labels = list(groups)
    positions = list(range(1, len(labels) + 1))
    if records.types.get("value") == "bool":
        _pass_rates(ax, positions, list(groups.values()))
        ax.set_ylabel(f"{metric} (pass rate)")
    else:
        _boxes(ax, positions, list(groups.values()))
        ax.set_ylabel(metric)
    ax.set_xticks(positions, labels)
    ax.set_xlabel("prompt version" if prompt is not None else "experiment")
    return ax


def _pass_rates(ax: Axes, positions: list[int], groups: list[list[float]]) -> None:
    rates, below, above = [], [], []
    for values in groups:
        rate = sum(values) / len(values)
        low, high = stats.wilson_interval(int(sum(values)), len(values))
        rates.append(rate)
        below.append(rate - low)
        above.append(high - rate)
    ax.bar(positions, rates, yerr=[below, above], capsize=4, color="#8fb8de")
    ax.set_ylim(0, 1.05)


def _boxes(ax: Axes, positions: list[int], groups: list[list[float]]) -> None:
    ax.boxplot(groups, positions=positions, widths=0.5, showfliers=False)
    for position, values in zip(positions, groups, strict=True):
        # A small deterministic spread so equal values stay visible side by side.
        offsets: list[Any] = [((i * 7919) % 101 / 101 - 0.5) * 0.25 for i in range(len(values))]
        ax.scatter([position + o for o in offsets], values, s=12, alpha=0.6, zorder=3)
