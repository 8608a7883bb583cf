"""In the AEC env a bad action raises at the turn of the agent that submitted it."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.utils.conversions import aec_to_parallel

import rudra_env
from rudra_env import ActionError, ResetNeeded, rudra_v1


@pytest.mark.parametrize(
    ("bad", "message"),
    [(1.0, r"bank_0 = 1\.0 \(float\) is not an action"), (61, "bank_0 = 61 is outside")],
)
def test_bad_action_raises_at_the_first_agents_turn(bad, message):
    env = rudra_env.env(num_banks=4)
    env.reset(seed=0)
    assert env.agent_selection == "bank_0"
    with pytest.raises(ActionError, match=message):
        env.step(bad)
    assert env.agent_selection == "bank_0"  # nothing was buffered; the turn is still bank_0's
    env.step(0)  # a good action is taken
    assert env.agent_selection == "bank_1"


def test_bad_action_of_a_middle_agent_names_it():
    env = rudra_env.env(num_banks=4)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(ActionError, match=r"^action of bank_1 = True \(bool\)"):
        env.step(True)
    with pytest.raises(ActionError, match=r"^action of bank_1 = None \(NoneType\)"):
        env.step(None)  # None is only for agents that are done


def test_a_whole_episode_with_numpy_and_0d_actions_and_dead_steps():
    env = rudra_env.env(num_banks=4, max_steps=4)
    env.reset(seed=0)
    steps = 0
    for _agent in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        action = None if term or trunc else (np.int64(0) if steps % 2 else np.array(0))
        env.step(action)
        steps += 1
    assert env.agents == []
    assert env.unwrapped.num_steps == 4


def test_raw_env_steps_out_of_order_raise_reset_needed():
    raw = rudra_v1.raw_env(num_banks=3)
    with pytest.raises(ResetNeeded, match="before reset"):
        raw.step(0)


def test_the_parallel_env_comes_back_out():
    env = rudra_env.env(num_banks=3)
    assert isinstance(aec_to_parallel(env), type(rudra_env.parallel_env(num_banks=3)))
