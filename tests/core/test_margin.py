"""Step 6: margin calls, numbers worked out by hand.

Requirement ``req = z * sigma * (1 + beta * vol_t) * units * mark`` with
``vol_t = max(0, sqrt(vol2) / sigma - 1)``, where ``vol2`` already counts the step's move so far
(``ewma * vol2 + (1 - ewma) * log(P / P_start)^2``). A bank whose cash falls short,
``gap = req - cash > 0``, sells the fraction ``phi = gap / (v + req)`` of its position, ``v`` its
value at the auction's fill, jointly with the fill (one seller: a quadratic in ``phi``).

One market: sigma 0.5 and eps 0.25, so the exogenous log move is exactly
``0.5 * 0.25 - 0.5^2 / 2 = 0``: price stays 10 until the margin sale and ``vol2`` at the call is
``0.5 * vol2`` (ewma 0.5). z = 0.4, so ``z * sigma = 0.2``. Impact 0.5; depth 250, so
``lambda = 0.5 * 100 / 250 = 0.2``. Bank 0: cash 25, 10 units (value 100), external 100,
deposits 100.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, events, market, params, run, state

R = 1e-12
FP = 1e-10  # where the core solves a fixed point (a pro-rata sale)


def _run(
    vol2: float,
    beta: float = 1.0,
    depth: float = 250.0,
    enabled: bool = True,
    cash0: float = 25.0,
):
    p = params(
        config(
            n=2,
            markets=[market(volatility=0.5, depth=depth, impact=0.5)],
            margin={"enabled": enabled, "z": 0.4, "vol_sensitivity": beta, "ewma": 0.5},
        )
    )
    s = state(
        p,
        cash=[cash0, 10.0],
        units=[[10.0], [0.0]],
        external=[100.0, 10.0],
        deposits=[100.0, 0.0],
        vol2=[vol2],
    )
    return run(s, p, eps=0.25)


def test_high_volatility_calls_margin_and_forces_a_sale():
    # vol2 4.5 -> 2.25 at the call, vol 1.5, vol_t = 1.5 / 0.5 - 1 = 2; rate 0.2 * (1 + 2)
    # = 0.6; requirement 0.6 * 100 = 60, shortfall 35. Selling 10 phi units fills at
    # 10 - 0.2 * 10 phi / 2 = 10 - phi, so phi (10 (10 - phi) + 60) = 35:
    # phi^2 - 16 phi + 3.5 = 0, phi = 8 - sqrt 60.5. Units 10 (1 - phi); the sale raises
    # 35 - 60 phi (cash 25 + that = 60 (1 - phi), the requirement left); the price goes to
    # 10 - 2 phi; the step's vol2 counts the sale: 2.25 + 0.5 log(price / 10)^2.
    s2, out = _run(4.5)
    phi = 8.0 - np.sqrt(60.5)
    price = 10.0 - 2.0 * phi
    assert s2.units[0, 0, 0] == pytest.approx(10.0 * (1.0 - phi), rel=FP)
    assert s2.cash[0, 0] == pytest.approx(60.0 * (1.0 - phi), rel=FP)
    assert s2.price[0, 0] == pytest.approx(price, rel=FP)
    assert s2.outside[0] == pytest.approx(-(35.0 - 60.0 * phi), rel=FP)
    assert s2.last_return[0, 0] == pytest.approx(np.log(price / 10.0), rel=FP)
    assert s2.vol2[0, 0] == pytest.approx(2.25 + 0.5 * np.log(price / 10.0) ** 2, rel=FP)
    (mc,) = events(out, "margin_call")
    assert mc["bank"] == 0
    assert mc["requirement"] == pytest.approx(60.0, rel=R)
    assert mc["shortfall"] == pytest.approx(35.0, rel=R)
    assert mc["sold"] == pytest.approx(35.0 - 60.0 * phi, rel=FP)
    assert mc["sold"] == pytest.approx(10.0 * phi * (10.0 - phi), rel=FP)  # at the VWAP
    assert mc["outside_flow"] == pytest.approx(-mc["sold"], rel=R)


def test_low_volatility_calls_nothing():
    # vol2 0.18 -> 0.09, vol 0.3 < sigma: vol_t = max(0, 0.6 - 1) = 0; requirement 0.2 * 100
    # = 20 <= cash 25: no call, no sale, price 10.
    s2, out = _run(0.18)
    assert s2.units[0, 0, 0] == 10.0 and s2.cash[0, 0] == 25.0 and s2.price[0, 0] == 10.0
    assert s2.vol2[0, 0] == pytest.approx(0.09, rel=R)
    assert events(out, "margin_call") == []


def test_low_volatility_still_requires_the_base_rate():
    # vol2 0.18 -> 0.09: vol_t = 0, not -0.4: rate 0.2 (not 0.12), requirement 20 (not 12).
    # Cash 15: shortfall 5; phi (10 (10 - phi) + 20) = 5, phi^2 - 12 phi + 0.5 = 0,
    # phi = 6 - sqrt 35.5; the sale raises 5 - 20 phi.
    s2, out = _run(0.18, cash0=15.0)
    phi = 6.0 - np.sqrt(35.5)
    (mc,) = events(out, "margin_call")
    assert mc["requirement"] == pytest.approx(20.0, rel=R)
    assert mc["shortfall"] == pytest.approx(5.0, rel=R)
    assert mc["sold"] == pytest.approx(5.0 - 20.0 * phi, rel=FP)
    assert s2.units[0, 0, 0] == pytest.approx(10.0 * (1.0 - phi), rel=FP)


def test_vol_sensitivity_scales_the_volatility_term():
    # beta 0.5: rate 0.2 * (1 + 0.5 * 2) = 0.4, requirement 40, shortfall 15:
    # phi (10 (10 - phi) + 40) = 15, phi^2 - 14 phi + 1.5 = 0, phi = 7 - sqrt 47.5.
    s2, out = _run(4.5, beta=0.5)
    phi = 7.0 - np.sqrt(47.5)
    (mc,) = events(out, "margin_call")
    assert mc["requirement"] == pytest.approx(40.0, rel=R)
    assert mc["sold"] == pytest.approx(15.0 - 40.0 * phi, rel=FP)
    assert s2.units[0, 0, 0] == pytest.approx(10.0 * (1.0 - phi), rel=FP)
    assert s2.price[0, 0] == pytest.approx(10.0 - 2.0 * phi, rel=FP)


def test_margin_sale_price_floor():
    # depth 1: lambda 50; the floor is 0.01 * 10 = 0.1. Selling q = 10 phi units: the first
    # (10 - 0.1) / 50 = 0.198 fill at (10 + 0.1) / 2 = 5.05, the rest at 0.1, so the sale
    # raises 0.9999 + 0.1 (q - 0.198) = 0.9801 + 0.1 q, and phi (v + req) = 35 reads
    # 0.9801 + 0.1 q + 60 q / 10 = 35: q = 34.0199 / 6.1. Price 0.1.
    s2, out = _run(4.5, depth=1.0)
    q = 34.0199 / 6.1
    assert s2.price[0, 0] == pytest.approx(0.1, rel=R)
    assert s2.units[0, 0, 0] == pytest.approx(10.0 - q, rel=FP)
    assert events(out, "margin_call")[0]["sold"] == pytest.approx(0.9801 + 0.1 * q, rel=FP)
    assert s2.cash[0, 0] == pytest.approx(25.0 + 0.9801 + 0.1 * q, rel=FP)


def test_disabled_margin_calls_nothing():
    s2, out = _run(4.5, enabled=False)
    assert s2.units[0, 0, 0] == 10.0 and s2.cash[0, 0] == 25.0
    assert events(out, "margin_call") == []
    assert np.isclose(s2.price[0, 0], 10.0, rtol=0, atol=0)


def test_a_crash_raises_margins_in_the_step_it_happens():
    # A 30% market_crash over steps 1-3 (each step *= c = 0.7^(1/3)); sigma 0.02 with
    # eps 0.01, so the exogenous log move is 0.02 * 0.01 - 0.02^2 / 2 = 0; no impact.
    # Each step's return is r = log(0.7) / 3. vol2 starts at sigma^2 = 0.0004; ewma 0.94:
    #   v1 = 0.94 * 0.0004 + 0.06 r^2 = 0.0012241  (seen mid-step 1 and recorded at its end)
    #   v2 = 0.94 * v1 + 0.06 r^2     = 0.0019988
    # Multiplier 1 + beta * vol_t = sqrt(v) / sigma (beta 1, vol above sigma): 1.749, then
    # 2.235 > 2. z 2.33: rate = 2.33 * sqrt(v). Bank 0 (cash 8, 10 units):
    #   step 1: req = 100 c * 2.33 sqrt(v1) = 7.238 <= 8: no call
    #   step 2: req = 100 c^2 * 2.33 sqrt(v2) = 8.212 > 8: called; phi = (req - 8) / (v + req)
    #           with v = 100 c^2 (the fill is the price), sold phi * v.
    crash = {"type": "market_crash", "magnitude": 0.3, "start": 1, "duration": 3}
    margin = {"enabled": True, "z": 2.33, "vol_sensitivity": 1.0, "ewma": 0.94}
    p = params(
        config(
            n=2,
            markets=[market(volatility=0.02)],
            margin=margin,
            scenario={"shocks": [crash]},
        )
    )
    s = state(p, cash=[8.0, 10.0], units=[[10.0], [0.0]], external=[10.0, 10.0])
    c, r = 0.7 ** (1.0 / 3.0), np.log(0.7) / 3.0
    v1 = 0.94 * 0.0004 + 0.06 * r * r
    v2 = 0.94 * v1 + 0.06 * r * r
    assert np.sqrt(v1) / 0.02 < 2.0 < np.sqrt(v2) / 0.02  # the hand numbers' premise
    got = []
    for _ in range(3):
        s, out = run(s, p, eps=0.01)
        got.append((s.copy(), out))
    (s1, o1), (s2, o2), (_, o3) = got
    assert [s1.vol2[0, 0], s2.vol2[0, 0]] == pytest.approx([v1, v2], rel=R)
    assert [s1.last_return[0, 0], s2.last_return[0, 0]] == pytest.approx([r, r], rel=R)
    assert s2.price[0, 0] == pytest.approx(10.0 * c * c, rel=R)
    assert events(o1, "margin_call") == []
    (mc,) = events(o2, "margin_call")
    req = 100.0 * c * c * 2.33 * np.sqrt(v2)
    phi = (req - 8.0) / (100.0 * c * c + req)
    assert mc["bank"] == 0
    assert mc["requirement"] == pytest.approx(req, rel=R)
    assert mc["shortfall"] == pytest.approx(req - 8.0, rel=1e-10)
    assert mc["sold"] == pytest.approx(phi * 100.0 * c * c, rel=1e-10)
    assert s2.units[0, 0, 0] == pytest.approx(10.0 * (1.0 - phi), rel=1e-10)
    assert len(events(o3, "margin_call")) == 1  # the crash goes on, and so do the calls
