"""Whole episodes of a population in the batched core: ``run_episodes``.

One world per seed-derived draw: ``initial_state(config, default_rng(seed), worlds=B)``, then
one ``StepNoise`` per step from ``default_rng(seed + 1)``. Two populations run with the same
``seed`` therefore meet the same worlds and the same random draws (common random numbers), so
their differences are their play's.

Observers (``EpisodeObserver``) watch the episode without a second loop: before each step they
see the state and the joint actions about to be played, after it the new state and the core's
``StepOutput`` (``training.evaluate`` measures cascades, drawdowns and equilibrium gaps so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.base import Agent
from rudra_env.config import EnvConfig
from rudra_env.core import NetworkState, Params, StepNoise, StepOutput, initial_state, step

__all__ = ["EpisodeObserver", "EpisodeStats", "run_episodes"]


@dataclass(frozen=True)
class EpisodeStats:
    """Per-world outcomes of one episode in each of B worlds."""

    rewards: np.ndarray
    """(B, N) each bank's episode utility (sum of rewards)."""
    dead: np.ndarray
    """(B, N) the bank defaulted by the end."""
    steps: int
    """Steps played (the horizon, or fewer if every bank of every world defaulted)."""

    @property
    def default_rate(self) -> np.ndarray:
        """(B,) share of the world's banks that defaulted by the end."""
        return 1.0 - (~self.dead).mean(axis=1)

    @property
    def utility(self) -> np.ndarray:
        """(B,) mean over the world's banks of their episode utility."""
        return self.rewards.mean(axis=1)


class EpisodeObserver:
    """Hooks called by ``run_episodes`` around every step (both default to doing nothing).

    The state is the episode's own (stepped in place): read it, copy what must outlive the call,
    never write to it.
    """

    def before_step(self, state: NetworkState, actions: np.ndarray, params: Params) -> None:
        """``state`` (B worlds) before the step; ``actions`` (B, N) the joint actions chosen."""

    def after_step(self, state: NetworkState, output: StepOutput) -> None:
        """``state`` after the step and the step's ``StepOutput``."""


def run_episodes(
    config: EnvConfig,
    agent: Agent,
    worlds: int,
    seed: int = 0,
    observers: Sequence[EpisodeObserver] = (),
) -> EpisodeStats:
    """Play one episode in each of ``worlds`` worlds with ``agent`` acting for every bank
    (``agent.act_batch``), up to ``config.max_steps``; ``observers`` watch every step."""
    p = Params.from_config(config)
    s = initial_state(config, np.random.default_rng(seed), worlds=worlds)
    noise_rng = np.random.default_rng(seed + 1)
    agent.reset(seed)
    total = np.zeros(s.alive.shape)
    while int(s.t[0]) < config.max_steps and s.alive.any():
        noise = StepNoise.draw(noise_rng, worlds, p.N, p.M, p.K)
        actions = agent.act_batch(s, p)
        for o in observers:
            o.before_step(s, actions, p)
        s, out = step(s, actions, p, noise=noise, inplace=True)
        for o in observers:
            o.after_step(s, out)
        total += out.rewards
    return EpisodeStats(rewards=total, dead=~s.alive, steps=int(s.t[0]))
