"""Train one on-policy SB3 model per bank group, in lock-step over one shared batched step.

``learn_lockstep(groups, total_timesteps)`` is ``model.learn(total_timesteps)`` for G models
(MaskablePPO, PPO or A2C, one per bank group) whose envs are the ``GroupView``s of one
``RudraVecEnv`` (``training.group_env``). Each iteration:

1. Collect one rollout of ``n_steps`` shared steps. At every step each group's policy picks the
   actions of its slots (under its action masks, for MaskablePPO) and submits them; then one
   core step runs with every group's actions (the first ``step_wait``); each group reads its
   slots' observations, rewards and dones, runs its callbacks and fills its own rollout buffer.
2. Each model computes its returns and advantages, dumps its logs and trains on its own buffer
   (``model.train()``), in group order.

Why a loop of our own (the design choice). SB3's ``learn`` cannot share a step between models:
``collect_rollouts`` calls ``env.step`` ``n_steps`` times before it returns, so two models'
``learn`` could only interleave on threads — with the global torch generator drawn in a
thread-dependent order (runs no longer reproducible) and a deadlock whenever one model stops
before the other. One SB3 model whose policy routes each slot to its group's network would
share one optimiser step, one gradient-norm clip and one advantage normalisation across
groups, and its groups' networks would not be standalone SB3 models. So the loop below is
SB3 2.9's ``OnPolicyAlgorithm.learn`` and ``collect_rollouts`` (and sb3-contrib's
``MaskablePPO.collect_rollouts``) written once for G models, step by step, except that the
env step is shared and the time-out bootstrap is one batched value call per group. It uses
these SB3 internals: ``_setup_learn``, ``_update_info_buffer``,
``_update_current_progress_remaining``, ``dump_logs``, ``train``, ``policy(obs,
action_masks=)``, ``rollout_buffer``, ``_last_obs`` and ``_last_episode_starts`` (the versions
are pinned in ``constraints.txt``; ``tests/training/test_groups.py`` fails if one changes).
Not supported: ``use_sde`` (the action space is discrete anyway) and ``VecNormalize``.

Timesteps: every model's ``num_timesteps`` counts the run's timesteps — all groups' slots,
B x L per shared step — not only its group's. So ``total_timesteps``, ``checkpoint_every``,
``eval_every``, learning-rate schedules (``progress_remaining``) and TensorBoard's step axis mean
the same for every group, and the same as in a shared-policy run. A group learns from
``num_timesteps x L_g / L`` of its own samples.

Callbacks: each group has its own callbacks, as in ``learn`` (``model`` = the group's model,
``training_env`` = its view, ``locals`` = its slots' ``actions``, ``rewards``, ``dones``,
``infos``, ``new_obs``); they are called group after group at each step. When a callback returns
False, every group stops after that step; the unfinished rollout is not learned, as in SB3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import obs_as_tensor

__all__ = ["Group", "learn_lockstep"]


@dataclass
class Group:
    """One group's learner: its name, its SB3 model (built on the group's ``GroupView``) and
    the callbacks of its ``learn``."""

    name: str
    model: Any
    callbacks: list[BaseCallback] = field(default_factory=list)


@dataclass
class _Run:
    """A group during ``learn_lockstep``: what SB3's ``learn`` keeps in locals."""

    group: Group
    callback: BaseCallback
    total: int
    masked: bool
    pending: tuple[Any, ...] = ()
    """This step's (actions, values, log_probs, masks), between acting and storing."""

    @property
    def model(self) -> Any:
        return self.group.model


def learn_lockstep(
    groups: Sequence[Group],
    total_timesteps: int,
    *,
    reset_num_timesteps: bool = True,
    tb_log_name: str = "run",
    log_interval: int = 1,
) -> None:
    """``learn`` every group's model to ``total_timesteps`` run timesteps, in lock-step.

    Args:
        groups: the groups, each model built on its ``GroupView`` of one ``RudraVecEnv``, all
            with the same ``n_steps``.
        total_timesteps: run timesteps to train for (all groups' slots count; see the module
            docstring); on top of ``num_timesteps`` when ``reset_num_timesteps`` is False.
        reset_num_timesteps: as SB3's ``learn`` (False: continue counters and log runs).
        tb_log_name: each model's TensorBoard run name (under its own ``tensorboard_log``).
        log_interval: dump each model's logs every this many iterations.
    """
    runs = _setup(groups, total_timesteps, reset_num_timesteps, tb_log_name)
    for run in runs:
        run.callback.on_training_start(locals(), globals())
    step_timesteps = sum(run.model.env.num_envs for run in runs)
    iteration = 0
    while runs[0].model.num_timesteps < runs[0].total:
        if not _collect_rollouts(runs, step_timesteps):
            break
        iteration += 1
        for run in runs:
            model = run.model
            model._update_current_progress_remaining(model.num_timesteps, run.total)
            if log_interval is not None and iteration % log_interval == 0:
                model.dump_logs(iteration)
            model.train()
    for run in runs:
        run.callback.on_training_end()


def _setup(
    groups: Sequence[Group], total_timesteps: int, reset_num_timesteps: bool, tb_log_name: str
) -> list[_Run]:
    if not groups:
        raise ValueError("learn_lockstep(groups=[]) is not allowed: expected at least one group")
    n_steps = {g.name: int(g.model.n_steps) for g in groups}
    if len(set(n_steps.values())) > 1:
        raise ValueError(f"learn_lockstep: the groups' n_steps differ ({n_steps}): expected one")
    runs = []
    for g in groups:
        masked = isinstance(g.model.policy, MaskableActorCriticPolicy)
        if masked and not is_masking_supported(g.model.env):
            raise ValueError(f"group {g.name!r}: its env gives no action_masks()")
        total, callback = g.model._setup_learn(
            total_timesteps, g.callbacks, reset_num_timesteps, tb_log_name, progress_bar=False
        )
        runs.append(_Run(g, callback, total, masked))
    return runs


def _collect_rollouts(runs: list[_Run], step_timesteps: int) -> bool:
    """One rollout of every group (SB3's ``collect_rollouts``, shared step); False when a
    callback stopped training."""
    for run in runs:
        run.model.policy.set_training_mode(False)
        run.model.rollout_buffer.reset()
        run.callback.on_rollout_start()
    for _ in range(runs[0].model.n_steps):
        for run in runs:
            run.pending = _act(run)
        going = [_store(run, step_timesteps) for run in runs]  # every group reads the step
        if not all(going):
            return False
    for run in runs:
        model = run.model
        with th.no_grad():
            values = model.policy.predict_values(obs_as_tensor(model._last_obs, model.device))
        model.rollout_buffer.compute_returns_and_advantage(
            last_values=values, dones=model._last_episode_starts
        )
        run.callback.on_rollout_end()
    return True


def _act(run: _Run) -> tuple[Any, ...]:
    """The group's policy acts on its last observation; the actions go to its view."""
    model, env = run.model, run.model.env
    with th.no_grad():
        obs = obs_as_tensor(model._last_obs, model.device)
        masks = get_action_masks(env) if run.masked else None
        if run.masked:
            actions, values, log_probs = model.policy(obs, action_masks=masks)
        else:
            actions, values, log_probs = model.policy(obs)
    actions = actions.cpu().numpy()
    env.step_async(actions)
    return actions, values, log_probs, masks


def _store(run: _Run, step_timesteps: int) -> bool:
    """Read the shared step's result for the group, run its callbacks, fill its buffer."""
    model = run.model
    actions, values, log_probs, masks = run.pending
    new_obs, rewards, dones, infos = model.env.step_wait()
    model.num_timesteps += step_timesteps
    run.callback.update_locals(
        {
            "actions": actions,
            "values": values,
            "log_probs": log_probs,
            "new_obs": new_obs,
            "rewards": rewards,
            "dones": dones,
            "infos": infos,
            "env": model.env,
        }
    )
    if not run.callback.on_step():
        return False
    model._update_info_buffer(infos, dones)
    _bootstrap_timeouts(model, rewards, dones, infos)
    extra = {"action_masks": masks} if run.masked else {}
    model.rollout_buffer.add(
        model._last_obs,
        actions.reshape(-1, 1),  # Discrete actions, as SB3 reshapes them
        rewards,
        model._last_episode_starts,
        values,
        log_probs,
        **extra,
    )
    model._last_obs = new_obs
    model._last_episode_starts = dones
    return True


def _bootstrap_timeouts(model: Any, rewards: np.ndarray, dones: np.ndarray, infos: list) -> None:
    """SB3's time-out bootstrap (its issue 633): a slot truncated at the horizon gets
    ``gamma * V(terminal observation)`` added to its reward — one value call for all of them."""
    cut = [
        i
        for i in np.flatnonzero(dones).tolist()
        if infos[i].get("terminal_observation") is not None
        and infos[i].get("TimeLimit.truncated", False)
    ]
    if not cut:
        return
    terminal = np.stack([infos[i]["terminal_observation"] for i in cut])
    with th.no_grad():
        values = model.policy.predict_values(model.policy.obs_to_tensor(terminal)[0])
    rewards[cut] += model.gamma * values.cpu().numpy().reshape(-1).astype(rewards.dtype)
