"""Step 2, action execution, on three banks and one market, numbers worked out by hand.

Banks (slots: bank 0 -> [1, 2], bank 1 -> [0, 2], bank 2 -> [0, 1]); size levels (0.5, 1.0);
price 10; no volatility, drift, interest or margin:

    bank  cash  lent           units  external  deposits  equity
    0     10    8 to bank 1    2      30        50        10 + 8 + 20 + 30 - 50 = 18
    1      6    -              3      40        50         6 + 30 + 40 - 50 - 8 = 18
    2      4    -              0      20        10         4 + 20 - 10         = 14
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import acts, config, default_charge, events, market, params, run, state

from rudra_env.actions import BORROW, DIVEST, HOLD, INVEST, LEND
from rudra_env.core import action_masks

R = 1e-12
FP = 1e-10  # where the core solves a fixed point (a pro-rata sale)


def _p(impact: float = 0.0, k: int | None = None, sizes=(0.5, 1.0)):
    # lambda = impact (price0 10, depth 100); half-life 1: repricing halves the displacement.
    return params(config(k=k, markets=[market(impact=impact)], size_levels=list(sizes)))


def _s(p, **over):
    books = {
        "cash": [10.0, 6.0, 4.0],
        "loans": [[0, 8, 0], [0, 0, 0], [0, 0, 0]],
        "units": [[2.0], [3.0], [0.0]],
        "external": [30.0, 40.0, 20.0],
        "deposits": [50.0, 50.0, 10.0],
    }
    books.update(over)
    return state(p, **books)


def test_hold_changes_nothing_and_records_no_transaction():
    p = _p(impact=0.5)
    s = _s(p)
    s2, out = run(s, p)
    for name in ("cash", "loans", "units", "basis", "external", "deposits", "price", "outside"):
        assert np.array_equal(getattr(s2, name), getattr(s, name)), name
    assert events(out, "transaction") == []
    assert not out.invalid.any() and (out.executed == HOLD).all()
    assert s2.t[0] == 1


def test_lend_moves_half_the_cash_into_a_loan():
    # bank 0 LENDs 0.5 of its cash 10 to slot 0 (bank 1): 5 leaves bank 0's cash, arrives in
    # bank 1's, loans[0, 1] = 8 + 5 = 13; equity of both unchanged (18, 18).
    p = _p()
    a = p.layout.encode(LEND, 0, 0)
    s2, out = run(_s(p), p, acts(p, b0=a))
    assert s2.cash[0].tolist() == pytest.approx([5.0, 11.0, 4.0], rel=R)
    assert s2.loans[0, 0, 1] == pytest.approx(13.0, rel=R)
    assert s2.ib_liab[0, 1] == pytest.approx(13.0, rel=R)
    assert out.balance["equity"][0].tolist() == pytest.approx([18.0, 18.0, 14.0], rel=R)
    assert out.executed[0, 0] == a and not out.invalid.any()
    (tx,) = events(out, "transaction")
    assert tx == {
        "bank": 0,
        "kind": "LEND",
        "target": 1,
        "size": 0.5,
        "amount": pytest.approx(5.0, rel=R),
        "outside_flow": 0.0,
    }
    assert s2.outside[0] == 0.0


def test_actions_are_simultaneous_each_on_its_own_starting_cash():
    # bank 0 LENDs all its cash (1.0 * 10) to bank 1 while bank 1 INVESTs 0.5 of its cash:
    # bank 1 spends 0.5 * 6 = 3 (its cash before the step), not 0.5 * (6 + 10) = 8.
    # bank 1 cash: 6 - 3 + 10 = 13; units 3 + 3 / 10 = 3.3.
    p = _p()
    a = acts(p, b0=p.layout.encode(LEND, 0, 1), b1=p.layout.encode(INVEST, 0, 0))
    s2, out = run(_s(p), p, a)
    assert s2.cash[0].tolist() == pytest.approx([0.0, 13.0, 4.0], rel=R, abs=1e-15)
    assert s2.units[0, 1, 0] == pytest.approx(3.3, rel=R)
    assert [tx["amount"] for tx in events(out, "transaction")] == pytest.approx([10.0, 3.0])


def test_transactions_are_recorded_in_bank_order_whatever_their_kinds():
    # The core runs the orders grouped by kind (BORROW, then INVEST, then DIVEST here), but
    # events and outside flows come in bank order. bank 0 calls back 0.5 of its loan of 8 to
    # bank 1 (due 4); bank 1 DIVESTs 0.5 of its 3 units (1.5 units at 10 = 15); bank 2 INVESTs
    # 0.5 of its cash 4 (2 for 0.2 units). No impact, so both trades fill at 10. Trades run
    # before calls: bank 1 has 6 + 15 = 21 when the call of 4 comes, and keeps 17.
    # outside: +2 (bought from the outside) - 15 (sold to it) = -13.
    p = _p()
    a = acts(
        p,
        b0=p.layout.encode(BORROW, 0, 0),
        b1=p.layout.encode(DIVEST, 0, 0),
        b2=p.layout.encode(INVEST, 0, 0),
    )
    s2, out = run(_s(p), p, a)
    txs = events(out, "transaction")
    assert [(tx["bank"], tx["kind"], tx["target"]) for tx in txs] == [
        (0, "BORROW", 1),
        (1, "DIVEST", 0),
        (2, "INVEST", 0),
    ]
    assert [tx["amount"] for tx in txs] == pytest.approx([4.0, 15.0, 2.0], rel=R)
    assert [tx["outside_flow"] for tx in txs] == pytest.approx([0.0, -15.0, 2.0], rel=R)
    assert s2.outside[0] == pytest.approx(-13.0, rel=R)
    assert s2.cash[0].tolist() == pytest.approx([14.0, 17.0, 2.0], rel=R)
    assert s2.units[0, :, 0].tolist() == pytest.approx([2.0, 1.5, 0.2], rel=R)


def test_borrow_paid_from_cash():
    # bank 0 calls back 0.5 of its loan of 8 to bank 1: due 4, bank 1 pays from cash 6 -> 2.
    p = _p()
    s2, out = run(_s(p), p, acts(p, b0=p.layout.encode(BORROW, 0, 0)))
    assert s2.cash[0].tolist() == pytest.approx([14.0, 2.0, 4.0], rel=R)
    assert s2.loans[0, 0, 1] == pytest.approx(4.0, rel=R)
    assert s2.ib_assets[0, 0] == pytest.approx(4.0, rel=R)
    assert s2.ib_liab[0, 1] == pytest.approx(4.0, rel=R)
    assert events(out, "forced_sale") == []
    (tx,) = events(out, "transaction")
    assert (tx["kind"], tx["target"], tx["size"]) == ("BORROW", 1, 0.5)
    assert tx["amount"] == pytest.approx(4.0, rel=R) and tx["outside_flow"] == 0.0


def test_borrow_paid_partly_by_forced_sale():
    # bank 1 has cash 1 only (external 45 keeps it solvent). Due 4: 1 from cash, 3 by selling
    # through the auction (lambda 0.5). Selling q units for 3: q (10 - 0.5 q / 2) = 3, i.e. the
    # price goes to sqrt(10^2 - 2 * 0.5 * 3) = sqrt(97), q = (10 - sqrt 97) / 0.5
    # = 20 - 2 sqrt 97, fill (10 + sqrt 97) / 2. Units 3 - q = 2 sqrt 97 - 17; basis shrinks by
    # q / 3: 30 - 10 q = 20 sqrt 97 - 170; outside -3. Repricing halves the displacement:
    # price 10 + (sqrt 97 - 10) / 2 = 5 + sqrt 97 / 2. (A fixed point: asserted to 1e-10.)
    p = _p(impact=0.5)
    s = _s(p, cash=[10.0, 1.0, 4.0], external=[30.0, 45.0, 20.0])
    s2, out = run(s, p, acts(p, b0=p.layout.encode(BORROW, 0, 0)))
    r97 = np.sqrt(97.0)
    assert s2.cash[0].tolist() == pytest.approx([14.0, 0.0, 4.0], rel=FP, abs=1e-12)
    assert s2.units[0, 1, 0] == pytest.approx(2.0 * r97 - 17.0, rel=FP)
    assert s2.basis[0, 1, 0] == pytest.approx(20.0 * r97 - 170.0, rel=FP)
    assert s2.loans[0, 0, 1] == pytest.approx(4.0, rel=R)
    assert s2.price[0, 0] == pytest.approx(5.0 + r97 / 2.0, rel=FP)
    assert s2.outside[0] == pytest.approx(-3.0, rel=FP)
    (fs,) = events(out, "forced_sale")
    assert fs["bank"] == 1 and fs["reason"] == "loan_call"
    assert fs["sold"] == pytest.approx(3.0, rel=FP)
    assert fs["outside_flow"] == pytest.approx(-3.0, rel=FP)
    assert events(out, "transaction")[0]["amount"] == pytest.approx(4.0, rel=R)
    assert s2.alive[0].all() and not out.defaulted.any()


def test_borrow_unpaid_is_a_liquidity_default():
    # bank 1: cash 1, 0.2 units (value 2), external 56, deposits 50, owes 8: equity 1.
    # bank 0 calls the whole loan (size 1.0): due 8, bank 1 pays 1 + 2 = 3 (phi = 3/8), so
    # loans[0, 1] = 8 - 3 = 5 and bank 1 is illiquid -> defaults in round 1.
    # Clearing: e = 0 + 0 + 56 >= pbar = 5 + 50, so it pays in full (recovery 1): bank 0 gets
    # 5 more (cash 10 + 3 + 5 = 18). Estate: 56 in (external at alpha = 1), 55 out, residual
    # 1; outside flow = deposits 50 + residual 1 - external 56 = -5; outside = -2 (sale) - 5.
    p = _p()
    s = _s(p, cash=[10.0, 1.0, 4.0], units=[[2.0], [0.2], [0.0]], external=[30.0, 56.0, 20.0])
    s2, out = run(s, p, acts(p, b0=p.layout.encode(BORROW, 0, 1)))
    assert events(out, "transaction")[0]["amount"] == pytest.approx(3.0, rel=R)
    assert out.defaulted[0].tolist() == [False, True, False]
    assert s2.cash[0].tolist() == pytest.approx([18.0, 0.0, 4.0], rel=R)
    assert s2.outside[0] == pytest.approx(-7.0, rel=R)
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"], d["round"]) == (1, "illiquid", 1)
    assert d["equity"] == pytest.approx(1.0, rel=R)
    assert d["recovery"] == pytest.approx(1.0, rel=R)
    assert d["residual"] == pytest.approx(1.0, rel=R)
    assert d["outside_flow"] == pytest.approx(-5.0, rel=R)
    assert out.rewards[0, 1] == pytest.approx(default_charge(p, int(s.t[0]) + 1), rel=1e-12)


def test_invest_buys_units_at_the_vwap_of_its_own_impact():
    # bank 0 INVESTs 0.5 * 10 = 5 (lambda 0.5): the price goes to sqrt(100 + 2 * 0.5 * 5)
    # = sqrt 105 and everybody fills at the mean, (10 + sqrt 105) / 2: units 2 + 5 / fill,
    # basis 20 + 5, outside +5. Repricing halves the displacement: 10 + (sqrt 105 - 10) / 2
    # = fill. The new units are marked at the fundamental 10 < fill, so bank 0's equity falls
    # from 18 to 18 - 5 + 10 * 5 / fill.
    p = _p(impact=0.5)
    s2, out = run(_s(p), p, acts(p, b0=p.layout.encode(INVEST, 0, 0)))
    fill = (10.0 + np.sqrt(105.0)) / 2.0
    assert s2.cash[0, 0] == pytest.approx(5.0, rel=R)
    assert s2.units[0, 0, 0] == pytest.approx(2.0 + 5.0 / fill, rel=R)
    assert s2.basis[0, 0, 0] == pytest.approx(25.0, rel=R)
    assert s2.outside[0] == pytest.approx(5.0, rel=R)
    assert s2.price[0, 0] == pytest.approx(fill, rel=R)
    assert s2.fundamental[0, 0] == 10.0
    assert out.balance["equity"][0, 0] == pytest.approx(13.0 + 50.0 / fill, rel=R)
    (tx,) = events(out, "transaction")
    assert (tx["kind"], tx["target"], tx["size"]) == ("INVEST", 0, 0.5)
    assert tx["amount"] == pytest.approx(5.0, rel=R)
    assert tx["outside_flow"] == pytest.approx(5.0, rel=R)


def test_divest_sells_units_at_the_vwap_and_scales_the_basis():
    # Size levels (0.25, 1.0). Bank 0 holds 2 units bought at 8 (basis 16); DIVEST 0.25:
    # 0.5 unit sold (lambda 0.5): price 10 - 0.25 = 9.75, fill 9.875 -> cash 14.9375,
    # units 1.5, basis 16 * 0.75 = 12, outside -4.9375. Repricing halves the displacement:
    # 10 - 0.125 = 9.875.
    p = _p(impact=0.5, sizes=(0.25, 1.0))
    s = _s(p, basis=[[16.0], [30.0], [0.0]])
    s2, out = run(s, p, acts(p, b0=p.layout.encode(DIVEST, 0, 0)))
    assert s2.cash[0, 0] == pytest.approx(14.9375, rel=R)
    assert s2.units[0, 0, 0] == pytest.approx(1.5, rel=R)
    assert s2.basis[0, 0, 0] == pytest.approx(12.0, rel=R)
    assert s2.outside[0] == pytest.approx(-4.9375, rel=R)
    assert s2.price[0, 0] == pytest.approx(9.875, rel=R)
    (tx,) = events(out, "transaction")
    assert (tx["kind"], tx["target"], tx["size"]) == ("DIVEST", 0, 0.25)
    assert tx["amount"] == pytest.approx(4.9375, rel=R)
    assert tx["outside_flow"] == pytest.approx(-4.9375, rel=R)


# Masked-out actions: (books override, bank, (kind, target, size)). K = 3 slots for two
# counterparties, so every bank's slot 2 is padded. In the dead cases bank 2 is dead (and holds
# nothing); bank 0 still "lends" 3 to it, so only the death masks the BORROW.
_DEAD = {
    "alive": [True, True, False],
    "cash": [10.0, 6.0, 0.0],
    "external": [27.0, 40.0, 0.0],
    "deposits": [50.0, 50.0, 0.0],
    "loans": [[0, 8, 3], [0, 0, 0], [0, 0, 0]],
}
_INVALID = {
    "lend_padded_slot": ({}, 0, (LEND, 2, 0)),
    "borrow_padded_slot": ({}, 0, (BORROW, 2, 0)),
    "lend_no_cash": ({"cash": [10.0, 6.0, 0.0]}, 2, (LEND, 0, 0)),
    "invest_no_cash": ({"cash": [10.0, 6.0, 0.0]}, 2, (INVEST, 0, 1)),
    "borrow_no_loan": ({}, 2, (BORROW, 0, 0)),
    "divest_no_units": ({}, 2, (DIVEST, 0, 0)),
    "lend_dead_counterparty": (_DEAD, 0, (LEND, 1, 0)),
    "borrow_dead_counterparty": (_DEAD, 0, (BORROW, 1, 1)),
}


@pytest.mark.parametrize("case", sorted(_INVALID))
def test_masked_out_action_becomes_hold_and_is_flagged(case):
    over, bank, (kind, target, size) = _INVALID[case]
    p = _p(k=3)
    s = _s(p, **over)
    bad = p.layout.encode(kind, target, size)
    assert action_masks(s, p)[0, bank, bad] == 0
    s2, out = run(s, p, acts(p, **{f"b{bank}": bad}))
    assert out.invalid[0].tolist() == [i == bank for i in range(3)]
    assert out.executed[0].tolist() == [HOLD] * 3
    assert events(out, "transaction") == []
    for name in ("cash", "loans", "units", "basis", "outside"):
        assert np.array_equal(getattr(s2, name), getattr(s, name)), name


def test_an_invalid_action_does_not_stop_the_valid_ones():
    # bank 2 (cash 0) tries to LEND: HOLD, flagged; bank 0's LEND of 5 to bank 1 still happens.
    p = _p(k=3)
    s = _s(p, cash=[10.0, 6.0, 0.0], external=[30.0, 40.0, 24.0])
    a = acts(p, b0=p.layout.encode(LEND, 0, 0), b2=p.layout.encode(LEND, 0, 0))
    s2, out = run(s, p, a)
    assert out.invalid[0].tolist() == [False, False, True]
    assert out.executed[0].tolist() == [p.layout.encode(LEND, 0, 0), HOLD, HOLD]
    assert s2.cash[0].tolist() == pytest.approx([5.0, 11.0, 0.0], rel=R)
    assert [tx["bank"] for tx in events(out, "transaction")] == [0]


def test_step_outputs_keep_their_documented_dtypes_with_and_without_invalid_actions():
    # StepOutput: invalid and defaulted (B, N) bool, executed (B, N) int64, rewards float64,
    # cascade_rounds (B,) int, belief_cascade (B,) bool -- on the fast path (every action
    # valid) and on the one that turns a masked-out action into HOLD.
    p = _p(k=3)
    s = _s(p, cash=[10.0, 6.0, 0.0], external=[30.0, 40.0, 24.0])
    lend = p.layout.encode(LEND, 0, 0)
    for a in (acts(p, b0=lend), acts(p, b0=lend, b2=lend)):
        _, out = run(s, p, a)
        assert (out.invalid.dtype, out.defaulted.dtype) == (np.bool_, np.bool_)
        assert (out.executed.dtype, out.rewards.dtype) == (np.int64, np.float64)
        assert out.cascade_rounds.dtype.kind == "i" and out.belief_cascade.dtype == np.bool_
        assert out.invalid.shape == out.executed.shape == (1, 3)


def test_buying_alone_creates_no_value():
    # DESIGN: "A population that only buys, with sigma = 0, ends no richer than one that
    # holds, and earns no more reward." Impact 0.5 (lambda 0.5), sigma 0; for 5 steps every
    # bank INVESTs 0.5 of its cash, or every bank HOLDs. The buyers pay the VWAP, above the
    # fundamental, and their units are marked at the fundamental: they lose equity.
    p = _p(impact=0.5)
    invest = np.full((1, 3), p.layout.encode(INVEST, 0, 0))
    totals = {}
    for name, a in (("buy", invest), ("hold", np.zeros((1, 3), dtype=np.int64))):
        s, reward = _s(p), 0.0
        for _ in range(5):
            s, out = run(s, p, a)
            reward += out.rewards.sum()
        totals[name] = (out.balance["equity"].sum(), reward)
    assert totals["buy"][0] <= totals["hold"][0] + 1e-9
    assert totals["buy"][1] <= totals["hold"][1] + 1e-9


# ------------------------------------------------------------------ trading creates no value
# One buyer (bank 0: cash 10, no units), lambda 0.5. Buying V = 5 leaves the price at
# P1 = sqrt(105) and fills q = 5 / fill units at fill = (10 + sqrt 105) / 2. The anchor follows
# the permanent share ps of the move in logs, A = 10 (P1 / 10)^ps; the fundamental stays 10.
# Repricing (sigma 0) leaves P2 = A + (P1 - A) * decay. Selling the q units back fills at
# P2 - lambda q / 2 = P2 - (P1 - 10) / 2, so the round trip's cash gain is
#   q (P2 - lambda q / 2) - q (10 + lambda q / 2) = q (P2 - P1) = -q (P1 - A) (1 - decay) <= 0.
FILL1 = (10.0 + np.sqrt(105.0)) / 2.0
Q = 5.0 / FILL1
P1 = np.sqrt(105.0)


def _one_buyer(half_life: float, ps: float):
    p = params(
        config(
            n=2,
            markets=[market(impact=0.5, half_life=half_life, permanent_share=ps)],
        )
    )
    return p, state(p, cash=[10.0, 10.0], units=[[0.0], [1.0]], external=[10.0, 10.0])


@pytest.mark.parametrize("ps", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("half_life", [1e6, 0.5])
def test_a_round_trip_never_gains_cash(half_life, ps):
    p, s = _one_buyer(half_life, ps)
    s, _ = run(s, p, acts(p, b0=p.layout.encode(INVEST, 0, 0)))
    assert s.units[0, 0, 0] == pytest.approx(Q, rel=R)
    s, _ = run(s, p, acts(p, b0=p.layout.encode(DIVEST, 0, 1)))
    assert s.units[0, 0, 0] == 0.0
    decay = 0.5 ** (1.0 / half_life)
    anchor = 10.0 * (P1 / 10.0) ** ps
    gain = s.cash[0, 0] - 10.0
    assert gain == pytest.approx(-Q * (P1 - anchor) * (1.0 - decay), rel=1e-6, abs=1e-13)
    assert gain <= 1e-13


@pytest.mark.parametrize("ps", [0.0, 0.5, 1.0])
def test_buying_never_marks_the_units_above_the_cash_spent(ps):
    # Marks at min(P, F) = F = 10 whatever the permanent share (it moves only the anchor): the
    # buyer's equity changes by q 10 - 5 = q (10 - fill) = -lambda q^2 / 2; bank 1's unit
    # keeps its mark.
    p, s = _one_buyer(1.0, ps)
    before = s.equity()[0]
    s2, out = run(s, p, acts(p, b0=p.layout.encode(INVEST, 0, 0)))
    change = out.balance["equity"][0] - before
    assert change[0] == pytest.approx(-0.5 * Q * Q / 2.0, rel=1e-9, abs=1e-13)
    assert change[1] == pytest.approx(0.0, abs=1e-13)
    assert change[0] <= 1e-13


# ------------------------------------------------------- a call's shortfall against TOL = 1e-9
# Two banks; bank 0 lent ``lent`` to bank 1 and calls all of it (BORROW slot 0, size 1.0).
# Bank 1 has ``cash`` and no units (nothing to sell); external 60 against deposits 50 keeps it
# solvent. It pays its cash: shortfall = lent - cash. It is illiquid (defaults) only if the
# shortfall exceeds TOL * max(1, due). The partial payment divides paid by due for the debtor
# only: no 0 / 0 for the banks owed nothing (a RuntimeWarning fails these tests).
def _call_all(lent: float, cash: float):
    p = params(config(n=2))
    s = state(
        p,
        cash=[0.0, cash],
        loans=[[0, lent], [0, 0]],
        external=[10.0, 60.0],
        deposits=[0.0, 50.0],
    )
    return run(s, p, acts(p, b0=p.layout.encode(BORROW, 0, 1)))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_call_short_by_less_than_tol_times_due_is_paid():
    # due 100, cash 100 - 1e-8: short 1e-8 <= 1e-9 * 100. Bank 1 stays alive; bank 0
    # collects its cash, 1e-8 stays lent.
    s2, out = _call_all(100.0, 100.0 - 1e-8)
    assert not out.defaulted.any() and s2.alive[0].all()
    assert s2.cash[0].tolist() == pytest.approx([100.0 - 1e-8, 0.0], rel=R, abs=1e-15)
    assert s2.loans[0, 0, 1] == pytest.approx(1e-8, rel=1e-6)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_call_short_by_exactly_tol_is_paid():
    # due 2 TOL, cash TOL: short TOL = TOL * max(1, 2 TOL), not more: no default.
    tol = 1e-9
    _s2, out = _call_all(2.0 * tol, tol)
    assert not out.defaulted.any()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_call_short_by_more_than_tol_is_illiquid():
    # due 1, cash 1 - 1.5e-9: short 1.5e-9 > 1e-9 * max(1, 1): bank 1 defaults, illiquid.
    _s2, out = _call_all(1.0, 1.0 - 1.5e-9)
    assert out.defaulted[0].tolist() == [False, True]
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"]) == (1, "illiquid")
