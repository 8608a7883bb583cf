"""The one agent interface, and the read-only view of the environment that model-based agents get.

Every agent answers for a *population* of banks with the same two calls:

``act(observations, view=None) -> {agent name: action}``
    ``observations`` is the env's dict ``{name: {"observation": (D,) float32, "action_mask":
    (A,) int8}}`` (all of it or a subset: the agent answers for exactly the names it is given).
    ``view`` is an ``EnvView`` (``EnvView.from_env(env)``): read-only access to the core state
    and parameters. Observation-only agents (random, heuristic, trained) do not need it;
    model-based agents (equilibrium) do.

``act_batch(state, params, fixed=None) -> (B, N) int``
    The batched form over B worlds of a core ``NetworkState``: an action for every bank of every
    world (HOLD for the dead). ``fixed`` (B, N) int holds actions already chosen by others (-1 =
    not chosen); model-based agents take them as given, the others ignore them.

Evaluation never asks which kind of agent it holds; ``agents.Population`` mixes kinds in one
episode by mapping banks to agents.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from rudra_env.core.execution import action_masks
from rudra_env.core.observe import observe
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState
from rudra_env.errors import InputError

__all__ = ["Agent", "EnvView", "ObservationAgent", "read_only", "stack_observations"]

Observations = Mapping[str, Mapping[str, np.ndarray]]


def read_only(state: NetworkState) -> NetworkState:
    """A ``NetworkState`` whose arrays are read-only views of ``state``'s (no copy).

    Writing through the view raises ``ValueError``; ``copy()``, ``take()`` and ``repeat()`` of it
    give ordinary writeable arrays, which is what candidate scoring works on.
    """
    arrays = {}
    for f in dataclasses.fields(state):
        v = getattr(state, f.name).view()
        v.flags.writeable = False
        arrays[f.name] = v
    return NetworkState(**arrays)


@dataclass(frozen=True)
class EnvView:
    """What a model-based agent may read of the environment (the "env view"), read-only.

    Build it right before acting: ``EnvView.from_env(env)``. The env steps its state in place, so
    a view kept across a step goes stale.
    """

    state: NetworkState
    """The core state, B = 1 world, arrays read-only (``env.core_state``)."""
    params: Params
    """The frozen parameters of the dynamics and utility (``env.params``)."""
    agents: tuple[str, ...]
    """Every agent name in bank order (``env.possible_agents``): ``agents[i]`` is bank i."""
    fixed: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Actions already chosen this step by other members of a population (``Population`` fills
    it before it calls model-based agents); a model-based agent takes them as given."""

    @classmethod
    def from_env(cls, env: Any) -> EnvView:
        """The view of a ``RudraParallelEnv`` (anything with ``core_state``, ``params`` and
        ``possible_agents``)."""
        return cls(read_only(env.core_state), env.params, tuple(env.possible_agents))

    def index(self, name: str) -> int:
        """Bank index of an agent name."""
        try:
            return self.agents.index(name)
        except ValueError:
            raise InputError(
                f"agent = {name!r} is not an agent of this env: expected one of "
                f"{self.agents[0]}..{self.agents[-1]}"
            ) from None

    def with_fixed(self, actions: Mapping[str, int]) -> EnvView:
        """A copy whose ``fixed`` holds ``actions`` in addition to those already fixed."""
        merged = {**self.fixed, **{k: int(v) for k, v in actions.items()}}
        return dataclasses.replace(self, fixed=MappingProxyType(merged))

    def fixed_array(self) -> np.ndarray:
        """(1, N) int: the fixed actions by bank, -1 where none is fixed."""
        out = np.full((1, len(self.agents)), -1, dtype=np.int64)
        for name, a in self.fixed.items():
            out[0, self.index(name)] = a
        return out


def stack_observations(observations: Observations) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, obs (1, n, D) float32, masks (1, n, A) int8) from the env's observation dict."""
    names = list(observations)
    if not names:
        return names, np.zeros((1, 0, 0), np.float32), np.zeros((1, 0, 0), np.int8)
    try:
        obs = np.stack([np.asarray(observations[a]["observation"], np.float32) for a in names])
        masks = np.stack([np.asarray(observations[a]["action_mask"], np.int8) for a in names])
    except (KeyError, TypeError) as exc:
        raise InputError(
            "observations must map agent names to {'observation': array, "
            f"'action_mask': array}} (the env's format): {exc!r}"
        ) from None
    except ValueError as exc:
        raise InputError(f"observations of different shapes cannot be stacked: {exc}") from None
    return names, obs[None], masks[None]


class Agent(ABC):
    """A policy for a population of banks (see the module docstring)."""

    needs_view: bool = False
    """True if ``act`` needs an ``EnvView`` (model-based agents)."""

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - optional hook
        """Reseed the agent's generator and forget episode state (called with ``env.reset``)."""

    @abstractmethod
    def act(self, observations: Observations, view: EnvView | None = None) -> dict[str, int]:
        """An action for every agent named in ``observations``."""

    @abstractmethod
    def act_batch(
        self, state: NetworkState, params: Params, fixed: np.ndarray | None = None
    ) -> np.ndarray:
        """(B, N) int actions for every bank of every world of ``state``."""


class ObservationAgent(Agent):
    """An agent that maps observations and masks to actions, batched over worlds and banks.

    Subclasses implement ``act_arrays(obs (B, n, D), masks (B, n, A), layout) -> (B, n)``;
    ``act`` and ``act_batch`` are derived from it (``act_batch`` observes the core state with
    ``rudra_env.core.observe``, exactly as the env does).
    """

    @abstractmethod
    def act_arrays(self, obs: np.ndarray, masks: np.ndarray, params: Params | None) -> np.ndarray:
        """(B, n) int actions from obs (B, n, D) float32 and masks (B, n, A) int8."""

    def act(self, observations: Observations, view: EnvView | None = None) -> dict[str, int]:
        names, obs, masks = stack_observations(observations)
        if not names:
            return {}
        acts = self.act_arrays(obs, masks, None if view is None else view.params)[0]
        return dict(zip(names, (int(a) for a in acts), strict=True))

    def act_batch(
        self, state: NetworkState, params: Params, fixed: np.ndarray | None = None
    ) -> np.ndarray:
        obs = observe(state, params)
        masks = action_masks(state, params)
        return np.where(state.alive, self.act_arrays(obs, masks, params), 0).astype(np.int64)
