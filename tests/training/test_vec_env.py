"""The stable-baselines3 vector env over the batched core (``training.vec_env``).

World i of ``RudraVecEnv(config, worlds=B, seed=s)`` draws its initial state and every step's
noise from ``default_rng(s + i)``, in the order the PettingZoo env draws them after
``reset(seed=s + i)``; so the PettingZoo env, reset with that seed, *is* world i (no state is
copied between them), and the tests compare the two step by step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rudra_env
from agents import HeuristicAgent, RandomAgent
from rudra_env.actions import HOLD
from rudra_env.errors import ConfigError

pytest.importorskip("stable_baselines3", reason="the vector env needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="the vector env needs the `train` extra")

from training.vec_env import RudraVecEnv  # noqa: E402

SMALL = Path(__file__).resolve().parents[2] / "configs" / "env" / "small.yaml"
N = 10  # banks in small.yaml


def removal(step: int, bank: int) -> dict:
    """Overrides that remove ``bank`` at ``step`` (a default through the default machinery)."""
    return {"scenario.interventions": [{"type": "remove_bank", "step": step, "bank": bank}]}


def masked_random(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """One legal action per row of (S, A) bool masks."""
    return np.array([rng.choice(np.flatnonzero(row)) for row in masks])


def pz_obs(obs: dict, agent: str) -> np.ndarray:
    return obs[agent]["observation"]


@pytest.mark.parametrize("world", [0, 1])
def test_each_world_replays_the_pettingzoo_env_with_its_seed(world):
    overrides = removal(4, 3)
    venv = RudraVecEnv(SMALL, worlds=2, seed=11, overrides=overrides)
    env = rudra_env.parallel_env(SMALL, overrides=overrides)
    obs = venv.reset()
    po, _ = env.reset(seed=11 + world)
    rows = slice(world * N, (world + 1) * N)
    names = env.possible_agents
    np.testing.assert_array_equal(obs[rows], np.stack([pz_obs(po, a) for a in names]))
    rng = np.random.default_rng(3)
    defaults = 0
    returns = dict.fromkeys(names, 0.0)
    for t in range(1, 21):
        masks = venv.action_masks()
        np.testing.assert_array_equal(
            masks[rows][venv.active[rows]],
            np.stack([po[a]["action_mask"] for a in env.agents]).astype(bool),
            err_msg=f"masks at step {t}",
        )
        actions = masked_random(rng, masks)
        live = list(env.agents)
        po, pr, pterm, ptrunc, _ = env.step(
            {a: int(actions[world * N + i]) for i, a in enumerate(names) if a in live}
        )
        obs, rewards, dones, infos = venv.step(actions)
        for i, a in enumerate(names):
            slot = world * N + i
            if a in live:  # the bank acted this step in both envs
                returns[a] += pr[a]
                np.testing.assert_array_equal(obs[slot], pz_obs(po, a), err_msg=f"{a} step {t}")
                assert rewards[slot] == np.float32(pr[a]), (a, t, rewards[slot], pr[a])
                assert dones[slot] == pterm[a], (a, t)
                if pterm[a]:
                    defaults += 1
                    assert pr[a] < 0, "the default reward is a penalty"
                    np.testing.assert_array_equal(
                        infos[slot]["terminal_observation"], pz_obs(po, a)
                    )
                    assert infos[slot]["TimeLimit.truncated"] is False
                    assert infos[slot]["episode"] == {
                        "r": pytest.approx(returns[a], rel=1e-6),
                        "l": t,
                        "t": infos[slot]["episode"]["t"],
                    }
            else:  # defaulted earlier: inactive in the vector env, gone from the PettingZoo env
                assert infos[slot].get("inactive") is True
                assert rewards[slot] == 0.0
                assert not obs[slot].any()
    assert defaults >= 1, "the removal at step 4 defaults bank 3 (and maybe others)"
    assert len(env.agents) < N


def test_world_results_do_not_depend_on_the_number_of_worlds():
    small = RudraVecEnv(SMALL, worlds=1, seed=4)
    big = RudraVecEnv(SMALL, worlds=3, seed=4)
    a, b = small.reset(), big.reset()
    np.testing.assert_array_equal(a, b[:N])
    rng = np.random.default_rng(0)
    for _ in range(8):
        acts = masked_random(rng, big.action_masks())
        a, ra, _, _ = small.step(acts[:N])
        b, rb, _, _ = big.step(acts)
        np.testing.assert_array_equal(a, b[:N])
        np.testing.assert_array_equal(ra, rb[:N])


def test_horizon_truncates_with_terminal_observation_and_resets_the_world():
    horizon = 5
    venv = RudraVecEnv(SMALL, worlds=2, seed=0, overrides={"max_steps": horizon})
    env = rudra_env.parallel_env(SMALL, max_steps=horizon)
    venv.reset()
    env.reset(seed=0)
    hold = np.full(venv.num_envs, HOLD)
    total = np.zeros(venv.num_envs)
    for t in range(1, horizon + 1):
        po, pr, _, ptrunc, _ = env.step(dict.fromkeys(env.agents, HOLD))
        obs, rewards, dones, infos = venv.step(hold)
        total += rewards
        if t < horizon:
            assert not dones.any(), f"nothing ends before the horizon (step {t})"
    assert dones.all()
    assert all(ptrunc.values())
    for i, a in enumerate(env.possible_agents):
        info = infos[i]
        assert info["TimeLimit.truncated"] is True
        np.testing.assert_array_equal(info["terminal_observation"], pz_obs(po, a))
        assert info["episode"]["l"] == horizon
        assert info["episode"]["r"] == pytest.approx(total[i], rel=1e-6)
        assert "inactive" not in info
    # the returned observations are the next episode's: the PettingZoo env's reset() (no seed)
    # keeps drawing from the same generator
    po, _ = env.reset()
    np.testing.assert_array_equal(obs[:N], np.stack([pz_obs(po, a) for a in env.possible_agents]))
    assert (venv.state.t == 0).all() and venv.state.alive.all()
    assert venv.active.all()


def test_defaulted_slot_is_inactive_with_hold_only_mask_until_the_world_resets():
    horizon, bank = 6, 3
    venv = RudraVecEnv(
        SMALL, worlds=2, seed=1, overrides={"max_steps": horizon, **removal(2, bank)}
    )
    venv.reset()
    n_actions = venv.action_space.n
    venv.step(np.full(venv.num_envs, HOLD))
    obs, rewards, dones, infos = venv.step(np.full(venv.num_envs, HOLD))  # step 2: removal
    for w in range(2):
        slot = w * N + bank
        assert dones[slot] and rewards[slot] < 0
        assert infos[slot]["TimeLimit.truncated"] is False
        assert infos[slot]["episode"]["l"] == 2
        assert "inactive" not in infos[slot], "the defaulting step itself was active"
        assert not obs[slot].any()
    dead = ~venv.active
    assert dead[bank] and dead[N + bank]
    for t in range(3, horizon + 1):
        masks = venv.action_masks()
        expected = np.zeros(n_actions, dtype=bool)
        expected[HOLD] = True
        for slot in np.flatnonzero(dead):
            np.testing.assert_array_equal(masks[slot], expected, err_msg=f"slot {slot}, step {t}")
        actions = np.full(venv.num_envs, HOLD)
        actions[dead] = n_actions - 1  # ignored: the bank is dead
        obs, rewards, dones, infos = venv.step(actions)
        for slot in np.flatnonzero(dead):
            assert rewards[slot] == 0.0
            assert infos[slot]["inactive"] is True
            if t < horizon:
                assert not dones[slot] and not obs[slot].any()
            else:  # the world resets: the inactive stretch ends without statistics
                assert dones[slot]
                assert infos[slot]["TimeLimit.truncated"] is False
                assert "episode" not in infos[slot]
                assert obs[slot].any(), "the fresh world's observation"
    assert venv.active.all()
    masks = venv.action_masks()
    assert masks[bank].sum() > 1, "a fresh world's bank has its full mask again"


def test_a_world_whose_learners_all_died_resets_at_once():
    venv = RudraVecEnv(
        SMALL, learners=[3], fixed_agent=HeuristicAgent(), worlds=2, seed=2,
        overrides=removal(2, 3),
    )  # fmt: skip
    venv.reset()
    venv.step(np.full(2, HOLD))
    obs, rewards, dones, infos = venv.step(np.full(2, HOLD))
    assert dones.all() and (rewards < 0).all()
    assert (venv.state.t == 0).all(), "both worlds reset at step 2, long before max_steps"
    assert venv.active.all() and obs.any(axis=1).all()


def test_action_masks_shape_dtype_and_the_sb3_contrib_entry_points():
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    venv = RudraVecEnv(SMALL, worlds=3, seed=0)
    venv.reset()
    masks = venv.action_masks()
    assert masks.shape == (3 * N, venv.action_space.n) and masks.dtype == np.bool_
    assert masks[:, HOLD].all()
    assert is_masking_supported(venv)
    np.testing.assert_array_equal(get_action_masks(venv), masks)
    np.testing.assert_array_equal(
        np.stack(venv.env_method("action_masks", indices=[4])), masks[4:5]
    )
    assert venv.get_attr("render_mode") == [None] * (3 * N)
    assert venv.env_is_wrapped(object) == [False] * (3 * N)
    assert venv.seed(7)[: N + 1] == [7] * N + [8]


def test_learner_subset_with_a_fixed_agent():
    with pytest.raises(ConfigError, match="fixed_agent"):
        RudraVecEnv(SMALL, learners=["bank_0", 2])
    with pytest.raises(ConfigError, match="bank_3"):
        RudraVecEnv(SMALL, learners=[10])
    venv = RudraVecEnv(SMALL, learners=["bank_0", 2], fixed_agent=RandomAgent(seed=0), worlds=4)
    obs = venv.reset()
    assert obs.shape == (8, venv.observation_space.shape[0])
    assert venv.action_masks().shape == (8, venv.action_space.n)
    obs, rewards, dones, infos = venv.step(np.full(8, HOLD))
    assert obs.shape == (8, venv.observation_space.shape[0]) and rewards.dtype == np.float32


def test_same_seed_same_rollout_and_seed_reseeds():
    def rollout(venv: RudraVecEnv) -> list[np.ndarray]:
        out = [venv.reset()]
        rng = np.random.default_rng(0)
        for _ in range(6):
            obs, rewards, _, _ = venv.step(masked_random(rng, venv.action_masks()))
            out += [obs, rewards]
        return out

    a = rollout(RudraVecEnv(SMALL, worlds=2, seed=9))
    other = RudraVecEnv(SMALL, worlds=2, seed=0)
    other.seed(9)
    for x, y in zip(a, rollout(other), strict=True):
        np.testing.assert_array_equal(x, y)


def test_maskable_ppo_learns_a_few_hundred_steps():
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import VecCheckNan

    venv = RudraVecEnv(SMALL, worlds=2, seed=0)
    checked = VecCheckNan(venv, raise_exception=True)  # no NaN/inf in observations or rewards
    model = MaskablePPO("MlpPolicy", checked, n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(256)
    assert model.num_timesteps >= 256
    assert len(model.ep_info_buffer) > 0, "episode statistics reach SB3 (horizon 50 < 64 steps)"
    actions, _ = model.predict(venv.reset(), action_masks=venv.action_masks())
    assert actions.shape == (venv.num_envs,)
    assert venv.action_masks()[np.arange(venv.num_envs), actions].all()


def test_team_reward_mixes_the_worlds_mean_and_episodes_report_own_utility():
    # Banks 0 and 2 learn among random banks; w = 0.25. With the same seeds and actions the
    # selfish env gives each bank's own utility r (the core's rewards) and the world's mean;
    # the team env must pay 0.75 * r_own + 0.25 * mean_world, and its episode returns must
    # still sum the own utilities.
    def run(w: float):
        venv = RudraVecEnv(
            SMALL, learners=[0, 2], fixed_agent=RandomAgent(seed=1), worlds=2, seed=4,
            team_weight=w,
        )  # fmt: skip
        venv.reset()
        rng = np.random.default_rng(3)
        rewards, worlds = [], []
        for _ in range(3):
            _, r, _, _ = venv.step(masked_random(rng, venv.action_masks()))
            rewards.append(r)
            worlds.append(venv.last_output.rewards.copy())
        return np.array(rewards), np.array(worlds), venv

    selfish, core, _ = run(0.0)
    team, core_t, venv = run(0.25)
    np.testing.assert_array_equal(core, core_t)  # same play, same worlds
    for t in range(3):
        own = core[t][:, [0, 2]].reshape(-1)
        mean = np.repeat(core[t].mean(axis=1), 2)
        np.testing.assert_allclose(selfish[t], own, rtol=1e-6)
        np.testing.assert_allclose(team[t], 0.75 * own + 0.25 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(venv._ep_return, core[:, :, [0, 2]].sum(axis=0).reshape(-1))
    with pytest.raises(ConfigError, match="team_weight = 1.5"):
        RudraVecEnv(SMALL, team_weight=1.5)
