"""Train with Ray RLlib: ``train_rllib(config) -> RunResult`` for ``backend: rllib``.

Reads top to bottom like ``training.train``: resolve the config (or the resumed run's); write
config.yaml, env.yaml and run.json; start Ray (``ray.init(address=...)`` for a cluster, else a
local instance with ``ray.num_cpus`` CPUs); build RLlib's PPO (new API stack) on
``RudraMultiAgentEnv`` with ``MaskedMLPModule`` (one module for every learner, or one per bank
group of ``groups``); restore the latest checkpoint when resuming; train iteration by iteration,
logging TensorBoard scalars and checkpointing; export the final policies.

Hyperparameters (SB3's names, so one train YAML reads the same on both backends):
``n_steps`` — env steps per env (world) per iteration, so an iteration trains on
``n_steps * worlds * learners`` learner timesteps (``train_batch_size_per_learner``, counted
in agent steps, as SB3's rollout); ``worlds`` envs are split over the
``ray.num_env_runners`` runners (``num_envs_per_env_runner = ceil(worlds / runners)``);
``batch_size`` -> ``minibatch_size`` (at most the batch), ``n_epochs`` -> ``num_epochs``,
``learning_rate`` -> ``lr``, ``gae_lambda`` -> ``lambda_``, ``clip_range`` -> ``clip_param``,
``ent_coef`` -> ``entropy_coeff``, ``vf_coef`` -> ``vf_loss_coeff``,
``max_grad_norm`` -> ``grad_clip``;
``net_arch`` (default [64, 64], tanh, as SB3's MlpPolicy) gives the policy and value MLPs.

Timesteps are learner steps, as with SB3: the sum over agents of RLlib's sampled agent steps.
The run ends at the first iteration past ``total_timesteps`` or ``time_budget_s``.

The run directory::

    <run_dir>/config.yaml, env.yaml, run.json    as with SB3 (run.json: Ray and RLlib versions)
    <run_dir>/checkpoints/rllib_<timesteps>/      RLlib's ``Algorithm.save_to_path`` checkpoint
                                                  (weights, optimizer state, connector state)
                                                  and ``rudra.json`` (timesteps, elapsed time);
                                                  the last ``keep_checkpoints`` kept
    <run_dir>/tb/rllib_ppo/                       TensorBoard: the SB3 path's ``rudra/...``
                                                  scalars (mean_utility, utility/<group>,
                                                  default_rate, cascade_size, total_equity,
                                                  price/<market>, actions/<KIND>,
                                                  invalid_action_share), and RLlib's
                                                  ``rllib/episode_return_mean``, losses,
                                                  ``rllib/env_steps_per_s``; x axis: timesteps
    <run_dir>/final_model.pt (+ .json)            the shared policy, once the run is complete
    <run_dir>/final_models/<group>.pt (+ .json)   one per group

Every final model is a plain torch state dict with ``nn.Sequential`` keys and its sidecar
architecture (``PolicyArch``, inputs ``observation``): ``agents.TorchPolicyAgent.load(path)``
plays it, weights only. RLlib's own checkpoints are Ray's format (they unpickle), so read only
checkpoints you wrote.

Resume (``rudra train --resume RUN_DIR``): the latest ``rllib_<timesteps>`` checkpoint is
restored (``Algorithm.restore_from_path``: weights, optimizer, connectors) and training continues
to the same ``total_timesteps``; the episodes in flight are lost. SIGINT/SIGTERM stop after the
current iteration with a checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rudra_env.errors import ConfigError
from training.callbacks import RunClock, StopRequest
from training.config import TrainConfig

__all__ = [
    "CHECKPOINT_PREFIX",
    "export_policies",
    "latest_rllib_checkpoint",
    "ppo_config",
    "restore_checkpoint",
    "train_rllib",
]

CHECKPOINT_PREFIX = "rllib_"
"""Checkpoint folders are ``<run_dir>/checkpoints/rllib_<timesteps>``."""
SHARED = "shared"
"""The module id of a shared-policy run."""

_RENAMES = {
    "learning_rate": "lr",
    "gamma": "gamma",
    "gae_lambda": "lambda_",
    "clip_range": "clip_param",
    "ent_coef": "entropy_coeff",
    "vf_coef": "vf_loss_coeff",
    "max_grad_norm": "grad_clip",
    "n_epochs": "num_epochs",
    "batch_size": "minibatch_size",
}


def _modules(config: TrainConfig) -> dict[str, list[int]]:
    """``{module id: learner bank indices}``: one shared module, or one per group."""
    n = config.env_config().num_banks
    learners = config.learner_indices(n).tolist()
    if config.sharing != "groups":
        return {SHARED: learners}
    from training.vec_env import bank_indices

    return {g: bank_indices(banks, n).tolist() for g, banks in config.groups.items()}


def _arch(config: TrainConfig) -> tuple[list[int], list[int]]:
    arch = config.hyperparameters.get("net_arch", [64, 64])
    if isinstance(arch, dict):
        return list(arch.get("pi", [64, 64])), list(arch.get("vf", [64, 64]))
    return list(arch), list(arch)


def ppo_config(config: TrainConfig) -> Any:
    """RLlib's ``PPOConfig`` of a ``TrainConfig`` (module docstring)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from training.rllib_env import MaskedMLPModule, RudraMetricsCallback, RudraMultiAgentEnv

    env_config = config.env_config()
    modules = _modules(config)
    owner = {f"bank_{i}": m for m, banks in modules.items() for i in banks}
    learners = sorted(i for banks in modules.values() for i in banks)
    pi, vf = _arch(config)
    hp = config.hyperparameters
    runners = config.ray.num_env_runners
    envs_per_runner = max(1, math.ceil(config.worlds / max(1, runners)))
    n_steps = int(hp.get("n_steps", 128))
    training = {_RENAMES[k]: v for k, v in hp.items() if k in _RENAMES}
    training.setdefault("minibatch_size", 64)
    training.setdefault("num_epochs", 10)
    # counted in learner (agent) steps, as SB3's rollout: n_steps x worlds x learners
    batch = n_steps * envs_per_runner * max(1, runners) * len(learners)
    training["train_batch_size_per_learner"] = batch
    training["minibatch_size"] = min(int(training["minibatch_size"]), batch)

    def policy_of(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
        return owner[agent_id]

    spec = MultiRLModuleSpec(
        rl_module_specs={
            m: RLModuleSpec(
                module_class=MaskedMLPModule,
                model_config={
                    "pi": pi,
                    "vf": vf,
                    "activation": "tanh",
                    "hold_bias": float(config.hold_bias),
                },
            )
            for m in modules
        }
    )
    return (
        PPOConfig()
        .environment(
            RudraMultiAgentEnv,
            env_config={
                "env": env_config.to_dict(),
                "learners": learners,
                "fixed_agent": config.fixed_agent,
                "seed": config.seed,
                "team_reward": config.team_reward,
                "groups": _modules(config) if config.sharing == "groups" else {},
            },
            disable_env_checking=True,
        )
        .framework("torch")
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=envs_per_runner,
            num_cpus_per_env_runner=1,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0)
        .multi_agent(
            policies=set(modules), policy_mapping_fn=policy_of, count_steps_by="agent_steps"
        )
        .rl_module(rl_module_spec=spec)
        .training(**training)
        .callbacks(RudraMetricsCallback)
        .debugging(seed=config.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )


def latest_rllib_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete ``rllib_<timesteps>`` checkpoint folder of a run, or None."""
    folder = Path(run_dir) / "checkpoints"
    found = [
        p
        for p in folder.glob(f"{CHECKPOINT_PREFIX}*")
        if (p / "rudra.json").is_file() and p.name[len(CHECKPOINT_PREFIX) :].isdigit()
    ]
    return max(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]), default=None)


def policy_agent(module: Any, **kwargs: Any) -> Any:
    """The ``agents.TorchPolicyAgent`` of a ``MaskedMLPModule``'s policy MLP (its
    ``nn.Sequential`` state dict; inputs ``observation``, tanh); ``kwargs`` go to the agent."""
    import torch

    from agents.torch_policy import PolicyArch, TorchPolicyAgent

    linears = [m for m in module.pi if isinstance(m, torch.nn.Linear)]
    arch = PolicyArch(
        obs_dim=int(linears[0].in_features),
        hidden_sizes=tuple(int(m.out_features) for m in linears[:-1]),
        n_actions=int(linears[-1].out_features),
        activation=module.model_config.get("activation", "tanh"),
    )
    sd = {k: v.detach().cpu() for k, v in module.pi.state_dict().items()}
    return TorchPolicyAgent.from_state_dict(sd, arch, **kwargs)


def export_policies(algo: Any, config: TrainConfig, run_dir: Path) -> dict[str, Path]:
    """Write each module's policy as a ``TorchPolicyAgent`` state dict + arch sidecar
    (``final_model.pt``/``.json``, or ``final_models/<group>.pt``/``.json``)."""
    out: dict[str, Path] = {}
    for m in _modules(config):
        path = _final_path(run_dir, m)
        path.parent.mkdir(exist_ok=True)
        out[m] = policy_agent(algo.get_module(m)).save(path)
    return out


def _init_ray(config: TrainConfig) -> bool:
    """Connect to ``ray.address`` or start a local instance; False if Ray was already up in
    this process (then it is used as it is and left running)."""
    import ray

    if ray.is_initialized():
        return False
    if config.ray.address is not None:
        ray.init(address=config.ray.address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=config.ray.local_cpus(),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    return True


def _timesteps(result: dict[str, Any]) -> int:
    """Learner timesteps sampled in this iteration (sum over agents)."""
    runners = result.get("env_runners", {})
    steps = runners.get("num_agent_steps_sampled", {})
    if isinstance(steps, dict):
        return int(sum(float(v) for v in steps.values()))
    return int(steps)


def _scalars(result: dict[str, Any]) -> dict[str, float]:
    """The TensorBoard scalars of one iteration's result."""
    from training.rllib_env import iteration_metrics

    runners = result.get("env_runners", {})
    out = iteration_metrics(runners)
    for key in ("episode_return_mean", "episode_len_mean"):
        if key in runners and runners[key] == runners[key]:
            out[f"rllib/{key}"] = float(runners[key])
    for module, stats in result.get("learners", {}).items():
        if not isinstance(stats, dict):
            continue
        for key in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss"):
            if key in stats:
                out[f"rllib/{module}/{key}"] = float(stats[key])
    return out


def restore_checkpoint(algo: Any, checkpoint: Path) -> None:
    """Restore ``algo`` from a ``rllib_<timesteps>`` checkpoint and wait until every env runner
    holds the restored weights (RLlib's own sync after ``restore_from_path`` is
    fire-and-forget, so the first rollout after a resume could sample with the fresh ones)."""
    algo.restore_from_path(str(checkpoint / "algorithm"))
    algo.env_runner_group.sync_weights(
        from_worker_or_learner_group=algo.learner_group, inference_only=True, timeout_seconds=60.0
    )


def train_rllib(config: TrainConfig | None = None, *, resume: str | Path | None = None) -> Any:
    """Train with RLlib (or resume ``RUN_DIR``); returns ``training.train.RunResult``."""
    import ray

    from training.train import RunResult

    run = _resolve_run(config, resume)
    if run.complete:
        return _already_complete(run)
    _write_run_dir(run)
    started = _init_ray(run.config)
    algo = _build_algo(run)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run.run_dir / "tb" / "rllib_ppo"))
    stop = StopRequest()
    clock = RunClock(run.spent_s)
    try:
        with stop.on_signals(signal.SIGINT, signal.SIGTERM):
            done, reason = _iterate(algo, run, writer, stop, clock)
            checkpoint, finals = _save(algo, run, done, reason, clock)
    finally:
        writer.close()
        algo.stop()
        if started:  # a cluster keeps running: this only disconnects from it
            ray.shutdown()
    finished = reason in ("done", "time budget")
    stopped_by = None if reason == "done" else reason
    return RunResult(
        run.run_dir,
        done,
        finished,
        stopped_by,
        checkpoint,
        finals.get(SHARED),
        clock.elapsed_s(),
        finals,
    )


# --------------------------------------------------------------------------- steps of train_rllib
@dataclass(frozen=True)
class _Run:
    """The run being trained, as ``_resolve_run`` finds it: this segment's config and what the
    earlier segments did."""

    config: TrainConfig
    """The resolved config (env inlined, ``run_dir`` set)."""
    run_dir: Path
    start: Path | None
    """The ``rllib_<timesteps>`` checkpoint this segment resumes from (None: from 0)."""
    done: int
    """Timesteps trained before this segment."""
    spent_s: float
    """Training wall time before this segment."""
    finals: dict[str, Path]
    """Where each module's final policy goes (``_final_path``)."""

    @property
    def complete(self) -> bool:
        """A resumed run that already reached ``total_timesteps`` or spent ``time_budget_s``."""
        return self.start is not None and self.config.reached(self.done, self.spent_s)


def _resolve_run(config: TrainConfig | None, resume: str | Path | None) -> _Run:
    """The config and run directory: a fresh run's, or the resumed run's."""
    start: Path | None = None
    if resume is not None:
        run_dir = TrainConfig.resumed_run_dir(resume)
        if config is None:
            config = TrainConfig.from_yaml(run_dir / "config.yaml")
        start = latest_rllib_checkpoint(run_dir)
    else:
        if config is None:
            raise ConfigError("train() needs a config, or resume=RUN_DIR")
        run_dir = config.new_run_dir()
    config = config.resolved(run_dir)
    meta = json.loads((start / "rudra.json").read_text()) if start else {}
    done = int(meta.get("timesteps", 0))
    spent_s = float(meta.get("elapsed_s", 0.0))
    finals = {m: _final_path(run_dir, m) for m in _modules(config)}
    return _Run(config, run_dir, start, done, spent_s, finals)


def _already_complete(run: _Run) -> Any:
    """The ``RunResult`` of resuming a complete run: nothing trained."""
    from training.train import RunResult

    return RunResult(
        run.run_dir,
        run.done,
        True,
        None,
        run.start,
        run.finals.get(SHARED),
        run.spent_s,
        run.finals,
    )


def _write_run_dir(run: _Run) -> None:
    """The run directory, written before anything runs: config.yaml, env.yaml, run.json."""
    from training.train import ENV_ID, package_version, write_text

    config, run_dir = run.config, run.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    env_yaml = yaml.safe_dump(config.env_config().to_dict(), sort_keys=False)
    write_text(run_dir / "env.yaml", env_yaml)
    info = {
        "name": config.name,
        "env_id": ENV_ID,
        "backend": "rllib",
        "versions": {
            p: package_version(p) for p in ("rudra", "ray", "torch", "numpy", "gymnasium")
        },
        "modules": _modules(config),
        "ray": {"address": config.ray.address, "num_env_runners": config.ray.num_env_runners},
        "segment_started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_from": None if run.start is None else str(run.start),
    }
    write_text(run_dir / "run.json", json.dumps(info, indent=1))


def _build_algo(run: _Run) -> Any:
    """PPO on the env runners (Ray already up: ``_init_ray``), restored from the checkpoint
    when resuming."""
    algo = ppo_config(run.config).build_algo()
    if run.start is not None:
        restore_checkpoint(algo, run.start)
    return algo


def _iterate(
    algo: Any, run: _Run, writer: Any, stop: StopRequest, clock: RunClock
) -> tuple[int, str]:
    """Train iteration by iteration until the total, the budget or a signal, checkpointing
    every ``checkpoint_every`` timesteps: (timesteps trained, why it ended — "done",
    "time budget", "SIGINT" or "SIGTERM")."""
    config = run.config
    total, budget, every = config.total_timesteps, config.time_budget_s, config.checkpoint_every
    done = run.done
    next_ckpt = (done // every + 1) * every
    while True:
        it_start = time.perf_counter()
        result = algo.train()
        done += _timesteps(result)
        _log_iteration(writer, result, done, it_start)
        if stop.reason is not None:
            return done, stop.reason
        if budget is not None and clock.elapsed_s() >= budget:
            return done, "time budget"
        if total is not None and done >= total:
            return done, "done"
        if done >= next_ckpt:
            _write_checkpoint(algo, run, done, "interval", clock)
            next_ckpt = (done // every + 1) * every


def _log_iteration(writer: Any, result: dict[str, Any], done: int, it_start: float) -> None:
    """One iteration's TensorBoard scalars (``_scalars``, and the env steps per second since
    ``it_start``) at ``done`` timesteps."""
    scalars = _scalars(result)
    env_steps = result.get("env_runners", {}).get("num_env_steps_sampled", 0)
    scalars["rllib/env_steps_per_s"] = float(env_steps) / max(time.perf_counter() - it_start, 1e-9)
    for key, value in scalars.items():
        writer.add_scalar(key, value, done)
    writer.flush()


def _save(
    algo: Any, run: _Run, done: int, reason: str, clock: RunClock
) -> tuple[Path, dict[str, Path]]:
    """A final checkpoint; the exported policies once complete: (checkpoint, final policies;
    empty unless finished)."""
    checkpoint = _write_checkpoint(algo, run, done, reason, clock)
    finished = reason in ("done", "time budget")
    finals = export_policies(algo, run.config, run.run_dir) if finished else {}
    return checkpoint, finals


def _write_checkpoint(algo: Any, run: _Run, timesteps: int, reason: str, clock: RunClock) -> Path:
    """``<run_dir>/checkpoints/rllib_<timesteps>``: RLlib's ``save_to_path`` and ``rudra.json``
    (timesteps, elapsed time, reason), written to a temporary folder then renamed; the last
    ``keep_checkpoints`` kept."""
    folder = run.run_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{timesteps}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str((tmp / "algorithm").resolve()))
    meta = {"timesteps": timesteps, "elapsed_s": clock.elapsed_s(), "reason": reason}
    (tmp / "rudra.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    kept = sorted(
        (p for p in folder.parent.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir()),
        key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]),
    )
    for old in kept[: -run.config.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _final_path(run_dir: Path, module: str) -> Path:
    return run_dir / ("final_model.pt" if module == SHARED else f"final_models/{module}.pt")
