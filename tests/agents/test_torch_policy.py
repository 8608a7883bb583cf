"""TorchPolicyAgent: safe loading of SB3 zips and plain state dicts, masking, devices."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

import rudra_env
from agents import (
    EnvView,
    EquilibriumAgent,
    HeuristicAgent,
    PolicyArch,
    Population,
    TorchPolicyAgent,
)
from rudra_env.errors import ConfigError, InputError

torch = pytest.importorskip("torch")
gym = pytest.importorskip("gymnasium")
sb3 = pytest.importorskip("stable_baselines3")

SMALL = "configs/env/small.yaml"


def _env_obs(seed=0):
    env = rudra_env.parallel_env(SMALL)
    obs, _ = env.reset(seed=seed)
    return env, obs


class OneStepEnv(gym.Env):
    """A stand-in with RUDRA's per-agent spaces (SB3 only needs the spaces to build a model)."""

    def __init__(self, obs_space, n_actions):
        self.observation_space = obs_space
        self.action_space = gym.spaces.Discrete(n_actions)

    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}

    def action_masks(self):
        return np.ones(self.action_space.n, dtype=bool)


def test_sb3_ppo_zip_matches_sb3_predictions(tmp_path):
    env, obs = _env_obs()
    space = env.observation_space("bank_0")["observation"]
    n_act = env.action_space("bank_0").n
    model = sb3.PPO(
        "MlpPolicy",
        OneStepEnv(space, n_act),
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [32, 16], "activation_fn": torch.nn.ReLU},
    )
    path = tmp_path / "ppo.zip"
    model.save(path)
    agent = TorchPolicyAgent.load(path)
    assert agent.arch.hidden_sizes == (32, 16) and agent.arch.activation == "relu"
    assert agent.arch.inputs == "observation" and agent.arch.n_actions == n_act
    names = list(obs)
    x = np.stack([obs[a]["observation"] for a in names])
    want, _ = model.predict(x, deterministic=True)
    all_legal = {
        a: {"observation": obs[a]["observation"], "action_mask": np.ones(n_act, np.int8)}
        for a in names
    }
    got = agent.act(all_legal)
    assert [got[a] for a in names] == want.tolist()
    # With the env's masks, the choice is the best legal logit per SB3's own network.
    with torch.no_grad():
        logits = model.policy.get_distribution(torch.as_tensor(x)).distribution.logits.numpy()
    masks = np.stack([obs[a]["action_mask"] for a in names]) > 0
    got = agent.act(obs)
    assert [got[a] for a in names] == np.where(masks, logits, -np.inf).argmax(1).tolist()
    assert all(obs[a]["action_mask"][v] == 1 for a, v in got.items())


def test_maskable_ppo_dict_obs_zip(tmp_path):
    contrib = pytest.importorskip("sb3_contrib")
    env, obs = _env_obs(seed=3)
    space = env.observation_space("bank_0")
    n_act = env.action_space("bank_0").n
    model = contrib.MaskablePPO(
        "MultiInputPolicy",
        OneStepEnv(space, n_act),
        seed=1,
        device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    path = tmp_path / "maskable.zip"
    model.save(path)
    agent = TorchPolicyAgent.load(path)
    assert agent.arch.obs_dim == space["observation"].shape[0] + n_act
    assert agent.arch.inputs == "action_mask+observation"  # read from the zip's JSON
    agent = TorchPolicyAgent.load(
        path, {**agent.arch.to_dict(), "inputs": "action_mask+observation"}
    )
    got = agent.act(obs)
    for a in obs:
        want, _ = model.predict(
            {k: v[None] for k, v in obs[a].items()},
            action_masks=obs[a]["action_mask"][None] > 0,
            deterministic=True,
        )
        assert got[a] == int(want[0]), a


def test_plain_state_dict_round_trip_and_shape_errors(tmp_path):
    env, obs = _env_obs()
    d = env.observation_space("bank_0")["observation"].shape[0]
    n_act = env.action_space("bank_0").n
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_act))
    arch = {"obs_dim": d, "hidden_sizes": [8], "n_actions": n_act, "activation": "tanh"}
    agent = TorchPolicyAgent.from_state_dict(net.state_dict(), arch)
    path = agent.save(tmp_path / "policy.pt")
    assert path.with_suffix(".json").is_file()
    loaded = TorchPolicyAgent.load(path)  # arch from the sidecar JSON
    assert loaded.act(obs) == agent.act(obs)
    x = torch.as_tensor(np.stack([obs[a]["observation"] for a in obs]))
    m = np.stack([obs[a]["action_mask"] for a in obs]) > 0
    want = np.where(m, net(x).detach().numpy(), -np.inf).argmax(1)
    assert list(loaded.act(obs).values()) == want.tolist()
    with pytest.raises(InputError, match=r"layer 0 has weight \(8, \d+\).*expects \(16, \d+\)"):
        TorchPolicyAgent.load(path, {**arch, "hidden_sizes": [16]})
    with pytest.raises(ConfigError, match="arch.activation = 'swish'"):
        PolicyArch.from_mapping({**arch, "activation": "swish"})
    with pytest.raises(ConfigError, match="unknown key 'arch.layers'"):
        PolicyArch.from_mapping({**arch, "layers": 2})
    path.with_suffix(".json").unlink()
    with pytest.raises(ConfigError, match="arch is missing"):
        TorchPolicyAgent.load(path)
    small = TorchPolicyAgent.from_state_dict(
        torch.nn.Sequential(torch.nn.Linear(5, n_act)).state_dict(),
        {"obs_dim": 5, "hidden_sizes": [], "n_actions": n_act},
    )
    with pytest.raises(InputError, match=r"expects 5 inputs \(observation\) but this env gives 36"):
        small.act(obs)


class _Boom:
    def __reduce__(self):
        return (open, (str(_Boom.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_untrusted_pickles_are_refused(tmp_path):
    """Neither a .pt nor an SB3 zip can run code: loading uses weights_only=True."""
    _Boom.marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"0.weight": _Boom()}))
    with pytest.raises(InputError, match="refused|not a torch weights file"):
        TorchPolicyAgent.load(evil, {"obs_dim": 2, "hidden_sizes": [], "n_actions": 2})
    torch_evil = tmp_path / "evil_torch.pt"
    torch.save({"0.weight": _Boom()}, torch_evil)
    assert not _Boom.marker.exists()
    with pytest.raises(InputError, match="refused"):
        TorchPolicyAgent.load(torch_evil, {"obs_dim": 2, "hidden_sizes": [], "n_actions": 2})
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("policy.pth", torch_evil.read_bytes())
        z.writestr("data", "{}")
    with pytest.raises(InputError, match="refused"):
        TorchPolicyAgent.load(zpath)
    assert not _Boom.marker.exists()


def test_device_and_sampling(tmp_path):
    env, obs = _env_obs()
    d = env.observation_space("bank_0")["observation"].shape[0]
    n_act = env.action_space("bank_0").n
    zero = torch.nn.Sequential(torch.nn.Linear(d, n_act))
    torch.nn.init.zeros_(zero[0].weight)
    torch.nn.init.zeros_(zero[0].bias)
    arch = {"obs_dim": d, "hidden_sizes": [], "n_actions": n_act}
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device = 'cuda' is not available"):
            TorchPolicyAgent.from_state_dict(zero.state_dict(), arch, device="cuda")
    with pytest.raises(ConfigError, match="device = 'tpu'"):
        TorchPolicyAgent.from_state_dict(zero.state_dict(), arch, device="tpu")
    # Uniform logits: sampling spreads over the legal actions only, reproducibly per seed.
    agent = TorchPolicyAgent.from_state_dict(zero.state_dict(), arch, deterministic=False, seed=0)
    draws = [agent.act(obs)["bank_0"] for _ in range(200)]
    legal = set(np.flatnonzero(obs["bank_0"]["action_mask"]))
    assert set(draws) == legal
    again = TorchPolicyAgent.from_state_dict(zero.state_dict(), arch, deterministic=False, seed=0)
    assert [again.act(obs)["bank_0"] for _ in range(200)] == draws
    # In the env, through the common interface.
    while env.agents:
        acts = agent.act({a: obs[a] for a in env.agents}, EnvView.from_env(env))
        obs, _, _, _, info = env.step(acts)
        assert not any(i["invalid_action"] for i in info.values())


# ----------------------------------------------------------------------------- trained zips
class OneBankEnv(gym.Env):
    """One bank of the PettingZoo env as a gymnasium env with its Dict observation; the other
    banks play ``HeuristicAgent``. The bank's episode ends when it defaults or at the horizon."""

    def __init__(self, config=SMALL, bank="bank_0"):
        self.env = rudra_env.parallel_env(config)
        self.bank = bank
        self.others = HeuristicAgent()
        self.observation_space = self.env.observation_space(bank)
        self.action_space = self.env.action_space(bank)

    def reset(self, seed=None, options=None):
        self.obs, _ = self.env.reset(seed=seed)
        return self.obs[self.bank], {}

    def step(self, action):
        rest = {a: o for a, o in self.obs.items() if a != self.bank}
        actions = {**self.others.act(rest, EnvView.from_env(self.env)), self.bank: int(action)}
        self.obs, rew, term, trunc, _ = self.env.step(actions)
        last = {k: np.zeros(v.shape, v.dtype) for k, v in self.observation_space.items()}
        ob = self.obs.get(self.bank, last)
        return ob, rew[self.bank], term[self.bank], trunc[self.bank], {}

    def action_masks(self):
        return self.obs[self.bank]["action_mask"] > 0


@pytest.fixture(scope="module")
def vec_zip(tmp_path_factory):
    """A MaskablePPO MlpPolicy trained for 320 steps on RudraVecEnv(small) and its zip."""
    contrib = pytest.importorskip("sb3_contrib")
    from training.vec_env import RudraVecEnv

    model = contrib.MaskablePPO(
        "MlpPolicy",
        RudraVecEnv(SMALL, worlds=1, seed=0),
        n_steps=16,
        batch_size=80,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    model.learn(320)
    path = tmp_path_factory.mktemp("vec") / "maskable_mlp.zip"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def dict_zip(tmp_path_factory):
    """A MaskablePPO MultiInputPolicy trained for 128 steps on one bank's Dict observation."""
    contrib = pytest.importorskip("sb3_contrib")
    model = contrib.MaskablePPO(
        "MultiInputPolicy",
        OneBankEnv(),
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    model.learn(128)
    path = tmp_path_factory.mktemp("dict") / "maskable_dict.zip"
    model.save(path)
    return model, path


def _vec_batch(steps=4):
    """(obs (R, D), masks (R, A) bool, params): slots of RudraVecEnv(small) over random steps."""
    from training.vec_env import RudraVecEnv

    venv = RudraVecEnv(SMALL, worlds=2, seed=5)
    rng = np.random.default_rng(0)
    obs_rows, mask_rows = [venv.reset()], [venv.action_masks().copy()]
    for _ in range(steps):
        legal = venv.action_masks()
        obs, *_ = venv.step(np.array([rng.choice(np.flatnonzero(m)) for m in legal]))
        obs_rows.append(obs)
        mask_rows.append(venv.action_masks().copy())
    return np.concatenate(obs_rows), np.concatenate(mask_rows), venv.params


def test_maskable_vec_env_zip_predicts_and_acts_beside_other_agents(vec_zip):
    model, path = vec_zip
    agent = TorchPolicyAgent.load(path)
    assert agent.arch.inputs == "observation" and agent.arch.obs_dim == 36
    obs, masks, params = _vec_batch()
    want, _ = model.predict(obs, action_masks=masks, deterministic=True)
    got = agent.act_arrays(obs[None], masks[None], params)[0]
    assert got.tolist() == want.tolist()
    assert len(set(want.tolist())) > 1  # a batch that tells policies apart
    # In a Population through a PettingZoo episode, beside heuristic and equilibrium banks.
    learners = ["bank_0", "bank_3", "bank_7"]
    pop = Population(
        {**dict.fromkeys(learners, agent), "bank_1": EquilibriumAgent(seed=0)},
        default=HeuristicAgent(),
    )
    env = rudra_env.parallel_env(SMALL)
    obs, _ = env.reset(seed=2)
    pop.reset(seed=2)
    checked = 0
    while env.agents:
        acts = pop.act(obs, EnvView.from_env(env))
        mine = [a for a in learners if a in obs]
        if mine:
            want, _ = model.predict(
                np.stack([obs[a]["observation"] for a in mine]),
                action_masks=np.stack([obs[a]["action_mask"] for a in mine]) > 0,
                deterministic=True,
            )
            assert [acts[a] for a in mine] == want.tolist(), mine
            checked += len(mine)
        obs, _, _, _, info = env.step(acts)
        assert not any(i["invalid_action"] for i in info.values())
    assert checked >= 3 * 10  # the trained banks acted for at least ten steps


def test_maskable_vec_env_zip_acts_for_fixed_banks_of_the_vec_env(vec_zip):
    """``act_batch`` (the vector env's fixed banks) gives SB3's choices for every world."""
    from rudra_env.core import action_masks, observe
    from training.vec_env import RudraVecEnv

    model, path = vec_zip
    agent = TorchPolicyAgent.load(path)
    venv = RudraVecEnv(SMALL, learners=[0], fixed_agent=agent, worlds=2)
    venv.reset()
    for _ in range(3):
        s, p = venv.state, venv.params
        want, _ = model.predict(
            observe(s, p).reshape(-1, 36),
            action_masks=action_masks(s, p).reshape(-1, 37) > 0,
            deterministic=True,
        )
        got = agent.act_batch(s, p)
        assert got[s.alive].tolist() == want.reshape(s.alive.shape)[s.alive].tolist()
        venv.step(np.zeros(2, dtype=np.int64))


def test_multi_input_zip_infers_the_dict_layout(dict_zip, tmp_path):
    model, path = dict_zip
    agent = TorchPolicyAgent.load(path)
    assert agent.arch.inputs == "action_mask+observation"
    assert (agent.arch.obs_dim, agent.arch.n_actions) == (37 + 36, 37)
    obs, masks, params = _vec_batch()
    want, _ = model.predict(
        {"action_mask": masks.astype(np.int8), "observation": obs},
        action_masks=masks,
        deterministic=True,
    )
    got = agent.act_arrays(obs[None], masks[None], params)[0]
    assert got.tolist() == want.tolist()
    # Without the JSON description, the layout is chosen by the env's widths ("auto").
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(bare, "w") as out:
        out.writestr("policy.pth", z.read("policy.pth"))
    auto = TorchPolicyAgent.load(bare)
    assert auto.arch.inputs == "auto"
    assert auto.input_keys(36, 37) == ("action_mask", "observation")
    assert auto.act_arrays(obs[None], masks[None], params)[0].tolist() == want.tolist()
    # A Dict with entries the agent cannot feed is refused by name, from the JSON text.
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("data"))
    data["observation_space"]["spaces"] = data["observation_space"]["spaces"].replace(
        "'observation'", "'global_state'"
    )
    odd = tmp_path / "odd.zip"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(odd, "w") as out:
        out.writestr("policy.pth", z.read("policy.pth"))
        out.writestr("data", json.dumps(data))
    with pytest.raises(InputError, match="'global_state'.*only the env's 'action_mask'"):
        TorchPolicyAgent.load(odd)


def test_checkpoint_of_another_config_names_both_widths(vec_zip, dict_zip):
    env = rudra_env.parallel_env(SMALL, max_counterparties=8)  # K = 8 where training had 4
    obs, _ = env.reset(seed=0)
    view = EnvView.from_env(env)
    mlp, multi = TorchPolicyAgent.load(vec_zip[1]), TorchPolicyAgent.load(dict_zip[1])
    differs = (
        r"its observation is 56 wide \(K=8 slots\) where the checkpoint's was 36 \(K=4\); "
        r"it has 61 actions where the checkpoint has 37"
    )
    with pytest.raises(
        InputError, match=r"expects 36 inputs \(observation\) but this env gives 56: " + differs
    ):
        Population({"bank_0": mlp}, default=HeuristicAgent()).act(obs, view)
    with pytest.raises(
        InputError,
        match=r"expects 37 \+ 36 = 73 inputs \(action_mask, observation\) but this env gives "
        r"61 \+ 56: " + differs,
    ):
        Population({"bank_0": multi}, default=HeuristicAgent()).act(obs, view)
    with pytest.raises(InputError, match=r"observation is 56 wide where the checkpoint's was 36"):
        multi.act(obs)  # without the env's parameters, the widths alone
