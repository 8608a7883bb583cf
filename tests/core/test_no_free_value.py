"""Properties a learner would exploit if they failed: trading alone creates no value, and nobody
outside the banks pays for a default — on every preset."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import env_config_cases

from rudra_env.actions import INVEST
from rudra_env.config import EnvConfig
from rudra_env.core import Params, StepNoise, balance_sheet, initial_state, step

WORLDS, STEPS = 16, 20


def _quiet(cfg: EnvConfig) -> EnvConfig:
    """The preset's network, banks and markets with every market's volatility and drift at 0
    and no scheduled shocks: whatever differs between two populations is their trading alone
    (under a shock, buyers can genuinely save fire sellers — and the system — from defaults)."""
    markets = [
        {**{f: getattr(m, f) for f in m.__dataclass_fields__}, "volatility": 0.0, "drift": 0.0}
        for m in cfg.markets
    ]
    quiet = {"name": "quiet", "shocks": [], "interventions": []}
    return cfg.with_overrides({"markets": markets, "scenario": quiet})


def _episode(cfg: EnvConfig, actions_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(final system equity per world, total reward per world, initial equity per world)."""
    p = Params.from_config(cfg)
    s = initial_state(cfg, np.random.default_rng(3), worlds=WORLDS)
    e0 = s.equity0.sum(axis=1)
    noise = StepNoise(np.zeros((WORLDS, p.M)), np.full((WORLDS, p.N, p.K), 0.5, dtype=np.float32))
    total = np.zeros(WORLDS)
    for _ in range(STEPS):
        s, out = step(s, actions_of(p), p, noise=noise, inplace=True)
        total += out.rewards.sum(axis=1)
    equity = np.where(s.alive, balance_sheet(s)["equity"], 0.0).sum(axis=1)
    return equity, total, e0


@pytest.mark.parametrize("cfg", env_config_cases())
def test_a_population_that_only_buys_ends_no_richer_and_earns_no_more(cfg: EnvConfig) -> None:
    cfg = _quiet(cfg)
    hold_eq, hold_reward, e0 = _episode(cfg, lambda p: np.zeros((WORLDS, p.N), dtype=np.int64))
    buy_eq, buy_reward, _ = _episode(
        cfg, lambda p: np.full((WORLDS, p.N), p.layout.encode(INVEST, 0, p.S - 1))
    )
    assert (buy_eq <= hold_eq + 0.02 * e0).all(), (buy_eq - hold_eq) / e0
    assert buy_reward.sum() <= hold_reward.sum()


@pytest.mark.parametrize("cfg", env_config_cases())
def test_default_resolution_takes_no_money_from_outside(cfg: EnvConfig) -> None:
    """Random play (legal or not) through defaults and cascades: every failed bank's estate
    keeps a residual >= 0, pays recoveries in [0, 1] and default costs >= 0, and money is
    conserved (cash + outside constant in every world)."""
    p = Params.from_config(cfg)
    rng = np.random.default_rng(11)
    s = initial_state(cfg, rng, worlds=WORLDS)
    s.external *= rng.uniform(0.6, 1.0, s.external.shape)  # weaken some sheets: more defaults
    money = s.cash.sum(axis=1) + s.outside
    defaults = 0
    for _ in range(25):
        s, out = step(s, rng.integers(0, p.layout.n, (WORLDS, p.N)), p, rng, inplace=True)
        rows = out.record.per_bank.get("default")
        if rows is not None:
            defaults += len(rows["world"])
            scale = np.maximum(1.0, np.abs(rows["fire_sale_proceeds"]))
            assert (rows["residual"] >= -1e-9 * scale).all()
            assert (rows["default_costs"] >= -1e-12).all()
            assert ((rows["recovery"] >= 0) & (rows["recovery"] <= 1 + 1e-12)).all()
        np.testing.assert_allclose(s.cash.sum(axis=1) + s.outside, money, rtol=1e-9)
    assert defaults > 0, "the fuzz must reach defaults"
