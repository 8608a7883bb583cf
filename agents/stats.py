r"""Means with confidence intervals over Monte Carlo worlds (Student's t, no SciPy).

For W independent worlds with outcomes x_1..x_W, the mean's two-sided interval at level L is

    mean(x) +- t_{(1+L)/2, W-1} * sd(x) / sqrt(W),        sd with W - 1 degrees of freedom,

and for two populations played on the same worlds (common random numbers) the *paired*
interval of their difference is the same formula over d_w = x_w - y_w: the worlds' shared
luck cancels in d, so it is much narrower than either mean's.

``t_quantile`` inverts the t distribution's two-sided CDF, which for an integer number of
degrees of freedom v has a closed form in theta = atan(t / sqrt(v)) (Abramowitz & Stegun
26.7.3-4):

    v even:  P(|T| <= t) = sin(theta) * [1 + (1/2) c^2 + (1*3)/(2*4) c^4 + ...
                                         + (1*3*...*(v-3)) / (2*4*...*(v-2)) c^(v-2)]
    v odd:   P(|T| <= t) = (2/pi) * (theta + sin(theta) * [c + (2/3) c^3 + ...
                                         + (2*4*...*(v-3)) / (3*5*...*(v-2)) c^(v-2)])

with c = cos(theta) (for v = 1 the bracket is empty), solved for t by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rudra_env.errors import InputError

__all__ = ["Interval", "mean_interval", "paired_interval", "t_quantile"]


def _two_sided_cdf(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` (integer) degrees of freedom."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for k in range(2, df, 2):
            term *= c2 * (k - 1) / k
            total += term
        return s * total
    total = 0.0
    if df > 1:
        term = total = math.cos(theta)
        for k in range(3, df, 2):
            term *= c2 * (k - 1) / k
            total += term
    return 2.0 / math.pi * (theta + s * total)


def t_quantile(level: float, df: int) -> float:
    """The t such that P(|T| <= t) = ``level`` for ``df`` degrees of freedom (e.g. 2.045 for
    level 0.95 and df 29)."""
    if not 0.0 < level < 1.0:
        raise InputError(f"level = {level!r} is not allowed: expected a number in (0, 1)")
    if not (isinstance(df, int) and df >= 1):
        raise InputError(f"df = {df!r} is not allowed: expected an integer >= 1")
    lo, hi = 0.0, 1.0
    while _two_sided_cdf(hi, df) < level:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _two_sided_cdf(mid, df) < level else (lo, mid)
        if hi - lo < 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Interval:
    """A mean and the half-width of its two-sided interval (``mean +- half``)."""

    mean: float
    half: float
    n: int
    level: float = 0.95

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.half:.3f}"


def mean_interval(x: np.ndarray, level: float = 0.95) -> Interval:
    """Mean of ``x`` (one value per world) with its t interval; a single value has half-width
    0 (nothing to estimate the spread from)."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        raise InputError("x is empty: expected at least one value")
    if x.size == 1:
        return Interval(float(x[0]), 0.0, 1, level)
    half = t_quantile(level, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(float(x.mean()), half, int(x.size), level)


def paired_interval(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> Interval:
    """Mean of ``x - y`` over worlds played by both (same length) with its t interval."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise InputError(f"x and y have {x.size} and {y.size} values: expected one per world each")
    return mean_interval(x - y, level)
