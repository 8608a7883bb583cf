"""``sharing: groups``: one model per bank group, trained in lock-step over one shared step.

The views (``training.group_env``) are checked against the parent env stepped by hand; the
lock-step loop (``training.lockstep``) against SB3's own ``learn`` (one group holding every
learner must train exactly as ``model.learn``: this also fails if SB3's internals that the loop
uses change); and a tiny run end to end: per-group models, checkpoints, resume after SIGTERM,
TensorBoard tags, and each group's final model playing its banks through ``TorchPolicyAgent``.
Runs use small.yaml (10 banks), 1-2 worlds and 8-step rollouts: a few seconds each.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import rudra_env
from agents import HeuristicAgent, Population, TorchPolicyAgent
from rudra_env.errors import ConfigError

pytest.importorskip("stable_baselines3", reason="training needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="training needs the `train` extra")

from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

from training import checkpoint as ck  # noqa: E402
from training.config import TrainConfig, algorithm_class  # noqa: E402
from training.group_env import group_views  # noqa: E402
from training.lockstep import Group, learn_lockstep  # noqa: E402
from training.train import train  # noqa: E402
from training.vec_env import RudraVecEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "configs" / "env" / "small.yaml"
GROUPS = {"core": [0, 1, 2], "periphery": ["bank_3", 4, 5, 6, 7, 8, 9]}
ROLLOUT = 8 * 10  # n_steps x (1 world x 10 banks): run timesteps per rollout


def masked_random(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    return np.array([rng.choice(np.flatnonzero(row)) for row in masks])


def same_info(a: dict, b: dict) -> bool:
    """Equal infos, up to the wall-clock time in episode statistics."""
    if set(a) != set(b):
        return False
    for key, value in a.items():
        if key == "episode":
            if (value["r"], value["l"]) != (b[key]["r"], b[key]["l"]):
                return False
        elif not np.array_equal(value, b[key]):
            return False
    return True


# --------------------------------------------------------------------------- the views
def test_views_step_the_parent_once_with_every_groups_actions():
    overrides = {"max_steps": 6, "scenario.interventions": [
        {"type": "remove_bank", "step": 2, "bank": 1}
    ]}  # fmt: skip
    ref = RudraVecEnv(SMALL, worlds=2, seed=3, overrides=overrides)
    views = group_views(RudraVecEnv(SMALL, worlds=2, seed=3, overrides=overrides), GROUPS)
    core, periphery = views["core"], views["periphery"]
    assert core.num_envs == 6 and periphery.num_envs == 14
    assert core.learners.tolist() == [0, 1, 2] and core.rows.tolist() == [0, 1, 2, 10, 11, 12]
    obs = ref.reset()
    np.testing.assert_array_equal(core.reset(), obs[core.rows])
    np.testing.assert_array_equal(periphery.reset(), obs[periphery.rows])
    rng = np.random.default_rng(0)
    for t in range(10):  # through a default (step 2) and a horizon reset (step 6)
        masks = ref.action_masks()
        np.testing.assert_array_equal(core.action_masks(), masks[core.rows])
        actions = masked_random(rng, masks)
        core.step_async(actions[core.rows])
        periphery.step_async(actions[periphery.rows])
        got = {name: view.step_wait() for name, view in views.items()}
        want = ref.step(actions)
        for name, (o, r, d, infos) in got.items():
            rows = views[name].rows
            np.testing.assert_array_equal(o, want[0][rows], err_msg=f"{name} step {t}")
            np.testing.assert_array_equal(r, want[1][rows])
            np.testing.assert_array_equal(d, want[2][rows])
            for i, info in zip(rows.tolist(), infos, strict=True):
                assert same_info(info, want[3][i]), (name, t, info, want[3][i])
            np.testing.assert_array_equal(views[name].active, ref.active[rows])
    assert core.state.equal(ref.state) and core.last_output is not None


def test_views_refuse_to_drift_apart():
    views = group_views(RudraVecEnv(SMALL, worlds=1, seed=0), GROUPS)
    core, periphery = views["core"], views["periphery"]
    core.reset()
    periphery.reset()  # the same reset: no second one
    core.step_async(np.zeros(3, dtype=np.int64))
    with pytest.raises(RuntimeError, match=r"groups \['periphery'\] have not submitted"):
        core.step_wait()
    periphery.step_async(np.zeros(7, dtype=np.int64))
    core.step_wait()
    core.step_async(np.zeros(3, dtype=np.int64))
    periphery.step_async(np.zeros(7, dtype=np.int64))
    with pytest.raises(RuntimeError, match=r"groups \['periphery'\] have not read"):
        core.step_wait()
    periphery.step_wait()
    core.step_wait()  # now the next step runs
    assert core.state.t.tolist() == [2]


def test_views_refuse_groups_that_do_not_split_the_learners():
    venv = RudraVecEnv(SMALL, learners=[0, 1, 2], fixed_agent=HeuristicAgent())
    with pytest.raises(ConfigError, match=r"learning banks \[2\] are in no group"):
        group_views(venv, {"a": [0, 1]})
    with pytest.raises(ConfigError, match="bank 1 is in 'a' and in 'b'"):
        group_views(venv, {"a": [0, 1], "b": [1, 2]})
    with pytest.raises(ConfigError, match=r"groups\['b'\]: bank 5 does not learn"):
        group_views(venv, {"a": [0, 1, 2], "b": [5]})
    with pytest.raises(ConfigError, match=r"groups\['a'\] entry 'x' is not a bank"):
        group_views(venv, {"a": ["x"]})


# --------------------------------------------------------------------------- the lock-step loop
@pytest.mark.parametrize("algorithm", ["maskable_ppo", "ppo", "a2c"])
def test_one_group_of_every_learner_trains_exactly_as_sb3_learn(algorithm):
    """The loop is SB3's learn/collect_rollouts for G models: with G = 1 the weights match
    (a horizon inside the run exercises the time-out bootstrap and world resets)."""
    kwargs = {"n_steps": 8, "seed": 5, "policy_kwargs": {"net_arch": [16]}}
    if algorithm != "a2c":
        kwargs |= {"batch_size": 40, "n_epochs": 2}
    cls = algorithm_class(algorithm)
    overrides = {"max_steps": 12}
    # SB3 seeds a plain vec env with the model's seed when it builds the model (a view is
    # never reseeded), so both worlds start from seed 5.
    sb3 = cls("MlpPolicy", RudraVecEnv(SMALL, seed=5, overrides=overrides), **kwargs)
    sb3.learn(4 * ROLLOUT)
    view = group_views(RudraVecEnv(SMALL, seed=5, overrides=overrides), {"all": range(10)})
    ours = cls("MlpPolicy", view["all"], **kwargs)
    learn_lockstep([Group("all", ours)], 4 * ROLLOUT)
    assert ours.num_timesteps == sb3.num_timesteps == 4 * ROLLOUT
    assert ours._n_updates == sb3._n_updates
    assert [e["r"] for e in ours.ep_info_buffer] == pytest.approx(
        [e["r"] for e in sb3.ep_info_buffer], rel=1e-6
    )
    theirs = sb3.policy.state_dict()
    for key, value in ours.policy.state_dict().items():
        # the bootstrap's one batched value call may round differently in the last bit
        np.testing.assert_allclose(value.numpy(), theirs[key].numpy(), atol=1e-6, err_msg=key)


def test_lockstep_refuses_models_with_different_rollout_lengths():
    views = group_views(RudraVecEnv(SMALL), GROUPS)
    cls = algorithm_class("ppo")
    a = cls("MlpPolicy", views["core"], n_steps=8, batch_size=24)
    b = cls("MlpPolicy", views["periphery"], n_steps=16, batch_size=56)
    with pytest.raises(ValueError, match="n_steps differ"):
        learn_lockstep([Group("core", a), Group("periphery", b)], 100)


# --------------------------------------------------------------------------- end to end
def tiny_config(tmp_path: Path, **data) -> TrainConfig:
    base = {
        "env": str(SMALL),
        "worlds": 1,
        "sharing": "groups",
        "groups": GROUPS,
        "hyperparameters": {"n_steps": 8, "batch_size": 40, "n_epochs": 1, "net_arch": [16]},
        "progress_bar": False,
        "run_dir": str(tmp_path / "run"),
    }
    return TrainConfig.from_dict({**base, **data})


class SigtermAfterCheckpoint(BaseCallback):
    """Sends this process SIGTERM once the run has written a checkpoint (the trainer's handler
    then stops at the next step, as for ``kill``)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.sent = False

    def _on_step(self) -> bool:
        if not self.sent and ck.latest_checkpoint(self.run_dir) is not None:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return True


@pytest.fixture(scope="module")
def group_run(tmp_path_factory) -> tuple[Path, int, int]:
    """A groups run stopped by SIGTERM after its first checkpoint, then resumed to the end:
    (run dir, the stop's timesteps, the total)."""
    tmp = tmp_path_factory.mktemp("groups")
    total = 6 * ROLLOUT
    config = tiny_config(tmp, total_timesteps=total, checkpoint_every=2 * ROLLOUT)
    run_dir = Path(config.run_dir)
    stopped = train(config, callbacks=[SigtermAfterCheckpoint(run_dir)])
    assert stopped.stopped_by == "SIGTERM" and not stopped.finished
    assert stopped.final_models == {} and not (run_dir / "final_models").exists()
    # TensorBoard reads a run's event files in name order (whole seconds, then a per-process
    # counter compared as text: "...10" sorts before "...9") and drops steps that go backwards;
    # a resumed segment opened in the same second as the first could sort before it. A new
    # process resuming later never does; here the resume waits for the next second.
    time.sleep(1.01 - time.time() % 1)
    resumed = train(resume=run_dir)
    assert resumed.finished and resumed.timesteps == total and resumed.final_model is None
    assert set(resumed.final_models) == {"core", "periphery"}
    return run_dir, stopped.timesteps, total


def test_group_run_checkpoints_every_groups_model_and_resumes(group_run):
    run_dir, cut, total = group_run
    assert 2 * ROLLOUT <= cut < total and cut % ROLLOUT == 0  # at an update
    last = ck.read_checkpoint(ck.latest_checkpoint(run_dir))
    assert last.model_zip is None and set(last.group_models) == {"core", "periphery"}
    assert last.meta["format"] == ck.FORMAT == 2
    assert last.meta["groups"] == {"core": [0, 1, 2], "periphery": list(range(3, 10))}
    assert last.meta["segments"] == [
        {"start": 0, "end": cut, "reason": "SIGTERM"},
        {"start": cut, "end": total, "reason": "done"},
    ]
    assert last.meta["n_updates"] == total // ROLLOUT  # each model: one update per rollout
    info = json.loads((run_dir / "run.json").read_text())
    assert info["sharing"] == "groups" and info["groups"]["core"] == [0, 1, 2]
    assert info["resumed_from"].endswith(f"ckpt_{cut:012d}.zip")
    assert sorted(p.name for p in (run_dir / "final_models").iterdir()) == [
        "core.zip",
        "periphery.zip",
    ]
    again = train(resume=run_dir)  # a complete run: nothing to do
    assert again.finished and again.final_models == {
        g: run_dir / "final_models" / f"{g}.zip" for g in ("core", "periphery")
    }


def test_group_run_logs_each_groups_curves_to_its_own_run(group_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = group_run[0]
    assert sorted(p.name for p in (run_dir / "tb").iterdir()) == ["core", "periphery"]
    for group in ("core", "periphery"):
        runs = [p.name for p in (run_dir / "tb" / group).iterdir()]
        assert runs == ["maskable_ppo_1"], runs  # the resumed segment continues the same run
        acc = EventAccumulator(str(run_dir / "tb" / group / "maskable_ppo_1")).Reload()
        tags = set(acc.Tags()["scalars"])
        assert {f"rudra/utility/{group}", "rudra/mean_utility", "train/loss"} <= tags, tags
        assert {"rudra/actions/HOLD", "rudra/default_rate"} <= tags
        steps = [e.step for e in acc.Scalars(f"rudra/utility/{group}")]
        assert steps[-1] == group_run[2]  # run timesteps on every group's axis


def test_each_groups_final_model_plays_its_banks_through_torch_policy_agent(group_run):
    run_dir = group_run[0]
    agents = {g: TorchPolicyAgent.load(run_dir / "final_models" / f"{g}.zip") for g in GROUPS}
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    pop = Population(
        {b: agents[g] for g, banks in config.groups.items() for b in banks},
    )
    env = rudra_env.parallel_env(config.env_config())
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        actions = pop.act(obs)
        for agent, a in actions.items():
            assert obs[agent]["action_mask"][a] == 1, (agent, a)  # MaskablePPO acts legally
        obs, *_ = env.step(actions)


def test_groups_with_fixed_banks_and_rollouts_played_by_the_population(tmp_path):
    config = tiny_config(
        tmp_path,
        env={"file": str(SMALL), "overrides": {"max_steps": 10}},  # short recorded rollouts
        learners=[0, 1, 2, 3],
        fixed_agent="heuristic",
        groups={"a": [0, 1], "b": [2, 3]},
        algorithm="a2c",
        hyperparameters={"n_steps": 8, "net_arch": [16]},
        total_timesteps=2 * 8 * 4,
        eval_every=8 * 4,
    )
    result = train(config)
    assert result.finished and result.timesteps == 64
    rollouts = sorted(p.name for p in (result.run_dir / "tb" / "rollouts").iterdir())
    assert rollouts == ["rollout_t000000032", "rollout_t000000064"]
    for g in ("a", "b"):
        TorchPolicyAgent.load(result.final_models[g])


def test_a_checkpoint_that_does_not_fit_the_groups_is_refused(group_run, tmp_path):
    import shutil

    run_dir = shutil.copytree(group_run[0], tmp_path / "copy")
    renamed = TrainConfig.from_yaml(run_dir / "config.yaml").with_overrides(
        {"total_timesteps": 10 * ROLLOUT}
    )
    renamed = TrainConfig.from_dict(
        {**renamed.to_dict(), "groups": {"core": [0, 1, 2], "rest": list(range(3, 10))}}
    )
    with pytest.raises(ConfigError, match="does not fit this config.*no model for group 'rest'"):
        train(renamed, resume=run_dir)


def test_group_names_must_be_usable_as_file_names():
    with pytest.raises(ConfigError, match="groups = 'a/b' is not allowed: expected group names"):
        TrainConfig.from_dict(
            {"env": str(SMALL), "sharing": "groups", "groups": {"a/b": list(range(10))}}
        )


def test_a_format_1_checkpoint_is_still_read(tmp_path):
    import zipfile

    import yaml

    config = TrainConfig.from_dict({"env": str(SMALL)})
    path = tmp_path / "old.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.zip", b"m")
        zf.writestr("config.yaml", yaml.safe_dump(config.to_dict()))
        zf.writestr("meta.json", json.dumps({"format": 1, "timesteps": 8}))
        zf.writestr("rng.json", "{}")
    old = ck.read_checkpoint(path)
    assert old.model_zip == b"m" and old.group_models == {} and old.timesteps == 8


def test_a_groups_run_compares_every_groups_model_in_its_seats(tmp_path):
    # Banks 0-3 learn in two groups among heuristic banks; the comparison plays group a's model
    # for banks 0-1 and b's for 2-3 (sampled, then greedy), then hold in all four seats.
    config = tiny_config(
        tmp_path,
        env={"file": str(SMALL), "overrides": {"max_steps": 4}},
        learners=[0, 1, 2, 3],
        fixed_agent="heuristic",
        groups={"a": [0, 1], "b": [2, 3]},
        total_timesteps=2 * 8 * 4,
        compare_against=["hold"],
        compare_worlds=3,
    )
    result = train(config)
    rows = result.comparison.rows
    assert [r.candidate for r in rows] == ["trained", "trained, greedy", "hold"]
    from agents import HeuristicAgent, HoldAgent, Population, run_episodes

    hold = Population({i: HoldAgent() for i in range(4)}, default=HeuristicAgent())
    want = run_episodes(config.env_config(), hold, 3, result.comparison.seed).rewards[:, :4]
    assert rows[2].utility.mean == pytest.approx(want.mean(axis=1).mean(), abs=1e-12)
    assert (result.run_dir / "comparison.md").is_file()
