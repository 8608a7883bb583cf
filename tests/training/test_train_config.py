"""``TrainConfig``: errors that name field, value and what is allowed; ``--set`` overrides."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rudra_env.errors import ConfigError

pytest.importorskip("stable_baselines3", reason="training needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="training needs the `train` extra")

from training.cli import main, parse_sets  # noqa: E402
from training.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "configs" / "env" / "small.yaml"
TRAIN_CONFIGS = sorted((ROOT / "configs" / "train").glob("*.yaml"))


def cfg(**data) -> TrainConfig:
    return TrainConfig.from_dict({"env": str(SMALL), **data})


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=[p.stem for p in TRAIN_CONFIGS])
def test_every_train_preset_is_valid(path):
    config = TrainConfig.from_yaml(path)
    assert config.name == path.stem
    assert Path(config.env.file).is_absolute()
    config.env_config()


def test_preset_list_is_not_empty():
    assert "ppo_shared_small" in [p.stem for p in TRAIN_CONFIGS]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"algoritm": "ppo"}, "unknown key 'algoritm'; did you mean 'algorithm'?"),
        ({"hyperparameters": {"n_step": 8}}, "'hyperparameters.n_step'; did you mean 'n_steps'?"),
        ({"env": {"fiel": "x.yaml"}}, "unknown key 'env.fiel'; did you mean 'file'?"),
        (
            {"env": {"file": str(SMALL), "overrides": {"num_bank": 5}}},
            "env: unknown key 'num_bank'; did you mean 'num_banks'?",
        ),
    ],
)
def test_unknown_key_suggests_the_closest(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.from_dict({"env": str(SMALL), **data})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"algorithm": "dqn"}, "algorithm = 'dqn' is not allowed: expected one of ('maskable_ppo'"),
        ({"fixed_agent": "smart"}, "fixed_agent = 'smart' is not allowed: expected one of"),
        ({"sharing": "each"}, "sharing = 'each' is not allowed: expected one of ('shared'"),
        ({"worlds": 0}, "worlds = 0 is not allowed: expected an integer in [1,"),
        ({"seed": -1}, "seed = -1 is not allowed"),
        ({"device": "gpu"}, "device = 'gpu' is not allowed: expected one of ('cpu', 'cuda'"),
        ({"learners": [0, 10]}, "learners[1] = 10 is not allowed: expected a bank: an index in"),
        ({"learners": [2, "bank_2"]}, "learners = [2, 'bank_2'] is not allowed: expected each"),
        ({"learners": 1.5}, "learners = 1.5 is not allowed: expected a number in (0.0, 1.0]"),
        ({"learners": "some"}, "learners = 'some' is not allowed: expected 'all', a list"),
        ({"total_timesteps": None}, "total_timesteps = None is not allowed: expected an integer"),
        ({"total_timesteps": 0}, "total_timesteps = 0 is not allowed: expected an integer >= 1"),
        ({"time_budget_s": -3}, "time_budget_s = -3.0 is not allowed: expected a number > 0.0"),
        ({"checkpoint_every": 2.5}, "checkpoint_every = 2.5 is not allowed: expected an integer"),
        ({"keep_checkpoints": 0}, "keep_checkpoints = 0 is not allowed"),
        ({"hyperparameters": {"gamma": 1.5}}, "hyperparameters.gamma = 1.5 is not allowed"),
        ({"hyperparameters": {"n_steps": "8"}}, "hyperparameters.n_steps = '8' is not allowed"),
        ({"hyperparameters": {"seed": 1}}, "hyperparameters.seed = 1 is not allowed: expected "),
        ({"hyperparameters": {"net_arch": [64, 0]}}, "hyperparameters.net_arch = [64, 0] is not"),
        ({"env": {"file": str(SMALL), "config": {}}}, "expected env.file or env.config, not both"),
        ({"env": 3}, "env = 3 is not allowed: expected a mapping of EnvSpec fields"),
    ],
)
def test_bad_value_names_field_value_and_allowed(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.from_dict({"env": str(SMALL), **data})


def test_hyperparameter_names_follow_the_algorithm():
    cfg(algorithm="ppo", hyperparameters={"batch_size": 16})
    with pytest.raises(ConfigError, match=r"'hyperparameters.batch_size'; did you mean"):
        cfg(algorithm="a2c", hyperparameters={"batch_size": 16})


def test_cuda_without_a_gpu_names_the_field():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    with pytest.raises(ConfigError, match=r"device = 'cuda' is not allowed: .*no CUDA GPU"):
        cfg(device="cuda")


def test_missing_train_yaml_names_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist: searched"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")


def test_env_file_is_read_from_the_train_yaml_folder(tmp_path, monkeypatch):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "tiny.yaml").write_text(SMALL.read_text())
    (tmp_path / "run.yaml").write_text("env: envs/tiny.yaml\nworlds: 2\n")
    monkeypatch.chdir(ROOT)  # elsewhere: the path must not depend on the current directory
    config = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert config.env.file == str(tmp_path / "envs" / "tiny.yaml")
    assert config.env_config().num_banks == 10
    assert config.name == "run"


def test_inline_env_and_overrides():
    config = TrainConfig.from_dict(
        {"env": {"config": {"num_banks": 6}, "overrides": {"topology.kind": "ring"}}}
    )
    env = config.env_config()
    assert (env.num_banks, env.topology.kind) == (6, "ring")


def test_parse_sets_reads_values_as_yaml():
    sets = parse_sets(["worlds=4", "run_dir=null", "hyperparameters.net_arch=[32, 32]", "a=b=c"])
    assert sets == {"worlds": 4, "run_dir": None, "hyperparameters.net_arch": [32, 32], "a": "b=c"}
    with pytest.raises(ConfigError, match="--set 'worlds' is not allowed: expected KEY=VALUE"):
        parse_sets(["worlds"])


def test_with_overrides_sets_dotted_keys_without_touching_the_original():
    base = cfg(hyperparameters={"n_steps": 8})
    new = base.with_overrides(
        {
            "worlds": 3,
            "hyperparameters.batch_size": 16,
            "env.num_banks": 12,  # short for env.overrides.num_banks
            "env.overrides.topology.kind": "ring",
        }
    )
    assert new.worlds == 3
    assert new.hyperparameters == {"n_steps": 8, "batch_size": 16}
    assert base.hyperparameters == {"n_steps": 8}
    env = new.env_config()
    assert (env.num_banks, env.topology.kind) == (12, "ring")
    with pytest.raises(ConfigError, match=r"unknown key 'wrlds'; did you mean 'worlds'\?"):
        base.with_overrides({"wrlds": 3})
    with pytest.raises(ConfigError, match=r"env: unknown key 'num_bnks'; did you mean"):
        base.with_overrides({"env.num_bnks": 3})


def test_net_arch_goes_into_policy_kwargs():
    config = cfg(hyperparameters={"net_arch": {"pi": [16], "vf": [32]}, "n_steps": 8})
    assert config.sb3_kwargs() == {
        "n_steps": 8,
        "policy_kwargs": {"net_arch": {"pi": [16], "vf": [32]}},
    }


def test_learners_as_a_share_are_drawn_from_the_seed():
    a = cfg(learners=0.2, seed=3).learner_indices(10)
    assert len(a) == 2 and np.array_equal(a, cfg(learners=0.2, seed=3).learner_indices(10))
    assert cfg(learners=["bank_4", 1]).learner_indices(10).tolist() == [1, 4]
    assert cfg(learners=0.01).learner_indices(10).size == 1  # at least one


def test_groups_are_validated():
    groups = {"core": [0, 1], "periphery": list(range(2, 10))}
    config = cfg(sharing="groups", groups=groups)
    assert config.groups == groups
    with pytest.raises(ConfigError, match=r"groups.b\[0\] = 1 is not allowed: .*in 'a'"):
        cfg(sharing="groups", groups={"a": [0, 1], "b": [1]})
    with pytest.raises(ConfigError, match=r"groups = \[2, 3\] is not allowed: expected every"):
        cfg(sharing="groups", groups={"a": [0, 1]}, learners=[0, 1, 2, 3])
    with pytest.raises(ConfigError, match="no groups when sharing = 'shared'"):
        cfg(groups=groups)


def test_cli_reports_config_errors_with_status_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "rudra train: error: config path" in capsys.readouterr().err
    assert (
        main(["train", str(ROOT / "configs/train/ppo_shared_small.yaml"), "--set", "wrlds=2"]) == 2
    )
    assert "did you mean 'worlds'?" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "expected a run directory" in capsys.readouterr().err
