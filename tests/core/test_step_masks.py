"""``step(..., masks=...)``: validity read from the state's masks equals the rules' own answer.

The PettingZoo env passes the masks it computed for its observations; the core then reads each
order's validity from them instead of evaluating the rules again. On fuzzed batches of every env
YAML (masked-valid and arbitrary actions mixed, so invalid orders occur), stepping with the masks
must give exactly what stepping without them gives; and the env must drop its masks when a
control (capital, removal) changes the state between steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import env_config_cases
from test_reference_step import fuzz_batch

import rudra_env
from rudra_env.actions import HOLD
from rudra_env.core import Params, action_masks, step


@pytest.mark.parametrize("cfg", env_config_cases())
def test_stepping_with_the_masks_is_stepping_without_them(cfg):
    p = Params.from_config(cfg)
    saw_invalid = False
    for seed in range(3):
        s, actions, noise = fuzz_batch(cfg, seed, worlds=16)
        masks = action_masks(s, p)
        a, out_a = step(s, actions, p, noise=noise)
        b, out_b = step(s, actions, p, noise=noise, masks=masks)
        np.testing.assert_array_equal(out_a.invalid, out_b.invalid)
        np.testing.assert_array_equal(out_a.executed, out_b.executed)
        np.testing.assert_array_equal(out_a.rewards, out_b.rewards)
        for name, x in a.arrays().items():
            np.testing.assert_array_equal(x, b.arrays()[name], err_msg=name)
        saw_invalid |= bool(out_a.invalid.any())
    assert saw_invalid  # the fuzz submits masked-out actions too: the masks decided them


def test_masks_that_lie_are_obeyed_so_the_env_must_drop_them_after_a_control():
    # The masks are trusted: a mask that forbids every action turns every order into an invalid
    # HOLD. So the env must not pass the masks of a state a control has changed since.
    env = rudra_env.parallel_env("configs/env/small.yaml")
    obs, _ = env.reset(seed=3)
    p = env.params
    s = env.core_state.copy()
    acts = np.array([[int(np.flatnonzero(obs[a]["action_mask"])[-1]) for a in env.agents]])
    lying = np.zeros_like(action_masks(s, p))
    _, out = step(s, acts, p, rng=np.random.default_rng(0), masks=lying)
    assert out.invalid[0][acts[0] != HOLD].all()
    env.add_capital("bank_0", 5.0)
    assert env._masks is None
    env.step({a: 0 for a in env.agents})
    assert env._masks is not None
    env.remove_bank("bank_1")
    assert env._masks is None
