"""Step 9: the utility ``U = Revenue - rho * Risk - lam * Liquidity - gamma * Regulatory``, each
term and coefficient pinned by hand, plus the default penalty and 0 for the already dead.

Coefficients are distinct so that a swapped or dropped one shows: rho 0.3, lam 2, gamma 0.7,
liquidity floor 0.05, minimum capital ratio 0.04, default penalty 7, term cap 3; VaR z = 2,
sigma = 0.5. One step then costs at most c = 0.3 * 3 + 2 * 0.05 + 2 * 0.7 * 3 = 5.2.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import REWARD, config, market, params, run, state

from rudra_env.core import balance_sheet, utility
from rudra_env.core.reward import utility_terms

R = 1e-12
STEP_COST_CAP = 0.3 * 3.0 + 2.0 * 0.05 + 2.0 * 0.7 * 3.0


def _p():
    return params(config(markets=[market(volatility=0.5)], margin={"z": 2.0}, reward=REWARD))


def _s(p):
    # Slots: 0 -> [1, 2], 1 -> [0, 2], 2 -> [0, 1].
    #   bank 0: cash 1, lent 10 to bank 1, 2 units (20), external 69; deposits 80, owes 5 to
    #           bank 2: assets 100, liabilities 85, equity 15 (prev 16, E0 20, target 5);
    #           beliefs about banks 1, 2: 0.3, 0.1.
    #   bank 1: cash 3, external 47; deposits 39, owes 10: assets 50, liabilities 49, equity 1
    #           (prev 1, E0 10, target 10).
    #   bank 2: cash 0.5, lent 5 to bank 0, external 194.5; deposits 199.9: assets 200, equity
    #           0.1 (prev 0.1, E0 4, target 10); belief about bank 0: 0.4.
    return state(
        p,
        cash=[1.0, 3.0, 0.5],
        loans=[[0, 10, 0], [0, 0, 0], [5, 0, 0]],
        units=[[2.0], [0.0], [0.0]],
        external=[69.0, 47.0, 194.5],
        deposits=[80.0, 39.0, 199.9],
        belief=[[0.3, 0.1], [0.2, 0.2], [0.4, 0.2]],
        equity0=[20.0, 10.0, 4.0],
        equity_prev=[16.0, 1.0, 0.1],
        target_leverage=[5.0, 10.0, 10.0],
    )


# Terms by hand:
#   revenue    = (E - E_prev) / E0:   (15 - 16) / 20 = -0.05;  0;  0
#   risk       = (sum_k lent_k * belief_k + z * sigma * value) / E0:
#                (10 * 0.3 + 2 * 0.5 * 20) / 20 = 23 / 20;  0;  5 * 0.4 / 4 = 0.5
#   liquidity  = max(0, 0.05 - cash / liabilities):
#                0.05 - 1/85;  3/49 > 0.05 -> 0;  0.05 - 0.5/199.9
#   regulatory = clip(assets / equity / target - 1, 0, cap) + min(cap, max(0, 0.04 - E/A) / 0.04):
#                100/15/5 - 1 = 1/3 (E/A = 0.15);  50/1/10 - 1 = 4 -> capped at 3, plus
#                (0.04 - 0.02)/0.04 = 0.5;  2000/10 - 1 -> capped at 3, plus
#                (0.04 - 0.0005)/0.04 = 0.9875
TERMS = {
    "revenue": [-0.05, 0.0, 0.0],
    "risk": [23.0 / 20.0, 0.0, 0.5],
    "liquidity": [0.05 - 1.0 / 85.0, 0.0, 0.05 - 0.5 / 199.9],
    "regulatory": [1.0 / 3.0, 3.5, 3.9875],
}


def _u(i: int) -> float:
    t = {k: v[i] for k, v in TERMS.items()}
    return t["revenue"] - 0.3 * t["risk"] - 2.0 * t["liquidity"] - 0.7 * t["regulatory"]


def test_each_utility_term_by_hand():
    p = _p()
    s = _s(p)
    bs = balance_sheet(s)
    assert bs["equity"][0].tolist() == pytest.approx([15.0, 1.0, 0.1], rel=R)
    terms = utility_terms(s, bs, s.equity_prev, p)
    for name, want in TERMS.items():
        assert terms[name][0].tolist() == pytest.approx(want, rel=R, abs=1e-12), name


def test_utility_weighs_the_terms_by_their_coefficients():
    p = _p()
    s = _s(p)
    u = utility(s, balance_sheet(s), s.equity_prev, p, np.zeros((1, 3), dtype=bool))
    assert u[0].tolist() == pytest.approx([_u(0), _u(1), _u(2)], rel=R)


def test_default_penalty_and_zero_for_the_already_dead():
    # bank 1 was dead before this step (0); bank 2 defaulted in it, in step t + 1 = 1 of 100:
    # the penalty 7 plus 99 steps left at c = 5.2 each; bank 0 unchanged.
    p = _p()
    s = _s(p)
    assert p.step_cost_cap == pytest.approx(STEP_COST_CAP, rel=R) == 5.2
    s.alive[0] = [True, False, False]
    now = np.array([[False, False, True]])
    u = utility(s, balance_sheet(s), s.equity_prev, p, now)
    assert u[0].tolist() == pytest.approx([_u(0), 0.0, -(7.0 + 99 * 5.2)], rel=R)
    s.t[:] = 99  # defaulting in the last step (100 of 100) leaves no step: the penalty alone
    u = utility(s, balance_sheet(s), s.equity_prev, p, now)
    assert u[0, 2] == pytest.approx(-7.0, rel=R)


def test_step_rewards_are_the_utility_of_the_new_state():
    # No loans (beliefs do not enter). sigma 0.5 with eps 0.25: the log return is exactly 0.
    #   bank 0: cash 2, 3 units (30), external 68, deposits 90: equity 10 (prev 12, E0 8,
    #           target 8). revenue (10 - 12) / 8 = -0.25; risk 2 * 0.5 * 30 / 8 = 3.75 -> cap 3;
    #           liquidity 0.05 - 2/90; regulatory 100/10/8 - 1 = 0.25 (E/A = 0.1 >= 0.04).
    #   bank 1: cash 10, external 10, no debt, equity = prev: every term 0.
    p = params(config(n=2, markets=[market(volatility=0.5)], margin={"z": 2.0}, reward=REWARD))
    s = state(
        p,
        cash=[2.0, 10.0],
        units=[[3.0], [0.0]],
        external=[68.0, 10.0],
        deposits=[90.0, 0.0],
        equity0=[8.0, 20.0],
        equity_prev=[12.0, 20.0],
        target_leverage=[8.0, 8.0],
    )
    s2, out = run(s, p, eps=0.25)
    want = -0.25 - 0.3 * 3.0 - 2.0 * (0.05 - 2.0 / 90.0) - 0.7 * 0.25
    assert out.rewards[0].tolist() == pytest.approx([want, 0.0], rel=R, abs=1e-15)
    assert s2.equity_prev[0].tolist() == pytest.approx([10.0, 20.0], rel=R)


def test_positions_are_valued_at_the_lower_of_price_and_fundamental():
    # Bank 0's 2 units: price 10 above a fundamental of 8 -> marked at 8: market value 16,
    # equity 15 - 4 = 11, risk (10 * 0.3 + 2 * 0.5 * 16) / 20 = 19 / 20. A fundamental of 12
    # above the price changes nothing (marked at 10).
    p = _p()
    s = _s(p)
    s.fundamental[0, 0] = 8.0
    bs = balance_sheet(s)
    assert bs["equity"][0, 0] == pytest.approx(11.0, rel=R)
    assert utility_terms(s, bs, s.equity_prev, p)["risk"][0, 0] == pytest.approx(0.95, rel=R)
    s.fundamental[0, 0] = 12.0
    bs = balance_sheet(s)
    assert bs["equity"][0, 0] == pytest.approx(15.0, rel=R)
    assert utility_terms(s, bs, s.equity_prev, p)["risk"][0, 0] == pytest.approx(1.15, rel=R)
