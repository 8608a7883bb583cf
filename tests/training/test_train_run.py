"""``rudra train``: tiny end-to-end runs in a subprocess, resume after SIGTERM, checkpoints.

The runs use small.yaml (10 banks) with 1-2 worlds and 8-step rollouts: a rollout is 80-160
timesteps, and a whole run takes a few seconds, most of it importing torch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rudra_env.errors import ConfigError

pytest.importorskip("stable_baselines3", reason="training needs the `train` extra")
pytest.importorskip("sb3_contrib", reason="training needs the `train` extra")

from training import checkpoint as ck  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.train import train  # noqa: E402
from training.vec_env import RudraVecEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PRESET = ROOT / "configs" / "train" / "ppo_shared_small.yaml"
SMALL = ROOT / "configs" / "env" / "small.yaml"
TINY = [
    "--set", "worlds=1",
    "--set", "hyperparameters.n_steps=8",
    "--set", "hyperparameters.batch_size=40",
    "--set", "hyperparameters.n_epochs=1",
    "--set", "hyperparameters.net_arch=[16]",
    "--set", "compare_against=[]",
]  # fmt: skip
ROLLOUT = 8 * 10  # n_steps x (1 world x 10 banks)

# The first run of the resume test: the CLI with one extra callback (through the
# extra_callbacks hook) that sleeps each step, so SIGTERM surely lands mid-run.
SLOW_CLI = """
import sys, time
from stable_baselines3.common.callbacks import BaseCallback
import training.train

class Slow(BaseCallback):
    def _on_step(self):
        time.sleep(0.02)
        return True

training.train.extra_callbacks = lambda config, run_dir, venv: [Slow()]
from training.cli import main
sys.exit(main(sys.argv[1:]))
"""


def rudra(*args: str, code: str | None = None, **kwargs) -> subprocess.Popen:
    """``python -m training ARGS`` (or ``python -c CODE ARGS``) from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    head = ["-c", code] if code else ["-m", "training"]
    return subprocess.Popen(
        [sys.executable, *head, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_rudra_train_writes_config_checkpoints_and_final_model(tmp_path):
    run_dir = tmp_path / "run"
    proc = rudra(
        "train", str(PRESET), *TINY,
        "--set", f"run_dir={run_dir}",
        "--set", f"total_timesteps={3 * ROLLOUT}",
        "--set", f"checkpoint_every={ROLLOUT}",
        "--set", f"eval_every={2 * ROLLOUT}",
    )  # fmt: skip
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert f"done: {3 * ROLLOUT} timesteps" in out and "tensorboard --logdir" in out
    assert "step/s" in err  # the progress bar

    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    assert config.name == "ppo_shared_small" and config.run_dir == str(run_dir)
    assert config.env.file is None and config.env.config["num_banks"] == 10  # env inlined
    assert config.hyperparameters["n_steps"] == 8
    assert (run_dir / "env.yaml").is_file()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["env_id"] == "rudra_v1" and info["versions"]["rudra"]
    assert info["learners"] == list(range(10)) and info["device"] == "cpu"

    names = [p.name for p in ck.list_checkpoints(run_dir)]
    assert names == ["ckpt_000000000160.zip", "ckpt_000000000240.zip"]  # keep 2
    last = ck.read_checkpoint(ck.latest_checkpoint(run_dir))
    assert last.meta["timesteps"] == 3 * ROLLOUT and last.meta["reason"] == "done"
    assert last.meta["env_id"] == "rudra_v1" and last.meta["n_updates"] == 3
    assert last.config == config
    assert len(last.rng["worlds"]["worlds"]) == 1 and last.rng["torch"]
    with zipfile.ZipFile(run_dir / "final_model.zip") as zf:
        assert "policy.pth" in zf.namelist()
    assert list((run_dir / "tb").glob("maskable_ppo_1/events.out.tfevents.*"))
    assert not list(run_dir.rglob("*.tmp"))
    # TensorBoard: the systemic metrics beside SB3's, hparams, and recorded rollouts (at the
    # evaluation interval and at the end).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    main = EventAccumulator(str(run_dir / "tb" / "maskable_ppo_1")).Reload()
    assert {"rudra/default_rate", "rudra/total_equity", "final/mean_return"} <= set(
        main.Tags()["scalars"]
    )
    rollouts = sorted((run_dir / "tb" / "maskable_ppo_1").glob("rollout_t*"))
    assert [r.name for r in rollouts] == ["rollout_t000000160", "rollout_t000000240"]
    frames = EventAccumulator(str(rollouts[-1]), size_guidance={"images": 0}).Reload()
    assert len(frames.Images("rollout/network")) > 1


def test_resume_after_sigterm_continues_from_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    total = 10 * ROLLOUT
    proc = rudra(
        "train", str(PRESET), *TINY,
        "--set", f"run_dir={run_dir}",
        "--set", f"total_timesteps={total}",
        "--set", f"checkpoint_every={ROLLOUT}",
        "--set", "progress_bar=false",
        code=SLOW_CLI,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while ck.latest_checkpoint(run_dir) is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    rc, out, err = finish(proc)
    assert rc == 128 + signal.SIGTERM, err
    assert "SIGTERM: stopping at the next step" in err
    assert f"rudra train --resume {run_dir}" in out

    stopped = ck.read_checkpoint(ck.latest_checkpoint(run_dir))
    cut = stopped.timesteps
    assert stopped.meta["reason"] == "SIGTERM"
    assert ROLLOUT <= cut < total and cut % ROLLOUT == 0  # at an update, not mid-rollout
    assert not (run_dir / "final_model.zip").exists()

    rc, out, err = finish(rudra("train", "--resume", str(run_dir)))
    assert rc == 0, err
    final = ck.read_checkpoint(ck.latest_checkpoint(run_dir))
    assert final.meta["reason"] == "done" and final.timesteps == total
    assert final.meta["segments"] == [
        {"start": 0, "end": cut, "reason": "SIGTERM"},
        {"start": cut, "end": total, "reason": "done"},
    ]
    assert final.meta["n_updates"] == total // ROLLOUT  # one update per rollout, none twice
    assert f"done: {total} timesteps" in out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumed_from"] == str(stopped.path)
    assert (run_dir / "final_model.zip").is_file()
    assert [p.name for p in (run_dir / "tb").iterdir()] == ["maskable_ppo_1"]  # one curve

    # resuming a complete run does nothing
    again = train(resume=run_dir)
    assert again.finished and again.timesteps == total and again.checkpoint == final.path


def tiny_config(tmp_path: Path, **data) -> TrainConfig:
    base = {
        "env": str(SMALL),
        "worlds": 1,
        "hyperparameters": {"n_steps": 8, "batch_size": 40, "n_epochs": 1, "net_arch": [16]},
        "progress_bar": False,
        "run_dir": str(tmp_path / "run"),
    }
    return TrainConfig.from_dict({**base, **data})


def test_time_budget_ends_the_run_with_a_final_model(tmp_path):
    config = tiny_config(tmp_path, total_timesteps=None, time_budget_s=0.5, checkpoint_every=80)
    result = train(config)
    assert result.finished and result.stopped_by == "time budget"
    assert result.elapsed_s >= 0.5 and result.final_model.is_file()
    meta = ck.read_checkpoint(result.checkpoint).meta
    assert meta["reason"] == "time budget" and meta["timesteps"] == result.timesteps


def test_learners_among_fixed_banks(tmp_path):
    config = tiny_config(tmp_path, learners=[0, "bank_3"], fixed_agent="random", total_timesteps=16)
    result = train(config)
    assert result.finished and result.timesteps == 16  # 8 steps x 2 learners
    assert json.loads((result.run_dir / "run.json").read_text())["learners"] == [0, 3]


def test_a_new_run_refuses_a_used_run_dir(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(ConfigError, match="run_dir = .* expected a new or empty folder"):
        train(tiny_config(tmp_path))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    meta = {"timesteps": 80, "elapsed_s": 1.0}
    first = ck.write_checkpoint(tmp_path, b"model", config, meta, {"worlds": {}})
    before = first.read_bytes()

    # a failure mid-write (after the model entry) leaves no partial file, the old one intact
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck.yaml, "safe_dump", boom)
    with pytest.raises(OSError, match="disk full"):
        ck.write_checkpoint(tmp_path, b"model2", config, {**meta, "timesteps": 160}, {})
    monkeypatch.undo()
    folder = ck.checkpoint_dir(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [first.name]
    assert first.read_bytes() == before

    # a process killed mid-write leaves a temporary file: ignored, then removed
    (folder / ".ckpt-dead.tmp").write_bytes(b"partial")
    assert ck.latest_checkpoint(tmp_path) == first
    for t in (160, 240):
        ck.write_checkpoint(tmp_path, b"m", config, {**meta, "timesteps": t}, {}, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == [
        "ckpt_000000000160.zip",
        "ckpt_000000000240.zip",
    ]
    back = ck.read_checkpoint(ck.latest_checkpoint(tmp_path))
    assert back.model_zip == b"m" and back.timesteps == 240 and back.config == config


def test_read_checkpoint_refuses_other_files(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be read"):
        ck.read_checkpoint(bad)
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("model.zip", b"")
    with pytest.raises(ConfigError, match="not a RUDRA checkpoint"):
        ck.read_checkpoint(bad)


def test_vec_env_rng_state_round_trips():
    venv = RudraVecEnv(SMALL, worlds=2, seed=5)
    venv.reset()
    venv.step(np.zeros(venv.num_envs, dtype=np.int64))
    saved = json.loads(json.dumps(venv.rng_state()))  # JSON-safe
    a = [g.random() for g in venv._rngs]
    venv.seed(99)  # a pending reseed is replaced by the saved state
    venv.set_rng_state(saved)
    assert [g.random() for g in venv._rngs] == a
    with pytest.raises(ConfigError, match="rng state has 1 worlds: expected 2"):
        venv.set_rng_state({"worlds": saved["worlds"][:1]})


def test_resume_with_set_extends_the_run_and_refuses_a_misfit(tmp_path, capsys):
    from training.cli import main

    config = tiny_config(tmp_path, learners=[0, 1], fixed_agent="hold", total_timesteps=16)
    run_dir = train(config).run_dir
    assert main(["train", "--resume", str(run_dir), "--set", "total_timesteps=32"]) == 0
    assert "done: 32 timesteps" in capsys.readouterr().out
    segments = ck.read_checkpoint(ck.latest_checkpoint(run_dir)).meta["segments"]
    assert [(s["start"], s["end"]) for s in segments] == [(0, 16), (16, 32)]
    args = ["--set", "total_timesteps=48", "--set", "hyperparameters.net_arch=[8]"]
    assert main(["train", "--resume", str(run_dir), *args]) == 2
    assert "does not fit this config" in capsys.readouterr().err
    assert main(["train", str(PRESET), "--resume", str(run_dir)]) == 2
    assert "not allowed with --resume" in capsys.readouterr().err
