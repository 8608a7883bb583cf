"""Whole episodes of a population in the batched core: ``run_episodes``.

One world per seed-derived draw: ``initial_state(config, default_rng(seed), worlds=B)``, then
one ``StepNoise`` per step from ``default_rng(seed + 1)``. Two populations run with the same
``seed`` therefore meet the same worlds and the same random draws (common random numbers), so
their differences are their play's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.base import Agent
from rudra_env.config import EnvConfig
from rudra_env.core import Params, StepNoise, initial_state, step

__all__ = ["EpisodeStats", "run_episodes"]


@dataclass(frozen=True)
class EpisodeStats:
    """Per-world outcomes of one episode in each of B worlds."""

    default_rate: np.ndarray
    """(B,) share of the world's banks that defaulted by the end."""
    utility: np.ndarray
    """(B,) mean over the world's banks of their episode utility (sum of rewards)."""
    rewards: np.ndarray
    """(B, N) each bank's episode utility."""
    dead: np.ndarray
    """(B, N) the bank defaulted by the end."""
    steps: int
    """Steps played (the horizon, or fewer if every bank of every world defaulted)."""


def run_episodes(config: EnvConfig, agent: Agent, worlds: int, seed: int = 0) -> EpisodeStats:
    """Play one episode in each of ``worlds`` worlds with ``agent`` acting for every bank
    (``agent.act_batch``), up to ``config.max_steps``."""
    p = Params.from_config(config)
    s = initial_state(config, np.random.default_rng(seed), worlds=worlds)
    noise_rng = np.random.default_rng(seed + 1)
    agent.reset(seed)
    total = np.zeros(s.alive.shape)
    while int(s.t[0]) < config.max_steps and s.alive.any():
        noise = StepNoise.draw(noise_rng, worlds, p.N, p.M, p.K)
        s, out = step(s, agent.act_batch(s, p), p, noise=noise, inplace=True)
        total += out.rewards
    return EpisodeStats(
        default_rate=1.0 - s.alive.mean(axis=1),
        utility=total.mean(axis=1),
        rewards=total,
        dead=~s.alive,
        steps=int(s.t[0]),
    )
