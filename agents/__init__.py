"""Interchangeable policies for RUDRA behind one interface (DESIGN section 8).

    from agents import EnvView, EquilibriumAgent, HeuristicAgent, Population
    pop = Population({"bank_0": EquilibriumAgent(seed=0)}, default=HeuristicAgent())
    actions = pop.act(observations, EnvView.from_env(env))

``agents`` imports ``rudra_env`` (never ``training``); torch is imported only when a
``TorchPolicyAgent`` is built.
"""

from __future__ import annotations

from agents.base import Agent, EnvView, ObservationAgent, read_only
from agents.episodes import EpisodeObserver, EpisodeStats, run_episodes
from agents.equilibrium import (
    Equilibrium,
    SolverOptions,
    best_response,
    cce_regret_matching,
    correlated_epsilon,
    deviation_gains,
    epsilon,
    mixed_epsilon,
    regret_matching,
    stage_equilibrium,
)
from agents.equilibrium_agent import EquilibriumAgent, EquilibriumOptions
from agents.games import CoreGame, Game, MatrixGame, median_noise
from agents.population import Population
from agents.simple import HeuristicAgent, HoldAgent, RandomAgent
from agents.torch_policy import PolicyArch, TorchPolicyAgent

__all__ = [
    "run_episodes",
    "Agent",
    "CoreGame",
    "EnvView",
    "EpisodeObserver",
    "Equilibrium",
    "EpisodeStats",
    "EquilibriumAgent",
    "EquilibriumOptions",
    "Game",
    "HeuristicAgent",
    "HoldAgent",
    "MatrixGame",
    "ObservationAgent",
    "PolicyArch",
    "Population",
    "RandomAgent",
    "SolverOptions",
    "TorchPolicyAgent",
    "best_response",
    "cce_regret_matching",
    "correlated_epsilon",
    "deviation_gains",
    "epsilon",
    "median_noise",
    "mixed_epsilon",
    "read_only",
    "regret_matching",
    "stage_equilibrium",
]
