"""The built-in policies by name, for configs and command lines: ``make_agent(kind, seed)``."""

from __future__ import annotations

from agents.base import Agent
from agents.equilibrium_agent import EquilibriumAgent
from agents.simple import HeuristicAgent, HoldAgent, RandomAgent
from rudra_env.core.params import Params
from rudra_env.errors import ConfigError

__all__ = ["AGENT_KINDS", "make_agent"]

AGENT_KINDS = ("hold", "random", "heuristic", "equilibrium")
"""Names of the built-in policies: ``HoldAgent``, ``RandomAgent``, ``HeuristicAgent``,
``EquilibriumAgent`` (each with its defaults)."""


def make_agent(kind: str, seed: int = 0, params: Params | None = None) -> Agent:
    """A fresh built-in policy by name, seeded with ``seed`` where it draws at random.
    ``params`` gives the heuristic the action layout, so that it can act without an EnvView."""
    if kind == "hold":
        return HoldAgent()
    if kind == "random":
        return RandomAgent(seed=seed)
    if kind == "heuristic":
        return HeuristicAgent() if params is None else HeuristicAgent(layout=params)
    if kind == "equilibrium":
        return EquilibriumAgent(seed=seed)
    raise ConfigError(f"agent = {kind!r} is not a built-in policy: expected one of {AGENT_KINDS}")
