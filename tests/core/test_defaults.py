"""Step 7: defaults, clearing, resolution and the cascade, numbers worked out by hand.

Who fails: Eisenberg-Noe / Rogers-Veraart clearing at the marks. The failed banks are then
liquidated: their units sold in one auction (VWAP of linear impact), their external assets to the
outside at alpha of book, their loans to survivors called. Each estate is cleared on what it
realised: ``e = alpha * (cash + proceeds + external) + beta * collected``, it pays
``p = min(pbar, e + beta * what other failed banks pay it)`` and its creditors and depositors get
``recovery = p / pbar`` of their claims in cash. ``default_costs = (1 - alpha) * (cash + proceeds
+ external) + (1 - beta) * interbank collections``; ``residual = e + ... - p >= 0`` goes to the
shareholders outside. The ``default`` event's ``outside_flow`` is the net cash to the outside:
``(1 - alpha) * (cash + proceeds) + (1 - beta) * collections`` (the costs paid in cash)
``+ recovery * deposits + residual - proceeds - alpha * external``; ``cash + outside`` is conserved.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, default_charge, events, market, params, run, state

from rudra_env.core import StepNoise, step

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
    assert out.rewards[0, 1] == pytest.approx(default_charge(p, int(s.t[0]) + 1), rel=1e-12)


def test_alpha_cuts_the_estate_and_is_a_default_cost():
    # alpha 0.5: bank 1 pays 0.5 * 7 = 3.5, recovery 3.5/13 = 7/26; bank 0 gets 10 * 7/26.
    # Costs (1 - 0.5) * cash 2 = 1 paid in cash, plus (1 - 0.5) * 5 = 2.5 lost selling the
    # external assets at 0.5 * 5 = 2.5: default costs 3.5. Estate 2 + 2.5 - 1 = 3.5 = paid
    # out, residual 0. Outside flow = 1 + 3 * 7/26 - 2.5 = -9/13.
    _, _, s2, out = _insolvent(alpha=0.5)
    assert s2.cash[0, 0] == pytest.approx(5.0 + 70.0 / 26.0, rel=R)
    (d,) = events(out, "default")
    assert d["recovery"] == pytest.approx(7.0 / 26.0, rel=R)
    assert d["default_costs"] == pytest.approx(3.5, rel=R)
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
    # impact 0.5, depth 50: lambda = 0.5 * 100 / 50 = 1; price 10, floor 0.01 * 10 = 0.1.
    #   bank 0: cash 5, external 10, deposits 5                  -> equity  10 (bystander)
    #   bank 1: cash 1, 4 units (40), deposits 50                -> equity  -9
    #   bank 2: cash 10, 10 units (100), deposits 100            -> equity  10
    # Round 1: bank 1's 4 units move the price to 10 - 4 = 6 and fill at 8: proceeds 32.
    #   Estate 1 + 32 = 33 of pbar 50: recovery 0.66, residual 0; outside flow
    #   0.66 * 50 - 32 = 1.
    # Re-marked at min(6, 10) = 6, bank 2 has 10 + 60 - 100 = -30: round 2 (insolvent). Its
    #   10 units would take the price to 6 - 10 < 0.1: (6 - 0.1) / 1 = 5.9 units fill at
    #   (6 + 0.1) / 2 = 3.05 (17.995), the other 4.1 at 0.1 (0.41): proceeds 18.405, price 0.1.
    #   Estate 10 + 18.405 = 28.405 of 100: recovery 0.28405; outside flow 28.405 - 18.405 = 10.
    # Outside 1 + 10 = 11: the cash the two banks held.
    p = params(config(markets=[market(impact=0.5, depth=50.0)]))
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
    assert s2.price[0, 0] == pytest.approx(0.1, rel=R)
    d1, d2 = events(out, "default")
    assert (d1["bank"], d1["round"], d1["cause"]) == (1, 1, "insolvent")
    assert (d2["bank"], d2["round"], d2["cause"]) == (2, 2, "insolvent")
    assert d1["recovery"] == pytest.approx(0.66, rel=R)
    assert d1["fire_sale_proceeds"] == pytest.approx(32.0, rel=R)
    assert d1["residual"] == pytest.approx(0.0, abs=1e-12)
    assert d1["outside_flow"] == pytest.approx(1.0, rel=R)
    assert d2["equity"] == pytest.approx(-30.0, rel=R)
    assert d2["recovery"] == pytest.approx(0.28405, rel=R)
    assert d2["fire_sale_proceeds"] == pytest.approx(18.405, rel=R)
    assert d2["residual"] == pytest.approx(0.0, abs=1e-12)
    assert d2["outside_flow"] == pytest.approx(10.0, rel=R)
    c1, c2 = events(out, "cascade")
    assert (c1["round"], c1["banks"]) == (1, [1]) and c1["prices"] == pytest.approx([6.0])
    assert (c2["round"], c2["banks"]) == (2, [2]) and c2["prices"] == pytest.approx([0.1])
    assert s2.outside[0] == pytest.approx(11.0, rel=R)
    assert s2.units[0].sum() == 0.0 and s2.cash[0].tolist() == [5.0, 0.0, 0.0]


def test_survivor_that_cannot_pay_a_called_loan_fails_with_its_creditor():
    # bank 1 lent 10 to bank 2 and is insolvent; its loan is called in full.
    #   bank 1: cash 1, loan 10, external 2, deposits 20        -> equity -7
    #   bank 2: cash 2, external 20, deposits 5, owes 10        -> equity  7
    # Round 1: bank 1 fails. The call: bank 2 pays its cash 2 (nothing to sell) of 10 and fails
    #   in the same round (illiquid); the other 8 stays owed, a claim in the failed banks'
    #   clearing. Estates: bank 1 holds 1 + 2 (external) + 2 (collected) = 5, owes 20; bank 2
    #   holds its external 20, owes 8 + 5 = 13. Bank 2 pays in full (recovery 1: 8 to bank 1,
    #   5 to its depositors), so bank 1 pays min(20, 5 + 8) = 13: recovery 0.65 — what bank 1
    #   would have got had bank 2 paid the whole call. Residuals: bank 1 0; bank 2 20 - 13 = 7
    #   to its shareholders, after its creditors are paid in full.
    # Outside flows: bank 1 0.65 * 20 - 2 (external bought) = 11; bank 2 5 + 7 - 20 = -8;
    #   in all 3 = the cash banks 1 and 2 held: nobody outside paid for the loss.
    p = params(config())
    s = state(
        p,
        cash=[5.0, 1.0, 2.0],
        loans=[[0, 0, 0], [0, 0, 10], [0, 0, 0]],
        external=[10.0, 2.0, 20.0],
        deposits=[5.0, 20.0, 5.0],
    )
    s2, out = run(s, p)
    assert out.cascade_rounds[0] == 1
    assert out.defaulted[0].tolist() == [False, True, True]
    d1, d2 = events(out, "default")
    assert (d1["bank"], d1["round"], d1["cause"]) == (1, 1, "insolvent")
    assert d1["recovery"] == pytest.approx(0.65, rel=R)
    assert d1["creditor_loss"] == pytest.approx(7.0, rel=R)
    assert d1["residual"] == pytest.approx(0.0, abs=1e-12)
    assert d1["outside_flow"] == pytest.approx(11.0, rel=R)
    assert events(out, "forced_sale") == []  # nothing to sell: no sale covers the shortfall
    assert (d2["bank"], d2["round"], d2["cause"]) == (2, 1, "illiquid")
    assert d2["recovery"] == pytest.approx(1.0, rel=R)
    assert d2["creditor_loss"] == pytest.approx(0.0, abs=1e-12)
    assert d2["residual"] == pytest.approx(7.0, rel=R)
    assert d2["outside_flow"] == pytest.approx(-8.0, rel=R)
    assert s2.outside[0] == pytest.approx(3.0, rel=R)
    assert s2.cash[0].sum() + s2.outside[0] == pytest.approx(s.cash[0].sum(), rel=R)


# A bank holding half the market's depth fails. Impact 1, depth 100: lambda = 1 * 100 / 100 = 1.
#   bank 0: cash 5, lent 20 to bank 1, external 30, deposits 10
#   bank 1: cash 2, 5 units (value 50 = half the depth), external 10, owes 20, deposits dep1
# Bank 1's 5 units move the price to 10 - 5 = 5 and fill at 7.5: proceeds 37.5; its estate
# realises alpha * (2 + 37.5 + 10) = 49.5 alpha against pbar = 20 + dep1.
#   insolvent: dep1 45 (equity 62 - 65 = -3), alpha 0.8: e = 39.6 < 65, recovery 39.6 / 65,
#     residual 0, cash costs 0.2 * 39.5 = 7.9, default costs 7.9 + 0.2 * 10 = 9.9.
#   removed: dep1 20 (equity 22), alpha 1, removed at step 1: e = 49.5 >= 40, recovery 1,
#     residual 9.5 to the shareholders, no costs.
# The price ends at 5 after the cascade (step 7), or at 10 - 5 / 2 = 7.5 after a removal at the
# start of the step (repricing halves the displacement).
# outside_flow = cash costs + recovery * dep1 + residual - 37.5 - alpha * 10; bank 0 receives
# 20 * recovery.
HALF_DEPTH = {
    "insolvent": dict(
        alpha=0.8, dep1=45.0, recovery=39.6 / 65.0, residual=0.0, costs=7.9, price=5.0
    ),
    "removed": dict(alpha=1.0, dep1=20.0, recovery=1.0, residual=9.5, costs=0.0, price=7.5),
}


@pytest.mark.parametrize("case", sorted(HALF_DEPTH))
def test_a_bank_holding_half_the_depth_pays_what_its_estate_realised(case):
    c = HALF_DEPTH[case]
    iv = [{"type": "remove_bank", "step": 1, "bank": 1}] if case == "removed" else []
    p = params(
        config(
            n=2,
            markets=[market(impact=1.0)],
            contagion={"alpha": c["alpha"]},
            scenario={"interventions": iv},
        )
    )
    s = state(
        p,
        cash=[5.0, 2.0],
        loans=[[0, 20], [0, 0]],
        units=[[0.0], [5.0]],
        external=[30.0, 10.0],
        deposits=[10.0, c["dep1"]],
    )
    s2, out = run(s, p)
    assert out.defaulted[0].tolist() == [False, True]
    (d,) = events(out, "default")
    assert d["cause"] == case
    assert d["fire_sale_proceeds"] == pytest.approx(37.5, rel=R)
    assert s2.price[0, 0] == pytest.approx(c["price"], rel=R)
    assert d["recovery"] == pytest.approx(c["recovery"], rel=R)
    assert d["residual"] >= 0.0
    assert d["residual"] == pytest.approx(c["residual"], rel=R, abs=1e-12)
    assert d["default_costs"] == pytest.approx(c["costs"] + (1 - c["alpha"]) * 10.0, rel=R)
    flow = c["costs"] + c["recovery"] * c["dep1"] + c["residual"] - 37.5 - c["alpha"] * 10.0
    assert d["outside_flow"] == pytest.approx(flow, rel=R)
    assert s2.cash[0, 0] == pytest.approx(5.0 + 20.0 * c["recovery"], rel=R)
    assert s2.outside[0] == pytest.approx(flow, rel=R)
    assert s2.cash[0].sum() + s2.outside[0] == pytest.approx(s.cash[0].sum(), rel=R)


# A failed bank's call against TOL = 1e-9. Bank 0 lent ``lent`` to bank 1 and owes its
# depositors lent + 100: insolvent (equity -100), it fails and calls the loan in full. Bank 1
# has ``cash``, no units and external 160 (solvent, it pays the clearing in full): it pays its
# cash and fails with bank 0 (illiquid) only if short by more than TOL * max(1, lent).
def _failed_lender_calls(lent: float, cash: float):
    p = params(config(n=2))
    s = state(
        p,
        cash=[0.0, cash],
        loans=[[0, lent], [0, 0]],
        external=[0.0, 160.0],
        deposits=[lent + 100.0, 0.0],
    )
    return run(s, p)


def test_a_survivor_short_by_less_than_tol_times_the_call_survives():
    # call 100, cash 100 - 1e-8: short 1e-8 <= 1e-7. Bank 0's estate is what it collected,
    # 100 - 1e-8, for its 200 of deposits: recovery (100 - 1e-8) / 200.
    _s2, out = _failed_lender_calls(100.0, 100.0 - 1e-8)
    assert out.defaulted[0].tolist() == [True, False]
    (d,) = events(out, "default")
    assert d["recovery"] == pytest.approx((100.0 - 1e-8) / 200.0, rel=R)


def test_a_survivor_short_by_exactly_tol_survives():
    # call 2 TOL, cash TOL: short TOL, not more than TOL * max(1, 2 TOL).
    tol = 1e-9
    _s2, out = _failed_lender_calls(2.0 * tol, tol)
    assert out.defaulted[0].tolist() == [True, False]


def test_a_survivor_short_by_more_than_tol_fails_illiquid():
    # call 1, cash 1 - 1.5e-9: short 1.5e-9 > 1e-9 * max(1, 1): bank 1 fails in round 1 too.
    _s2, out = _failed_lender_calls(1.0, 1.0 - 1.5e-9)
    assert out.defaulted[0].tolist() == [True, True]
    causes = {d["bank"]: (d["cause"], d["round"]) for d in events(out, "default")}
    assert causes == {0: ("insolvent", 1), 1: ("illiquid", 1)}


def test_estates_of_two_worlds_with_different_numbers_of_failures():
    # One round in two worlds (three banks each; beta = 1).
    # World 0: banks 0 and 1 fail on their own: cash 3 against deposits 6 (recovery 0.5) and
    #   cash 1 against deposits 4 (recovery 0.25); bank 2 stands by.
    # World 1: only bank 0 fails. It lent L = 1e6 to bank 1, borrowed M = 1e5 from it and owes
    #   its depositors 1.9e6: equity 1e6 - 2e6 < 0. Bank 1 (cash L - d, d = 5e-4, external 10)
    #   pays the call short by d <= TOL * L: forgiven, it survives. The estate is what bank 0
    #   collected, L - d, for pbar = M + 1.9e6 = 2e6: recovery (L - d) / 2e6 = 0.5 - 2.5e-10,
    #   and bank 1 gets that share of M: cash 0 + 5e4 - 2.5e-5. Bank 1 is no payer in the
    #   failed banks' clearing, so the forgiven d never reaches the estate.
    p = params(config(n=3))
    lone = state(
        p,
        cash=[3.0, 1.0, 5.0],
        external=[0.0, 0.0, 5.0],
        deposits=[6.0, 4.0, 0.0],
    )
    big, d = 1e6, 5e-4
    pair = state(
        p,
        cash=[0.0, big - d, 5.0],
        loans=[[0, big, 0], [1e5, 0, 0], [0, 0, 0]],
        external=[0.0, 10.0, 5.0],
        deposits=[1.9e6, 0.0, 0.0],
    )
    s = lone.take(np.array([0, 0]))
    s.put(np.array([1]), pair)
    noise = StepNoise(market=np.zeros((2, 1)), signal=np.full((2, 3, 2), 0.5, dtype=np.float32))
    s2, out = step(s, np.zeros((2, 3), dtype=np.int64), p, noise=noise)
    assert out.defaulted.tolist() == [[True, True, False], [True, False, False]]
    rec = {(w, e["bank"]): e["recovery"] for w in (0, 1) for e in events(out, "default", w)}
    assert rec == pytest.approx({(0, 0): 0.5, (0, 1): 0.25, (1, 0): 0.5 - 2.5e-10}, rel=1e-13)
    assert s2.cash[1].tolist() == pytest.approx([0.0, 5e4 - 2.5e-5, 5.0], rel=R)
