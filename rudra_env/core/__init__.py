"""The pure batched core: state, the step's mechanisms (one module each), observations.

Imports numpy only (never pettingzoo, gymnasium or agents). Every array has a leading world
axis. ``step`` (``rudra_env.core.step``) lists the mechanisms in the model's order;
``rudra_env.core.worlds`` draws and resets worlds, and draws each step's noise, each world
from its own generator (world i from ``default_rng(seed + i)``, as the PettingZoo env reset
with ``seed + i``).
"""

from __future__ import annotations

from rudra_env.core.events import EVENT_TYPES, Event, StepRecord
from rudra_env.core.execution import action_masks
from rudra_env.core.network import initial_state
from rudra_env.core.observe import observe, state_vector
from rudra_env.core.params import Params
from rudra_env.core.reward import utility
from rudra_env.core.state import NetworkState, balance_sheet
from rudra_env.core.step import StepNoise, StepOutput, step
from rudra_env.core.worlds import draw_noise, draw_worlds, reset_worlds

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
    "draw_noise",
    "draw_worlds",
    "initial_state",
    "observe",
    "reset_worlds",
    "state_vector",
    "step",
    "utility",
]
