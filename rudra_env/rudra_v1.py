"""``rudra_v1`` in PettingZoo's module form: ``env``, ``parallel_env`` and ``raw_env``.

    from rudra_env import rudra_v1

    par = rudra_v1.parallel_env("configs/env/small.yaml")  # the ParallelEnv (RudraParallelEnv)
    aec = rudra_v1.env("configs/env/small.yaml")  # AEC, wrapped in OrderEnforcingWrapper
    raw = rudra_v1.raw_env("configs/env/small.yaml")  # AEC, unwrapped (RudraAECEnv)

Every factory takes ``(config=None, render_mode=None, **overrides)`` as described in
``rudra_env.environment``, which holds the env's specification. ``rudra_env.parallel_env`` and
``rudra_env.env`` are the same factories. The version suffix changes when the dynamics or the
rewards change.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from rudra_env.environment import RudraParallelEnv, check_action
from rudra_env.errors import ResetNeeded

__all__ = ["RudraAECEnv", "env", "parallel_env", "raw_env"]


class RudraAECEnv(parallel_to_aec_wrapper):
    """The AEC version of ``rudra_v1``: PettingZoo's ``parallel_to_aec`` converter, which buffers
    each agent's action and steps the parallel env at the last agent's turn, plus a check of
    each action at its own agent's turn (``check_action``, the parallel env's rule), so that a
    bad action raises ``ActionError`` for the agent that submitted it, before it is buffered.
    Agents that are done step with ``None``, as PettingZoo requires. ``step`` before ``reset()``
    or after every agent is done raises ``ResetNeeded`` (the wrapped ``env()`` warns instead, as
    PettingZoo's ``OrderEnforcingWrapper`` does)."""

    env: RudraParallelEnv

    def step(self, action: Any) -> None:
        if not getattr(self, "agents", None):
            raise ResetNeeded(
                "step() was called before reset() or after every agent is done: call "
                "env.reset() to start an episode"
            )
        agent = self.agent_selection
        if not (self.terminations[agent] or self.truncations[agent]):
            check_action(agent, action, self.env.params.layout.n)
        super().step(action)


def parallel_env(
    config: Any = None, render_mode: str | None = None, **overrides: Any
) -> RudraParallelEnv:
    """The PettingZoo ParallelEnv ``rudra_v1`` (see ``rudra_env.environment``)."""
    return RudraParallelEnv(config, render_mode=render_mode, **overrides)


def raw_env(config: Any = None, render_mode: str | None = None, **overrides: Any) -> RudraAECEnv:
    """The AEC version of ``rudra_v1``, unwrapped."""
    return RudraAECEnv(parallel_env(config, render_mode=render_mode, **overrides))


def env(
    config: Any = None, render_mode: str | None = None, **overrides: Any
) -> OrderEnforcingWrapper:
    """The AEC version of ``rudra_v1`` in PettingZoo's ``OrderEnforcingWrapper`` (what
    ``parallel_to_aec`` returns for other parallel envs)."""
    return OrderEnforcingWrapper(raw_env(config, render_mode=render_mode, **overrides))
