"""RUDRA — Resilient Unified Decision & Risk Analytics: an interbank network as a multi-agent
reinforcement-learning environment (PettingZoo).

    import rudra_env
    env = rudra_env.parallel_env("configs/env/small.yaml", render_mode="ansi")
    observations, infos = env.reset(seed=0)
"""

from __future__ import annotations

from typing import Any

from rudra_env.config import EnvConfig
from rudra_env.errors import ActionError, ConfigError, InputError, RudraError

__all__ = [
    "EnvConfig",
    "parallel_env",
    "env",
    "ActionError",
    "ConfigError",
    "InputError",
    "RudraError",
    "__version__",
]

__version__ = "0.1.0"


def parallel_env(config: Any = None, render_mode: str | None = None, **overrides: Any):
    """The PettingZoo ParallelEnv ``rudra_v0`` (see ``rudra_env.environment``)."""
    from rudra_env.environment import RudraParallelEnv

    return RudraParallelEnv(config, render_mode=render_mode, **overrides)


def env(config: Any = None, render_mode: str | None = None, **overrides: Any):
    """The AEC version of ``rudra_v0``, through PettingZoo's ``parallel_to_aec``."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(config, render_mode=render_mode, **overrides))
