"""Step 6: margin calls. Requirement ``z * sigma * (1 + beta * vol_t) * value`` per position with
``vol_t = max(0, sqrt(vol2) / sigma - 1)``; a bank whose cash falls short sells just enough units
``sell = shortfall / (1 + req / value)`` and the sale moves the price like a fire sale,
``price *= max(0.01, 1 - fire_sale_impact * sold / depth)``. Numbers worked out by hand.

One market: sigma 0.5 and eps 0.25, so the step's log return is exactly
``0.5 * 0.25 - 0.5^2 / 2 = 0``: price stays 10 and ``vol2 <- 0.5 * vol2 + 0.5 * 0`` (ewma 0.5).
z = 0.4, so ``z * sigma = 0.2``. Bank 0: cash 25, 10 units (value 100), external 100, deposits 100.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, events, market, params, run, state

R = 1e-12


def _run(vol2: float, beta: float = 1.0, depth: float = 250.0, enabled: bool = True):
    p = params(
        config(
            n=2,
            markets=[market(volatility=0.5, depth=depth)],
            margin={"enabled": enabled, "z": 0.4, "vol_sensitivity": beta, "ewma": 0.5},
            contagion={"fire_sale_impact": 0.5},
        )
    )
    s = state(
        p,
        cash=[25.0, 10.0],
        units=[[10.0], [0.0]],
        external=[100.0, 10.0],
        deposits=[100.0, 0.0],
        vol2=[vol2],
    )
    return run(s, p, eps=0.25)


def test_high_volatility_calls_margin_and_forces_a_sale():
    # vol2 4.5 -> 2.25, vol 1.5, vol_t = 1.5 / 0.5 - 1 = 2; rate 0.2 * (1 + 2) = 0.6;
    # requirement 0.6 * 100 = 60, shortfall 60 - 25 = 35; sell 35 / (1 + 0.6) = 21.875
    # (units 10 -> 7.8125, cash 46.875 = 0.6 * 78.125, covered exactly);
    # price 10 * (1 - 0.5 * 21.875 / 250) = 10 * 0.95625 = 9.5625; outside -21.875.
    s2, out = _run(4.5)
    assert s2.vol2[0, 0] == pytest.approx(2.25, rel=R)
    assert s2.units[0, 0, 0] == pytest.approx(7.8125, rel=R)
    assert s2.cash[0, 0] == pytest.approx(46.875, rel=R)
    assert s2.price[0, 0] == pytest.approx(9.5625, rel=R)
    assert s2.outside[0] == pytest.approx(-21.875, rel=R)
    (mc,) = events(out, "margin_call")
    assert mc["bank"] == 0
    assert mc["requirement"] == pytest.approx(60.0, rel=R)
    assert mc["shortfall"] == pytest.approx(35.0, rel=R)
    assert mc["sold"] == pytest.approx(21.875, rel=R)
    assert mc["outside_flow"] == pytest.approx(-21.875, rel=R)


def test_low_volatility_calls_nothing():
    # vol2 0.18 -> 0.09, vol 0.3 < sigma: vol_t = max(0, 0.6 - 1) = 0; requirement 0.2 * 100
    # = 20 <= cash 25: no call, no sale, price 10.
    s2, out = _run(0.18)
    assert s2.units[0, 0, 0] == 10.0 and s2.cash[0, 0] == 25.0 and s2.price[0, 0] == 10.0
    assert events(out, "margin_call") == []


def test_vol_sensitivity_scales_the_volatility_term():
    # beta 0.5: rate 0.2 * (1 + 0.5 * 2) = 0.4, requirement 40, shortfall 15, sell 15 / 1.4.
    s2, out = _run(4.5, beta=0.5)
    sold = 15.0 / 1.4
    (mc,) = events(out, "margin_call")
    assert mc["requirement"] == pytest.approx(40.0, rel=R)
    assert mc["sold"] == pytest.approx(sold, rel=R)
    assert s2.units[0, 0, 0] == pytest.approx(10.0 - sold / 10.0, rel=R)
    assert s2.price[0, 0] == pytest.approx(10.0 * (1.0 - 0.5 * sold / 250.0), rel=R)


def test_margin_sale_price_floor():
    # depth 1: 1 - 0.5 * 21.875 / 1 < 0, floored at 0.01: price 0.1.
    s2, _ = _run(4.5, depth=1.0)
    assert s2.price[0, 0] == pytest.approx(0.1, rel=R)


def test_disabled_margin_calls_nothing():
    s2, out = _run(4.5, enabled=False)
    assert s2.units[0, 0, 0] == 10.0 and s2.cash[0, 0] == 25.0
    assert events(out, "margin_call") == []
    assert np.isclose(s2.price[0, 0], 10.0, rtol=0, atol=0)
