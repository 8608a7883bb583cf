"""A bank's last observation at termination allows HOLD (never an all-zero action mask)."""

from __future__ import annotations

import numpy as np

import rudra_env
from rudra_env.actions import HOLD

SHOCK = {"type": "bank_capital_hit", "magnitude": 0.9, "start": 2, "targets": [0, 1]}
"""Banks 0 and 1 lose 90% of their external assets at step 2: some banks default, not all."""


def _episode_with_defaults():
    env = rudra_env.parallel_env(
        num_banks=6,
        max_steps=12,
        overrides={"scenario.shocks": [SHOCK]},
    )
    obs, _ = env.reset(seed=0)
    return env, obs


def test_terminated_agents_mask_allows_only_hold():
    env, obs = _episode_with_defaults()
    seen = 0
    while env.agents:
        acting = list(env.agents)
        obs, _, term, trunc, _ = env.step({a: 0 for a in acting})
        for a in acting:
            mask = obs[a]["action_mask"]
            assert mask.dtype == np.int8 and mask.any(), f"{a} got an all-zero mask"
            if term[a]:
                seen += 1
                assert mask[HOLD] == 1 and mask.sum() == 1
                assert not obs[a]["observation"].any()  # the dead read as zeros
                assert env.observation_space(a).contains(obs[a])
    assert seen > 0, "the shock should default some banks"


def test_the_fix_touches_only_the_terminated_rows():
    env, obs = _episode_with_defaults()
    env.step({a: 0 for a in env.agents})
    obs, _, term, _, _ = env.step({a: 0 for a in env.agents})  # the shock lands at step 2
    dead = [a for a, t in term.items() if t]
    live = [a for a, t in term.items() if not t]
    assert dead and live
    for a in live:
        assert obs[a]["action_mask"][HOLD] == 1 and obs[a]["action_mask"].sum() >= 1
    masks = np.stack([obs[a]["action_mask"] for a in live])
    assert masks[:, 1:].any()  # live banks keep their other legal actions


def test_aec_terminated_agent_observes_hold_legal():
    env = rudra_env.env(
        num_banks=6,
        max_steps=12,
        overrides={"scenario.shocks": [SHOCK]},
    )
    env.reset(seed=0)
    seen = 0
    for _agent in env.agent_iter():
        obs, _, term, trunc, _ = env.last()
        assert obs["action_mask"].any()
        seen += term
        env.step(None if term or trunc else 0)
    assert seen > 0
