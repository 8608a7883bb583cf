"""Markets: the batch auction, repricing, marks, ``last_return`` and ``vol2``, by hand.

Auction (``rudra_env.core.markets``): a net order of ``q`` units (buys - sells) moves the price
from ``P`` to ``P + lambda * q`` with ``lambda = impact * price0^2 / depth``; everybody fills at
the VWAP ``P + lambda * q / 2``; below the floor ``0.01 * F`` the rest fills at the floor. A
share ``permanent_share`` of the move shifts the fundamental ``F``. Buyers spending ``V`` (no
sellers) fill at ``(P + sqrt(P^2 + 2 lambda V)) / 2`` and leave the price at
``sqrt(P^2 + 2 lambda V)``. Repricing: ``g = clip(drift + sigma * eps - sigma^2 / 2, +-max_move)``,
``F *= exp(g)``, ``d = P / F - 1`` decays by ``0.5^(1 / half_life)``, ``P = F * (1 + d)``.
``last_return = log(P_end / P_start)`` over the whole step;
``vol2 = ewma * vol2 + (1 - ewma) * last_return^2``.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import acts, config, events, market, params, run, state

from rudra_env.actions import DIVEST, INVEST

R = 1e-12
S3 = np.sqrt(3.0)


def _two_markets(max_a: float = 10.0, max_b: float = 10.0):
    # A: impact 0.4, depth 50 -> lambda = 0.4 * 100 / 50 = 0.8; drift 0.01, sigma 0.1,
    # half-life 1 (decay 0.5). B: no impact, price0 5, drift -0.02, sigma 0.2.
    return params(
        config(
            n=2,
            markets=[
                market("A", impact=0.4, depth=50.0, drift=0.01, volatility=0.1, max_move=max_a),
                market("B", price0=5.0, drift=-0.02, volatility=0.2, max_move=max_b),
            ],
        )
    )


def _books(p):
    # vol2 starts at sigma^2 = (0.01, 0.04).
    return state(p, cash=[10.0, 10.0], external=[10.0, 10.0])


# bank 0 INVESTs 0.5 * 10 = 5 in A: the price goes to sqrt(100 + 2 * 0.8 * 5) = sqrt(108)
# = 6 sqrt(3); it fills at (10 + 6 sqrt 3) / 2 = 5 + 3 sqrt 3 for 5 / (5 + 3 sqrt 3) units.
# Displacement d = 0.6 sqrt 3 - 1, halved at repricing: P_A / F_A = 1 + d / 2 = 0.5 + 0.3 sqrt 3.
BUY_FILL = 5.0 + 3.0 * S3
TRANSIENT = np.log(0.5 + 0.3 * S3)


def test_price_update_on_flow_drift_noise_and_ito_term():
    # eps = (1.5, -2.0).
    # g_A = 0.01 + 0.1 * 1.5 - 0.1^2 / 2 = 0.155; F_A = 10 e^0.155, P_A = F_A (0.5 + 0.3 sqrt 3)
    # g_B = -0.02 + 0.2 * (-2.0) - 0.2^2 / 2 = -0.44; P_B = F_B = 5 e^-0.44
    # r_A = 0.155 + log(0.5 + 0.3 sqrt 3); r_B = -0.44
    # vol2_A = 0.94 * 0.01 + 0.06 r_A^2; vol2_B = 0.94 * 0.04 + 0.06 * 0.44^2 = 0.049216
    p = _two_markets()
    s2, out = run(_books(p), p, acts(p, b0=p.layout.encode(INVEST, 0, 0)), eps=[1.5, -2.0])
    r_a = 0.155 + TRANSIENT
    assert s2.fundamental[0].tolist() == pytest.approx(
        [10 * np.exp(0.155), 5 * np.exp(-0.44)], rel=R
    )
    assert s2.price[0].tolist() == pytest.approx([10 * np.exp(r_a), 5 * np.exp(-0.44)], rel=R)
    assert s2.last_return[0].tolist() == pytest.approx([r_a, -0.44], rel=R)
    assert s2.vol2[0].tolist() == pytest.approx([0.0094 + 0.06 * r_a**2, 0.049216], rel=R)
    assert s2.units[0, 0, 0] == pytest.approx(5.0 / BUY_FILL, rel=R)
    # The market sits above the fundamental: the position is marked at F_A.
    assert s2.marks()[0, 0] == pytest.approx(10 * np.exp(0.155), rel=R)
    assert events(out, "transaction")[0]["amount"] == pytest.approx(5.0, rel=R)


def test_selling_pushes_the_price_down_and_fills_at_the_vwap():
    # bank 0 sells all of its 2 units of A: price 10 - 0.8 * 2 = 8.4, fill (10 + 8.4) / 2
    # = 9.2, cash 10 + 18.4. d = -0.16, halved: P = 10 e^g (1 - 0.08) with
    # g = 0.01 - 0.005 = 0.005 (eps = 0); r_A = 0.005 + log(0.92).
    p = _two_markets()
    s = state(p, cash=[10.0, 10.0], units=[[2.0, 0.0], [0.0, 0.0]], external=[10.0, 10.0])
    s2, out = run(s, p, acts(p, b0=p.layout.encode(DIVEST, 0, 1)))
    assert s2.cash[0, 0] == pytest.approx(28.4, rel=R)
    assert s2.outside[0] == pytest.approx(-18.4, rel=R)
    assert s2.price[0, 0] == pytest.approx(10 * np.exp(0.005) * 0.92, rel=R)
    assert s2.fundamental[0, 0] == pytest.approx(10 * np.exp(0.005), rel=R)
    assert s2.last_return[0, 0] == pytest.approx(0.005 + np.log(0.92), rel=R)


def test_circuit_breaker_clips_only_the_exogenous_move():
    # Same step as the first test with max_move 0.1 on A and 0.3 on B: g_A = 0.155 -> 0.1,
    # g_B = -0.44 -> -0.3. The trade's impact is not clipped: r_A = 0.1 + log(0.5 + 0.3 sqrt 3).
    # vol2_B = 0.94 * 0.04 + 0.06 * 0.09 = 0.043.
    p = _two_markets(max_a=0.1, max_b=0.3)
    s2, _ = run(_books(p), p, acts(p, b0=p.layout.encode(INVEST, 0, 0)), eps=[1.5, -2.0])
    r_a = 0.1 + TRANSIENT
    assert s2.fundamental[0].tolist() == pytest.approx([10 * np.exp(0.1), 5 * np.exp(-0.3)], rel=R)
    assert s2.price[0].tolist() == pytest.approx([10 * np.exp(r_a), 5 * np.exp(-0.3)], rel=R)
    assert s2.last_return[0].tolist() == pytest.approx([r_a, -0.3], rel=R)
    assert s2.vol2[0].tolist() == pytest.approx([0.0094 + 0.06 * r_a**2, 0.043], rel=R)


def test_buyers_and_sellers_fill_at_one_price():
    # lambda 0.5 (impact 0.5, depth 100). bank 0 spends 5, bank 1 sells its 2 units, one
    # auction: fill = 10 + 0.5 (5 / fill - 2) / 2, i.e. 2 fill^2 - 19 fill - 2.5 = 0,
    # fill = (19 + sqrt(381)) / 4. Net q = 5 / fill - 2 < 0: the price goes to
    # 10 + 0.5 q = 2 fill - 10 and the displacement halves at repricing: P = fill.
    p = params(config(n=2, markets=[market(impact=0.5)]))
    s = state(p, cash=[10.0, 0.0], units=[[0.0], [2.0]], external=[10.0, 10.0])
    a = acts(p, b0=p.layout.encode(INVEST, 0, 0), b1=p.layout.encode(DIVEST, 0, 1))
    s2, out = run(s, p, a)
    fill = (19.0 + np.sqrt(381.0)) / 4.0
    assert s2.units[0, :, 0].tolist() == pytest.approx([5.0 / fill, 0.0], rel=R, abs=1e-15)
    assert s2.cash[0].tolist() == pytest.approx([5.0, 2.0 * fill], rel=R)
    assert s2.price[0, 0] == pytest.approx(fill, rel=R)
    assert s2.outside[0] == pytest.approx(5.0 - 2.0 * fill, rel=R)
    buy, sell = events(out, "transaction")
    assert (buy["amount"], sell["amount"]) == pytest.approx((5.0, 2.0 * fill), rel=R)


def test_transient_impact_decays_and_the_permanent_share_stays():
    # lambda 0.5, half-life 2 (decay sqrt 0.5), permanent share 0.5. bank 0 sells 2 units at
    # step 1: price 10 - 1 = 9, fill 9.5 (cash +19). The anchor follows half the move in logs:
    # A = 10 * (9 / 10)^0.5 = sqrt 90, so permanent = sqrt 0.9 - 1; the fundamental stays 10.
    # End of step t (HOLD after step 1): P = A + (9 - A) * 0.5^(t/2). Marks are the lower
    # price, P; last_return of step 1 = log(P_1 / 10), then log(P_t / P_{t-1}).
    p = params(config(n=2, markets=[market(impact=0.5, half_life=2.0, permanent_share=0.5)]))
    s = state(p, cash=[0.0, 10.0], units=[[2.0], [0.0]], external=[10.0, 10.0])
    s, out = run(s, p, acts(p, b0=p.layout.encode(DIVEST, 0, 1)))
    assert s.cash[0, 0] == pytest.approx(19.0, rel=R)
    anchor = np.sqrt(90.0)
    want = [anchor + (9.0 - anchor) * 0.5 ** (t / 2.0) for t in (1, 2, 3)]
    got, returns = [s.price[0, 0]], [s.last_return[0, 0]]
    assert s.fundamental[0, 0] == 10.0
    assert s.permanent[0, 0] == pytest.approx(np.sqrt(0.9) - 1.0, rel=R)
    assert s.marks()[0, 0] == s.price[0, 0]
    for _ in range(2):
        s, _ = run(s, p)
        got.append(s.price[0, 0])
        returns.append(s.last_return[0, 0])
    assert got == pytest.approx(want, rel=R)
    assert returns == pytest.approx(np.diff(np.log([10.0, *want])).tolist(), rel=1e-10)
    assert s.fundamental[0, 0] == 10.0


def _fire_sale(depth: float):
    # bank 1 is insolvent (10 units at 10 = 100 of assets, deposits 150) and defaults; its
    # 10 units are sold in one auction: impact 0.5, lambda = 0.5 * 100 / depth.
    p = params(config(n=2, markets=[market(impact=0.5, depth=depth)]))
    s = state(
        p,
        cash=[10.0, 0.0],
        units=[[0.0], [10.0]],
        external=[10.0, 0.0],
        deposits=[0.0, 150.0],
    )
    return run(s, p)


def test_a_failed_banks_sale_moves_the_price_by_lambda_times_units():
    # depth 1000: lambda 0.05; 10 units move the price to 10 - 0.5 = 9.5 and fill at 9.75:
    # proceeds 97.5 = what the estate pays, recovery 97.5 / 150 = 0.65. No repricing after
    # the cascade: the step ends at 9.5 (last_return log 0.95); the fundamental stays 10.
    s2, out = _fire_sale(1000.0)
    assert out.defaulted[0].tolist() == [False, True]
    assert s2.price[0, 0] == pytest.approx(9.5, rel=R)
    assert s2.fundamental[0, 0] == 10.0
    assert s2.last_return[0, 0] == pytest.approx(np.log(0.95), rel=R)
    (d,) = events(out, "default")
    assert d["fire_sale_proceeds"] == pytest.approx(97.5, rel=R)
    assert d["recovery"] == pytest.approx(0.65, rel=R)
    (c,) = events(out, "cascade")
    assert c["prices"] == pytest.approx([9.5], rel=R)


def test_auction_price_floor_is_one_percent_of_the_fundamental():
    # depth 10: lambda 5; 10 units would take the price to 10 - 50 < floor 0.01 * 10 = 0.1.
    # (10 - 0.1) / 5 = 1.98 units fill along the path at (10 + 0.1) / 2 = 5.05 (9.999), the
    # other 8.02 at the floor (0.802): proceeds 10.801, price 0.1.
    s2, out = _fire_sale(10.0)
    assert s2.price[0, 0] == pytest.approx(0.1, rel=R)
    assert events(out, "default")[0]["fire_sale_proceeds"] == pytest.approx(10.801, rel=R)


def test_a_crash_shows_in_last_return_and_vol2():
    # A 10% market_crash at step 1 on a quiet market (sigma 0, vol2 0): the step's return is
    # the whole move, log(0.9), and vol2 = 0.94 * 0 + 0.06 * log(0.9)^2.
    crash = {"type": "market_crash", "magnitude": 0.1, "start": 1}
    p = params(config(n=2, scenario={"shocks": [crash]}))
    s = state(p, cash=[10.0, 10.0], units=[[1.0], [0.0]], external=[10.0, 10.0])
    s2, _ = run(s, p)
    assert s2.price[0, 0] == pytest.approx(9.0, rel=R)
    assert s2.last_return[0, 0] == pytest.approx(np.log(0.9), rel=R)
    assert s2.vol2[0, 0] == pytest.approx(0.06 * np.log(0.9) ** 2, rel=R)
