"""``Population``: a mapping from banks to agents, so one episode can mix kinds of agent.

    pop = Population({"bank_0": trained, "bank_1": equilibrium}, default=HeuristicAgent())
    actions = pop.act(observations, EnvView.from_env(env))

Each distinct agent is called once per step with the observations of its own banks. Agents
that need no view (random, heuristic, trained) act first; model-based agents (``needs_view``)
act last, in the order given, and see the actions already chosen in ``view.fixed`` — an
equilibrium agent then best-responds to what the rest of the population actually does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from agents.base import Agent, EnvView, Observations
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState
from rudra_env.errors import ConfigError, InputError

__all__ = ["Population"]


class Population(Agent):
    """Banks mapped to agents; itself an ``Agent``.

    Args:
        assignment: ``{agent name or bank index: Agent}``; one agent object may serve many banks.
        default: the agent of every bank not in ``assignment`` (None: every bank that acts must
            be assigned).
    """

    def __init__(self, assignment: Mapping[str | int, Agent], default: Agent | None = None) -> None:
        for key, agent in assignment.items():
            if not isinstance(agent, Agent):
                raise ConfigError(
                    f"assignment[{key!r}] = {agent!r} is not allowed: expected an agents.Agent"
                )
        if default is not None and not isinstance(default, Agent):
            raise ConfigError(
                f"default = {default!r} is not allowed: expected an agents.Agent or None"
            )
        self.assignment = dict(assignment)
        self._seats_of: dict[int, list[tuple[Agent, list[int]]]] = {}  # n -> seats (_seats)
        self.default = default
        self.needs_view = any(a.needs_view for a in self.members())

    def members(self) -> list[Agent]:
        """Distinct agents, in order of first appearance (the default last)."""
        out: list[Agent] = []
        for a in [*self.assignment.values(), self.default]:
            if a is not None and all(a is not b for b in out):
                out.append(a)
        return out

    def reset(self, seed: int | None = None) -> None:
        """Reset every member; member k gets seed ``seed + k`` (so members draw independently)."""
        for k, a in enumerate(self.members()):
            a.reset(None if seed is None else seed + k)

    def agent_of(self, name: str, index: int) -> Agent:
        """The agent of bank ``index`` named ``name``."""
        agent = self.assignment.get(name, self.assignment.get(index, self.default))
        if agent is None:
            raise InputError(
                f"bank {name!r} (index {index}) has no agent: add it to the "
                "assignment or give a default"
            )
        return agent

    def _seats(self, n: int) -> list[tuple[Agent, list[int]]]:
        """Each member with its banks among ``n``, in acting order (worked out once per ``n``:
        who plays whom does not change)."""
        cache = self._seats_of
        if n not in cache:
            groups: dict[int, tuple[Agent, list[int]]] = {}
            for i in range(n):
                agent = self.agent_of(f"bank_{i}", i)
                groups.setdefault(id(agent), (agent, []))[1].append(i)
            cache[n] = self._ordered(groups)
        return cache[n]

    def _ordered(self, groups: dict[int, tuple[Agent, list]]) -> list[tuple[Agent, list]]:
        items = list(groups.values())
        return [g for g in items if not g[0].needs_view] + [g for g in items if g[0].needs_view]

    def act(self, observations: Observations, view: EnvView | None = None) -> dict[str, int]:
        groups: dict[int, tuple[Agent, list[str]]] = {}
        for name in observations:
            idx = view.index(name) if view is not None else _index_of(name)
            agent = self.agent_of(name, idx)
            groups.setdefault(id(agent), (agent, []))[1].append(name)
        actions: dict[str, int] = {}
        for agent, names in self._ordered(groups):
            if agent.needs_view and view is None:
                raise InputError(
                    f"{type(agent).__name__} in the population needs view=EnvView.from_env(env)"
                )
            sub_view = view.with_fixed(actions) if view is not None else None
            actions.update(agent.act({a: observations[a] for a in names}, sub_view))
        return {name: actions[name] for name in observations}

    def act_batch(
        self, state: NetworkState, params: Params, fixed: np.ndarray | None = None
    ) -> np.ndarray:
        b, n, _ = state.shape
        out = np.full((b, n), -1, dtype=np.int64) if fixed is None else np.array(fixed)
        for agent, banks in self._seats(n):
            acts = agent.act_batch(state, params, out if agent.needs_view else None)
            out[:, banks] = acts[:, banks]
        return np.where(state.alive, out, 0)


def _index_of(name: str) -> int:
    head, _, tail = name.rpartition("_")
    if not tail.isdigit():
        raise InputError(
            f"agent = {name!r} has no bank index: expected a name like 'bank_3' "
            "(or pass view=EnvView.from_env(env))"
        )
    return int(tail)
