"""Step 4: interest ``r * loans[i, j]`` paid by j to i from cash; overdrafts covered by forced
sales with fire-sale price impact, or a liquidity default. Numbers worked out by hand.

Two banks, bank 0 lent 100 to bank 1, rate 0.01 (interest 1 per step):

    bank  cash  units  external  deposits  equity
    0     5     0      10        100       5 + 100 + 10 - 100       = 15
    1     c1    u1     200        90       c1 + 10 u1 + 200 - 90 - 100
"""

from __future__ import annotations

import pytest
from tiny import config, events, market, params, run, state

R = 1e-12


def _run(cash1: float, units1: float):
    p = params(
        config(
            n=2,
            interest_rate=0.01,
            markets=[market(depth=10.0)],
            contagion={"fire_sale_impact": 0.5},
        )
    )
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


def test_overdraft_is_covered_by_a_forced_sale_with_fire_sale_impact():
    # bank 1: cash 0.4 - 1 = -0.6; it sells 0.6 of its 2 units' value 20 (3%): units 1.94,
    # basis 20 * 0.97 = 19.4, cash 0. Price 10 * (1 - 0.5 * 0.6 / 10) = 9.7; outside -0.6.
    _, _, s2, out = _run(0.4, 2.0)
    assert s2.cash[0].tolist() == pytest.approx([6.0, 0.0], rel=R, abs=1e-15)
    assert s2.units[0, 1, 0] == pytest.approx(1.94, rel=R)
    assert s2.basis[0, 1, 0] == pytest.approx(19.4, rel=R)
    assert s2.price[0, 0] == pytest.approx(9.7, rel=R)
    assert s2.outside[0] == pytest.approx(-0.6, rel=R)
    (fs,) = events(out, "forced_sale")
    assert (fs["bank"], fs["reason"]) == (1, "overdraft")
    assert fs["sold"] == pytest.approx(0.6, rel=R)
    assert fs["outside_flow"] == pytest.approx(-0.6, rel=R)
    assert s2.alive[0].all()


def test_uncovered_overdraft_is_a_liquidity_default():
    # bank 1: cash 0.4 - 1 = -0.6 and nothing to sell: illiquid though solvent (equity
    # -0.6 + 200 - 90 - 100 = 9.4).
    # It pays in full (e = -0.6 + 200 >= pbar = 190), so bank 0 gets its 100 back: cash 106.
    _, _, s2, out = _run(0.4, 0.0)
    assert out.defaulted[0].tolist() == [False, True]
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"]) == (1, "illiquid")
    assert d["equity"] == pytest.approx(9.4, rel=R)
    assert s2.cash[0, 0] == pytest.approx(106.0, rel=R)
