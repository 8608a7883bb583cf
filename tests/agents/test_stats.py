"""Intervals over worlds: t quantiles against printed tables, intervals recomputed by hand."""

import math

import numpy as np
import pytest

from agents.stats import mean_interval, paired_interval, t_quantile
from rudra_env.errors import InputError

# Two-sided 95% (and 99%) quantiles of Student's t, from any printed table.
T_TABLE = [
    (0.95, 1, 12.706),
    (0.95, 2, 4.303),
    (0.95, 3, 3.182),
    (0.95, 4, 2.776),
    (0.95, 9, 2.262),
    (0.95, 10, 2.228),
    (0.95, 29, 2.045),
    (0.95, 60, 2.000),
    (0.95, 120, 1.980),
    (0.99, 4, 4.604),
    (0.99, 29, 2.756),
    (0.90, 5, 2.015),
]


@pytest.mark.parametrize(("level", "df", "want"), T_TABLE)
def test_t_quantile_matches_the_table(level, df, want):
    assert t_quantile(level, df) == pytest.approx(want, abs=6e-4)


def test_t_quantile_tends_to_the_normal_one():
    # z + (z^3 + z) / (4 df) with z = 1.95996 (the first term of the expansion in 1 / df)
    z = 1.959964
    assert t_quantile(0.95, 5000) == pytest.approx(z + (z**3 + z) / 20000, abs=1e-5)


def test_mean_interval_by_hand():
    # x = 1, 2, 3, 4: mean 2.5, sd = sqrt(5/3), t(3) = 3.182 -> half = 3.182 * 1.291 / 2.
    iv = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert iv.mean == 2.5
    assert iv.half == pytest.approx(3.1824 * math.sqrt(5 / 3) / 2, rel=1e-4)
    assert iv.low < 2.5 < iv.high and iv.n == 4
    assert str(iv) == f"2.500 ± {iv.half:.3f}"


def test_paired_interval_cancels_shared_luck():
    rng = np.random.default_rng(0)
    luck = rng.normal(0, 5, 200)  # what both populations meet in each world
    x, y = luck + 1.0 + rng.normal(0, 0.1, 200), luck + rng.normal(0, 0.1, 200)
    d = paired_interval(x, y)
    assert d.mean == pytest.approx(1.0, abs=0.05)
    assert d.half < 0.05  # far narrower than either mean's interval
    assert mean_interval(x).overlaps(mean_interval(y))
    assert not (d.low <= 0 <= d.high)


def test_intervals_narrow_as_worlds_grow():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 4000)
    halves = [mean_interval(x[:n]).half for n in (10, 100, 1000, 4000)]
    assert halves == sorted(halves, reverse=True)


def test_bad_input_names_the_field():
    with pytest.raises(InputError, match="level = 1.5"):
        t_quantile(1.5, 3)
    with pytest.raises(InputError, match="df = 0"):
        t_quantile(0.95, 0)
    with pytest.raises(InputError, match="empty"):
        mean_interval(np.array([]))
    with pytest.raises(InputError, match="one per world"):
        paired_interval(np.ones(3), np.ones(4))
    assert mean_interval(np.array([2.0])).half == 0.0
