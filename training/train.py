"""Train bank policies from a ``TrainConfig``: ``train(config) -> RunResult``.

``train`` reads top to bottom: resolve the config; make the run directory and save the resolved
config, the env's config and the versions there; build the vector env (and, with groups, one
view of it per bank group); build the learners (restoring a checkpoint when resuming); attach
callbacks; learn; save a final checkpoint and the final model(s). Extension goes through
stable-baselines3 callbacks: ``extra_callbacks`` (built from the config) and
``train(..., callbacks=[...])``.

Sharing (``config.sharing``):

* ``shared`` — one SB3 model for every learning bank (parameter sharing), trained by SB3's own
  ``model.learn`` on the ``RudraVecEnv``.
* ``groups`` — one SB3 model per bank group of ``config.groups``, each on its group's
  ``GroupView`` of ONE ``RudraVecEnv`` (``training.group_env``), trained in lock-step by
  ``training.lockstep.learn_lockstep``: at every step all groups' actions go into one batched
  core step, and after every rollout each model updates on its own buffer. (The choice: SB3's
  ``learn`` runs its own loop of ``env.step`` calls, so separate ``learn`` calls could share a
  step only on threads — not reproducible, and deadlocked when one model stops; the lock-step
  loop is SB3's ``learn``/``collect_rollouts`` written once for every group's model, see
  ``training.lockstep``.) Every model counts the run's timesteps (all groups' slots), so
  ``total_timesteps``, ``checkpoint_every`` and ``eval_every`` mean what they mean for a shared
  run. The first group's model carries the run's own callbacks (stop, checkpoints, progress bar,
  recorded rollouts — played by every group's model for its banks — and those passed to
  ``train``); every group logs its own SB3 curves and ``rudra/...`` metrics, including
  ``rudra/utility/<group>``, to ``tb/<group>/``.

The run directory::

    <run_dir>/config.yaml        the resolved TrainConfig (env inlined)
    <run_dir>/env.yaml           the env's EnvConfig
    <run_dir>/run.json           versions (rudra, env id, torch, SB3), learners, groups, device,
                                 times
    <run_dir>/checkpoints/       ckpt_<timesteps>.zip, the last ``keep_checkpoints``
                                 (``training.checkpoint``; every group's model in each)
    <run_dir>/tb/                TensorBoard logs (``tensorboard --logdir <run_dir>/tb``):
                                 ``<algorithm>_1/`` (shared), or ``<group>/<algorithm>_1/`` per
                                 group and ``rollouts/`` (groups)
    <run_dir>/final_model.zip    the SB3 model once the run is complete (shared)
    <run_dir>/final_models/      ``<group>.zip``: each group's SB3 model once complete (groups)

Every final model is a plain SB3 zip: ``agents.TorchPolicyAgent.load(path)`` plays it (weights
only), e.g. in an ``agents.Population`` with one agent per group.

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
import platform
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnv

from agents import Population, TorchPolicyAgent
from agents.base import Agent
from agents.registry import make_agent
from rudra_env.actions import HOLD
from rudra_env.config import EnvConfig
from rudra_env.environment import RudraParallelEnv
from rudra_env.errors import ConfigError
from training.callbacks import Checkpointer, EnvTimeShare, ProgressBar, Stopper, StopRequest
from training.checkpoint import (
    Checkpoint,
    atomic_write,
    capture_rng,
    latest_checkpoint,
    load_weights,
    model_bytes,
    read_checkpoint,
    restore_rng,
    write_checkpoint,
)
from training.compare import EVAL_SEED_OFFSET, Comparison, compare
from training.config import TrainConfig, algorithm_class
from training.group_env import GroupView, group_views
from training.lockstep import Group, learn_lockstep
from training.tensorboard import (
    ModelAgent,
    RolloutRecorder,
    SystemicMetricsCallback,
    log_hparams,
    tensorboard_writer,
)
from training.vec_env import RudraVecEnv, bank_indices

__all__ = [
    "ENV_ID",
    "SHARED",
    "RunResult",
    "extra_callbacks",
    "fixed_agent",
    "run_config",
    "train",
]

ENV_ID: str = RudraParallelEnv.metadata["name"]
"""The env's versioned id (``rudra_v1``), stored in every checkpoint."""

SHARED = "shared"
"""The key of a shared-policy run's one model (in ``RunResult.final_models``)."""

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
    """``<run_dir>/final_model.zip`` when finished (shared policy; None with groups)."""
    elapsed_s: float
    """Training wall time of the whole run (all segments)."""
    final_models: dict[str, Path] = field(default_factory=dict)
    """Every final model when finished: ``{group: <run_dir>/final_models/<group>.zip}``, or
    ``{"shared": <run_dir>/final_model.zip}``."""
    env_time_share: float | None = None
    """The env's share of this segment's training wall time (``EnvTimeShare``)."""
    comparison: Comparison | None = None
    """The end-of-run comparison with ``compare_against`` (None when not asked for)."""


def extra_callbacks(
    config: TrainConfig, run_dir: Path, venv: VecEnv, agent: Agent | None = None
) -> list[BaseCallback]:
    """The hook for further SB3 callbacks, built from the config, appended to the trainer's own
    (stopper, checkpointer, progress bar) in order: the systemic TensorBoard metrics of the
    training worlds (``rudra/...``, over ``venv``'s learners), and, every ``config.eval_every``
    timesteps and at the end, one recorded rollout of the env (network images, event table,
    per-step metrics) played by ``agent`` — by default the model being trained, for every bank.

    With groups, ``train`` calls it once per group with the group's ``GroupView`` (its utility
    logged as ``rudra/utility/<group>``) and gives ``agent`` — every group's model for its
    banks, the fixed agent for the others — to the first group only; a group view without
    ``agent`` records no rollouts.
    """
    if isinstance(venv, GroupView):
        callbacks = [SystemicMetricsCallback(groups={venv.name: venv.learners.tolist()})]
        record, slots, log_dir = (
            agent is not None,
            venv.parent.num_envs,
            run_dir / "tb" / "rollouts",
        )
    else:
        callbacks = [SystemicMetricsCallback()]
        record, slots, log_dir = True, venv.num_envs, None
    if config.eval_every is not None and record:
        every = max(1, config.eval_every // slots)
        callbacks.append(
            RolloutRecorder(
                venv.config, every=every, seed=config.seed, agent=agent, log_dir=log_dir
            )
        )
    return callbacks


def fixed_agent(config: TrainConfig) -> Agent:
    """The ``agents`` policy of the non-learning banks (``config.fixed_agent``), seeded."""
    return make_agent(config.fixed_agent, config.seed)


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
        callbacks: SB3 callbacks attached after the trainer's own and ``extra_callbacks`` (to
            the first group's model, with groups).
    """
    if _backend(config, resume) == "rllib":
        return _train_rllib(config, resume, callbacks)
    run = _resolve_run(config, resume)
    if run.complete:
        return _already_complete(run)
    _write_run_dir(run)
    venv, envs = _vec_env(run)
    models = _models(run, venv, envs)
    info = _write_run_json(run, envs, models)
    hooks = _callbacks(run, venv, envs, models, list(callbacks))
    with hooks.stop.on_signals(signal.SIGINT, signal.SIGTERM):
        _learn(run, models, hooks.attached)
        saved = _save(run, models, hooks)
    venv.close()
    return _report(run, info, hooks, saved)


# --------------------------------------------------------------------------- steps of train
@dataclass(frozen=True)
class _Run:
    """The run being trained, as ``_resolve_run`` finds it: this segment's config and what the
    earlier segments did."""

    config: TrainConfig
    """The resolved config (env inlined, ``run_dir`` set)."""
    run_dir: Path
    start: Checkpoint | None
    """The checkpoint this segment resumes from (None: from timestep 0)."""
    env_config: EnvConfig
    learners: np.ndarray
    """(L,) int64 indices of the learning banks."""
    done: int
    """Timesteps trained before this segment."""
    spent_s: float
    """Training wall time before this segment."""

    @property
    def grouped(self) -> bool:
        """One model per bank group (``sharing: groups``), else one shared model."""
        return self.config.sharing == "groups"

    @property
    def complete(self) -> bool:
        """A resumed run that already reached ``total_timesteps`` or spent ``time_budget_s``."""
        return self.start is not None and self.config.reached(self.done, self.spent_s)


@dataclass(frozen=True)
class _Callbacks:
    """The trainer's own callbacks (``_callbacks``), which learning and saving read."""

    stop: StopRequest
    """Set by SIGINT/SIGTERM (while ``stop.on_signals``) or by the time budget."""
    stopper: Stopper
    checkpointer: Checkpointer
    timer: EnvTimeShare
    attached: dict[str, list[BaseCallback]]
    """Each model's callbacks (``_attach``), by group (``"shared"`` for a shared run)."""


@dataclass(frozen=True)
class _Saved:
    """What ``_save`` wrote."""

    trained: int
    """Timesteps the saved weights have been trained on (all segments)."""
    reason: str
    """Why learning ended: "done", "time budget", "SIGINT" or "SIGTERM"."""
    finished: bool
    """True when the run reached ``total_timesteps`` or spent ``time_budget_s``."""
    checkpoint: Path
    finals: dict[str, Path]
    """The final model(s) written (``_final_paths``); empty unless finished."""


def _train_rllib(
    config: TrainConfig | None, resume: str | Path | None, callbacks: Sequence[BaseCallback]
) -> RunResult:
    """``backend: rllib`` runs Ray RLlib's PPO instead (``training.rllib``; the [distributed]
    extra), which takes no SB3 ``callbacks``."""
    if callbacks:
        raise ConfigError("callbacks= are SB3 callbacks: not allowed with backend = 'rllib'")
    from training.rllib import train_rllib

    return train_rllib(config, resume=resume)


def _resolve_run(config: TrainConfig | None, resume: str | Path | None) -> _Run:
    """Resolve the config: a fresh run's, or the resumed run's (its latest checkpoint's)."""
    config, run_dir, start = _resolve(config, resume)
    config = config.resolved(run_dir)
    env_config = config.env_config()
    return _Run(
        config,
        run_dir,
        start,
        env_config,
        learners=config.learner_indices(env_config.num_banks),
        done=start.timesteps if start else 0,
        spent_s=float(start.meta["elapsed_s"]) if start else 0.0,
    )


def _already_complete(run: _Run) -> RunResult:
    """The result of resuming a complete run: nothing trained, the final model(s) found."""
    finals = _final_paths(run.run_dir, run.config)
    finals = {k: p for k, p in finals.items() if p.is_file()}
    checkpoint = run.start.path  # type: ignore[union-attr]  # a complete run has one
    return RunResult(
        run.run_dir, run.done, True, None, checkpoint, finals.get(SHARED), run.spent_s, finals
    )


def _write_run_dir(run: _Run) -> None:
    """The run directory: what runs, on which versions — written before anything runs
    (run.json follows once the learners exist: ``_write_run_json``)."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run.run_dir / "config.yaml", yaml.safe_dump(run.config.to_dict(), sort_keys=False))
    write_text(run.run_dir / "env.yaml", yaml.safe_dump(run.env_config.to_dict(), sort_keys=False))


def _vec_env(run: _Run) -> tuple[RudraVecEnv, dict[str, VecEnv]]:
    """The vector env: B worlds x the learning banks as slots, fixed banks acting in batch;
    with groups, one view of it per bank group (all stepped together), else ``{"shared": it}``.
    """
    config = run.config
    venv = RudraVecEnv(
        run.env_config,
        learners=run.learners,
        fixed_agent=fixed_agent(config),
        worlds=config.worlds,
        seed=config.seed,
        team_weight=config.team_reward,
    )
    envs: dict[str, VecEnv] = group_views(venv, config.groups) if run.grouped else {SHARED: venv}
    return venv, envs


def _models(run: _Run, venv: RudraVecEnv, envs: Mapping[str, VecEnv]) -> dict[str, Any]:
    """The learners, one model per group (group k seeded seed + k); when resuming, the
    checkpoint's weights, counters and random streams."""
    tb = run.run_dir / "tb"
    models = {
        name: _build_model(run.config, env, tb / name if run.grouped else tb, k)
        for k, (name, env) in enumerate(envs.items())
    }
    if run.start is not None:
        _restore(models, run.start, run.grouped)
        restore_rng(venv, run.start.rng)
        if venv.fixed_agent is not None:
            venv.fixed_agent.reset(run.config.seed + run.done)
    return models


def _write_run_json(
    run: _Run, envs: Mapping[str, VecEnv], models: Mapping[str, Any]
) -> dict[str, Any]:
    """run.json (``_run_info``, the device the first model's), written and returned (``_report``
    adds this segment's timing)."""
    lead = next(iter(models.values()))
    info = _run_info(run.config, run.learners, lead, run.start, envs if run.grouped else None)
    write_text(run.run_dir / "run.json", json.dumps(info, indent=1))
    return info


def _callbacks(
    run: _Run,
    venv: RudraVecEnv,
    envs: Mapping[str, VecEnv],
    models: Mapping[str, Any],
    given: list[BaseCallback],
) -> _Callbacks:
    """Callbacks: stop (signal or budget), checkpoint, progress bar, then the extra ones."""
    config = run.config
    stop = StopRequest()
    stopper = Stopper(stop, config.time_budget_s, spent_s=run.spent_s)
    checkpointer = Checkpointer(
        _checkpoint_writer(run, venv, envs, models, stopper), config.checkpoint_every
    )
    timer = EnvTimeShare(venv)
    own: list[BaseCallback] = [stopper, checkpointer, timer]
    if config.progress_bar:
        own.append(
            ProgressBar(
                config.total_timesteps,
                lambda: [e for m in models.values() for e in m.ep_info_buffer or ()],
            )
        )
    attached = _attach(config, run.run_dir, envs, models, [*own], given)
    return _Callbacks(stop, stopper, checkpointer, timer, attached)


def _checkpoint_writer(
    run: _Run,
    venv: RudraVecEnv,
    envs: Mapping[str, VecEnv],
    models: Mapping[str, Any],
    stopper: Stopper,
) -> Callable[[int, str], Path]:
    """``write(timesteps, reason) -> path``: a checkpoint of every model with the config, the
    meta (versions, counters, elapsed time, this segment after the earlier ones) and the random
    streams, keeping the last ``keep_checkpoints`` (``training.checkpoint``)."""
    config, grouped = run.config, run.grouped
    lead = next(iter(models.values()))
    segments = list(run.start.meta["segments"]) if run.start else []

    def write(timesteps: int, reason: str) -> Path:
        meta = {
            "env_id": ENV_ID,
            "rudra_version": package_version("rudra"),
            "algorithm": config.algorithm,
            "timesteps": timesteps,
            "n_updates": int(getattr(lead, "_n_updates", 0)),
            "elapsed_s": stopper.elapsed_s(),
            "learners": run.learners.tolist(),
            "reason": reason,
            "segments": [*segments, {"start": run.done, "end": timesteps, "reason": reason}],
        }
        if grouped:
            meta["groups"] = {g: env.learners.tolist() for g, env in envs.items()}
        payload = {g: model_bytes(m) for g, m in models.items()} if grouped else model_bytes(lead)
        rng = capture_rng(venv)
        return write_checkpoint(
            run.run_dir, payload, config, meta, rng, keep=config.keep_checkpoints
        )

    return write


def _learn(
    run: _Run, models: Mapping[str, Any], attached: Mapping[str, list[BaseCallback]]
) -> None:
    """Learn, to the same total when resuming; SIGINT/SIGTERM (``train`` catches them) stop it
    at the next step."""
    config, total = run.config, run.config.total_timesteps
    steps = (total - run.done) if total is not None else _NO_TOTAL
    if run.grouped:
        groups = [Group(g, models[g], attached[g]) for g in models]
        learn_lockstep(
            groups, steps, reset_num_timesteps=run.start is None, tb_log_name=config.algorithm
        )
    else:
        models[SHARED].learn(
            total_timesteps=steps,
            callback=CallbackList(attached[SHARED]),
            reset_num_timesteps=run.start is None,
            tb_log_name=config.algorithm,
        )


def _save(run: _Run, models: Mapping[str, Any], hooks: _Callbacks) -> _Saved:
    """Save: a final checkpoint (at the last completed update when stopped early), and the
    final model(s) once the run is complete."""
    lead = next(iter(models.values()))
    stopped = hooks.stopper.stopped
    trained = hooks.checkpointer.trained_timesteps if stopped else lead.num_timesteps
    reason = hooks.stop.reason if stopped and hooks.stop.reason else "done"
    checkpoint = hooks.checkpointer.write(trained, reason)
    finished = reason in ("done", "time budget")
    finals: dict[str, Path] = {}
    if finished:
        finals = _final_paths(run.run_dir, run.config)
        for name, path in finals.items():
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, model_bytes(models[name]))
        _log_hparams(lead, run.config, next(iter(hooks.attached.values())))
    return _Saved(trained, reason, finished, checkpoint, finals)


def _report(run: _Run, info: dict[str, Any], hooks: _Callbacks, saved: _Saved) -> RunResult:
    """This segment's timing in run.json; for a finished run, the trained policy against the
    baselines of ``compare_against`` (comparison.md / .csv, and a TensorBoard text)."""
    env_s, wall_s = hooks.timer.seconds()
    info["timing"] = {"env_s": env_s, "wall_s": wall_s, "env_time_share": hooks.timer.share()}
    write_text(run.run_dir / "run.json", json.dumps(info, indent=1))
    comparison = None
    if saved.finished and run.config.compare_against:
        comparison = _compare(run.config, run.run_dir, saved.finals)
    return RunResult(
        run.run_dir,
        saved.trained,
        saved.finished,
        None if saved.reason == "done" else saved.reason,
        saved.checkpoint,
        saved.finals.get(SHARED) if not run.grouped else None,
        hooks.stopper.elapsed_s(),
        saved.finals,
        env_time_share=hooks.timer.share(),
        comparison=comparison,
    )


def _backend(config: TrainConfig | None, resume: str | Path | None) -> str:
    """The run's backend: the given config's, else the resumed run's config.yaml's."""
    if config is not None:
        return config.backend
    if resume is not None and (Path(resume) / "config.yaml").is_file():
        return TrainConfig.from_yaml(Path(resume) / "config.yaml").backend
    return "sb3"


def _resolve(
    config: TrainConfig | None, resume: str | Path | None
) -> tuple[TrainConfig, Path, Checkpoint | None]:
    """The run's config, its run directory and the checkpoint it resumes from (if any)."""
    if resume is not None:
        run_dir = TrainConfig.resumed_run_dir(resume)
        latest = latest_checkpoint(run_dir)
        start = read_checkpoint(latest) if latest is not None else None
        if config is None:
            config = start.config if start else TrainConfig.from_yaml(run_dir / "config.yaml")
        return config, run_dir, start
    if config is None:
        raise ConfigError("train() needs a config, or resume=RUN_DIR")
    run_dir = config.new_run_dir()
    return config, run_dir, None


def _build_model(config: TrainConfig, env: VecEnv, tb_dir: Path, k: int) -> Any:
    """The ``k``-th model (seed ``config.seed + k``) of ``config.algorithm`` on ``env``, its
    HOLD logit raised by ``config.hold_bias`` (a resumed run then loads its own weights)."""
    algorithm = algorithm_class(config.algorithm)
    try:
        model = algorithm(
            "MlpPolicy",
            env,
            seed=config.seed + k,
            device=config.device,
            tensorboard_log=str(tb_dir),
            **config.sb3_kwargs(),
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"hyperparameters = {config.hyperparameters!r} is not allowed: "
            f"{algorithm.__name__} refused them: {exc}"
        ) from exc
    if config.hold_bias:
        import torch

        with torch.no_grad():
            model.policy.action_net.bias[HOLD] += config.hold_bias
    return model


def _restore(models: Mapping[str, Any], start: Checkpoint, grouped: bool) -> None:
    """Each model's weights, optimizer state and counters from the checkpoint.

    Weights only: SB3's ``load`` would also unpickle the zip's ``data`` entry; instead each
    model is rebuilt from the checkpoint's config and gets its state dicts
    (torch.load(weights_only=True)), so even a tampered checkpoint runs no code."""
    for name, model in models.items():
        try:
            load_weights(model, start, name if grouped else None)
        except (RuntimeError, ValueError) as exc:  # torch's size mismatch, a missing model
            raise ConfigError(
                f"checkpoint {str(start.path)!r} does not fit this config (were the env, "
                f"learners, sharing, groups or net_arch changed?): {exc}"
            ) from exc


def _attach(
    config: TrainConfig,
    run_dir: Path,
    envs: Mapping[str, VecEnv],
    models: Mapping[str, Any],
    own: list[BaseCallback],
    given: list[BaseCallback],
) -> dict[str, list[BaseCallback]]:
    """Each model's callbacks. The first (or only) model gets the trainer's ``own``, its
    ``extra_callbacks`` and the ``given`` ones; every other group its ``extra_callbacks`` only.
    With groups, the first group's recorded rollouts are played by the whole population."""
    agent = _population(config, envs, models) if config.sharing == "groups" else None
    attached = {}
    for k, (name, env) in enumerate(envs.items()):
        if k == 0 and agent is not None:
            attached[name] = [*own, *extra_callbacks(config, run_dir, env, agent=agent), *given]
        elif k == 0:
            attached[name] = [*own, *extra_callbacks(config, run_dir, env), *given]
        else:
            attached[name] = extra_callbacks(config, run_dir, env)
    return attached


def _population(
    config: TrainConfig, envs: Mapping[str, VecEnv], models: Mapping[str, Any]
) -> Population:
    """Every group's model (deterministic) for its banks, a fresh fixed agent for the rest."""
    players = {g: ModelAgent(models[g]) for g in models}
    assignment: dict[str | int, Agent] = {
        int(b): players[g] for g, env in envs.items() for b in env.learners.tolist()
    }
    n = config.env_config().num_banks
    return Population(assignment, default=fixed_agent(config) if len(assignment) < n else None)


def _final_paths(run_dir: Path, config: TrainConfig) -> dict[str, Path]:
    """Where the final model(s) go: ``final_model.zip``, or ``final_models/<group>.zip``."""
    if config.sharing != "groups":
        return {SHARED: run_dir / "final_model.zip"}
    return {g: run_dir / "final_models" / f"{g}.zip" for g in config.groups}


def _compare(config: TrainConfig, run_dir: Path, finals: Mapping[str, Path]) -> Comparison:
    """The finished run's policy (every group's model for its banks) against the baselines,
    written to the run directory and to TensorBoard (``tb/comparison``)."""
    worlds = config.compare_worlds
    if config.sharing == "groups":
        n, seed = config.env_config().num_banks, config.seed + EVAL_SEED_OFFSET

        def population(greedy: bool) -> Population:
            models = {
                g: TorchPolicyAgent.load(finals[g], deterministic=greedy, seed=seed) for g in finals
            }
            return Population(
                {
                    int(b): models[g]
                    for g, banks in config.groups.items()
                    for b in bank_indices(banks, n)
                }
            )

        comparison = compare(
            config, population(False), config.compare_against, worlds, greedy=population(True)
        )
    else:
        comparison = compare(config, finals[SHARED], config.compare_against, worlds)
    comparison.write(run_dir)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb" / "comparison"))
    writer.add_text("rudra/comparison", comparison.markdown())
    writer.close()
    return comparison


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


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _run_info(
    config: TrainConfig,
    learners: Any,
    model: Any,
    start: Any,
    groups: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """run.json: versions, the env id, who learns (and in which group), where it runs, and
    this segment."""
    return {
        "name": config.name,
        "env_id": ENV_ID,
        "versions": {
            p: package_version(p)
            for p in ("rudra", "stable-baselines3", "sb3-contrib", "torch", "numpy", "gymnasium")
        },
        "python": platform.python_version(),
        "algorithm": config.algorithm,
        "learners": learners.tolist(),
        "sharing": config.sharing,
        "groups": None if groups is None else {g: v.learners.tolist() for g, v in groups.items()},
        "device": str(model.device),
        "segment_started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_from": None if start is None else str(start.path),
    }


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``checkpoint.atomic_write``)."""
    atomic_write(path, text.encode("utf-8"))
