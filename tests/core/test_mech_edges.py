"""Edge cases of interest, margin and the reward terms, at the exact thresholds and scales where
a comparison or a floor decides the outcome. Numbers worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import REWARD, config, events, market, params, run, state

from rudra_env.core import StepRecord, balance_sheet
from rudra_env.core.arrays import TOL
from rudra_env.core.margin import margin_calls
from rudra_env.core.reward import utility_terms

R = 1e-12


# --- interest: the illiquidity test ``due - paid > TOL * max(1, due)`` ---------------------


def test_interest_shortfalls_against_the_relative_tolerance_in_one_world():
    # Rate 0.01; bank 0 lent 100 to bank 1, 1000 to bank 2 and 100 to bank 3, so they owe
    # 1, 10 and 1 (0.01 * 100 = 1.0 and 0.01 * 1000 = 10.0 exactly). None holds units, so
    # each pays min(due, cash):
    #   bank 1: cash 1 - 1.5e-9, short 1.5e-9 > TOL * max(1, 1) = 1e-9  -> illiquid, defaults;
    #   bank 2: cash 10 - 1e-9, short ~1.0e-9 <= TOL * 10 = 1e-8         -> pays, survives;
    #   bank 3: cash 5, pays 1 in full                                   -> survives.
    # Everybody is solvent (external 2000 each against deposits 100).
    p = params(config(n=4, interest_rate=0.01))
    s = state(
        p,
        cash=[5.0, 1.0 - 1.5e-9, 10.0 - 1e-9, 5.0],
        loans=[[0, 100, 1000, 100], [0] * 4, [0] * 4, [0] * 4],
        external=[10.0, 2000.0, 2000.0, 2000.0],
        deposits=[0.0, 100.0, 100.0, 100.0],
    )
    assert 10.0 - s.cash[0, 2] > TOL / 10.0  # the shortfall a 1/max(1, due) scale would flag
    s2, out = run(s, p)
    assert out.defaulted[0].tolist() == [False, True, False, False]
    (d,) = events(out, "default")
    assert (d["bank"], d["cause"]) == (1, "illiquid")


def test_interest_shortfall_of_exactly_the_tolerance_is_paid():
    # Rate 1e-9 on a loan of 1: bank 1 owes 1e-9 == TOL and has no cash: short by exactly
    # TOL * max(1, 1e-9) = TOL, which is not more than the tolerance: no default.
    p = params(config(n=2, interest_rate=1e-9))
    s = state(p, cash=[1.0, 0.0], loans=[[0, 1.0], [0, 0]], external=[0.0, 10.0])
    assert p.interest_rate * 1.0 == TOL
    _, out = run(s, p)
    assert not out.defaulted.any()
    assert events(out, "default") == []


# --- margin: only gaps above TOL are called ----------------------------------------------


def test_margin_gap_of_exactly_the_tolerance_is_not_called():
    # z = 1, sigma = 0.5, vol2 = sigma^2 (vol_t = 0): rate 0.5 per unit of value, price 10.
    #   bank 0: 2e-10 units, no cash: req = 2e-10 * 10 * 0.5 = 1e-9 = TOL: gap == TOL, no call;
    #   bank 1: 1 unit, cash 1: req 5, gap 4 > TOL: called.
    p = params(config(n=2, markets=[market(volatility=0.5)], margin={"enabled": True, "z": 1.0}))
    s = state(p, cash=[0.0, 1.0], units=[[2e-10], [1.0]], external=[10.0, 10.0])
    rec = StepRecord(step=np.array([1]))
    margin_calls(s, p, rec, s.vol2.copy())
    cols = rec.per_bank["margin_call"]
    assert cols["bank"].tolist() == [1]
    assert cols["requirement"][0] == pytest.approx(5.0, rel=R)
    assert cols["shortfall"][0] == pytest.approx(4.0, rel=R)
    assert s.units[0, 0, 0] == 2e-10  # bank 0 kept its position


# --- reward terms at scales below one ----------------------------------------------------


def _small(min_capital_ratio: float = 0.04):
    # bank 0 is smaller than one unit everywhere: cash 0.01, external 0.59, deposits 0.57:
    # assets 0.6, liabilities 0.57, equity 0.03 (prev 0.02, E0 0.5, target 10).
    # bank 1: cash 1, external 9, deposits 5: assets 10, equity 5 (prev 5, E0 5, target 10).
    p = params(config(n=2, reward={**REWARD, "min_capital_ratio": min_capital_ratio}))
    s = state(
        p,
        cash=[0.01, 1.0],
        external=[0.59, 9.0],
        deposits=[0.57, 5.0],
        equity0=[0.5, 5.0],
        equity_prev=[0.02, 5.0],
        target_leverage=10.0,
    )
    return s, p


def test_reward_terms_of_a_bank_smaller_than_one_unit():
    # bank 0: revenue   = (0.03 - 0.02) / 0.5 = 0.02 (E0 0.5 is not floored to 1);
    #         risk      = 0 (no loans, no units);
    #         liquidity = 0.05 - 0.01 / 0.57 (liabilities 0.57 not floored to 1);
    #         regulatory = 0.6 / 0.03 / 10 - 1 = 1, capital ratio 0.03 / 0.6 = 0.05 >= 0.04
    #                      adds nothing (assets 0.6 not floored to 1, where 0.03 < 0.04 would).
    # bank 1: revenue 0; liquidity 0.05 - 1/5 < 0 -> 0; leverage 2 < 10 -> 0; ratio 0.5 -> 0.
    s, p = _small()
    t = utility_terms(s, balance_sheet(s), s.equity_prev, p)
    assert t["revenue"][0].tolist() == pytest.approx([0.02, 0.0], rel=1e-9, abs=1e-15)
    assert t["risk"][0].tolist() == [0.0, 0.0]
    assert t["liquidity"][0].tolist() == pytest.approx([0.05 - 0.01 / 0.57, 0.0], rel=1e-9)
    assert t["regulatory"][0].tolist() == pytest.approx([1.0, 0.0], rel=1e-9)


def test_zero_minimum_capital_ratio_switches_the_capital_term_off():
    # min_capital_ratio 0: Regulatory is the leverage term alone (no 0 / 0): 1 and 0.
    s, p = _small(min_capital_ratio=0.0)
    t = utility_terms(s, balance_sheet(s), s.equity_prev, p)
    assert t["regulatory"][0].tolist() == pytest.approx([1.0, 0.0], rel=1e-9)


# --- the scenario's name on the step_start event -----------------------------------------


def test_step_start_names_the_scenario():
    p = params(config(n=2, scenario={"name": "quiet-days"}))
    assert p.scenario_name == "quiet-days"
    s = state(p, cash=[1.0, 1.0])
    _, out = run(s, p)
    (ev,) = events(out, "step_start")
    assert ev == {"scenario": "quiet-days"}
