"""A stable-baselines3 ``VecEnv`` over the batched core: B worlds x L learning banks as slots.

``RudraVecEnv(config, learners=None, fixed_agent=None, worlds=B, seed=0)`` steps B worlds of
the core (``rudra_env.core.step``) in one call. Its ``num_envs = B * L`` slots are (world,
learning bank) pairs, world-major: slot ``w * L + l`` is learner ``l`` of world ``w``. Every
slot shares one policy (parameter sharing); there is no Python loop over banks. For one policy
per bank group, ``training.group_env.group_views`` splits the slots into per-group ``VecEnv``
views stepped together.

==================  =========================================================================
observation space   ``Box(-10, 10, (D,), float32)``: the core's ``observe`` row of the bank
                    (the ``"observation"`` entry of the PettingZoo env's Dict observation)
action space        ``Discrete(A)``, the env's flat actions (``rudra_env.actions``)
``action_masks()``  (B * L, A) bool, for sb3-contrib's ``MaskablePPO`` (which calls
                    ``env_method("action_masks")`` and stacks the rows)
rewards             (B * L,) float32: the bank's utility; its default reward on the step it
                    defaults; 0 while its slot is inactive
==================  =========================================================================

Randomness: one ``np.random.Generator`` per world, ``default_rng(seed + i)`` for world i. A
world draws its initial state and then each step's ``StepNoise`` from its own generator, in the
same order as the PettingZoo env (``reset(seed=seed + i)``, then ``reset()`` for later
episodes), so world i replays that env exactly under the same actions, and a world's results do
not depend on B or on when the other worlds reset. The cost is one small draw per world per
step (a loop over worlds, not banks).

The per-world draws are the core's public API (``rudra_env.core.worlds``: ``draw_worlds``,
``reset_worlds``, ``draw_noise``), whose docstring states this contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from agents.base import Agent
from rudra_env.actions import HOLD
from rudra_env.config import EnvConfig
from rudra_env.core import (
    NetworkState,
    Params,
    StepOutput,
    action_masks,
    draw_noise,
    draw_worlds,
    observe,
    reset_worlds,
    step,
)
from rudra_env.core.observe import OBS_LIMIT, obs_size
from rudra_env.environment import resolve_config
from rudra_env.errors import ConfigError

__all__ = ["OneEnvBehindSlots", "RudraVecEnv", "bank_indices"]


def bank_indices(banks: Iterable[int | str] | None, n: int, field: str = "learners") -> np.ndarray:
    """(k,) sorted int64 indices of ``banks`` (indices or names ``bank_i``) among ``n`` banks;
    every bank when None. Errors name ``field`` (e.g. ``learners``, ``groups['core']``)."""
    if banks is None:
        return np.arange(n)
    banks = list(banks)
    out = []
    for x in banks:
        idx: Any = x
        if isinstance(x, str) and x.startswith("bank_") and x[5:].isdigit():
            idx = int(x[5:])
        if isinstance(idx, bool) or not isinstance(idx, int | np.integer) or not 0 <= idx < n:
            raise ConfigError(
                f"{field} entry {x!r} is not a bank: expected an index in 0..{n - 1} or a "
                f"name like 'bank_3'"
            )
        out.append(int(idx))
    if not out:
        raise ConfigError(f"{field} = [] is not allowed: expected at least one bank")
    if len(set(out)) != len(out):
        raise ConfigError(f"{field} = {banks!r} names a bank twice")
    return np.array(sorted(out), dtype=np.int64)


class OneEnvBehindSlots(VecEnv):
    """The ``VecEnv`` plumbing of a vector env whose slots are one Python object (no
    sub-envs): attributes and methods are the object's, repeated per slot; ``action_masks``
    (sb3-contrib's ``MaskablePPO`` asks through ``env_method``) gives each slot its row."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, once per slot (all slots share one env object)."""
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env (shared by every slot, whatever ``indices``)."""
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        """``action_masks`` gives each slot its row; any other method is called once on the
        vector env and its result repeated for each slot."""
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            return list(self.action_masks()[idx])
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class RudraVecEnv(OneEnvBehindSlots):
    """B worlds of the core as a stable-baselines3 ``VecEnv`` of B * L (world, learner) slots.

    See the module docstring for spaces and randomness.

    Episodes and resets:
        A slot's episode is its bank's life in one episode of its world. A bank that defaults
        ends its slot's episode on that step: ``done = True`` with its default reward and
        ``infos[i]["terminal_observation"]`` (zeros: the core observes the dead as zeros, as the
        PettingZoo env does). A world resets when it reaches ``max_steps`` or when all its
        learners are dead (fixed banks may still be alive then). At the horizon every live
        learner's slot gets ``done = True``, ``TimeLimit.truncated = True`` and its last
        observation as ``terminal_observation``, so SB3 bootstraps the time-out from it. The
        observation returned for a done slot is its next episode's first one (SB3's
        convention): the fresh world's when its world reset, the inactive zeros otherwise.

    Inactive slots (the choice, and what it does to learning):
        SB3 needs a fixed number of slots, so a defaulted bank's slot stays in the batch,
        *inactive*, until its world resets: reward 0, observation zeros, an action mask that
        allows HOLD only, ``infos[i]["inactive"] = True``; its action is ignored. When the world
        resets, an inactive slot gets ``done = True`` (no ``episode`` statistics,
        ``TimeLimit.truncated`` False) so that nothing bootstraps across the reset. Effect on
        learning: an inactive transition has one legal action, so its log-probability and
        entropy are 0 and it adds no policy gradient; its value target is 0, which the value
        head learns for the all-zero observation. But the transitions still fill the rollout
        buffer: with a share ``d`` of slot-steps inactive, each update learns from ``(1 - d)``
        of ``n_steps * num_envs`` samples, the per-batch means of the losses are diluted by
        ``1 - d``, and the zero advantages enter advantage normalisation (they shrink its
        standard deviation). On presets with few defaults this is negligible; where most
        learners die early, raise ``n_steps`` or use fewer worlds per update.

    Episode statistics (like ``VecMonitor``): when a slot's episode ends (default or horizon),
    ``infos[i]["episode"] = {"r": return, "l": length, "t": seconds since construction}``.

    Args:
        config: an ``EnvConfig``, a mapping or a YAML path (as ``rudra_env.parallel_env``).
        learners: the learning banks, as indices or names (``"bank_3"``); None: every bank.
        fixed_agent: an ``agents.Agent`` that acts for every non-learning bank through
            ``act_batch(state, params, fixed)``, with ``fixed`` holding the learners' actions
            (-1 elsewhere) so model-based agents take them as given. Required when some bank
            does not learn; reseeded with ``reset(seed)`` when the worlds are reseeded.
        worlds: B, the number of parallel worlds, >= 1.
        seed: world i draws from ``np.random.default_rng(seed + i)``; an integer >= 0.
        overrides: config keys applied on top of ``config`` (dotted keys allowed).
    """

    render_mode: str | None = None

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | str | Path | None = None,
        learners: Iterable[int | str] | None = None,
        fixed_agent: Agent | None = None,
        worlds: int = 1,
        seed: int = 0,
        overrides: Mapping[str, Any] | None = None,
        team_weight: float = 0.0,
    ) -> None:
        self.config = resolve_config(config, overrides)
        if not (isinstance(team_weight, int | float) and 0.0 <= team_weight <= 1.0):
            raise ConfigError(
                f"team_weight = {team_weight!r} is not allowed: expected a number in [0, 1]"
            )
        self.team_weight = float(team_weight)
        self.params = Params.from_config(self.config)
        n = self.config.num_banks
        if isinstance(worlds, bool) or not isinstance(worlds, int | np.integer) or worlds < 1:
            raise ConfigError(f"worlds = {worlds!r} is not allowed: expected an integer >= 1")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"seed = {seed!r} is not allowed: expected an integer >= 0")
        self.learners = bank_indices(learners, n)
        self.fixed_banks = np.setdiff1d(np.arange(n), self.learners)
        if len(self.fixed_banks) and fixed_agent is None:
            raise ConfigError(
                f"banks {self.fixed_banks.tolist()} do not learn: pass fixed_agent= (an "
                f"agents.Agent, e.g. agents.HeuristicAgent()) to act for them"
            )
        self.fixed_agent = fixed_agent if len(self.fixed_banks) else None
        self.worlds = int(worlds)
        self.n_learners = len(self.learners)
        self.last_output: StepOutput | None = None
        """The core's ``StepOutput`` of the last step, before any world was reset."""
        # a gather by a full slice is a view: the common all-banks case copies nothing
        self._cols: np.ndarray | slice = slice(None) if self.n_learners == n else self.learners
        num_envs = self.worlds * self.n_learners
        n_actions = self.params.layout.n
        super().__init__(
            num_envs,
            spaces.Box(-OBS_LIMIT, OBS_LIMIT, (obs_size(self.params),), np.float32),
            spaces.Discrete(n_actions),
        )
        self._world_seeds: list[int] | None = [int(seed) + i for i in range(self.worlds)]
        self._rngs = [np.random.default_rng(s) for s in self._world_seeds]
        self._state: NetworkState | None = None
        self._actions: np.ndarray | None = None
        self._masks: np.ndarray | None = None
        self._active = np.zeros(num_envs, dtype=bool)
        self._ep_return = np.zeros(num_envs)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self._t_start = time.time()
        self.env_seconds = 0.0
        """Wall time spent inside ``reset``, ``step_wait`` and ``action_masks`` (the env's side
        of training: the core, observations, masks and the fixed agents)."""

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> NetworkState:
        """The core state of the B worlds (read it; the env steps it in place)."""
        if self._state is None:
            raise RuntimeError("RudraVecEnv has no state yet: call reset() first")
        return self._state

    @property
    def active(self) -> np.ndarray:
        """(B * L,) bool: the slot's bank is alive (its episode is running)."""
        return self._active.copy()

    def _slot_obs(self, obs: np.ndarray) -> np.ndarray:
        """(B', L*, D) rows of the learners -> (B' * L, D)."""
        return obs[:, self._cols].reshape(-1, obs.shape[-1])

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        """Start a new episode in every world (reseeding them first if ``seed()`` was called)."""
        t0 = time.perf_counter()
        if self._world_seeds is not None:
            self._rngs = [np.random.default_rng(s) for s in self._world_seeds]
            if self.fixed_agent is not None:
                self.fixed_agent.reset(self._world_seeds[0])
            self._world_seeds = None
        self._state = draw_worlds(self.config, self._rngs)
        self._active[:] = True
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self._masks = None
        self.reset_infos = [{} for _ in range(self.num_envs)]
        obs = self._slot_obs(observe(self._state, self.params))
        self.env_seconds += time.perf_counter() - t0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.worlds, self.n_learners)

    def step_wait(self) -> VecEnvStepReturn:
        t0 = time.perf_counter()
        s = self.state
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        b, n, m = s.shape
        full = np.zeros((b, n), dtype=np.int64)
        if self.fixed_agent is not None:
            given = np.full((b, n), -1, dtype=np.int64)
            given[:, self.learners] = self._actions
            full[:] = self.fixed_agent.act_batch(s, self.params, given)
        full[:, self.learners] = self._actions
        self._actions = None
        was_active = self._active.copy()
        noise = draw_noise(self._rngs, n, m, self.params.K)
        s, out = step(s, full, self.params, inplace=True, noise=noise)
        self.last_output = out  # the core's StepOutput of this step (before any world resets)
        obs = self._slot_obs(observe(s, self.params, out.balance))
        own = np.where(was_active, out.rewards[:, self._cols].reshape(-1), 0.0)
        rewards = own
        if self.team_weight:
            team = np.repeat(out.rewards.mean(axis=1), self.n_learners)  # the world's mean
            rewards = np.where(
                was_active, (1 - self.team_weight) * own + self.team_weight * team, 0.0
            )
        alive = s.alive[:, self._cols].reshape(-1)
        defaulted = was_active & ~alive
        self._active = was_active & alive
        self._ep_return += own  # episode statistics report the env's own utility
        self._ep_length += was_active
        timed_out = s.t >= self.params.max_steps
        ended = timed_out | ~self._active.reshape(b, -1).any(axis=1)
        ending = np.repeat(ended, self.n_learners)
        truncated = self._active & np.repeat(timed_out, self.n_learners)
        dones = defaulted | ending
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(~was_active).tolist():
            infos[i]["inactive"] = True
        t = round(time.time() - self._t_start, 6)
        for i in np.flatnonzero(dones).tolist():
            info = infos[i]
            info["terminal_observation"] = obs[i].copy()
            info["TimeLimit.truncated"] = bool(truncated[i])
            if was_active[i]:
                info["episode"] = {
                    "r": float(self._ep_return[i]),
                    "l": int(self._ep_length[i]),
                    "t": t,
                }
        self._ep_return[dones] = 0.0
        self._ep_length[dones] = 0
        if ended.any():
            w = np.flatnonzero(ended)
            fresh = reset_worlds(s, self.config, self._rngs, w)
            rows = (w[:, None] * self.n_learners + np.arange(self.n_learners)).reshape(-1)
            obs[rows] = self._slot_obs(observe(fresh, self.params))
            self._active[rows] = True
        self._masks = None
        self.env_seconds += time.perf_counter() - t0
        return obs, rewards.astype(np.float32), dones, infos

    def action_masks(self) -> np.ndarray:
        """(B * L, A) bool: the legal actions of each slot now; HOLD only for inactive slots."""
        if self._masks is None:
            t0 = time.perf_counter()
            masks = action_masks(self.state, self.params)[:, self._cols]
            masks = masks.reshape(self.num_envs, -1).astype(bool)
            masks[~self._active, HOLD] = True
            self._masks = masks
            self.env_seconds += time.perf_counter() - t0
        return self._masks

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Reseed: at the next ``reset()`` world i draws from ``default_rng(seed + i)``.

        Returns each slot's world seed. ``None`` draws a base seed from fresh entropy.
        """
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31))
        self._world_seeds = [int(seed) + i for i in range(self.worlds)]
        return [self._world_seeds[i // self.n_learners] for i in range(self.num_envs)]

    def rng_state(self) -> dict[str, Any]:
        """The worlds' generator states (JSON-serialisable), for checkpoints.

        ``{"worlds": [bit_generator.state of world i], "pending_seeds": seeds set by ``seed()``
        and not yet used by ``reset()`` (or None)}``.
        """
        return {
            "worlds": [g.bit_generator.state for g in self._rngs],
            "pending_seeds": None if self._world_seeds is None else list(self._world_seeds),
        }

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        """Restore ``rng_state()``: the next draws of world i continue where they were saved.

        A pending ``seed()`` (for example the one SB3 makes when it builds a model) is replaced
        by the saved one, so the next ``reset()`` draws fresh worlds from the restored
        generators instead of reseeding them.
        """
        worlds = list(state["worlds"])
        if len(worlds) != self.worlds:
            raise ConfigError(
                f"rng state has {len(worlds)} worlds: expected {self.worlds} (worlds = "
                f"{self.worlds})"
            )
        for g, s in zip(self._rngs, worlds, strict=True):
            g.bit_generator.state = s
        pending = state.get("pending_seeds")
        self._world_seeds = None if pending is None else [int(x) for x in pending]

    def close(self) -> None:
        self._state = None
        self._masks = None
