"""Per-world randomness of a batch: draw and reset worlds, and their step noise, one generator each.

A batch of B worlds can be driven so that every world is exactly the PettingZoo env with its
own seed — whatever B is and whenever the other worlds reset. The contract:

* **World i draws from ``np.random.default_rng(seed + i)``**, and from nothing else.
* **In the PettingZoo env's order.** ``RudraParallelEnv.reset(seed=seed + i)`` draws the
  initial state (``initial_state(config, rng, worlds=1)``), each ``step`` then draws that step's
  ``StepNoise`` (``StepNoise.draw(rng, 1, N, M, K)``), and a later ``reset()`` without a seed
  draws the next episode's initial state from the same generator. ``draw_worlds`` and
  ``reset_worlds`` make exactly the initial-state draws, ``draw_noise`` exactly the step draws,
  world by world; so a batch driven by them replays, world by world, the PettingZoo env reset
  with ``seed + i`` under the same actions (``tests/core/test_worlds.py`` checks it, and
  ``tests/training/test_vec_env.py`` checks the vector env built on it step by step).

Usage (what ``training.vec_env.RudraVecEnv`` does)::

    rngs = [np.random.default_rng(seed + i) for i in range(B)]
    state = draw_worlds(config, rngs)                                  # B fresh worlds
    noise = draw_noise(rngs, N, M, params.K)
    state, out = step(state, actions, params, inplace=True, noise=noise)
    ended = np.flatnonzero(state.t >= params.max_steps)
    reset_worlds(state, config, rngs, ended)                           # only those worlds

The price of the contract is one small draw per world per step: ``draw_noise`` and the
initial-state draws loop over worlds (never over banks); the step itself is batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rudra_env.config import EnvConfig
from rudra_env.core.network import initial_state
from rudra_env.core.state import NetworkState
from rudra_env.core.step import StepNoise

__all__ = ["draw_noise", "draw_worlds", "reset_worlds"]


def draw_worlds(config: EnvConfig, rngs: Sequence[np.random.Generator]) -> NetworkState:
    """``len(rngs)`` fresh initial worlds, world ``w`` drawn from ``rngs[w]`` only.

    World ``w`` is exactly ``initial_state(config, rngs[w], worlds=1)`` (what the PettingZoo
    env's ``reset`` draws), and the generators advance exactly as that call advances them.

    Args:
        config: the env's config.
        rngs: one generator per world, ``len(rngs) >= 1``.

    Returns:
        A ``NetworkState`` of ``len(rngs)`` worlds.
    """
    if len(rngs) == 0:
        raise ValueError("draw_worlds(rngs=[]) is not allowed: expected one generator per world")
    drawn = [initial_state(config, g, worlds=1) for g in rngs]
    if len(drawn) == 1:
        return drawn[0]
    fields = [s.arrays() for s in drawn]
    return NetworkState(**{k: np.concatenate([f[k] for f in fields]) for k in fields[0]})


def reset_worlds(
    state: NetworkState,
    config: EnvConfig,
    rngs: Sequence[np.random.Generator],
    worlds: np.ndarray | Sequence[int],
) -> NetworkState:
    """Start a new episode in ``worlds`` of ``state``, in place; the other worlds are untouched.

    World ``w`` gets ``initial_state(config, rngs[w], worlds=1)`` (drawn in the order of
    ``worlds``; each from its own generator, so the order does not matter), written with
    ``NetworkState.put``, which also drops the cached slot index when the slots change. Only
    ``rngs[w]`` for ``w`` in ``worlds`` advance.

    Args:
        state: B worlds (modified in place).
        config: the env's config (the same as the one ``state`` was drawn with).
        rngs: one generator per world of ``state`` (``len(rngs) == B``).
        worlds: indices in ``[0, B)`` of the worlds to reset, each at most once; may be empty.

    Returns:
        The fresh sub-state of ``worlds`` (``len(worlds)`` worlds, a copy), e.g. to observe
        them (0 worlds when ``worlds`` is empty).
    """
    b = state.shape[0]
    idx = np.asarray(worlds, dtype=np.int64).reshape(-1)
    if len(rngs) != b:
        raise ValueError(
            f"reset_worlds: len(rngs) = {len(rngs)} does not match the state's {b} worlds: "
            "expected one generator per world"
        )
    bad = idx[(idx < 0) | (idx >= b)]
    if bad.size:
        raise ValueError(f"reset_worlds: worlds {bad.tolist()} are not in [0, {b - 1}]")
    if len(np.unique(idx)) != len(idx):
        raise ValueError(f"reset_worlds: worlds = {idx.tolist()} names a world twice")
    if idx.size == 0:
        return state.take(idx)
    fresh = draw_worlds(config, [rngs[w] for w in idx.tolist()])
    state.put(idx, fresh)
    return fresh


def draw_noise(rngs: Sequence[np.random.Generator], n: int, m: int, k: int) -> StepNoise:
    """One step's ``StepNoise`` for ``len(rngs)`` worlds, world ``w`` drawn from ``rngs[w]``.

    World ``w``'s rows are exactly ``StepNoise.draw(rngs[w], 1, n, m, k)`` (what the PettingZoo
    env's ``step`` draws), written straight into the batch arrays.

    Args:
        rngs: one generator per world.
        n, m, k: banks, markets and counterparty slots (``Params.N``, ``M``, ``K``).

    Returns:
        ``StepNoise`` with ``market`` (B, m) float64 and ``signal`` (B, n, k) float32.
    """
    b = len(rngs)
    market = np.empty((b, m))
    signal = np.empty((b, n, k), dtype=np.float32)
    for w, g in enumerate(rngs):
        g.standard_normal(out=market[w : w + 1])
        g.random(out=signal[w : w + 1], dtype=np.float32)
    return StepNoise(market=market, signal=signal)
