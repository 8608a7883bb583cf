"""Train bank policies from a ``TrainConfig``: ``train(config) -> RunResult``.

``train`` reads top to bottom: resolve the config; make the run directory and save the resolved
config, the env's config and the versions there; build the vector env; build the learner
(restoring a checkpoint when resuming); attach callbacks; learn; save a final checkpoint and the
final model. Extension goes through stable-baselines3 callbacks: ``extra_callbacks`` (built
from the config) and ``train(..., callbacks=[...])``.

The run directory::

    <run_dir>/config.yaml        the resolved TrainConfig (env inlined)
    <run_dir>/env.yaml           the env's EnvConfig
    <run_dir>/run.json           versions (rudra, env id, torch, SB3), learners, device, times
    <run_dir>/checkpoints/       ckpt_<timesteps>.zip, the last ``keep_checkpoints``
                                 (``training.checkpoint``)
    <run_dir>/tb/                TensorBoard logs (``tensorboard --logdir <run_dir>/tb``)
    <run_dir>/final_model.zip    the SB3 model once the run is complete

Resume (``train(resume=RUN_DIR)``, ``rudra train --resume RUN_DIR``): the latest checkpoint's
config, weights, optimizer state, timestep count and random streams are restored and training
continues to the same ``total_timesteps`` (and the same overall ``time_budget_s``). What is lost:
the timesteps after that checkpoint (at most ``checkpoint_every`` plus one rollout) and the
episodes in flight, which restart with fresh worlds drawn from the restored generators — so a
resumed run is not bit-identical to an uninterrupted one. A run dir without a checkpoint starts
again from 0 with its saved config.yaml.

SIGINT (Ctrl-C) and SIGTERM stop training at the next step; a final checkpoint is written first
(at the last completed update), then ``train`` returns with ``stopped_by`` set.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from agents import EquilibriumAgent, HeuristicAgent, HoldAgent, RandomAgent
from agents.base import Agent
from rudra_env.environment import RudraParallelEnv
from rudra_env.errors import ConfigError
from training.callbacks import Checkpointer, ProgressBar, Stopper, StopRequest
from training.checkpoint import (
    capture_rng,
    latest_checkpoint,
    load_weights,
    model_bytes,
    read_checkpoint,
    restore_rng,
    write_checkpoint,
)
from training.config import TrainConfig, algorithm_class
from training.tensorboard import (
    RolloutRecorder,
    SystemicMetricsCallback,
    log_hparams,
    tensorboard_writer,
)
from training.vec_env import RudraVecEnv

__all__ = ["ENV_ID", "RunResult", "extra_callbacks", "fixed_agent", "run_config", "train"]

ENV_ID: str = RudraParallelEnv.metadata["name"]
"""The env's versioned id (``rudra_v1``), stored in every checkpoint."""

_NO_TOTAL = 2**62
"""``learn``'s timestep target when only ``time_budget_s`` ends the run."""


@dataclass(frozen=True)
class RunResult:
    """What a ``train`` call did."""

    run_dir: Path
    timesteps: int
    """Timesteps the saved weights have been trained on (all segments)."""
    finished: bool
    """True when the run reached ``total_timesteps`` or spent ``time_budget_s``."""
    stopped_by: str | None
    """None, "time budget", "SIGINT" or "SIGTERM"."""
    checkpoint: Path
    """The last checkpoint written (or found, for a run that was already complete)."""
    final_model: Path | None
    """``<run_dir>/final_model.zip`` when finished."""
    elapsed_s: float
    """Training wall time of the whole run (all segments)."""


def extra_callbacks(config: TrainConfig, run_dir: Path, venv: RudraVecEnv) -> list[BaseCallback]:
    """The hook for further SB3 callbacks, built from the config, appended to the trainer's own
    (stopper, checkpointer, progress bar) in order: the systemic TensorBoard metrics of the
    training worlds (``rudra/...``, utility by ``config.groups`` when given), and, every
    ``config.eval_every`` timesteps and at the end, one recorded rollout of the env played by
    the current policy (network images, event table, per-step metrics)."""
    callbacks: list[BaseCallback] = [SystemicMetricsCallback(groups=config.groups or None)]
    if config.eval_every is not None:
        every = max(1, config.eval_every // venv.num_envs)
        callbacks.append(RolloutRecorder(venv.config, every=every, seed=config.seed))
    return callbacks


def fixed_agent(config: TrainConfig) -> Agent:
    """The ``agents`` policy of the non-learning banks (``config.fixed_agent``), seeded."""
    if config.fixed_agent == "random":
        return RandomAgent(seed=config.seed)
    if config.fixed_agent == "equilibrium":
        return EquilibriumAgent(seed=config.seed)
    if config.fixed_agent == "hold":
        return HoldAgent()
    return HeuristicAgent()


def run_config(run_dir: str | Path) -> TrainConfig:
    """A run directory's config: its latest checkpoint's, else its config.yaml."""
    latest = latest_checkpoint(run_dir)
    if latest is not None:
        return read_checkpoint(latest).config
    return TrainConfig.from_yaml(Path(run_dir) / "config.yaml")


def train(
    config: TrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> RunResult:
    """Train (or resume, with ``resume=RUN_DIR``) and return what was done.

    Args:
        config: the run's config; with ``resume``, None means the run's own (from its latest
            checkpoint), and a config given replaces it (e.g. with a larger total).
        resume: a run directory to continue from its latest checkpoint.
        callbacks: SB3 callbacks attached after the trainer's own and ``extra_callbacks``.
    """
    # 1. Resolve the config: a fresh run's, or the resumed run's (its latest checkpoint's).
    start = None
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(
                f"resume = {str(run_dir)!r} is not allowed: expected a run directory (one "
                f"with a config.yaml written by rudra train)"
            )
        latest = latest_checkpoint(run_dir)
        start = read_checkpoint(latest) if latest is not None else None
        if config is None:
            config = start.config if start else TrainConfig.from_yaml(run_dir / "config.yaml")
    elif config is None:
        raise ConfigError("train() needs a config, or resume=RUN_DIR")
    else:
        run_dir = config.default_run_dir(time.strftime("%Y%m%d-%H%M%S"))
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(
                f"run_dir = {str(run_dir)!r} is not allowed: expected a new or empty folder "
                f"(continue that run with --resume {run_dir})"
            )
    if config.sharing == "groups":
        raise ConfigError(
            "sharing = 'groups' is not supported yet (issue 12, one policy per bank group): "
            "expected 'shared'"
        )
    config = config.resolved(run_dir)
    env_config = config.env_config()
    learners = config.learner_indices(env_config.num_banks)
    done = start.timesteps if start else 0
    spent_s = float(start.meta["elapsed_s"]) if start else 0.0
    total = config.total_timesteps
    budget = config.time_budget_s
    if start is not None and (
        (total is not None and done >= total) or (budget is not None and spent_s >= budget)
    ):
        final = run_dir / "final_model.zip"
        return RunResult(
            run_dir, done, True, None, start.path, final if final.is_file() else None, spent_s
        )

    # 2. The run directory: what runs, on which versions — written before anything runs.
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    _write_text(run_dir / "env.yaml", yaml.safe_dump(env_config.to_dict(), sort_keys=False))

    # 3. The vector env: B worlds x the learning banks as slots, fixed banks acting in batch.
    venv = RudraVecEnv(
        env_config,
        learners=learners,
        fixed_agent=fixed_agent(config),
        worlds=config.worlds,
        seed=config.seed,
    )

    # 4. The learner; when resuming, the checkpoint's weights, counters and random streams.
    algorithm = algorithm_class(config.algorithm)
    try:
        model = algorithm(
            "MlpPolicy",
            venv,
            seed=config.seed,
            device=config.device,
            tensorboard_log=str(run_dir / "tb"),
            **config.sb3_kwargs(),
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"hyperparameters = {config.hyperparameters!r} is not allowed: "
            f"{algorithm.__name__} refused them: {exc}"
        ) from exc
    if start is not None:
        # Weights only: SB3's ``load`` would also unpickle the zip's ``data`` entry; instead the
        # model is rebuilt from the checkpoint's config and gets its state dicts
        # (torch.load(weights_only=True)), so even a tampered checkpoint runs no code.
        try:
            load_weights(model, start)
        except (RuntimeError, ValueError) as exc:  # torch's size mismatch, a missing entry
            raise ConfigError(
                f"checkpoint {str(start.path)!r} does not fit this config (was the env, "
                f"learners or net_arch changed?): {exc}"
            ) from exc
        restore_rng(venv, start.rng)
        if venv.fixed_agent is not None:
            venv.fixed_agent.reset(config.seed + done)
    _write_text(
        run_dir / "run.json", json.dumps(_run_info(config, learners, model, start), indent=1)
    )

    # 5. Callbacks: stop (signal or budget), checkpoint, progress bar, then the extra ones.
    stop = StopRequest()
    stopper = Stopper(stop, budget, spent_s=spent_s)
    segments = list(start.meta["segments"]) if start else []

    def write(timesteps: int, reason: str) -> Path:
        meta = {
            "env_id": ENV_ID,
            "rudra_version": _version("rudra"),
            "algorithm": config.algorithm,
            "timesteps": timesteps,
            "n_updates": int(getattr(model, "_n_updates", 0)),
            "elapsed_s": stopper.elapsed_s(),
            "learners": learners.tolist(),
            "reason": reason,
            "segments": [*segments, {"start": done, "end": timesteps, "reason": reason}],
        }
        return write_checkpoint(
            run_dir,
            model_bytes(model),
            config,
            meta,
            capture_rng(venv),
            keep=config.keep_checkpoints,
        )

    checkpointer = Checkpointer(write, config.checkpoint_every)
    attached: list[BaseCallback] = [stopper, checkpointer]
    if config.progress_bar:
        attached.append(ProgressBar(total))
    attached += extra_callbacks(config, run_dir, venv)  # the hook: TensorBoard, evaluation...
    attached += list(callbacks)

    # 6. Learn, to the same total when resuming; SIGINT/SIGTERM stop it at the next step.
    with stop.on_signals(signal.SIGINT, signal.SIGTERM):
        model.learn(
            total_timesteps=(total - done) if total is not None else _NO_TOTAL,
            callback=CallbackList(attached),
            reset_num_timesteps=start is None,
            tb_log_name=config.algorithm,
        )

        # 7. Save: a final checkpoint (at the last completed update when stopped early), and
        # the final model once the run is complete.
        trained = checkpointer.trained_timesteps if stopper.stopped else model.num_timesteps
        reason = stop.reason if stopper.stopped and stop.reason else "done"
        checkpoint = write(trained, reason)
        finished = reason in ("done", "time budget")
        final_model = run_dir / "final_model.zip" if finished else None
        if final_model is not None:
            _write_bytes(final_model, model_bytes(model))
            _log_hparams(model, config, attached)
    venv.close()
    stopped_by = None if reason == "done" else reason
    return RunResult(
        run_dir, trained, finished, stopped_by, checkpoint, final_model, stopper.elapsed_s()
    )


# --------------------------------------------------------------------------- helpers
def _log_hparams(model: Any, config: TrainConfig, attached: list[BaseCallback]) -> None:
    """The run's hyperparameters with its final metrics (the last recorded rollout's), for
    TensorBoard's HParams dashboard."""
    recorders = [cb for cb in attached if isinstance(cb, RolloutRecorder)]
    metrics = recorders[-1].last_metrics if recorders else {}
    final = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    writer = tensorboard_writer(model.logger)
    if writer is not None and final:
        log_hparams(writer, config.to_dict(), final, model.num_timesteps)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _run_info(config: TrainConfig, learners: Any, model: Any, start: Any) -> dict[str, Any]:
    """run.json: versions, the env id, who learns, where it runs, and this segment."""
    return {
        "name": config.name,
        "env_id": ENV_ID,
        "versions": {
            p: _version(p)
            for p in ("rudra", "stable-baselines3", "sb3-contrib", "torch", "numpy", "gymnasium")
        },
        "python": platform.python_version(),
        "algorithm": config.algorithm,
        "learners": learners.tolist(),
        "device": str(model.device),
        "segment_started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_from": None if start is None else str(start.path),
    }


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in its folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))
