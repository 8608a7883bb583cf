"""TorchPolicyAgent: safe loading of SB3 zips and plain state dicts, masking, devices."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

import rudra_env
from agents import EnvView, PolicyArch, TorchPolicyAgent
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
    with pytest.raises(InputError, match="inputs of width 5"):
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
