"""Step 7: defaults, clearing, resolution and the cascade, numbers worked out by hand.

Clearing is Eisenberg-Noe with Rogers-Veraart costs: a defaulted bank pays
``p = min(pbar, alpha * e + beta * received)`` (``e`` = cash + market value + external),
creditors and depositors get ``recovery = p / pbar`` of their claims in cash. The failed bank's
units are fire-sold (``price *= 1 - fire_sale_impact * value / depth``), its external assets go
to the outside at alpha of book; ``default_costs = (1 - alpha) * (cash + proceeds) + (1 - beta) *
interbank collections``; the residual of the estate goes to (or comes from) the outside.
"""

from __future__ import annotations

import pytest
from tiny import config, events, market, params, run, state

R = 1e-12


def _insolvent(alpha: float = 1.0, t: int = 0):
    # bank 0 lent 10 to bank 1.
    #   bank 0: cash 5, loan 10, external 20, deposits 20         -> equity 15
    #   bank 1: cash 2, external 5, deposits 3, owes 10           -> equity -6 (insolvent)
    #   bank 2: cash 4, external 6                                -> equity 10 (bystander)
    p = params(config(contagion={"alpha": alpha}))
    s = state(
        p,
        cash=[5.0, 2.0, 4.0],
        loans=[[0, 10, 0], [0, 0, 0], [0, 0, 0]],
        external=[20.0, 5.0, 6.0],
        deposits=[20.0, 3.0, 0.0],
        t=t,
    )
    return p, s, *run(s, p)


def test_insolvent_bank_is_cleared_and_its_books_zeroed():
    # Bank 1: e = 2 + 5 = 7 < pbar = 10 + 3 = 13: pays 7, recovery 7/13.
    # Bank 0 gets 10 * 7/13 = 70/13 in cash (LGD 6/13 of its claim, so its equity is
    # 15 - 60/13); creditor loss (1 - 7/13) * 13 = 6. Depositors get 3 * 7/13 = 21/13.
    # Estate: cash 2 + external 5 = 7 in, 7 out, residual 0; outside flow = 21/13 (deposits)
    # - 5 (external bought) = -44/13.
    p, s, s2, out = _insolvent(t=4)
    assert out.defaulted[0].tolist() == [False, True, False]
    assert s2.alive[0].tolist() == [True, False, True]
    assert s2.default_step[0].tolist() == [-1, 5, -1]
    assert out.cascade_rounds[0] == 1
    assert s2.cash[0].tolist() == pytest.approx([5.0 + 70.0 / 13.0, 0.0, 4.0], rel=R)
    assert s2.outside[0] == pytest.approx(-44.0 / 13.0, rel=R)
    # Books zeroed, the creditor's claim gone with them.
    for name in ("cash", "external", "deposits", "ib_assets", "ib_liab"):
        assert getattr(s2, name)[0, 1] == 0.0, name
    assert s2.loans[0].sum() == 0.0 and s2.ib_assets[0, 0] == 0.0
    assert out.balance["equity"][0].tolist() == pytest.approx(
        [15.0 - 60.0 / 13.0, 0.0, 10.0], rel=R
    )
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"], d["round"]) == (1, "insolvent", 1)
    assert d["equity"] == pytest.approx(-6.0, rel=R)
    assert d["recovery"] == pytest.approx(7.0 / 13.0, rel=R)
    assert d["creditor_loss"] == pytest.approx(6.0, rel=R)
    assert d["default_costs"] == 0.0
    assert d["residual"] == pytest.approx(0.0, abs=1e-12)
    assert d["outside_flow"] == pytest.approx(-44.0 / 13.0, rel=R)
    (c,) = events(out, "cascade")
    assert c["round"] == 1 and c["banks"] == [1]
    assert out.rewards[0, 1] == -p.default_penalty


def test_alpha_cuts_the_estate_and_is_a_default_cost():
    # alpha 0.5: bank 1 pays 0.5 * 7 = 3.5, recovery 3.5/13 = 7/26; bank 0 gets 10 * 7/26.
    # Costs (1 - 0.5) * cash 2 = 1; external sold at 0.5 * 5 = 2.5; estate 2 + 2.5 - 1 = 3.5
    # = paid out, residual 0. Outside flow = 1 + 3 * 7/26 - 2.5 = -9/13.
    _, _, s2, out = _insolvent(alpha=0.5)
    assert s2.cash[0, 0] == pytest.approx(5.0 + 70.0 / 26.0, rel=R)
    (d,) = events(out, "default")
    assert d["recovery"] == pytest.approx(7.0 / 26.0, rel=R)
    assert d["default_costs"] == pytest.approx(1.0, rel=R)
    assert d["residual"] == pytest.approx(0.0, abs=1e-12)  # external counted at 2.5, not 5
    assert d["creditor_loss"] == pytest.approx(13.0 - 3.5, rel=R)
    assert d["outside_flow"] == pytest.approx(-9.0 / 13.0, rel=R)
    assert s2.outside[0] == pytest.approx(-9.0 / 13.0, rel=R)


def test_credit_contagion_in_the_same_round_with_beta():
    # bank 0 lent 20 to bank 1; beta = 0.5.
    #   bank 0: cash 1, loan 20, external 10, deposits 25   -> equity  6
    #   bank 1: external 5, owes 20                         -> equity -15
    # Clearing: bank 1 pays its e = 5 (recovery 0.25); bank 0 then has 11 + 5 < 25 and
    # defaults too (cause contagion) paying 11 + beta * 5 = 13.5 (recovery 0.54).
    # Bank 0's estate: 1 + 10 + 5 in, costs (1 - 0.5) * 5 = 2.5, 13.5 out, residual 0.
    # Outside: bank 0 (2.5 + 13.5 - 10 = 6) + bank 1 (-5) = 1 (= the cash that was in banks).
    p = params(config(contagion={"beta": 0.5}))
    s = state(
        p,
        cash=[1.0, 0.0, 4.0],
        loans=[[0, 20, 0], [0, 0, 0], [0, 0, 0]],
        external=[10.0, 5.0, 6.0],
        deposits=[25.0, 0.0, 0.0],
    )
    s2, out = run(s, p)
    assert out.defaulted[0].tolist() == [True, True, False]
    assert out.cascade_rounds[0] == 1
    d0, d1 = events(out, "default")
    assert (d0["bank"], d0["cause"], d0["round"]) == (0, "contagion", 1)
    assert (d1["bank"], d1["cause"], d1["round"]) == (1, "insolvent", 1)
    assert d0["recovery"] == pytest.approx(0.54, rel=R)
    assert d1["recovery"] == pytest.approx(0.25, rel=R)
    assert d0["default_costs"] == pytest.approx(2.5, rel=R)
    assert d0["creditor_loss"] == pytest.approx(11.5, rel=R)
    assert d1["creditor_loss"] == pytest.approx(15.0, rel=R)
    assert d0["outside_flow"] == pytest.approx(6.0, rel=R)
    assert d1["outside_flow"] == pytest.approx(-5.0, rel=R)
    assert s2.outside[0] == pytest.approx(1.0, rel=R)
    assert s2.cash[0].tolist() == [0.0, 0.0, 4.0]


def test_fire_sale_of_the_failed_bank_brings_down_a_second_round():
    # fire_sale_impact 0.5, depth 50, price 10.
    #   bank 0: cash 5, external 10, deposits 5                  -> equity  10 (bystander)
    #   bank 1: cash 1, 4 units (40), deposits 50                -> equity  -9
    #   bank 2: cash 10, 10 units (100), deposits 100            -> equity  10
    # Round 1: bank 1 pays e = 41 (recovery 0.82); its 4 units (value 40) are fire-sold:
    #   price 10 * (1 - 0.5 * 40 / 50) = 6, proceeds 24, residual 1 + 24 - 41 = -16;
    #   outside flow 41 - 16 - 24 = 1.
    # Re-marked at 6, bank 2 has 10 + 60 - 100 = -30: round 2 (cause insolvent). It pays
    #   e = 70 (recovery 0.7); its 10 units (value 60): price 6 * (1 - 0.5 * 60 / 50) = 2.4,
    #   proceeds 24, residual 10 + 24 - 70 = -36, outside flow 70 - 36 - 24 = 10.
    # Outside 1 + 10 = 11: the cash the two banks held.
    p = params(config(markets=[market(depth=50.0)], contagion={"fire_sale_impact": 0.5}))
    s = state(
        p,
        cash=[5.0, 1.0, 10.0],
        units=[[0.0], [4.0], [10.0]],
        external=[10.0, 0.0, 0.0],
        deposits=[5.0, 50.0, 100.0],
    )
    s2, out = run(s, p)
    assert out.cascade_rounds[0] == 2
    assert out.defaulted[0].tolist() == [False, True, True]
    assert s2.price[0, 0] == pytest.approx(2.4, rel=R)
    d1, d2 = events(out, "default")
    assert (d1["bank"], d1["round"], d1["cause"]) == (1, 1, "insolvent")
    assert (d2["bank"], d2["round"], d2["cause"]) == (2, 2, "insolvent")
    assert d1["recovery"] == pytest.approx(0.82, rel=R)
    assert d1["fire_sale_proceeds"] == pytest.approx(24.0, rel=R)
    assert d1["residual"] == pytest.approx(-16.0, rel=R)
    assert d1["outside_flow"] == pytest.approx(1.0, rel=R)
    assert d2["equity"] == pytest.approx(-30.0, rel=R)
    assert d2["recovery"] == pytest.approx(0.7, rel=R)
    assert d2["fire_sale_proceeds"] == pytest.approx(24.0, rel=R)
    assert d2["residual"] == pytest.approx(-36.0, rel=R)
    assert d2["outside_flow"] == pytest.approx(10.0, rel=R)
    c1, c2 = events(out, "cascade")
    assert (c1["round"], c1["banks"]) == (1, [1]) and c1["prices"] == pytest.approx([6.0])
    assert (c2["round"], c2["banks"]) == (2, [2]) and c2["prices"] == pytest.approx([2.4])
    assert s2.outside[0] == pytest.approx(11.0, rel=R)
    assert s2.units[0].sum() == 0.0 and s2.cash[0].tolist() == [5.0, 0.0, 0.0]


def test_survivor_that_cannot_pay_a_called_loan_defaults_next_round():
    # bank 1 lent 10 to bank 2 and is insolvent; its loan is called in full.
    #   bank 1: cash 1, loan 10, external 2, deposits 20        -> equity -7
    #   bank 2: cash 2, external 20, deposits 5, owes 10        -> equity  7
    # Round 1: bank 1 e = 3, receives 10 from bank 2 in the clearing: pays 13 of 20 (0.65).
    #   The call: bank 2 pays its cash 2 (nothing to sell), phi 0.2; the rest is written off.
    #   Estate 1 + 2 + 2 = 5 in, 13 out: residual -8; outside flow 13 - 8 - 2 = 3.
    # Round 2: bank 2 (cash 0, external 20, deposits 5) is forced: cause illiquid; pays in
    #   full (recovery 1), residual 15, outside flow 5 + 15 - 20 = 0. Outside 3 = the cash
    #   banks 1 and 2 held.
    p = params(config())
    s = state(
        p,
        cash=[5.0, 1.0, 2.0],
        loans=[[0, 0, 0], [0, 0, 10], [0, 0, 0]],
        external=[10.0, 2.0, 20.0],
        deposits=[5.0, 20.0, 5.0],
    )
    s2, out = run(s, p)
    assert out.cascade_rounds[0] == 2
    d1, d2 = events(out, "default")
    assert (d1["bank"], d1["round"], d1["cause"]) == (1, 1, "insolvent")
    assert d1["recovery"] == pytest.approx(0.65, rel=R)
    assert d1["residual"] == pytest.approx(-8.0, rel=R)
    assert d1["outside_flow"] == pytest.approx(3.0, rel=R)
    assert (d2["bank"], d2["round"], d2["cause"]) == (2, 2, "illiquid")
    assert d2["recovery"] == pytest.approx(1.0, rel=R)
    assert d2["residual"] == pytest.approx(15.0, rel=R)
    assert s2.outside[0] == pytest.approx(3.0, rel=R)
