"""Every training preset in ``configs/train/`` (found automatically) validates and trains.

Each runs a few hundred timesteps through ``rudra train PRESET --set ...`` (the CLI, in this
process) with tiny overrides: one world, 8-step rollouts, a 16-unit network, no recorded
rollouts. The presets' own sizes are untouched otherwise (default.yaml's 30 banks, the
equilibrium banks of ``ppo_vs_equilibrium``), so a preset that cannot train fails here. Each
takes a few seconds (``ppo_vs_equilibrium`` the longest: its 24 equilibrium banks solve a game
at every step).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3", reason="training needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="training needs the `train` extra")

from agents import TorchPolicyAgent  # noqa: E402
from training import checkpoint as ck  # noqa: E402
from training.cli import main  # noqa: E402
from training.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# backend: rllib presets train in tests/training/test_rllib.py (the [distributed] extra)
PRESETS = [
    p
    for p in sorted((ROOT / "configs" / "train").glob("*.yaml"))
    if TrainConfig.from_yaml(p).backend == "sb3"
]
TIMESTEPS = 300
TINY = {
    "worlds": 1,
    "total_timesteps": TIMESTEPS,
    "checkpoint_every": 100,
    "eval_every": "null",
    "progress_bar": "false",
    "compare_worlds": 2,  # a preset's end-of-run comparison runs, on two worlds
    "hyperparameters.n_steps": 8,
    "hyperparameters.batch_size": 48,
    "hyperparameters.n_epochs": 1,
    "hyperparameters.net_arch": "[16]",
}


def test_the_issue_presets_are_there():
    names = {p.stem for p in PRESETS}
    assert {"ppo_shared_default", "ppo_vs_equilibrium", "ppo_groups"} <= names, names


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_trains_a_few_hundred_timesteps(path, tmp_path, capsys):
    preset = TrainConfig.from_yaml(path)
    run_dir = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in {**TINY, "run_dir": run_dir}.items()]
    assert main(["train", str(path), *[x for s in sets for x in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    assert config.env.config == preset.env_config().to_dict()  # the preset's env, untouched
    last = ck.read_checkpoint(ck.latest_checkpoint(run_dir))
    assert TIMESTEPS <= last.timesteps < TIMESTEPS + 8 * config.env.config["num_banks"]
    assert last.meta["reason"] == "done" and f"done: {last.timesteps} timesteps" in out
    if preset.sharing == "groups":
        finals = [run_dir / "final_models" / f"{g}.zip" for g in preset.groups]
        assert set(last.group_models) == set(preset.groups)
    else:
        finals = [run_dir / "final_model.zip"]
    for final in finals:
        with zipfile.ZipFile(final) as zf:
            assert "policy.pth" in zf.namelist()
        TorchPolicyAgent.load(final)  # every final model loads as an agent
    if preset.compare_against:  # the end-of-run table, printed and written
        assert (run_dir / "comparison.md").is_file() and "| trained |" in out
