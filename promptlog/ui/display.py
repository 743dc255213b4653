"""How the viewer writes values: times the browser turns into "3 min ago",
rounded durations, metric values (✓/✗ for a bool), tokens, cost and short
JSON. Each function returns markup or text ready for a template."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from ..comparisons import format_p, format_value
from ..read import short_name


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def when(iso: str | None) -> Markup:
    """A UTC ISO timestamp as ``<time>``: the server writes it in UTC to the
    minute; promptlog.js rewrites it as "3 min ago" with the local time as its
    title."""
    if not iso:
        return Markup("-")
    shown = iso[:16].replace("T", " ") + " UTC"
    return Markup(f'<time datetime="{escape(iso)}" title="{escape(iso)}">{escape(shown)}</time>')


def duration(seconds: float | None) -> str:
    """12 ms, 1.3 s, 2 min 5 s, 1 h 3 min."""
    if _missing(seconds):
        return "-"
    assert seconds is not None
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def number(value: float | None) -> str:
    """An int with thousands separators, a float to four significant digits."""
    if _missing(value):
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:.4g}"


def metric(value: Any, kind: str) -> Markup:
    """One run's value of a metric (✓/✗ for a bool), or a mean (a pass rate as a
    percentage)."""
    if _missing(value):
        return Markup('<span class="pl-muted">-</span>')
    if isinstance(value, bool):
        mark = '<span class="pl-pass">✓</span>' if value else '<span class="pl-fail">✗</span>'
        return Markup(mark)
    return Markup(escape(format_value(value, kind)))


def interval(summary: dict[str, Any]) -> str:
    """``[low, high]`` of a summary, in the metric's units."""
    if _missing(summary.get("ci_low")):
        return ""
    kind = summary["kind"]
    return f"[{format_value(summary['ci_low'], kind)}, {format_value(summary['ci_high'], kind)}]"


def difference(m: dict[str, Any]) -> str:
    """B - A of one compared metric with its interval: ``+0.12 [+0.03, +0.21]``;
    percentage points for a bool metric."""
    if _missing(m.get("difference")):
        return "-"
    scale, unit, spec = (100, " pp", "+.1f") if m["kind"] == "bool" else (1, "", "+.3g")
    text = format(m["difference"] * scale, spec)
    if not _missing(m.get("ci_low")):
        text += f" [{m['ci_low'] * scale:{spec}}, {m['ci_high'] * scale:{spec}}]"
    return text + unit


def p_value(p: float | None) -> str:
    return "-" if _missing(p) else format_p(float(p))  # type: ignore[arg-type]


def tokens(n: int | None) -> str:
    """1,234 or 12.3k or 4.5M."""
    if _missing(n):
        return "-"
    assert n is not None
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def cost(usd: float | None) -> str:
    if _missing(usd):
        return "-"
    assert usd is not None
    if usd == 0:
        return "$0"
    return f"${usd:.2f}" if usd >= 1 else f"${usd:.4f}"


def compact_json(value: Any, limit: int = 80) -> str:
    """``value`` as one line of JSON (a string as itself), cut at ``limit`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: str | None) -> str:
    return "" if not text else text.strip().splitlines()[0]


def version_label(name: str, version: int) -> str:
    """``namer_user v2``."""
    return f"{short_name(name)} v{version}"


def quoted(text: str) -> str:
    """``text`` as one part of a URL path."""
    return quote(text, safe="")


HELPERS = {
    "when": when, "duration": duration, "number": number, "metric": metric,
    "interval": interval, "difference": difference, "p_value": p_value, "tokens": tokens,
    "cost": cost, "compact_json": compact_json, "first_line": first_line,
    "version_label": version_label, "quoted": quoted, "short_name": short_name,
}  # fmt: skip
