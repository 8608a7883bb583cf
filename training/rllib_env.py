"""What Ray RLlib runs on its env runners for ``backend: rllib`` (the ``[distributed]`` extra).

Three thin pieces over the PettingZoo env, imported by the RLlib trainer (``training.rllib``) and
by every env runner process:

* ``RudraMultiAgentEnv`` — RLlib's ``MultiAgentEnv`` face of ``RudraParallelEnv``: only the
  learning banks are RLlib agents; the other banks act inside ``step`` through the ``agents``
  package (``fixed_agent``, seeded), exactly as in ``training.vec_env``. Observations keep the
  PettingZoo ``Dict`` (``observation`` float32 (D,), ``action_mask`` int8 (A,)). A learner that
  defaults terminates; the RLlib episode ends (``__all__``) when the PettingZoo episode ends or
  when no learner is left alive. With ``team_reward`` w the learners are trained on
  ``(1 - w) * own + w * mean utility of the world's N banks`` (the dead count 0), as in the
  vector env.
* ``MaskedMLPModule`` — a torch ``RLModule`` for PPO: a policy MLP (``nn.Sequential``: Linear,
  activation, ..., Linear to A logits) and a separate value MLP, both on ``observation``; the
  logits of masked actions are pushed to the float minimum before any distribution is built, so
  a masked action is never sampled (the idea of RLlib's ``action_masking_rlm.py`` example,
  written for this env's ``Dict``). The policy's ``nn.Sequential`` keys (``0.weight``,
  ``2.weight``, ...) are what ``agents.TorchPolicyAgent`` loads: ``training.rllib`` exports them
  as a plain state dict.
* ``RudraMetricsCallback`` — per env step, sums for the same ``rudra/...`` scalars as the SB3
  path's ``SystemicMetricsCallback`` (``rudra/mean_utility`` per live learner-step,
  ``rudra/default_rate``, ``rudra/cascade_size``, ``rudra/total_equity``,
  ``rudra/price/<market>``, ``rudra/actions/<KIND>``, ``rudra/invalid_action_share``,
  ``rudra/utility/<group>``; not the histograms), summed by
  RLlib's metrics logger over the iteration and every runner; ``iteration_metrics`` divides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.utils.torch_utils import FLOAT_MIN

import rudra_env
from agents.base import EnvView
from agents.registry import make_agent
from rudra_env.actions import HOLD, KINDS
from rudra_env.config import EnvConfig

__all__ = [
    "METRICS",
    "MaskedMLPModule",
    "RudraMetricsCallback",
    "RudraMultiAgentEnv",
    "iteration_metrics",
    "mlp",
]

METRICS = ("mean_utility", "default_rate", "total_equity", "invalid_action_share")
"""The ``rudra/<name>`` scalars every iteration has (``iteration_metrics``); beside them
``rudra/cascade_size``, ``rudra/price/<market>``, ``rudra/actions/<KIND>`` and, with groups,
``rudra/utility/<group>``, as the SB3 path defines them."""

_ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


class RudraMultiAgentEnv(MultiAgentEnv):
    """RLlib's multi-agent face of the PettingZoo env; the learning banks are the agents.

    ``config`` (RLlib's ``env_config``, plain values so it travels to remote runners):
    ``env`` (an ``EnvConfig`` mapping), ``learners`` (bank indices), ``fixed_agent`` (an
    ``agents`` kind), ``seed`` (the fixed agent's seed) and ``team_reward`` (w in [0, 1]).
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        config = dict(config or {})
        self.env = rudra_env.parallel_env(EnvConfig.from_dict(config.get("env")))
        n = self.env.config.num_banks
        learners = [int(i) for i in config.get("learners", range(n))]
        self.possible_agents = [f"bank_{i}" for i in learners]
        self.agents = list(self.possible_agents)
        self._learners = set(self.possible_agents)
        self.team_reward = float(config.get("team_reward", 0.0))
        self.groups = {
            g: {f"bank_{int(i)}" for i in banks} for g, banks in config.get("groups", {}).items()
        }
        """``{group: agents}`` for ``rudra/utility/<group>`` (empty: one shared policy)."""
        seed = int(config.get("seed", 0))
        self.fixed = make_agent(config.get("fixed_agent", "heuristic"), seed)
        self.observation_spaces = {a: self.env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: self.env.action_space(a) for a in self.possible_agents}
        self.step_metrics: dict[str, float] = {}
        """This step's ``rudra/...`` values (``METRICS``), read by ``RudraMetricsCallback``."""
        self._obs: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        self.fixed.reset(seed)
        self._obs = obs
        self.agents = [a for a in self.env.agents if a in self._learners]
        self.step_metrics = {}
        return {a: obs[a] for a in self.agents}, {a: infos.get(a, {}) for a in self.agents}

    def step(self, action_dict: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        live = self.env.agents
        others = [a for a in live if a not in self._learners]
        actions = {a: int(action_dict.get(a, HOLD)) for a in live if a in self._learners}
        if others:
            view = EnvView.from_env(self.env)
            actions.update(self.fixed.act({a: self._obs[a] for a in others}, view))
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        self._obs = obs
        n = self.env.config.num_banks
        team = sum(float(r) for r in rewards.values()) / n
        w = self.team_reward
        acted = [a for a in actions if a in self._learners]
        own = {a: float(rewards.get(a, 0.0)) for a in acted}
        self.step_metrics = self._metrics(acted, own, infos)
        self.agents = [a for a in self.env.agents if a in self._learners]
        done = not self.env.agents or not self.agents
        out_obs = {a: obs[a] for a in acted if a in obs}
        out_rew = {a: (1 - w) * own[a] + w * team for a in out_obs}
        out_term = {a: bool(terms.get(a, False)) for a in out_obs}
        out_trunc = {a: bool(truncs.get(a, False)) for a in out_obs}
        out_term["__all__"] = done and not any(out_trunc.values())
        out_trunc["__all__"] = done and any(out_trunc.values())
        return out_obs, out_rew, out_term, out_trunc, {a: infos.get(a, {}) for a in out_obs}

    def _metrics(
        self, acted: list[str], own: Mapping[str, float], infos: Mapping[str, Any]
    ) -> dict[str, float]:
        """This step's sums for the ``rudra/...`` scalars (``iteration_metrics`` divides them)."""
        env, out = self.env, self.env.last_output
        summary = env.summary()
        kinds = env.params.action_table.kind
        values = {
            "steps": 1.0,
            "live": float(len(acted)),
            "reward": float(sum(own.values())),
            "invalid": float(sum(bool(infos[a].get("invalid_action")) for a in acted)),
            "default_rate": summary["default_rate"],
            "total_equity": summary["total_equity"],
            "defaults": float(out.defaulted.sum()),
            "rounds": float(out.cascade_rounds.sum()),
        }
        for m, name in enumerate(env.params.market_names):
            values[f"price/{name}"] = float(env.core_state.price[0, m])
        executed = np.array([infos[a]["executed_action"] for a in acted], dtype=np.int64)
        counts = np.bincount(kinds[executed], minlength=len(KINDS))
        values.update({f"actions/{k.name}": float(counts[k.code]) for k in KINDS})
        for g, members in self.groups.items():
            values[f"group_reward/{g}"] = sum(own[a] for a in acted if a in members)
            values[f"group_live/{g}"] = float(sum(a in members for a in acted))
        return values


def mlp(sizes: list[int], activation: str) -> torch.nn.Sequential:
    """``nn.Sequential`` of Linear layers ``sizes[0] -> ... -> sizes[-1]``, ``activation``
    after every layer but the last (the layout ``agents.TorchPolicyAgent`` rebuilds)."""
    layers: list[torch.nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


class MaskedMLPModule(TorchRLModule, ValueFunctionAPI):
    """PPO's torch module for the env's ``Dict`` observation, with action masking.

    ``model_config``: ``pi`` and ``vf`` (hidden widths), ``activation`` (tanh or relu),
    ``hold_bias`` (added to the fresh policy's HOLD logit, as ``TrainConfig.hold_bias``).
    Shapes: ``obs["observation"]`` (B, D) float32, ``obs["action_mask"]`` (B, A) 0/1;
    ``ACTION_DIST_INPUTS`` (B, A) logits, masked entries at the float minimum.
    """

    def setup(self) -> None:
        cfg = self.model_config or {}
        d = int(self.observation_space["observation"].shape[0])
        a = int(self.action_space.n)
        act = cfg.get("activation", "tanh")
        self.pi = mlp([d, *cfg.get("pi", [64, 64]), a], act)
        if not self.inference_only:
            self.vf = mlp([d, *cfg.get("vf", [64, 64]), 1], act)
        bias = float(cfg.get("hold_bias", 0.0))
        if bias:
            with torch.no_grad():
                self.pi[-1].bias[HOLD] += bias

    def _logits(self, batch: Mapping[str, Any]) -> torch.Tensor:
        obs = batch[Columns.OBS]
        logits = self.pi(obs["observation"].float())
        legal = obs["action_mask"] > 0
        return torch.where(legal, logits, torch.full_like(logits, FLOAT_MIN))

    def _forward(self, batch: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._logits(batch)}

    def compute_values(self, batch: Mapping[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.vf(batch[Columns.OBS]["observation"].float()).squeeze(-1)


class RudraMetricsCallback(RLlibCallback):
    """Sums the env's ``step_metrics`` over the iteration (``rudra_sum/<name>``, RLlib's
    ``sum`` reduction: per iteration, added over env runners); ``iteration_metrics`` turns
    them into the ``rudra/...`` means."""

    def on_episode_step(self, *, metrics_logger: Any = None, env: Any = None, **kwargs: Any):
        envs = getattr(env, "envs", None)
        index = kwargs.get("env_index", 0)
        inner = envs[index].unwrapped if envs else getattr(env, "unwrapped", env)
        values = getattr(inner, "step_metrics", None)
        if metrics_logger is None or not values:
            return
        for name, value in values.items():
            metrics_logger.log_value(f"rudra_sum/{name}", float(value), reduce="sum")


def iteration_metrics(runners: Mapping[str, Any]) -> dict[str, float]:
    """The ``rudra/...`` scalars of one iteration from ``result["env_runners"]``, defined as
    the SB3 path's ``SystemicMetricsCallback`` defines them over its window: ``mean_utility``
    = the learners' summed utility / their live bank-steps; ``invalid_action_share`` = invalid
    actions / live bank-steps; ``default_rate`` and ``total_equity`` = means over the
    iteration's env steps (every world's step counts once)."""

    def total(name: str) -> float:
        value = runners.get(f"rudra_sum/{name}", 0.0)
        return float(value) if value == value else 0.0  # NaN: nothing logged

    steps, live = total("steps"), total("live")
    if not steps:
        return {}
    rounds = total("rounds")
    out = {
        "rudra/mean_utility": total("reward") / max(live, 1.0),
        "rudra/default_rate": total("default_rate") / steps,
        "rudra/cascade_size": total("defaults") / rounds if rounds else 0.0,
        "rudra/total_equity": total("total_equity") / steps,
        "rudra/invalid_action_share": total("invalid") / max(live, 1.0),
    }
    for key in runners:
        name = key.removeprefix("rudra_sum/")
        if name.startswith("price/"):
            out[f"rudra/{name}"] = total(name) / steps
        elif name.startswith("actions/"):
            out[f"rudra/{name}"] = total(name) / max(live, 1.0)
        elif name.startswith("group_reward/"):
            group = name.removeprefix("group_reward/")
            out[f"rudra/utility/{group}"] = total(name) / max(total(f"group_live/{group}"), 1.0)
    return out
