"""Crafted cascades: one that must happen (a chain of concentrated exposures, like Allen & Gale's
ring) and one that must not (the same borrowing spread over all creditors, like their complete
network). Markets are frozen (no noise, no impact) and everybody HOLDs, so only the shock and
the default machinery act.

Hand computation (capital 10, leverage 10 -> assets 100; cash 10, market 10, the rest external):

Chain: bank i+1 lent 40 to bank i (i = 0, 1, 2). Bank 0: external 80, deposits 100 - 10 - 40 =
50. A 50% hit on its external assets (-40) leaves equity -30. Clearing: bank 0 has external
assets 10 + 10 + 40 = 60 against obligations 40 + 50 = 90, so it pays 60 (recovery 2/3) and
bank 1 loses 40/3 = 13.3 > 10: bank 1 defaults by contagion. Bank 1 holds 10 + 10 + 40 = 60 of
external assets plus 26.7 received, against 90 owed: recovery 86.7/90 and bank 2 loses
40 * 3.3/90 = 1.48 < 10: bank 2 and bank 3 survive. Cascade: {0, 1}.

Complete: bank 0 borrowed 40/3 from each of banks 1..3 and the others lend among themselves, so
each creditor loses (40/3) * (1/3) = 4.4 < 10: only bank 0 fails.
"""

from __future__ import annotations

import numpy as np
import pytest

import rudra_env
from rudra_env.config import EnvConfig


def _config(tmp_path, loans: np.ndarray, alpha: float = 1.0) -> EnvConfig:
    path = tmp_path / "exposures.csv"
    np.savetxt(path, loans, delimiter=",")
    return EnvConfig.from_dict(
        {
            "num_banks": 4,
            "max_steps": 5,
            "interest_rate": 0.0,
            "profit_booking_interval": 100,
            "topology": {"kind": "from_file", "path": str(path)},
            "banks": {
                "capital": 10.0,
                "target_leverage": 10.0,
                "risk_factor": 0.5,
                "cash_ratio": 0.1,
                "market_ratio": 0.1,
            },
            "markets": [{"name": "IDX", "volatility": 0.0, "impact": 0.0}],
            "margin": {"enabled": False},
            "contagion": {"alpha": alpha, "beta": 1.0},
            "scenario": {
                "name": "hit",
                "shocks": [
                    {"type": "bank_capital_hit", "magnitude": 0.5, "start": 1, "targets": [0]}
                ],
            },
        }
    )


def _run_one_step(cfg):
    env = rudra_env.parallel_env(cfg)
    env.reset(seed=0)
    _, rew, term, _, _ = env.step({a: 0 for a in env.agents})
    return env, rew, term


def test_chain_cascade_must_happen(tmp_path):
    loans = np.zeros((4, 4))
    loans[1, 0] = loans[2, 1] = loans[3, 2] = 40.0
    env, rew, term = _run_one_step(_config(tmp_path, loans))
    assert [a for a, t in term.items() if t] == ["bank_0", "bank_1"]
    defaults = {e.data["bank"]: e.data for e in env.last_events if e.type == "default"}
    assert defaults[0]["cause"] == "insolvent" and defaults[1]["cause"] == "contagion"
    assert defaults[0]["recovery"] == pytest.approx(60 / 90)
    assert defaults[1]["recovery"] == pytest.approx((60 + 40 * 60 / 90) / 90)
    cascades = [e for e in env.last_events if e.type == "cascade"]
    assert cascades[0].data["round"] == 1 and cascades[0].data["banks"] == [0, 1]
    # bank 2 was paid its recovery in cash: its loan to bank 1 is gone, its loss booked.
    s = env.core_state
    assert s.loans[0, 2, 1] == 0
    assert s.equity()[0, 2] == pytest.approx(10 - 40 * (1 - defaults[1]["recovery"]))
    # The default charge: the penalty plus the 4 steps left (of 5) at the largest cost of one
    # step, c = rho * cap + lam * floor + 2 * gamma * cap = 0.5 + 0.05 + 1.0 = 1.55.
    assert env.params.step_cost_cap == pytest.approx(1.55)
    assert rew["bank_0"] == rew["bank_1"] == pytest.approx(-(10.0 + 4 * 1.55))


def test_complete_network_absorbs_the_same_shock(tmp_path):
    loans = np.full((4, 4), 40.0 / 3)
    np.fill_diagonal(loans, 0.0)
    loans[0, :] = 0.0  # bank 0 only borrows, as in the chain
    env, _, term = _run_one_step(_config(tmp_path, loans))
    assert [a for a, t in term.items() if t] == ["bank_0"]
    cascades = [e for e in env.last_events if e.type == "cascade"]
    assert len(cascades) == 1 and cascades[0].data["banks"] == [0]


def test_default_costs_deepen_the_cascade(tmp_path):
    """With Rogers–Veraart costs alpha = 0.5 (on all non-interbank assets, beta = 1), a failed
    bank realises half of its 60: bank 0 pays 30 of 90 (bank 1 loses 26.7); bank 1 pays
    0.5 * 60 + 40 * 30/90 = 43.3 of 90 (bank 2 loses 40 * 46.7/90 = 20.7 > 10); bank 2 pays
    30 + 40 * 43.3/90 = 49.3 of 90 (bank 3 loses 18.1 > 10); bank 3 owes only its deposits (60)
    and pays 30 + 40 * 49.3/90 = 51.9: the whole chain falls."""
    loans = np.zeros((4, 4))
    loans[1, 0] = loans[2, 1] = loans[3, 2] = 40.0
    env, _, term = _run_one_step(_config(tmp_path, loans, alpha=0.5))
    assert all(term.values())
    rec = {e.data["bank"]: e.data["recovery"] for e in env.last_events if e.type == "default"}
    assert rec[0] == pytest.approx(30 / 90)
    assert rec[1] == pytest.approx((30 + 40 * rec[0]) / 90)
    assert rec[2] == pytest.approx((30 + 40 * rec[1]) / 90)


def test_no_shock_no_default(tmp_path):
    loans = np.zeros((4, 4))
    loans[1, 0] = loans[2, 1] = loans[3, 2] = 40.0
    cfg = _config(tmp_path, loans).with_overrides({"scenario": {"shocks": []}})
    env, _, term = _run_one_step(cfg)
    assert not any(term.values())
    assert not [e for e in env.last_events if e.type in ("default", "cascade")]
