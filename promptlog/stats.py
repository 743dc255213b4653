"""Small statistics for summaries and comparisons: t intervals, Wilson intervals,
paired and Welch differences, exact McNemar.

Pure Python on purpose: importing scipy.stats takes most of a second, and the
CLI answers ``promptlog compare`` in less than that. Student's t comes from the
regularised incomplete beta function (a continued fraction, as in Numerical
Recipes); the tests check it against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_CONFIDENCE = 0.95


# --- Student's t ---------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t) or not df > 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile (0.5 < q < 1) of Student's t with ``df`` degrees of freedom."""
    tail = 2.0 * (1.0 - q)  # two-sided tail probability beyond the quantile
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return (low + high) / 2.0


def _t_quantile(df: float) -> float:
    return t_quantile(0.5 + _CONFIDENCE / 2, df)


# --- one sample --------------------------------------------------------------------


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

    z = NormalDist().inv_cdf(0.5 + _CONFIDENCE / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# --- two samples -------------------------------------------------------------------


def _t_test(difference: float, stderr: float, df: float) -> tuple[float, float, float]:
    """(ci_low, ci_high, p) of a difference with its standard error: a t interval and
    two-sided p-value; with no spread the interval is the point and p is 0 or 1."""
    if not math.isfinite(stderr) or not df > 0:
        return math.nan, math.nan, math.nan
    if stderr == 0:
        return difference, difference, 1.0 if difference == 0 else 0.0
    half = _t_quantile(df) * stderr
    return difference - half, difference + half, t_two_sided_p(difference / stderr, df)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean of ``b - a`` over pairs, with its 95% t interval and the paired t-test's p."""
    differences = [y - x for x, y in zip(a, b, strict=True)]
    result = mean_interval(differences)
    ci_low, ci_high, p = _t_test(result["mean"], result["stderr"], len(differences) - 1)
    return {
        "difference": result["mean"],
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": p,
        "n_pairs": len(differences),
    }


def welch_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """``mean(b) - mean(a)`` for unpaired samples, with Welch's 95% interval and p."""
    sa, sb = mean_interval(a), mean_interval(b)
    difference = sb["mean"] - sa["mean"]
    va, vb = sa["stderr"] ** 2, sb["stderr"] ** 2
    if not (math.isfinite(va) and math.isfinite(vb)):
        return {"difference": difference, "ci_low": math.nan, "ci_high": math.nan,
                "p_value": math.nan}
    if va + vb == 0:
        ci_low, ci_high, p = _t_test(difference, 0.0, 1.0)
    else:
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        ci_low, ci_high, p = _t_test(difference, math.sqrt(va + vb), df)
    return {"difference": difference, "ci_low": ci_low, "ci_high": ci_high, "p_value": p}


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = math.fsum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
