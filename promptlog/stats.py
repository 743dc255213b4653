"""Small statistics for summaries and comparisons: t intervals, Wilson intervals,
paired and Welch differences, exact McNemar. scipy is imported on first use."""

from __future__ import annotations

import math
from collections.abc import Sequence

CONFIDENCE = 0.95


def _t_quantile(df: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def mean_interval(values: Sequence[float]) -> dict[str, float]:
    """n, mean, std (sample), standard error and the 95% t interval of the mean."""
    n = len(values)
    mean = math.fsum(values) / n if n else math.nan
    if n < 2:
        return {
            "n": n,
            "mean": mean,
            "std": math.nan,
            "stderr": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
        }
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    stderr = std / math.sqrt(n)
    half = _t_quantile(n - 1) * stderr
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "stderr": stderr,
        "ci_low": mean - half,
        "ci_high": mean + half,
    }


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound at 0% and 100% too)."""
    if n == 0:
        return math.nan, math.nan
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean of ``b - a`` over pairs, with its 95% t interval."""
    differences = [y - x for x, y in zip(a, b, strict=True)]
    result = mean_interval(differences)
    return {
        "difference": result["mean"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "n_pairs": len(differences),
    }


def welch_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """``mean(b) - mean(a)`` for unpaired samples, with Welch's 95% interval."""
    sa, sb = mean_interval(a), mean_interval(b)
    difference = sb["mean"] - sa["mean"]
    va, vb = sa["stderr"] ** 2, sb["stderr"] ** 2
    if not (math.isfinite(va) and math.isfinite(vb)) or va + vb == 0:
        return {
            "difference": difference,
            "ci_low": difference if va + vb == 0 else math.nan,
            "ci_high": difference if va + vb == 0 else math.nan,
        }
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = _t_quantile(df) * math.sqrt(va + vb)
    return {"difference": difference, "ci_low": difference - half, "ci_high": difference + half}


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = math.fsum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
