"""Per-world draws of the core (``rudra_env.core.worlds``): world i of a batch is the PettingZoo
env reset with seed + i, whatever the batch size and whenever the other worlds reset."""

from __future__ import annotations

import numpy as np
import pytest

import rudra_env
from rudra_env.config import EnvConfig
from rudra_env.core import (
    NetworkState,
    Params,
    StepNoise,
    action_masks,
    draw_noise,
    draw_worlds,
    initial_state,
    reset_worlds,
    step,
)

CFG = EnvConfig.from_dict(
    {"num_banks": 6, "max_steps": 30, "max_counterparties": 3, "topology": {"kind": "ring"}}
)
P = Params.from_config(CFG)


def rngs(seed: int, b: int) -> list[np.random.Generator]:
    return [np.random.default_rng(seed + i) for i in range(b)]


def masked_random(rng: np.random.Generator, state: NetworkState) -> np.ndarray:
    masks = action_masks(state, P)
    return (rng.random(masks.shape) * masks).argmax(axis=-1)


def assert_world_equal(batch: NetworkState, w: int, single: NetworkState) -> None:
    for name, arr in single.arrays().items():
        np.testing.assert_array_equal(getattr(batch, name)[w : w + 1], arr, err_msg=name)


def test_draw_worlds_gives_world_w_the_initial_state_of_its_own_generator():
    batch = draw_worlds(CFG, rngs(7, 3))
    assert batch.shape == (3, 6, P.M)
    for w in range(3):
        assert_world_equal(batch, w, initial_state(CFG, np.random.default_rng(7 + w)))
    with pytest.raises(ValueError, match="one generator per world"):
        draw_worlds(CFG, [])


def test_draw_noise_matches_stepnoise_draw_per_world():
    noise = draw_noise(rngs(1, 2), 5, 2, 3)
    for w, s in enumerate((1, 2)):
        ref = StepNoise.draw(np.random.default_rng(s), 1, 5, 2, 3)
        np.testing.assert_array_equal(noise.market[w : w + 1], ref.market)
        np.testing.assert_array_equal(noise.signal[w : w + 1], ref.signal)
    assert noise.market.dtype == np.float64 and noise.signal.dtype == np.float32


def test_resetting_a_subset_leaves_the_other_worlds_and_generators_untouched():
    gens = rngs(3, 4)
    state = draw_worlds(CFG, gens)
    act = np.random.default_rng(0)
    for _ in range(5):  # move every world away from its initial state
        state, _ = step(
            state, masked_random(act, state), P, inplace=True, noise=draw_noise(gens, 6, P.M, P.K)
        )
    before = state.copy()
    untouched = [g.bit_generator.state for g in gens]
    fresh = reset_worlds(state, CFG, gens, np.array([2, 0]))
    assert fresh.shape[0] == 2 and fresh.t.tolist() == [0, 0]
    for w in (1, 3):
        assert_world_equal(state, w, before.take([w]))
        assert gens[w].bit_generator.state == untouched[w], f"world {w}'s generator advanced"
    assert (state.t[[0, 2]] == 0).all() and (state.t[[1, 3]] == 5).all()
    assert state.slot_index.valid.shape == (4, 6, P.K)  # the slot index was rebuilt


def test_a_world_reset_equals_a_fresh_initial_state_from_that_generator():
    gens = rngs(11, 3)
    state = draw_worlds(CFG, gens)
    ref = np.random.default_rng(12)  # world 1's generator, followed by hand
    initial_state(CFG, ref)
    state, _ = step(
        state, np.zeros((3, 6), np.int64), P, inplace=True, noise=draw_noise(gens, 6, P.M, P.K)
    )
    StepNoise.draw(ref, 1, 6, P.M, P.K)
    reset_worlds(state, CFG, gens, [1])
    assert_world_equal(state, 1, initial_state(CFG, ref))
    assert gens[1].bit_generator.state == ref.bit_generator.state


def test_a_world_replays_the_pettingzoo_env_across_an_episode_boundary():
    """World 1 of a batch whose world 0 resets at other times is env.reset(seed=s+1), then
    env.reset() for its next episode — observation for observation."""
    seed, b = 20, 2
    gens = rngs(seed, b)
    state = draw_worlds(CFG, gens)
    env = rudra_env.parallel_env(CFG)
    env.reset(seed=seed + 1)
    act = np.random.default_rng(5)
    for t in range(1, CFG.max_steps + 8):
        actions = masked_random(act, state)
        state, out = step(state, actions, P, inplace=True, noise=draw_noise(gens, 6, P.M, P.K))
        live = list(env.agents)
        _, rewards, *_ = env.step({a: int(actions[1, env.possible_agents.index(a)]) for a in live})
        for a in live:
            assert out.rewards[1, env.possible_agents.index(a)] == rewards[a], (t, a)
        if t % 7 == 0:  # world 0 resets on its own schedule
            reset_worlds(state, CFG, gens, [0])
        if state.t[1] >= CFG.max_steps or not env.agents:
            reset_worlds(state, CFG, gens, [1])
            env.reset()
        assert_world_equal(state, 1, env.core_state)


def test_bad_worlds_name_the_value():
    gens = rngs(0, 2)
    state = draw_worlds(CFG, gens)
    with pytest.raises(ValueError, match=r"worlds \[2\] are not in \[0, 1\]"):
        reset_worlds(state, CFG, gens, [2])
    with pytest.raises(ValueError, match="names a world twice"):
        reset_worlds(state, CFG, gens, [0, 0])
    with pytest.raises(ValueError, match="len\\(rngs\\) = 1 does not match the state's 2 worlds"):
        reset_worlds(state, CFG, gens[:1], [0])
    assert reset_worlds(state, CFG, gens, []).shape[0] == 0
    with pytest.raises(ValueError) as err:
        reset_worlds(state, CFG, gens[:1], [0])
    assert str(err.value).endswith(": expected one generator per world")
    with pytest.raises(ValueError) as err:
        draw_worlds(CFG, [])
    assert str(err.value) == (
        "draw_worlds(rngs=[]) is not allowed: expected one generator per world"
    )
