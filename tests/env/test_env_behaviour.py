"""Termination, truncation, bad actions, controls, events and whole-episode determinism."""

from __future__ import annotations

import numpy as np
import pytest

import rudra_env
from rudra_env.actions import LEND
from rudra_env.core.events import EVENT_TYPES


def _random_episode(env, seed, steps=None):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    trace = []
    while env.agents and (steps is None or len(trace) < steps):
        acts = {}
        for a in env.agents:
            legal = np.flatnonzero(obs[a]["action_mask"])
            acts[a] = int(rng.choice(legal))
        obs, rew, term, trunc, info = env.step(acts)
        trace.append(
            (
                acts,
                {a: o["observation"].copy() for a, o in obs.items()},
                rew,
                term,
                trunc,
                env.state().copy(),
            )
        )
    return trace


def test_whole_episode_determinism():
    """Same seed and config: identical trajectories over whole episodes (every step), not just
    the first step as in PettingZoo 1.27's parallel_seed_test."""
    cfg = rudra_env.EnvConfig.from_yaml("configs/env/market_crash.yaml")
    a = _random_episode(rudra_env.parallel_env(cfg), seed=7)
    b = _random_episode(rudra_env.parallel_env(cfg), seed=7)
    assert len(a) == len(b) == cfg.max_steps or len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[0] == y[0] and x[2] == y[2] and x[3] == y[3] and x[4] == y[4]
        assert all(np.array_equal(x[1][k], y[1][k]) for k in x[1])
        assert np.array_equal(x[5], y[5])
    c = _random_episode(rudra_env.parallel_env(cfg), seed=8)
    assert any(not np.array_equal(x[5], y[5]) for x, y in zip(a, c, strict=False))


def test_event_log_is_deterministic_and_typed():
    cfg = rudra_env.EnvConfig.from_yaml("configs/env/bank_run.yaml")
    logs = []
    for _ in range(2):
        env = rudra_env.parallel_env(cfg)
        _random_episode(env, seed=3)
        logs.append([e.to_json() for e in env.event_log])
    assert logs[0] == logs[1]
    types = [e["type"] for e in map(__import__("json").loads, logs[0])]
    assert types[0] == "init" and types[-1] == "complete"
    assert set(types) <= set(EVENT_TYPES)
    assert {"step_start", "transaction", "step_end", "shock", "capital_added"} <= set(types)


def test_bad_action_raises_naming_agent_and_value():
    env = rudra_env.parallel_env(num_banks=5)
    env.reset(seed=0)
    n = env.action_space("bank_0").n
    with pytest.raises(ValueError, match=rf"bank_2 = {n} is outside.*0\.\.{n - 1}"):
        env.step({"bank_2": n})
    with pytest.raises(ValueError, match=r"bank_1 = -1"):
        env.step({"bank_1": -1})
    with pytest.raises(ValueError, match="'bank_99' is not an agent"):
        env.step({"bank_99": 0})


def test_masked_action_becomes_hold_and_is_flagged():
    env = rudra_env.parallel_env(num_banks=6, max_counterparties=8)
    obs, _ = env.reset(seed=0)
    lay = env.params.layout
    s = env.core_state
    padded = np.nonzero(s.slots[0, 0] < 0)[0]
    assert len(padded), "bank 0 should have a padded slot among 8 with only 5 other banks"
    a = lay.encode(LEND, int(padded[0]), 0)
    assert obs["bank_0"]["action_mask"][a] == 0
    lent = s.loans[0, 0].copy()
    _, _, _, _, info = env.step({"bank_0": a})
    assert info["bank_0"]["invalid_action"] is True and info["bank_0"]["executed_action"] == 0
    assert info["bank_1"]["invalid_action"] is False
    assert np.array_equal(env.core_state.loans[0, 0], lent), "the masked LEND lent something"


def test_defaulted_banks_leave_and_truncation():
    env = rudra_env.parallel_env(num_banks=6, max_steps=5)
    env.reset(seed=0)
    fallen = env.remove_bank("bank_2")
    assert fallen[0] == "bank_2" and "bank_2" not in env.agents
    assert any(e.type == "bank_removed" for e in env.last_events)
    assert any(e.type == "default" and e.data["bank"] == 2 for e in env.last_events)
    for t in range(5):
        obs, rew, term, trunc, _ = env.step({a: 0 for a in env.agents})
        assert "bank_2" not in obs
        if t < 4:
            assert not any(trunc.values())
    assert all(trunc.values()) and env.agents == []


def test_add_capital_raises_equity_and_is_evented():
    env = rudra_env.parallel_env(num_banks=6)
    env.reset(seed=0)
    before = env.core_state.equity()[0, 3]
    env.add_capital(3, 2.5)
    assert env.core_state.equity()[0, 3] == pytest.approx(before + 2.5)
    ev = env.last_events[-1]
    assert ev.type == "capital_added" and ev.data == {
        "bank": 3,
        "amount": 2.5,
        "outside_flow": -2.5,
    }
    with pytest.raises(rudra_env.ConfigError, match="amount = -1"):
        env.add_capital(3, -1)
    with pytest.raises(rudra_env.ConfigError, match="bank = 17"):
        env.add_capital(17, 1.0)


def test_mask_agrees_with_what_the_core_executes():
    """For every bank and every action: the mask says 1 exactly when the core would execute it
    (not flag it invalid) — checked by stepping copies of a mid-episode state."""
    from rudra_env.core import action_masks, step

    env = rudra_env.parallel_env("configs/env/bank_run.yaml")
    _random_episode(env, seed=5, steps=10)  # step 11: funding freeze on (LEND masked), run over
    s, p = env.core_state, env.params
    mask = action_masks(s, p)[0]
    n, a_n = mask.shape
    worlds = s.repeat(a_n)
    acts = np.zeros((a_n, n), dtype=np.int64)
    acts[:] = np.arange(a_n)[:, None]  # world a: every bank submits action a
    _, out = step(worlds, acts, p, np.random.default_rng(0))
    alive = s.alive[0]
    executed = ~out.invalid & alive[None, :]
    assert np.array_equal(executed.T[alive], mask[alive].astype(bool))
    assert mask[~alive].sum() == 0


def test_belief_entropy_starts_at_the_prior_and_is_tracked():
    """Every used slot starts at the prior 0.05: H = -(0.05 log2 0.05 + 0.95 log2 0.95)."""
    from rudra_env.core.beliefs import belief_entropy

    env = rudra_env.parallel_env(num_banks=8, overrides={"topology.kind": "complete"})
    env.reset(seed=0)
    h = -(0.05 * np.log2(0.05) + 0.95 * np.log2(0.95))
    assert np.allclose(belief_entropy(env.core_state)[0], h)
    assert env.summary()["mean_belief_entropy"] == pytest.approx(h)
    env.step({a: 0 for a in env.agents})
    assert env.summary()["mean_belief_entropy"] != pytest.approx(h)  # signals moved beliefs
