"""Small plots as inline SVG, drawn on the server: a mean with its 95% interval,
a difference with its interval around zero, and a metric's distribution.

Hand-written rather than matplotlib: a few rectangles and lines need no
dependency, no build step and no network, render crisply at any zoom, and take
the page's fonts and colours. Every function returns markup safe to put in a
template as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

INK = "#1f2933"
MUTED = "#9aa5b1"
BLUE = "#2563eb"
GREEN = "#16a34a"
RED = "#dc2626"
PALE = "#e4e7eb"


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _svg(width: int, height: int, body: str, label: str, css_class: str) -> Markup:
    return Markup(
        f'<svg class="pl-plot {css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def interval_bar(
    mean: float | None,
    low: float | None,
    high: float | None,
    scale: tuple[float, float],
    *,
    label: str = "",
    width: int = 120,
    height: int = 16,
) -> Markup:
    """The mean as a dot on its 95% interval, on the axis ``scale`` (low, high):
    one row of a table, comparable with the rows above and below it."""
    if not _finite(mean):
        return Markup("")
    lo, hi = scale
    span = (hi - lo) or 1.0
    pad = 4

    def x(value: float) -> float:
        return pad + (min(max(value, lo), hi) - lo) / span * (width - 2 * pad)

    middle = height / 2
    body = f'<line x1="{pad}" x2="{width - pad}" y1="{middle}" y2="{middle}" stroke="{PALE}"/>'
    if _finite(low, high):
        assert low is not None and high is not None
        body += (
            f'<rect x="{x(low):.1f}" y="{middle - 3}" width="{max(x(high) - x(low), 1):.1f}" '
            f'height="6" rx="3" fill="{BLUE}" fill-opacity="0.25"/>'
        )
    assert mean is not None
    body += f'<circle cx="{x(mean):.1f}" cy="{middle}" r="3.5" fill="{BLUE}"/>'
    return _svg(width, height, body, label, "pl-interval")


def difference_bar(
    difference: float | None,
    low: float | None,
    high: float | None,
    *,
    label: str = "",
    width: int = 160,
    height: int = 18,
) -> Markup:
    """B - A as a dot on its 95% interval, on an axis centred on zero: green when
    the interval lies above zero, red below, grey when it straddles it."""
    if not _finite(difference):
        return Markup("")
    assert difference is not None
    reach = max(abs(v) for v in (difference, low, high) if v is not None and math.isfinite(v))
    reach = reach * 1.1 or 1.0
    pad = 4

    def x(value: float) -> float:
        return pad + (value + reach) / (2 * reach) * (width - 2 * pad)

    colour = MUTED
    if _finite(low, high):
        assert low is not None and high is not None
        colour = GREEN if low > 0 else RED if high < 0 else MUTED
    middle = height / 2
    body = (
        f'<line x1="{pad}" x2="{width - pad}" y1="{middle}" y2="{middle}" stroke="{PALE}"/>'
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="1" y2="{height - 1}" stroke="{INK}" '
        f'stroke-width="1"/>'
    )
    if _finite(low, high):
        assert low is not None and high is not None
        body += (
            f'<rect x="{x(low):.1f}" y="{middle - 3}" width="{max(x(high) - x(low), 1):.1f}" '
            f'height="6" rx="3" fill="{colour}" fill-opacity="0.35"/>'
        )
    body += f'<circle cx="{x(difference):.1f}" cy="{middle}" r="4" fill="{colour}"/>'
    return _svg(width, height, body, label, "pl-difference")


def histogram(
    values: Sequence[float],
    kind: str,
    *,
    label: str = "",
    width: int = 220,
    height: int = 90,
    bins: int = 12,
) -> Markup:
    """A metric's values: pass and fail counts for a bool metric, one bar per
    value for a few distinct integers, else equal-width bins; the axis ends are
    written below."""
    if not values:
        return Markup("")
    lo, hi = min(values), max(values)
    if kind == "bool":
        edges = ["fail", "pass"]
        counts = [sum(v == 0 for v in values), sum(v != 0 for v in values)]
        colours = [RED, GREEN]
    elif kind == "int" and hi - lo < 20:
        edges = [str(int(v)) for v in range(int(lo), int(hi) + 1)]
        counts = [sum(v == n for v in values) for n in range(int(lo), int(hi) + 1)]
        colours = [BLUE] * len(counts)
    else:
        step = (hi - lo) / bins or 1.0
        counts = [0] * bins
        for v in values:
            counts[min(int((v - lo) / step), bins - 1)] += 1
        edges = [f"{lo + i * step:.3g}" for i in range(bins)]
        colours = [BLUE] * bins
    top = max(counts) or 1
    plot_height = height - 16
    gap = 2
    bar = (width - gap * (len(counts) - 1)) / len(counts)
    body = ""
    for i, (count, edge, colour) in enumerate(zip(counts, edges, colours, strict=True)):
        h = count / top * (plot_height - 2)
        x = i * (bar + gap)
        body += (
            f'<rect x="{x:.1f}" y="{plot_height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="{colour}" fill-opacity="0.8"><title>{escape(edge)}: {count}</title></rect>'
        )
    body += f'<line x1="0" x2="{width}" y1="{plot_height}" y2="{plot_height}" stroke="{MUTED}"/>'
    if kind == "bool":
        ends = (f"fail {counts[0]}", f"pass {counts[1]}")
    else:
        ends = (f"{lo:.4g}", f"{hi:.4g}")
    body += (
        f'<text x="0" y="{height - 3}" font-size="11" fill="{INK}">{escape(ends[0])}</text>'
        f'<text x="{width}" y="{height - 3}" font-size="11" fill="{INK}" '
        f'text-anchor="end">{escape(ends[1])}</text>'
    )
    return _svg(width, height, body, label, "pl-histogram")


def shared_scale(*intervals: tuple[float | None, ...], kind: str = "float") -> tuple[float, float]:
    """One axis for several interval bars of a metric: 0 to 1 for a pass rate,
    else the span of every mean and interval end, widened a little."""
    if kind == "bool":
        return 0.0, 1.0
    found = [float(v) for interval in intervals for v in interval if v is not None and _finite(v)]
    if not found:
        return 0.0, 1.0
    lo, hi = min(found), max(found)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    return lo - pad, hi + pad


def summary_scale(summaries: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    """One axis for the interval bars of several summaries of one metric."""
    found = list(summaries)
    kind = next((s["kind"] for s in found if s.get("kind")), "float")
    return shared_scale(
        *((s.get("mean"), s.get("ci_low"), s.get("ci_high")) for s in found), kind=kind
    )


def metric_scales(
    groups: Iterable[Mapping[str, Mapping[str, Any]]],
) -> dict[str, tuple[float, float]]:
    """Metric -> one axis for the interval bars of that metric in every group (an
    experiment's or a version's metric summaries), so that bars in one column
    compare."""
    intervals: dict[str, list[tuple[float | None, ...]]] = {}
    kinds: dict[str, str] = {}
    for group in groups:
        for name, found in group.items():
            kinds.setdefault(name, found.get("kind", "float"))
            intervals.setdefault(name, []).append(
                (found.get("mean"), found.get("ci_low"), found.get("ci_high"))
            )
    return {name: shared_scale(*found, kind=kinds[name]) for name, found in intervals.items()}


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values from ``lo`` to ``hi``."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def progress(
    series: Sequence[Mapping[str, Any]],
    *,
    x_label: str,
    y_label: str,
    label: str = "",
    width: int = 760,
    height: int = 280,
) -> Markup:
    """Score against step (or candidate): each series' points (with their 95%
    interval as a whisker when they have one) and its best-so-far line, a step
    line that only moves when a point beats it. A series is ``{"label",
    "baseline": bool, "points": [{"x", "y", "low", "high", "title"}], "best":
    [{"x", "y"}]}``; a baseline is drawn grey and dashed."""
    points = [p for s in series for p in s["points"] if _finite(p.get("y"))]
    if not points:
        return Markup("")
    ys = [float(v) for p in points for v in (p["y"], p.get("low"), p.get("high")) if _finite(v)]
    xs = [float(p["x"]) for p in points]
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.1 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    x_lo, x_hi = min(xs), max(xs)
    x_lo, x_hi = (x_lo - 0.5, x_hi + 0.5)
    left, right, top, bottom = 56, 16, 28, 40

    def px(value: float) -> float:
        return left + (value - x_lo) / (x_hi - x_lo) * (width - left - right)

    def py(value: float) -> float:
        return top + (y_hi - value) / (y_hi - y_lo) * (height - top - bottom)

    body = ""
    for tick in _ticks(y_lo, y_hi):
        body += (
            f'<line x1="{left}" x2="{width - right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
            f'stroke="{PALE}"/><text x="{left - 6}" y="{py(tick) + 4:.1f}" font-size="11" '
            f'fill="{INK}" text-anchor="end">{tick:.4g}</text>'
        )
    whole = [t for t in _ticks(x_lo, x_hi, 10) if float(t).is_integer()] or [x_lo]
    for tick in whole:
        body += (
            f'<text x="{px(tick):.1f}" y="{height - bottom + 16}" font-size="11" fill="{INK}" '
            f'text-anchor="middle">{tick:.0f}</text>'
        )
    body += (
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" '
        f'stroke="{MUTED}"/>'
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" font-size="12" '
        f'fill="{INK}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="12" y="{top + (height - top - bottom) / 2:.0f}" font-size="12" fill="{INK}" '
        f'text-anchor="middle" transform="rotate(-90 12 {top + (height - top - bottom) / 2:.0f})">'
        f"{escape(y_label)}</text>"
    )
    legend_x = left
    shades = {False: [BLUE, "#7c3aed", "#0d9488", "#db2777"], True: [MUTED, "#616e7c", "#cbd2d9"]}
    seen = {False: 0, True: 0}
    for s in series:
        baseline = bool(s.get("baseline"))
        colour = shades[baseline][seen[baseline] % len(shades[baseline])]
        seen[baseline] += 1
        dash = ' stroke-dasharray="5 3"' if s.get("baseline") else ""
        best = [b for b in s.get("best", []) if _finite(b.get("y"))]
        if best:
            path = f"M{px(best[0]['x']):.1f},{py(best[0]['y']):.1f}"
            for previous, current in zip(best, best[1:], strict=False):
                path += f" H{px(current['x']):.1f}"
                if current["y"] != previous["y"]:
                    path += f" V{py(current['y']):.1f}"
            body += (
                f'<path class="pl-best-line" d="{path}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
        for p in s["points"]:
            if not _finite(p.get("y")):
                continue
            x, y = px(float(p["x"])), py(float(p["y"]))
            if _finite(p.get("low"), p.get("high")):
                body += (
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{py(p["low"]):.1f}" '
                    f'y2="{py(p["high"]):.1f}" stroke="{colour}" stroke-opacity="0.5" '
                    f'stroke-width="2"/>'
                )
            body += (
                f'<circle class="pl-point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}" '
                f'fill-opacity="0.75"><title>{escape(p.get("title", ""))}</title></circle>'
            )
        name = str(s["label"])
        body += (
            f'<circle cx="{legend_x + 5}" cy="12" r="4" fill="{colour}"/>'
            f'<line x1="{legend_x + 12}" x2="{legend_x + 30}" y1="12" y2="12" stroke="{colour}" '
            f'stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 36}" y="16" font-size="12" fill="{INK}">{escape(name)}</text>'
        )
        legend_x += 56 + 7 * len(name)
    return _svg(width, height, body, label, "pl-progress")
