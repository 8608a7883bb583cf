"""The market kernels called directly: ``auction``, ``sell_pro_rata`` and ``raise_cash``, by hand.

One world, two banks, one market with price 10 = fundamental, so the floor is
``0.01 * 10 = 0.1``; ``lambda = impact * price0^2 / depth`` (``impact`` itself with depth 100).
A net order of ``q`` units moves the price to ``P + lambda q``; everybody fills at the path's
mean. Below the floor the ``t = (floor - P) / lambda`` units down to it fill at
``(P + floor) / 2`` and the rest at the floor; the price stops at the floor, so with
``K = -(P - floor)^2 / (2 lambda)`` a floored fill is ``floor + K / q``. With buyers spending
``V`` the fill solves ``fill = VWAP(V / fill - S)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, market, params, state

from rudra_env.core.events import StepRecord
from rudra_env.core.markets import auction, raise_cash, sell_pro_rata

R = 1e-12


def _world(*markets, units=None, cash=(0.0, 0.0)):
    p = params(config(n=2, markets=list(markets) or [market()]))
    return p, state(p, cash=list(cash), units=units)


def _one(x: float) -> np.ndarray:
    return np.array([[x]])


def test_floor_binds_with_lambda_below_one():
    # lambda 0.5; 30 units sold would take the price to 10 - 15 < 0.1. t = (0.1 - 10) / 0.5
    # = -19.8 units fill at 5.05 (99.99), the other 10.2 at 0.1 (1.02): fill 101.01 / 30
    # = 3.367, the price stops at the floor.
    p, s = _world(market(impact=0.5))
    fill = auction(s, p, _one(0.0), _one(30.0))
    assert fill[0, 0] == pytest.approx(3.367, rel=R)
    assert s.price[0, 0] == pytest.approx(0.1, rel=R)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_floor_beside_a_market_without_impact_divides_by_nothing():
    # A (lambda 5): 10 units to 10 - 50 < 0.1: t = -1.98 at 5.05 (9.999) and 8.02 at 0.1
    # (0.802), fill 1.0801. B has no impact: 3 units fill at 10 and leave it at 10. No
    # division by B's lambda = 0 (a RuntimeWarning would fail the test).
    p, s = _world(market("A", impact=5.0), market("B"))
    fill = auction(s, p, np.zeros((1, 2)), np.array([[10.0, 3.0]]))
    assert fill[0].tolist() == pytest.approx([1.0801, 10.0], rel=R)
    assert s.price[0].tolist() == pytest.approx([0.1, 10.0], rel=R)


def test_buyers_and_sellers_when_the_floor_binds():
    # lambda 5, sellers 10.9 units, buyers 1.09. Try fill 1.09: q = 1.09 / 1.09 - 10.9 = -9.9
    # units, below the floor (10 - 49.5 < 0.1): t = -1.98 at 5.05 (-9.999), -7.92 at 0.1
    # (-0.792), fill = 10.791 / 9.9 = 1.09. So the fixed point is 1.09 (the quadratic's
    # 0.157 is only where the iteration starts); the price ends at the floor.
    p, s = _world(market(impact=5.0))
    fill = auction(s, p, _one(1.09), _one(10.9))
    assert fill[0, 0] == pytest.approx(1.09, rel=R)
    assert s.price[0, 0] == pytest.approx(0.1, rel=R)


def test_the_floored_fixed_point_is_as_tight_at_any_price_level():
    # The same auction with every price scaled by 1e-4 (price0 0.001, lambda 5e-4 from
    # depth 0.01): everything in currency scales, units do not. Buyers spend 1.09e-4 and
    # fill at 1.09e-4; the price ends at the floor 1e-5. The iteration's tolerance is
    # relative to the price, so it settles as tightly as at price 10.
    p, s = _world(market(price0=1e-3, impact=5.0, depth=0.01))
    fill = auction(s, p, _one(1.09e-4), _one(10.9))
    assert fill[0, 0] == pytest.approx(1.09e-4, rel=1e-11)
    assert s.price[0, 0] == pytest.approx(1e-5, rel=R)


def test_buyers_against_heavy_selling_fill_at_the_quadratic_root():
    # lambda 1, sellers 19.8 units, buyers 70.8: without the floor fill = a + lambda V /
    # (2 fill) with a = 10 - 19.8 / 2 = 0.1, i.e. fill^2 - 0.1 fill - 35.4 = 0, fill
    # = (0.1 + sqrt(0.01 + 141.6)) / 2 = (0.1 + 11.9) / 2 = 6. Net q = 70.8 / 6 - 19.8 = -8:
    # the price goes to 10 - 8 = 2, above the floor. (Iterating the fixed point from
    # elsewhere would crawl: its rate is 1 - a / fill = 0.983.)
    p, s = _world(market(impact=1.0))
    fill = auction(s, p, _one(70.8), _one(19.8))
    assert fill[0, 0] == pytest.approx(6.0, rel=R)
    assert s.price[0, 0] == pytest.approx(2.0, rel=R)


def test_pro_rata_fraction_is_clipped_to_zero_and_one():
    # No impact: bank 0 holds 2 units, bank 1 holds 3, both sell. A fraction above 1 sells
    # everything (50 in all at 10); one below 0 sells nothing.
    p, s = _world(units=[[2.0], [3.0]])
    sellers = np.array([[True, True]])
    phi, proceeds = sell_pro_rata(s, p, sellers, lambda v: np.full_like(v, 2.5))
    assert phi[0].tolist() == [1.0, 1.0]
    assert proceeds[0].tolist() == pytest.approx([20.0, 30.0], rel=R)
    assert s.units[0, :, 0].tolist() == [0.0, 0.0]
    p, s = _world(units=[[2.0], [3.0]])
    phi, proceeds = sell_pro_rata(s, p, sellers, lambda v: np.full_like(v, -0.5))
    assert phi[0].tolist() == [0.0, 0.0]
    assert proceeds[0].tolist() == [0.0, 0.0]
    assert s.units[0, :, 0].tolist() == [2.0, 3.0]


def test_pro_rata_without_impact_settles_at_the_first_check():
    # No impact: the fill is the price whatever is sold, so phi = fraction(v at the price)
    # is the fixed point at once. fraction is asked twice: the start and one check.
    # bank 0 sells half of its 2 units: proceeds 10.
    p, s = _world(units=[[2.0], [3.0]])
    calls = []

    def half(v):
        calls.append(v.copy())
        return np.full_like(v, 0.5)

    phi, proceeds = sell_pro_rata(s, p, np.array([[True, False]]), half)
    assert len(calls) == 2
    assert phi[0].tolist() == [0.5, 0.0]
    assert proceeds[0].tolist() == pytest.approx([10.0, 0.0], rel=R)


def test_raise_cash_paying_exactly_its_cash_sells_nothing():
    # bank 0 owes 4 with cash 4, bank 1 owes 0 with cash 0: everybody pays from cash, the
    # same ``need`` array comes back, no sale and no event.
    p, s = _world(units=[[2.0], [3.0]], cash=(4.0, 0.0))
    rec = StepRecord(step=np.array([1]))
    need = np.array([[4.0, 0.0]])
    paid = raise_cash(s, p, need, rec, "loan_call")
    assert paid is need
    assert s.cash[0].tolist() == [0.0, 0.0]
    assert s.units[0, :, 0].tolist() == [2.0, 3.0]
    assert rec.ordered == []


def test_raise_cash_sale_without_a_reason_records_an_empty_one():
    # No impact: bank 1 owes 6 with cash 1 and 3 units at 10: it sells 5 / 30 of them
    # (0.5 units) for 5 and pays 6. The event's reason is the default, "".
    p, s = _world(units=[[2.0], [3.0]], cash=(0.0, 1.0))
    rec = StepRecord(step=np.array([1]))
    paid = raise_cash(s, p, np.array([[0.0, 6.0]]), rec)
    assert paid[0].tolist() == pytest.approx([0.0, 6.0], rel=R)
    assert s.units[0, 1, 0] == pytest.approx(2.5, rel=R)
    (e,) = [ev.data for ev in rec.events(0) if ev.type == "forced_sale"]
    assert e["reason"] == ""
    assert (e["bank"], e["sold"], e["outside_flow"]) == pytest.approx((1, 5.0, -5.0), rel=R)
