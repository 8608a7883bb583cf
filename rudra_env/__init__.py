"""RUDRA — Resilient Unified Decision & Risk Analytics: an interbank network as a multi-agent
reinforcement-learning environment (PettingZoo).

    import rudra_env
    env = rudra_env.parallel_env("configs/env/small.yaml", render_mode="ansi")
    observations, infos = env.reset(seed=0)

The same factories, with ``raw_env``, in PettingZoo's module form: ``from rudra_env import
rudra_v1``.
"""

from __future__ import annotations

from typing import Any

from rudra_env.config import EnvConfig
from rudra_env.errors import ActionError, ConfigError, InputError, ResetNeeded, RudraError

__all__ = [
    "EnvConfig",
    "parallel_env",
    "env",
    "ActionError",
    "ConfigError",
    "InputError",
    "ResetNeeded",
    "RudraError",
    "__version__",
]

__version__ = "0.1.0"


def parallel_env(config: Any = None, render_mode: str | None = None, **overrides: Any):
    """The PettingZoo ParallelEnv ``rudra_v1`` (see ``rudra_env.environment``)."""
    from rudra_env.rudra_v1 import parallel_env

    return parallel_env(config, render_mode=render_mode, **overrides)


def env(config: Any = None, render_mode: str | None = None, **overrides: Any):
    """The AEC version of ``rudra_v1`` (PettingZoo's ``parallel_to_aec`` converter, with each
    action checked at its own agent's turn; see ``rudra_env.rudra_v1``)."""
    from rudra_env.rudra_v1 import env

    return env(config, render_mode=render_mode, **overrides)
