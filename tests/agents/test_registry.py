"""``agents.registry``: the built-in policies by name."""

import pytest

from agents import EquilibriumAgent, HeuristicAgent, HoldAgent, RandomAgent
from agents.registry import AGENT_KINDS, make_agent
from rudra_env.errors import ConfigError


def test_every_kind_builds_its_agent():
    want = {
        "hold": HoldAgent,
        "random": RandomAgent,
        "heuristic": HeuristicAgent,
        "equilibrium": EquilibriumAgent,
    }
    assert set(AGENT_KINDS) == set(want)
    for kind, cls in want.items():
        assert type(make_agent(kind, seed=3)) is cls


def test_an_unknown_kind_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="agent = 'nash'.*hold"):
        make_agent("nash")
