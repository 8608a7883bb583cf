"""The pure batched core: state, dynamics, contagion in the step, markets, beliefs, rewards.

Imports numpy only (never pettingzoo, gymnasium or agents). Every array has a leading world axis.
"""

from __future__ import annotations

from rudra_env.core.dynamics import StepNoise, StepOutput, step
from rudra_env.core.events import EVENT_TYPES, Event, StepRecord
from rudra_env.core.network import initial_state
from rudra_env.core.observe import action_masks, observe, state_vector
from rudra_env.core.reward import utility
from rudra_env.core.state import NetworkState, Params, balance_sheet

__all__ = [
    "EVENT_TYPES",
    "Event",
    "NetworkState",
    "Params",
    "StepNoise",
    "StepOutput",
    "StepRecord",
    "action_masks",
    "balance_sheet",
    "initial_state",
    "observe",
    "state_vector",
    "step",
    "utility",
]
