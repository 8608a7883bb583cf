"""Step 1: scheduled shocks and interventions act on their steps and not before or after.

Each test steps a quiet world (no volatility, interest or margin; price impact only where a
forced sale is pinned, lambda 0.5 with half-life 1) a few times with HOLD and checks the books
after each step. Steps are 1-based: the first call is step 1. A market crash moves the market
and the fundamental price together.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, default_charge, events, market, params, run, state

from rudra_env.actions import BORROW, LEND
from rudra_env.core.scenario import add_capital, funding_frozen

R = 1e-12
FP = 1e-10  # where the core solves a fixed point (a pro-rata sale)


def _steps(s, p, n: int, actions=None):
    """[(state, out)] after each of n steps (the same actions every step)."""
    out = []
    for _ in range(n):
        s, o = run(s, p, actions)
        out.append((s, o))
    return out


def _scenario(shocks=(), interventions=(), **over):
    return {
        "scenario": {"name": "hand", "shocks": list(shocks), "interventions": list(interventions)},
        **over,
    }


def test_market_crash_on_its_steps_and_named_market_only():
    # magnitude 0.19 over 2 steps from step 2: per step 1 - 0.81^(1/2) = 0.1, on market A only.
    # Bank 0 holds 1 unit of each: A 10 -> 10 -> 9 -> 8.1 -> 8.1; B stays 10.
    # Shock losses: 1 * (10 - 9) = 1 at step 2, 1 * (9 - 8.1) = 0.9 at step 3.
    crash = {"type": "market_crash", "magnitude": 0.19, "start": 2, "duration": 2, "targets": ["A"]}
    p = params(config(markets=[market("A"), market("B")], **_scenario([crash])))
    s = state(p, cash=[1.0] * 3, units=[[1.0, 1.0], [0, 0], [0, 0]], external=[10.0] * 3)
    got = _steps(s, p, 4)
    assert [st.price[0, 0] for st, _ in got] == pytest.approx([10.0, 9.0, 8.1, 8.1], rel=R)
    assert [st.price[0, 1] for st, _ in got] == [10.0] * 4
    assert [st.fundamental[0, 0] for st, _ in got] == pytest.approx([10.0, 9.0, 8.1, 8.1], rel=R)
    shocks = [events(o, "shock") for _, o in got]
    assert [len(e) for e in shocks] == [0, 1, 1, 0]
    assert shocks[1][0]["kind"] == "market_crash"
    assert shocks[1][0]["loss"] == pytest.approx(1.0, rel=R)
    assert shocks[2][0]["loss"] == pytest.approx(0.9, rel=R)


def test_bank_capital_hit_on_its_step_and_bank_only():
    # magnitude 0.5 at step 2 on bank 1: external 40 -> 20 (loss 20); banks 0 and 2 untouched.
    hit = {"type": "bank_capital_hit", "magnitude": 0.5, "start": 2, "targets": [1]}
    p = params(config(**_scenario([hit])))
    s = state(p, cash=[1.0] * 3, external=[40.0] * 3)
    got = _steps(s, p, 3)
    assert [st.external[0].tolist() for st, _ in got] == [
        [40.0, 40.0, 40.0],
        [40.0, 20.0, 40.0],
        [40.0, 20.0, 40.0],
    ]
    assert [len(events(o, "shock")) for _, o in got] == [0, 1, 0]
    assert events(got[1][1], "shock")[0]["loss"] == pytest.approx(20.0, rel=R)


def test_deposit_run_paid_from_cash_then_forced_sale():
    # magnitude 0.5 at step 2 on bank 1: deposits 40 -> demand 20. Cash 12 pays 12; 8 is
    # raised by selling q units through the auction (impact 0.5, lambda 0.5):
    # q (10 - 0.5 q / 2) = 8 leaves the price at sqrt(100 - 2 * 0.5 * 8) = sqrt 92, so
    # q = (10 - sqrt 92) / 0.5 and units 2 - q = 2 sqrt 92 - 18. Deposits 20. Outside: +20
    # paid out, -8 for the units bought = +12. Repricing halves the displacement each step:
    # step 2 ends at 10 + (sqrt 92 - 10) / 2, step 3 at 10 + (sqrt 92 - 10) / 4.
    run_ = {"type": "deposit_run", "magnitude": 0.5, "start": 2, "targets": [1]}
    p = params(config(markets=[market(impact=0.5)], **_scenario([run_])))
    s = state(
        p,
        cash=[5.0, 12.0, 5.0],
        units=[[0.0], [2.0], [0.0]],
        external=[10.0, 30.0, 10.0],
        deposits=[5.0, 40.0, 5.0],
    )
    got = _steps(s, p, 3)
    r92 = np.sqrt(92.0)
    assert [st.deposits[0, 1] for st, _ in got] == pytest.approx([40.0, 20.0, 20.0], rel=R)
    st2, out2 = got[1]
    assert st2.cash[0].tolist() == pytest.approx([5.0, 0.0, 5.0], rel=FP, abs=1e-12)
    assert st2.units[0, 1, 0] == pytest.approx(2.0 * r92 - 18.0, rel=FP)
    assert st2.outside[0] == pytest.approx(12.0, rel=FP)
    assert [st.price[0, 0] for st, _ in got] == pytest.approx(
        [10.0, 10.0 + (r92 - 10.0) / 2.0, 10.0 + (r92 - 10.0) / 4.0], rel=FP
    )
    (fs,) = events(out2, "forced_sale")
    assert (fs["bank"], fs["reason"]) == (1, "deposit_run")
    assert fs["sold"] == pytest.approx(8.0, rel=FP)
    (sh,) = events(out2, "shock")
    assert sh["kind"] == "deposit_run" and sh["outside_flow"] == pytest.approx(20.0, rel=R)
    assert [len(events(o, "shock")) for _, o in got] == [0, 1, 0]
    assert all(st.alive[0].all() for st, _ in got)


def test_runs_on_two_banks_sell_in_one_auction_at_one_price():
    # magnitude 0.5 at step 1 on banks 1 and 2: demands 20 and 15 against cash 12 and 5, so
    # they raise 8 and 10 by selling, together, 18 / fill units (lambda 0.5): the price goes
    # to sqrt(100 - 2 * 0.5 * 18) = sqrt 82 and both fill at (10 + sqrt 82) / 2: bank 1 sells
    # 8 / fill of its 2 units, bank 2 10 / fill of its 3.
    run_ = {"type": "deposit_run", "magnitude": 0.5, "start": 1, "targets": [1, 2]}
    p = params(config(markets=[market(impact=0.5)], **_scenario([run_])))
    s = state(
        p,
        cash=[5.0, 12.0, 5.0],
        units=[[0.0], [2.0], [3.0]],
        external=[10.0, 30.0, 30.0],
        deposits=[5.0, 40.0, 30.0],
    )
    s2, out = run(s, p)
    fill = (10.0 + np.sqrt(82.0)) / 2.0
    assert s2.units[0, :, 0].tolist() == pytest.approx(
        [0.0, 2.0 - 8.0 / fill, 3.0 - 10.0 / fill], rel=FP, abs=1e-15
    )
    assert [e["sold"] for e in events(out, "forced_sale")] == pytest.approx([8.0, 10.0], rel=FP)
    assert s2.deposits[0].tolist() == pytest.approx([5.0, 20.0, 15.0], rel=R)
    assert s2.outside[0] == pytest.approx(35.0 - 18.0, rel=FP)


def test_unpaid_deposit_run_is_a_liquidity_default():
    # bank 1: cash 2, nothing to sell, demand 20: pays 2 (deposits 40 - 2 = 38) and defaults
    # (cause illiquid) at step 2 with equity 60 - 38 = 22. Its estate (external 60 at alpha 1)
    # pays the 38 in full: residual 22; outside flow 38 + 22 - 60 = 0; the run's shock event
    # moved 2 to the outside.
    run_ = {"type": "deposit_run", "magnitude": 0.5, "start": 2, "targets": [1]}
    p = params(config(**_scenario([run_])))
    s = state(p, cash=[5.0, 2.0, 5.0], external=[10.0, 60.0, 10.0], deposits=[5.0, 40.0, 5.0])
    got = _steps(s, p, 2)
    assert [o.defaulted[0, 1] for _, o in got] == [False, True]
    (d,) = events(got[1][1], "default")
    assert (d["bank"], d["cause"]) == (1, "illiquid")
    assert d["equity"] == pytest.approx(22.0, rel=R)
    assert d["residual"] == pytest.approx(22.0, rel=R)
    assert d["outside_flow"] == pytest.approx(0.0, abs=1e-12)
    assert events(got[1][1], "shock")[0]["outside_flow"] == pytest.approx(2.0, rel=R)


def test_funding_freeze_blocks_lending_on_its_steps_only():
    # freeze at step 2 for 1 step: bank 0's LEND of 0.5 * cash is valid at steps 1 and 3 only;
    # bank 2's BORROW (calling 0.5 of its loan of 1000 to bank 1, which pays from cash) is not
    # blocked: 1000 -> 500 -> 250 -> 125. Bank 0 lends 4 at step 1 and 0.5 * 4 = 2 at step 3.
    freeze = {"type": "funding_freeze", "magnitude": 0.0, "start": 2}
    p = params(config(**_scenario([freeze])))
    s = state(
        p,
        cash=[8.0, 1000.0, 10.0],
        loans=[[0, 0, 0], [0, 0, 0], [0, 1000, 0]],
        external=[10.0, 10.0, 10.0],
    )
    a = np.array([[p.layout.encode(LEND, 0, 0), 0, p.layout.encode(BORROW, 1, 0)]])
    got = _steps(s, p, 3, a)
    assert [o.invalid[0].tolist() for _, o in got] == [
        [False, False, False],
        [True, False, False],
        [False, False, False],
    ]
    assert [st.loans[0, 0, 1] for st, _ in got] == [4.0, 4.0, 4.0 + 2.0]
    assert [st.loans[0, 2, 1] for st, _ in got] == [500.0, 250.0, 125.0]
    assert [len(events(o, "shock")) for _, o in got] == [0, 1, 0]


def test_capital_injection_on_its_step_only():
    # 5 of cash to bank 0 at step 2: cash 1 -> 1 -> 6 -> 6; outside -5; capital_added event.
    iv = {"type": "capital_injection", "step": 2, "bank": 0, "amount": 5.0}
    p = params(config(**_scenario(interventions=[iv])))
    s = state(p, cash=[1.0] * 3, external=[10.0] * 3)
    got = _steps(s, p, 3)
    assert [st.cash[0, 0] for st, _ in got] == [1.0, 6.0, 6.0]
    assert [st.cash[0, 1] for st, _ in got] == [1.0, 1.0, 1.0]
    assert [st.outside[0] for st, _ in got] == [0.0, -5.0, -5.0]
    added = [events(o, "capital_added") for _, o in got]
    assert [len(e) for e in added] == [0, 1, 0]
    assert added[1][0] == {"bank": 0, "amount": 5.0, "outside_flow": -5.0}


def test_bank_removal_on_its_step_only():
    # bank 1 is resolved at step 2 (cause removed): alive before, dead from then on.
    iv = {"type": "remove_bank", "step": 2, "bank": 1}
    p = params(config(**_scenario(interventions=[iv])))
    s = state(p, cash=[1.0] * 3, external=[10.0] * 3)
    got = _steps(s, p, 3)
    assert [st.alive[0].tolist() for st, _ in got] == [
        [True, True, True],
        [True, False, True],
        [True, False, True],
    ]
    assert [o.defaulted[0].tolist() for _, o in got] == [
        [False, False, False],
        [False, True, False],
        [False, False, False],
    ]
    assert got[1][0].default_step[0].tolist() == [-1, 2, -1]
    assert [len(events(o, "bank_removed")) for _, o in got] == [0, 1, 0]
    (d,) = events(got[1][1], "default")
    assert (d["bank"], d["cause"]) == (1, "removed")
    assert got[1][1].rewards[0, 1] == pytest.approx(default_charge(p, 2), rel=1e-12)
    assert got[2][1].rewards[0, 1] == 0.0


def test_a_later_shock_acts_while_an_earlier_one_waits():
    # The crash is listed first but starts at step 3; the capital hit (0.5 on bank 0) acts at
    # step 1: external 40 -> 20, the price stays 10.
    crash = {"type": "market_crash", "magnitude": 0.5, "start": 3}
    hit = {"type": "bank_capital_hit", "magnitude": 0.5, "start": 1, "targets": [0]}
    p = params(config(**_scenario([crash, hit])))
    s = state(p, cash=[1.0] * 3, external=[40.0] * 3)
    s2, out = run(s, p)
    assert s2.external[0].tolist() == [20.0, 40.0, 40.0]
    assert s2.price[0, 0] == 10.0
    (sh,) = events(out, "shock")
    assert sh["kind"] == "bank_capital_hit" and sh["loss"] == pytest.approx(20.0, rel=R)


# Deposit run (magnitude 0.5 on bank 1 at step 1, so the demand is half its deposits) against
# TOL = 1e-9: bank 1 has no units, so it pays its cash; it defaults (illiquid) only if the
# shortfall exceeds TOL * max(1, demand). External 160 keeps it solvent.
def _run_on_bank_1(deposits: float, cash: float):
    run_ = {"type": "deposit_run", "magnitude": 0.5, "start": 1, "targets": [1]}
    p = params(config(**_scenario([run_])))
    s = state(p, cash=[5.0, cash, 5.0], external=[10.0, 160.0, 10.0], deposits=[0.0, deposits, 0.0])
    return run(s, p)


def test_a_run_short_by_less_than_tol_times_demand_is_paid():
    # demand 100, cash 100 - 1e-8: short 1e-8 <= 1e-7. Bank 1 stays; deposits 200 - cash.
    s2, out = _run_on_bank_1(200.0, 100.0 - 1e-8)
    assert not out.defaulted.any()
    assert s2.deposits[0, 1] == pytest.approx(100.0 + 1e-8, rel=R)


def test_a_run_short_by_exactly_tol_is_paid():
    # demand 2 TOL, cash TOL: short TOL, not more than TOL * max(1, 2 TOL).
    tol = 1e-9
    _s2, out = _run_on_bank_1(4.0 * tol, tol)
    assert not out.defaulted.any()


def test_a_run_short_by_more_than_tol_is_illiquid():
    # demand 1, cash 1 - 1.5e-9: short 1.5e-9 > 1e-9 * max(1, 1): bank 1 defaults.
    _s2, out = _run_on_bank_1(2.0, 1.0 - 1.5e-9)
    assert out.defaulted[0].tolist() == [False, True, False]
    assert events(out, "default")[0]["cause"] == "illiquid"


def test_funding_frozen_by_any_of_several_freezes():
    # Freezes on steps 1-2 and on step 5: the step being taken is t + 1.
    freezes = [
        {"type": "funding_freeze", "magnitude": 0.0, "start": 1, "duration": 2},
        {"type": "funding_freeze", "magnitude": 0.0, "start": 5},
    ]
    p = params(config(**_scenario(freezes)))
    frozen = [funding_frozen(state(p, cash=[1.0] * 3, t=t), p)[0] for t in range(6)]
    assert frozen == [True, True, False, False, True, False]


def test_add_capital_without_worlds_reaches_every_world_where_the_bank_lives():
    # Two worlds (N = 3); bank 0 is dead (and empty) in world 1: 5 goes to it in world 0 only.
    p = params(config())
    s = state(p, cash=[1.0] * 3, external=[10.0] * 3).take(np.array([0, 0]))
    s.alive[1, 0] = False
    s.cash[1, 0] = 0.0
    s.external[1, 0] = 0.0
    add_capital(s, 0, 5.0)
    assert s.cash.tolist() == [[6.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    assert s.outside.tolist() == [-5.0, 0.0]


def test_a_later_intervention_acts_while_an_earlier_one_waits():
    # The injection listed first is for step 3; the one listed second (5 to bank 1) is for
    # step 1 and happens: cash 1 -> 6, outside -5.
    ivs = [
        {"type": "capital_injection", "step": 3, "bank": 0, "amount": 7.0},
        {"type": "capital_injection", "step": 1, "bank": 1, "amount": 5.0},
    ]
    p = params(config(**_scenario(interventions=ivs)))
    s2, out = run(state(p, cash=[1.0] * 3, external=[10.0] * 3), p)
    assert s2.cash[0].tolist() == [1.0, 6.0, 1.0]
    assert s2.outside[0] == -5.0
    assert events(out, "capital_added") == [{"bank": 1, "amount": 5.0, "outside_flow": -5.0}]
