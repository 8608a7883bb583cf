"""Step 5: every ``profit_booking_interval`` steps, a gain ``units * mark - basis`` is realised by
selling ``gain / mark`` units through the auction (the fill is below the mark by the impact),
losses are booked without a trade, and the basis is reset to ``units * mark`` at the marks after
the sales; nothing happens off the interval. Numbers worked out by hand.

Interval 2; two markets at price 10. Bank 0 holds 2 units of A bought at 8 (basis 16, gain 4)
and 1 unit of B bought at 12 (basis 12, loss 2). Bank 1 holds nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, events, market, params, run, state

from rudra_env.core import StepRecord
from rudra_env.core.booking import book_profits

R = 1e-12


def _run(t: int, impact: float = 0.0):
    p = params(
        config(
            n=2,
            profit_booking_interval=2,
            markets=[market("A", impact=impact), market("B", impact=impact)],
        )
    )
    s = state(
        p,
        cash=[1.0, 1.0],
        units=[[2.0, 1.0], [0.0, 0.0]],
        basis=[[16.0, 12.0], [0.0, 0.0]],
        external=[10.0, 10.0],
        t=t,
    )
    return s, *run(s, p)


def test_gains_are_realised_losses_booked_and_basis_reset_on_the_interval():
    # No impact. t = 1 -> step 2 is due. A: gain 4 sold at 10 -> 0.4 units, units 1.6,
    # cash 1 + 4 = 5, basis 1.6 * 10 = 16. B: loss 2 booked, no sale: units 1, basis 10. Outside -4.
    # Equity unchanged: 1 + 30 + 10 = 41 before, 5 + 16 + 10 + 10 = 41 after.
    s, s2, out = _run(1)
    assert s2.cash[0].tolist() == pytest.approx([5.0, 1.0], rel=R)
    assert s2.units[0, 0].tolist() == pytest.approx([1.6, 1.0], rel=R)
    assert s2.basis[0, 0].tolist() == pytest.approx([16.0, 10.0], rel=R)
    assert s2.outside[0] == pytest.approx(-4.0, rel=R)
    assert out.balance["equity"][0, 0] == pytest.approx(41.0, rel=R)
    (ev,) = events(out, "profit_booking")
    assert ev["bank"] == 0
    assert ev["pnl"] == pytest.approx(2.0, rel=R)
    assert ev["realised"] == pytest.approx(4.0, rel=R)
    assert ev["outside_flow"] == pytest.approx(-4.0, rel=R)


@pytest.mark.parametrize("t", [0, 2])
def test_nothing_is_booked_off_the_interval(t):
    # Steps 1 and 3 are not multiples of 2: cash, units and basis untouched, no event.
    s, s2, out = _run(t)
    for name in ("cash", "units", "basis", "outside"):
        assert np.array_equal(getattr(s2, name), getattr(s, name)), name
    assert events(out, "profit_booking") == []


def test_gains_are_sold_through_the_auction_below_the_mark():
    # impact 0.5 (lambda 0.5). A: gain 4 at the mark 10 -> sell 0.4 units: the price goes to
    # 10 - 0.2 = 9.8, the fill is 9.9: realised 3.96 (cash 4.96), units 1.6, basis reset at
    # the mark after the sale: 1.6 * 9.8 = 15.68. B: loss 2 booked, no sale: basis 10, price 10.
    # The step ends here (booking comes after repricing): equity 4.96 + 15.68 + 10 + 10 = 40.64,
    # pnl 4 - 2 = 2; outside -3.96.
    s, s2, out = _run(1, impact=0.5)
    assert s2.price[0].tolist() == pytest.approx([9.8, 10.0], rel=R)
    assert s2.cash[0].tolist() == pytest.approx([4.96, 1.0], rel=R)
    assert s2.units[0, 0].tolist() == pytest.approx([1.6, 1.0], rel=R)
    assert s2.basis[0, 0].tolist() == pytest.approx([15.68, 10.0], rel=R)
    assert s2.outside[0] == pytest.approx(-3.96, rel=R)
    assert out.balance["equity"][0, 0] == pytest.approx(40.64, rel=R)
    (ev,) = events(out, "profit_booking")
    assert ev["pnl"] == pytest.approx(2.0, rel=R)
    assert ev["realised"] == pytest.approx(3.96, rel=R)
    assert ev["outside_flow"] == pytest.approx(-3.96, rel=R)


def test_a_cheap_market_realises_its_gain_and_a_worthless_one_sells_nothing():
    # Booking by itself (no impact). A trades at 0.5 (a mark below 1): 2 units at basis 0.6,
    # gain 0.4 -> sell 0.4 / 0.5 = 0.8 units, cash 1 + 0.4, units 1.2, basis 1.2 * 0.5 = 0.6.
    # B was wiped out by a total crash (price and fundamental 0): 3 units at basis 6, loss 6
    # booked, nothing to sell (no 0 / 0): units 3, basis 0. pnl 0.4 - 6 = -5.6, outside -0.4.
    p = params(config(n=2, markets=[market("A"), market("B")]))
    s = state(
        p,
        cash=[1.0, 1.0],
        units=[[2.0, 3.0], [0.0, 0.0]],
        basis=[[0.6, 6.0], [0.0, 0.0]],
        price=[0.5, 0.0],
    )
    rec = StepRecord(step=np.array([1]))
    book_profits(s, p, rec, np.array([True]))
    assert s.units[0].ravel().tolist() == pytest.approx([1.2, 3.0, 0.0, 0.0], rel=R)
    assert s.basis[0].ravel().tolist() == pytest.approx([0.6, 0.0, 0.0, 0.0], rel=R)
    assert s.cash[0].tolist() == pytest.approx([1.4, 1.0], rel=R)
    assert s.outside[0] == pytest.approx(-0.4, rel=R)
    assert s.price[0].tolist() == [0.5, 0.0]
    (ev,) = [e.data for e in rec.events(0) if e.type == "profit_booking"]
    assert ev["bank"] == 0
    assert ev["pnl"] == pytest.approx(-5.6, rel=R)
    assert ev["realised"] == pytest.approx(0.4, rel=R)
