"""Step 4: interest ``r * loans[j, i]`` owed by borrower i to lender j, paid out of what the
borrower can raise: cash, then a pro-rata sale through the auction (``forced_sale``, reason
``interest``); each lender receives the share its borrower paid; a borrower that cannot pay all
is illiquid and defaults in the cascade. Numbers worked out by hand.

Two banks, bank 0 lent 100 to bank 1, rate 0.01 (interest 1 per step); one market with impact
0.5 and depth 10 (lambda = 0.5 * 100 / 10 = 5):

    bank  cash  units  external  deposits  equity
    0     5     0      10        100       5 + 100 + 10 - 100       = 15
    1     c1    u1     200        90       c1 + 10 u1 + 200 - 90 - 100
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, events, market, params, run, state

R = 1e-12
FP = 1e-10  # where the core solves a fixed point (a pro-rata sale)


def _run(cash1: float, units1: float):
    p = params(config(n=2, interest_rate=0.01, markets=[market(impact=0.5, depth=10.0)]))
    s = state(
        p,
        cash=[5.0, cash1],
        loans=[[0, 100], [0, 0]],
        units=[[0.0], [units1]],
        external=[10.0, 200.0],
        deposits=[100.0, 90.0],
    )
    return s, p, *run(s, p)


def test_interest_flows_from_borrower_to_lender():
    # 0.01 * 100 = 1: bank 0 cash 5 -> 6 (equity 15 -> 16), bank 1 cash 3 -> 2 (13 -> 12).
    _, _, s2, out = _run(3.0, 0.0)
    assert s2.cash[0].tolist() == pytest.approx([6.0, 2.0], rel=R)
    assert out.balance["equity"][0].tolist() == pytest.approx([16.0, 12.0], rel=R)
    assert s2.loans[0, 0, 1] == 100.0  # interest is paid, not capitalised
    assert s2.outside[0] == 0.0
    assert events(out, "forced_sale") == []


def test_interest_beyond_cash_is_raised_by_a_sale_through_the_auction():
    # bank 1: cash 0.4 < 1; it raises 0.6 by selling q of its 2 units: q (10 - 5 q / 2) = 0.6
    # leaves the price at sqrt(10^2 - 2 * 5 * 0.6) = sqrt 94, q = (10 - sqrt 94) / 5
    # = 2 - sqrt(94) / 5, so units 2 - q = sqrt(94) / 5 and basis 20 * (1 - q / 2) = 2 sqrt 94.
    # Interest comes after repricing: the step ends at sqrt 94. Cash 0; bank 0 gets 1;
    # outside -0.6 (it bought the units).
    _, _, s2, out = _run(0.4, 2.0)
    r94 = np.sqrt(94.0)
    assert s2.cash[0].tolist() == pytest.approx([6.0, 0.0], rel=FP, abs=1e-12)
    assert s2.units[0, 1, 0] == pytest.approx(r94 / 5.0, rel=FP)
    assert s2.basis[0, 1, 0] == pytest.approx(2.0 * r94, rel=FP)
    assert s2.price[0, 0] == pytest.approx(r94, rel=FP)
    assert s2.outside[0] == pytest.approx(-0.6, rel=FP)
    (fs,) = events(out, "forced_sale")
    assert (fs["bank"], fs["reason"]) == (1, "interest")
    assert fs["sold"] == pytest.approx(0.6, rel=FP)
    assert fs["outside_flow"] == pytest.approx(-0.6, rel=FP)
    assert s2.alive[0].all() and not out.defaulted.any()


def test_interest_a_borrower_cannot_pay_is_a_liquidity_default():
    # bank 1: cash 0.4 and nothing to sell: it pays 0.4 of 1 (share 0.4); bank 0 receives
    # 0.01 * 100 * 0.4 = 0.4. Bank 1 is illiquid though solvent (equity 0 + 200 - 90 - 100 = 10)
    # and defaults: its estate (external 200 at alpha 1) covers pbar = 190, so bank 0 gets its
    # 100 back: cash 5 + 0.4 + 100; residual 10; outside flow 90 + 10 - 200 = -100.
    s, _, s2, out = _run(0.4, 0.0)
    assert out.defaulted[0].tolist() == [False, True]
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"]) == (1, "illiquid")
    assert d["equity"] == pytest.approx(10.0, rel=R)
    assert d["recovery"] == pytest.approx(1.0, rel=R)
    assert d["residual"] == pytest.approx(10.0, rel=R)
    assert d["outside_flow"] == pytest.approx(-100.0, rel=R)
    assert s2.cash[0, 0] == pytest.approx(105.4, rel=R)
    assert s2.cash[0].sum() + s2.outside[0] == pytest.approx(s.cash[0].sum(), rel=R)


def test_lenders_receive_the_share_their_borrower_paid():
    # Three banks, rate 0.01: banks 0 and 2 lent 100 and 60 to bank 1, which owes 1.6 of
    # interest and holds cash 0.4 only: it pays share 0.4 / 1.6 = 0.25, so bank 0 gets
    # 0.01 * 100 * 0.25 = 0.25 and bank 2 0.01 * 60 * 0.25 = 0.15, before the cascade.
    # Bank 1 is illiquid and defaults; its estate (external 300, pbar 160 + 90) pays in full.
    # The default event records its equity after the interest: 0 + 300 - 90 - 160 = 50.
    p = params(config(n=3, interest_rate=0.01))
    s = state(
        p,
        cash=[5.0, 0.4, 7.0],
        loans=[[0, 100, 0], [0, 0, 0], [0, 60, 0]],
        external=[10.0, 300.0, 10.0],
        deposits=[100.0, 90.0, 60.0],
    )
    s2, out = run(s, p)
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"], d["equity"]) == (1, "illiquid", pytest.approx(50.0, rel=R))
    assert s2.cash[0].tolist() == pytest.approx([5.25 + 100.0, 0.0, 7.15 + 60.0], rel=R)
