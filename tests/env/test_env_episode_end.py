"""Stepping outside an episode raises ``ResetNeeded`` (it never simulates past the end)."""

from __future__ import annotations

import pytest

import rudra_env
from rudra_env import ResetNeeded


def test_step_before_reset_says_call_reset():
    env = rudra_env.parallel_env(num_banks=4)
    with pytest.raises(ResetNeeded, match=r"before reset\(\): call env\.reset") as info:
        env.step({})
    assert isinstance(info.value, RuntimeError)


def test_step_after_truncation_says_call_reset_and_leaves_the_state_alone():
    env = rudra_env.parallel_env(num_banks=4, max_steps=3)
    env.reset(seed=0)
    while env.agents:
        env.step({a: 0 for a in env.agents})
    assert env.num_steps == 3
    with pytest.raises(
        ResetNeeded,
        match=r"after the episode ended \(step 3: truncated at "
        r"max_steps = 3.*call env\.reset\(\)",
    ):
        env.step({"bank_0": 0})
    with pytest.raises(ResetNeeded, match="after the episode ended"):
        env.step({})
    assert env.num_steps == 3  # nothing was simulated past max_steps
    env.reset(seed=1)
    env.step({a: 0 for a in env.agents})  # a new episode steps again
    assert env.num_steps == 1


def test_step_after_every_bank_is_gone_names_the_reason():
    env = rudra_env.parallel_env(num_banks=3, max_steps=50)
    env.reset(seed=0)
    for bank in list(env.agents):
        if bank in env.agents:
            env.remove_bank(bank)
    assert env.agents == []
    with pytest.raises(ResetNeeded, match="every bank has defaulted or been removed"):
        env.step({})


def test_reading_the_state_before_reset_says_call_reset():
    env = rudra_env.parallel_env(num_banks=4)
    with pytest.raises(ResetNeeded, match=r"call env\.reset"):
        env.state()
