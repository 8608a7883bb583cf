"""``backend: rllib`` and ``rudra evaluate --ray`` (the ``[distributed]`` extra; marked
``distributed``, skipped without Ray).

Tiny runs on 2 cores: the RLlib runs are ``rudra train`` subprocesses on small.yaml (10 banks)
with 2 worlds, 1 env runner, 8-step fragments (160 timesteps an iteration) and a 16-unit network;
each takes about 20 s, most of it starting Ray. The Ray tournament runs on a local instance of
2 CPUs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="needs the [distributed] extra (Ray RLlib)")
pytest.importorskip("ray.rllib", reason="needs the [distributed] extra (Ray RLlib)")

import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402

import rudra_env  # noqa: E402
from agents import TorchPolicyAgent  # noqa: E402
from rudra_env.config import EnvConfig  # noqa: E402
from rudra_env.errors import ConfigError  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.evaluate import TournamentConfig, evaluate  # noqa: E402
from training.rllib import latest_rllib_checkpoint, policy_agent  # noqa: E402
from training.rllib_env import MaskedMLPModule, RudraMultiAgentEnv  # noqa: E402

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "configs" / "train" / "rllib_ppo_shared.yaml"
GROUPS = ROOT / "configs" / "train" / "rllib_ppo_groups.yaml"
SMALL = ROOT / "configs" / "env" / "small.yaml"
TINY = {
    "worlds": 2,
    "ray.num_env_runners": 1,
    "ray.num_cpus": 2,
    "hyperparameters.n_steps": 8,
    "hyperparameters.batch_size": 64,
    "hyperparameters.n_epochs": 1,
    "hyperparameters.net_arch": "[16]",
    "checkpoint_every": 150,
    "keep_checkpoints": 5,
}
ITERATION = 8 * 2 * 10  # n_steps x worlds x learners
RING = {"num_banks": 10, "max_counterparties": 4, "topology": {"kind": "ring"}}  # small.yaml's K


def rudra_train(*args: str, sets: dict | None = None, timeout: float = 120) -> str:
    """``python -m training train ARGS --set ...`` from the repository root; its stdout."""
    flags = [x for k, v in (sets or {}).items() for x in ("--set", f"{k}={v}")]
    proc = subprocess.run(
        [sys.executable, "-m", "training", "train", *args, *flags],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny RLlib run of the shared preset (300 timesteps: 2 iterations)."""
    run = tmp_path_factory.mktemp("rllib") / "run"
    out = rudra_train(str(SHARED), sets={**TINY, "total_timesteps": 300, "run_dir": run})
    assert "done: 320 timesteps" in out and "final_model.pt" in out
    return run


def test_rllib_run_writes_checkpoints_tensorboard_and_final_policy(run_dir):
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    assert config.backend == "rllib" and config.ray.num_env_runners == 1
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["rllib_160", "rllib_320"]  # past 150, and the final one
    meta = json.loads((run_dir / "checkpoints" / "rllib_320" / "rudra.json").read_text())
    assert meta["timesteps"] == 320 and meta["reason"] == "done"
    assert latest_rllib_checkpoint(run_dir).name == "rllib_320"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["backend"] == "rllib" and info["versions"]["ray"] == ray.__version__
    tags = scalars(run_dir / "tb" / "rllib_ppo")
    for tag in ("rudra/mean_utility", "rudra/default_rate", "rudra/total_equity"):
        assert [step for step, _ in tags[tag]] == [160, 320], tag
    assert all(0.0 <= v <= 1.0 for _, v in tags["rudra/default_rate"])
    assert all(v > 0 for _, v in tags["rudra/total_equity"])
    assert all(np.isfinite(v) and v != 0 for _, v in tags["rudra/mean_utility"])
    assert all(v == 0 for _, v in tags["rudra/invalid_action_share"])  # the module masks
    # the SB3 path's other scalars: cascades, prices, action kinds (shares of live learners)
    assert all(v >= 0 for _, v in tags["rudra/cascade_size"])
    markets = [m["name"] for m in config.env.config["markets"]]
    assert {f"rudra/price/{m}" for m in markets} <= set(tags)
    kinds = [t for t in tags if t.startswith("rudra/actions/")]
    assert len(kinds) == 5
    assert sum(tags[t][0][1] for t in kinds) == pytest.approx(1.0)
    assert "rllib/shared/policy_loss" in tags and "rllib/env_steps_per_s" in tags
    assert not list(run_dir.rglob("*.tmp"))


def test_exported_policy_plays_through_torch_policy_agent(run_dir):
    agent = TorchPolicyAgent.load(run_dir / "final_model.pt", deterministic=False, seed=0)
    assert agent.arch.hidden_sizes == (16,) and agent.arch.inputs == "observation"
    env = rudra_env.parallel_env(EnvConfig.from_yaml(SMALL))
    obs, _ = env.reset(seed=3)
    steps = 0
    while env.agents:
        actions = agent.act({a: obs[a] for a in env.agents})
        for a, act in actions.items():
            assert obs[a]["action_mask"][act] == 1, (a, act)  # masked actions never taken
        obs, _, _, _, infos = env.step(actions)
        assert not any(i.get("invalid_action") for i in infos.values())
        steps += 1
    assert steps == env.config.max_steps or not env.agents


def test_resume_continues_from_the_latest_checkpoint(run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    out = rudra_train("--resume", str(run), sets={"total_timesteps": 600})
    assert "done: 640 timesteps" in out
    info = json.loads((run / "run.json").read_text())
    assert info["resumed_from"].endswith("rllib_320")
    meta = json.loads((run / "checkpoints" / "rllib_640" / "rudra.json").read_text())
    assert meta["timesteps"] == 640 and meta["elapsed_s"] > 0
    steps = [s for s, _ in scalars(run / "tb" / "rllib_ppo")["rudra/mean_utility"]]
    assert steps[-2:] == [480, 640]  # the resumed segment logs on from 320
    # a second resume of a complete run trains nothing more
    assert "done: 640 timesteps" in rudra_train("--resume", str(run))


def test_sigterm_writes_a_checkpoint_and_the_run_resumes(tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    flags = [x for k, v in {**TINY, "total_timesteps": 10**6, "run_dir": run}.items()
             for x in ("--set", f"{k}={v}")]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "train", str(SHARED), *flags],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while latest_rllib_checkpoint(run) is None:  # training, its signal handlers installed
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in out
    last = latest_rllib_checkpoint(run)
    meta = json.loads((last / "rudra.json").read_text())
    assert meta["reason"] == "SIGTERM" and not (run / "final_model.pt").exists()
    done = meta["timesteps"]
    out = rudra_train("--resume", str(run), sets={"total_timesteps": done + 100})
    assert f"done: {done + ITERATION} timesteps" in out and (run / "final_model.pt").is_file()


def test_checkpoint_restores_the_trained_weights_on_driver_and_runners(run_dir):
    """What ``--resume`` restores: the latest checkpoint's weights, in the learner's module and
    in every env runner's (here the final checkpoint, whose weights were exported)."""
    from training.rllib import ppo_config, restore_checkpoint

    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    final = TorchPolicyAgent.load(run_dir / "final_model.pt").net.state_dict()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        algo = ppo_config(config).build_algo()
        fresh = policy_agent(algo.get_module("shared")).net.state_dict()
        assert not torch.equal(fresh["0.weight"], final["0.weight"])
        restore_checkpoint(algo, latest_rllib_checkpoint(run_dir))
        restored = policy_agent(algo.get_module("shared")).net.state_dict()
        on_runners = algo.env_runner_group.foreach_env_runner(
            lambda r: r.module["shared"].pi[0].weight.detach().clone(), local_env_runner=False
        )
        algo.stop()
    finally:
        ray.shutdown()
    for key, value in final.items():
        assert torch.equal(restored[key], value), key
    assert all(torch.equal(w, final["0.weight"]) for w in on_runners)


def test_groups_preset_trains_one_policy_per_group(tmp_path):
    run = tmp_path / "run"
    sets = {**TINY, "total_timesteps": 200, "run_dir": run}
    out = rudra_train(str(GROUPS), sets=sets)
    assert re.search(r"done: \d+ timesteps", out)
    info = json.loads((run / "run.json").read_text())
    assert info["modules"] == {"core": list(range(6)), "periphery": list(range(6, 30))}
    for group in ("core", "periphery"):
        agent = TorchPolicyAgent.load(run / "final_models" / f"{group}.pt")
        assert agent.arch.hidden_sizes == (16,)
    tags = scalars(run / "tb" / "rllib_ppo")
    assert "rllib/core/policy_loss" in tags and "rllib/periphery/policy_loss" in tags
    assert {"rudra/utility/core", "rudra/utility/periphery"} <= set(tags)


def test_module_masks_logits_and_exports_the_same_policy():
    env = RudraMultiAgentEnv({"env": EnvConfig.from_yaml(SMALL).to_dict()})
    obs_space, act_space = env.observation_spaces["bank_0"], env.action_spaces["bank_0"]
    module = MaskedMLPModule(
        observation_space=obs_space,
        action_space=act_space,
        model_config={"pi": [8, 8], "vf": [8], "hold_bias": 2.0},
    )
    obs, _ = env.reset(seed=1)
    names = sorted(obs)
    batch = {
        Columns.OBS: {
            k: torch.as_tensor(np.stack([obs[a][k] for a in names])) for k in obs_space.spaces
        }
    }
    with torch.no_grad():
        logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS].numpy()
        values = module.compute_values(batch)
    mask = batch[Columns.OBS]["action_mask"].numpy()
    assert values.shape == (len(names),)
    assert (logits[mask == 0] < -1e30).all() and np.isfinite(logits[mask == 1]).all()
    agent = policy_agent(module)
    raw = agent.logits(batch[Columns.OBS]["observation"].numpy()[None], np.ones_like(mask)[None])[0]
    np.testing.assert_allclose(raw[mask == 1], logits[mask == 1], rtol=1e-5, atol=1e-5)
    assert agent.act({a: obs[a] for a in names}).keys() == set(names)


def test_env_face_learners_fixed_banks_and_team_reward():
    cfg = EnvConfig.from_yaml(SMALL).to_dict()
    env = RudraMultiAgentEnv(
        {"env": cfg, "learners": [0, 3], "fixed_agent": "heuristic", "team_reward": 1.0}
    )
    assert env.possible_agents == ["bank_0", "bank_3"]
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"bank_0", "bank_3"}
    rng = np.random.default_rng(0)
    steps = 0
    while True:
        actions = {a: int(rng.choice(np.flatnonzero(o["action_mask"]))) for a, o in obs.items()}
        obs, rew, term, trunc, _ = env.step(actions)
        steps += 1
        assert set(rew) <= {"bank_0", "bank_3"}
        if len(rew) == 2:  # team reward: every learner gets the world's mean
            assert rew["bank_0"] == pytest.approx(rew["bank_3"])
        m = env.step_metrics
        assert m["steps"] == 1 and m["live"] == len(rew) and m["invalid"] == 0
        assert np.isfinite(m["reward"]) and 0.0 <= m["default_rate"] <= 1.0
        if term["__all__"] or trunc["__all__"]:
            break
        obs = {a: o for a, o in obs.items() if not (term[a] or trunc[a])}
    assert steps <= env.env.config.max_steps


def test_a_new_rllib_run_refuses_a_used_run_dir(run_dir):
    from training.train import train

    config = TrainConfig.from_yaml(SHARED).with_overrides({"run_dir": str(run_dir)})
    with pytest.raises(ConfigError, match="expected a new or empty folder"):
        train(config)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"backend": "rlib"}, "backend = 'rlib' is not allowed: expected one of ('sb3', 'rllib')"),
        ({"backend": "rllib", "algorithm": "a2c"}, "ppo or maskable_ppo with backend = 'rllib'"),
        (
            {"backend": "rllib", "hyperparameters": {"policy_kwargs": {}}},
            "unknown key 'hyperparameters.policy_kwargs'",
        ),
        ({"ray": {"num_env_runner": 2}}, "unknown key 'ray.num_env_runner'; did you mean"),
        ({"ray": {"num_env_runners": -1}}, "ray.num_env_runners = -1 is not allowed"),
        ({"ray": {"address": ""}}, "ray.address = '' is not allowed"),
    ],
)
def test_bad_rllib_config_names_the_field(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.from_dict({"env": str(SMALL), **data})


def test_ray_tournament_equals_the_local_one(run_dir):
    """With the exported RLlib policy as a population (a checkpoint read in every task)."""
    tour = TournamentConfig.from_yaml(ROOT / "configs" / "evaluate" / "tournament_small.yaml")
    tour = tour.with_overrides(
        {
            "seeds": 4,
            "worlds_per_batch": 2,
            "overrides": {"max_steps": 6},
            "checkpoints": {"rllib": str(run_dir / "final_model.pt")},
            "scenarios": {"small": str(SMALL), "small_ring": {"config": RING}},
            "populations": {
                "heuristic": "heuristic",
                "rllib": "rllib:0.5,heuristic",
                "eq_half": "equilibrium:0.5,heuristic",
            },
            "equilibrium_gap.every": 3,
            "tensorboard": False,
        }
    )
    local = evaluate(tour, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = evaluate(tour, progress=False, ray="local")
    finally:
        ray.shutdown()
    assert remote.markdown() == local.markdown()
    assert remote.cross_markdown() == local.cross_markdown()
    assert remote.per_world_csv() == local.per_world_csv()
    for key, cell in local.cells.items():
        np.testing.assert_array_equal(remote.cells[key].rewards, cell.rewards)
