"""One-step games as payoff oracles for ``agents.equilibrium``.

A game has N players; player i picks one of its candidates ``candidates[i, c]`` (``valid[i, c]``
marks the real ones; column 0 is always valid). A *profile* is an (N,) array of candidate
indices. The one call the equilibrium code needs is

``deviation_payoffs(profile, banks) -> (len(banks), C)``: entry ``[k, c]`` is the payoff of
player ``banks[k]`` when it plays candidate c and everyone else plays ``profile`` (NaN where
c is not a valid candidate). Column ``profile[banks[k]]`` is the payoff of the profile itself.

``CoreGame`` is the env's own one-step game: payoffs are the utility ``StepOutput.rewards`` of one
call of ``rudra_env.core.step`` on copies of the state, one world per (bank, candidate) pair, all
under common random numbers. ``MatrixGame`` is a small game given by its payoff tensor (for
known-answer tests and examples).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np

from rudra_env.core.execution import action_masks
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState
from rudra_env.core.step import StepNoise, step
from rudra_env.errors import ConfigError, InputError

__all__ = ["Game", "CoreGame", "MatrixGame", "median_noise", "candidates_from_masks"]

BATCH_BYTES = 256 * 2**20
"""Memory cap of one scoring batch: at most this many bytes of ``loans`` (N * N * 8 per world),
whatever ``batch_worlds`` says (N = 1000 gives 33 worlds per call)."""


@runtime_checkable
class Game(Protocol):
    """What the equilibrium functions need of a game (see the module docstring)."""

    candidates: np.ndarray
    """(N, C) int: player i's candidate actions, padded."""
    valid: np.ndarray
    """(N, C) bool: real candidates; ``valid[:, 0]`` is True."""

    def deviation_payoffs(
        self, profile: np.ndarray, banks: np.ndarray, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(banks), C) payoffs of unilateral deviations from ``profile`` (NaN = invalid or
        not in ``allowed`` (len(banks), C) bool, when given)."""
        ...


def candidates_from_masks(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(candidates (N, C), valid (N, C)) from an (N, A) action mask: each row's legal actions in
    increasing order (HOLD = 0 first, and always included), C = the largest count."""
    legal = np.asarray(mask) > 0
    legal[:, 0] = True
    order = np.argsort(~legal, axis=1, kind="stable")
    width = int(legal.sum(axis=1).max())
    cand = order[:, :width].astype(np.int64)
    valid = np.take_along_axis(legal, cand, axis=1)
    return np.where(valid, cand, 0), valid


def median_noise(scenarios: int, n: int, m: int, k: int) -> StepNoise:
    """The certainty-equivalent draw: market shocks 0 (the median log-return shock) and signal
    uniforms 0.5 (every belief signal truthful, its most likely outcome since reliability >=
    0.5); ``scenarios`` identical worlds."""
    return StepNoise(
        market=np.zeros((scenarios, m)), signal=np.full((scenarios, n, k), 0.5, dtype=np.float32)
    )


class CoreGame:
    """The env's one-step game at one state, scored by the batched core.

    Player i's candidates are its legal actions now (``action_masks``; HOLD always); a bank in
    ``fixed`` has its fixed action as its only candidate, and a dead bank has HOLD only. The
    payoff of a profile is the utility each bank gets from one ``step`` — the reward the env
    would pay — averaged over ``scenarios`` noise draws.

    Common random numbers: one ``StepNoise`` of S scenarios is drawn (or given) per game and
    repeated across every candidate world, so candidates differ only by the action.

    Scoring: ``deviation_payoffs`` builds one world per (bank, candidate) pair (plus one for the
    profile itself) by swapping that bank's action in the profile, and runs them through
    ``rudra_env.core.step`` in batches of at most ``batch_worlds`` worlds (S scenarios included)
    — one core call per batch, never one per candidate. Batches are written into a buffer that
    is allocated once per game, which keeps them in cache and avoids re-allocating.

    Args:
        state: one world (B = 1), not modified.
        params: the env's parameters.
        noise: S pre-drawn worlds of randomness (B = S); default: drawn from ``rng``.
        rng: generator for ``noise`` when it is not given.
        scenarios: S, the number of noise draws to average over (when ``noise`` is None).
        fixed: (N,) int actions of banks that are not players, -1 for players.
        batch_worlds: most worlds per core call, >= 1 (further capped by ``BATCH_BYTES``).
    """

    def __init__(
        self,
        state: NetworkState,
        params: Params,
        noise: StepNoise | None = None,
        *,
        rng: np.random.Generator | None = None,
        scenarios: int = 1,
        fixed: np.ndarray | None = None,
        batch_worlds: int = 256,
    ) -> None:
        b, n, m = state.shape
        if b != 1:
            raise InputError(
                f"state has B = {b} worlds: CoreGame takes one world (use state.take([b]))"
            )
        if not (isinstance(batch_worlds, int) and batch_worlds >= 1):
            raise ConfigError(
                f"batch_worlds = {batch_worlds!r} is not allowed: expected an integer >= 1"
            )
        if noise is None:
            if not (isinstance(scenarios, int) and scenarios >= 1):
                raise ConfigError(
                    f"scenarios = {scenarios!r} is not allowed: expected an integer >= 1"
                )
            if rng is None:
                raise InputError("CoreGame needs noise= or rng= to draw the step's randomness")
            noise = StepNoise.draw(rng, scenarios, n, m, params.K)
        if noise.market.shape[1:] != (m,) or noise.signal.shape[1:] != (n, params.K):
            raise InputError(
                f"noise has market {noise.market.shape} and signal "
                f"{noise.signal.shape}: expected (S, {m}) and (S, {n}, {params.K})"
            )
        self.state = state
        self.params = params
        self.noise = noise
        self.scenarios = int(noise.market.shape[0])
        self.batch_worlds = batch_worlds
        mask = action_masks(state, params)[0].astype(bool)
        mask[:, 0] = True
        cand, valid = candidates_from_masks(mask)
        if fixed is not None:
            fixed = np.asarray(fixed, dtype=np.int64).reshape(n)
            is_fixed = fixed >= 0
            if (fixed >= params.layout.n).any():
                bad = int(fixed[fixed >= params.layout.n][0])
                raise InputError(
                    f"fixed action = {bad} is outside the action space: expected "
                    f"0..{params.layout.n - 1} (or -1 for a player)"
                )
            cand[is_fixed, 0] = fixed[is_fixed]
            valid[is_fixed, 1:] = False
        dead = ~state.alive[0]
        cand[dead, 0] = 0
        valid[dead, 1:] = False
        self.candidates = np.where(valid, cand, cand[:, :1])
        self.valid = valid
        self.calls = 0
        """Core calls made so far."""
        self.worlds = 0
        """Worlds simulated so far (scenarios included)."""
        self._buffer: NetworkState | None = None
        self._views: dict[int, NetworkState] = {}

    @property
    def n_players(self) -> int:
        return self.valid.shape[0]

    def actions(self, profile: np.ndarray) -> np.ndarray:
        """(N,) flat actions of a profile of candidate indices."""
        return self.candidates[np.arange(self.n_players), profile]

    def indices(self, actions: np.ndarray) -> np.ndarray:
        """(N,) candidate index of each bank's action; 0 (its first candidate) if the action is
        not among its candidates (a masked action executes as HOLD, candidate 0 of a player)."""
        hit = (self.candidates == np.asarray(actions)[:, None]) & self.valid
        return np.where(hit.any(axis=1), hit.argmax(axis=1), 0)

    def deviation_payoffs(
        self, profile: np.ndarray, banks: np.ndarray, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        profile = np.asarray(profile, dtype=np.int64)
        banks = np.asarray(banks, dtype=np.int64)
        n, c = self.valid.shape
        sel = self.valid[banks] & (np.arange(c)[None, :] != profile[banks][:, None])
        if allowed is not None:
            sel &= allowed
        ki, ci = np.nonzero(sel)
        bi = banks[ki]
        rows = np.empty((len(ki) + 1, n), dtype=np.int64)
        rows[:] = self.actions(profile)
        rows[1 + np.arange(len(ki)), bi] = self.candidates[bi, ci]
        rewards = self.evaluate(rows)
        out = np.full((len(banks), c), np.nan)
        out[ki, ci] = rewards[1 + np.arange(len(ki)), bi]
        out[np.arange(len(banks)), profile[banks]] = rewards[0, banks]
        return out

    def payoffs(self, profile: np.ndarray) -> np.ndarray:
        """(N,) utility of every bank at a profile."""
        return self.evaluate(self.actions(np.asarray(profile))[None])[0]

    def evaluate(self, rows: np.ndarray) -> np.ndarray:
        """(W, N) utility of W action profiles (rows of flat actions), averaged over the S
        scenarios; batches of at most ``batch_worlds`` worlds per core call."""
        s = self.scenarios
        n = rows.shape[1]
        per_call = max(1, min(self.batch_worlds, BATCH_BYTES // (8 * n * n)) // s)
        out = np.empty(rows.shape, dtype=np.float64)
        for lo in range(0, len(rows), per_call):
            chunk = rows[lo : lo + per_call]
            out[lo : lo + len(chunk)] = self._run(chunk)
        return out

    def _run(self, rows: np.ndarray) -> np.ndarray:
        w, s = len(rows), self.scenarios
        worlds = w * s
        if self._buffer is None or self._buffer.shape[0] < worlds:
            n = rows.shape[1]
            cap = max(
                worlds,
                min(self.batch_worlds, BATCH_BYTES // (8 * n * n), int(self.valid.sum()) * s),
            )
            self._buffer = self.state.repeat(cap)
            self._views = {}
        # One view object per batch size, so the state's cached slot index is reused; step()
        # may rebind fields of the view, which the copy below refreshes either way.
        buf = self._views.get(worlds)
        if buf is None:
            buf = self._views[worlds] = self._buffer.head(worlds)
        for f in dataclasses.fields(buf):
            np.copyto(getattr(buf, f.name), getattr(self.state, f.name))
        noise = self.noise.repeat(w)  # scenario-major: world = k * w + r
        _, out = step(buf, np.tile(rows, (s, 1)), self.params, inplace=True, noise=noise)
        self.calls += 1
        self.worlds += worlds
        return out.rewards.reshape(s, w, -1).mean(axis=0)


class MatrixGame:
    """A finite N-player game given by its payoffs: ``payoffs[i, a_0, ..., a_{N-1}]`` is player
    i's payoff; player i's candidates are ``0 .. payoffs.shape[1 + i] - 1``.

    Meant for small games (tests, examples): it loops over the listed players.
    """

    def __init__(self, payoffs: np.ndarray) -> None:
        p = np.asarray(payoffs, dtype=np.float64)
        if p.ndim < 2 or p.shape[0] != p.ndim - 1:
            raise InputError(
                f"payoffs has shape {p.shape}: expected (N, C_0, ..., C_{{N-1}}) "
                "with N = number of players"
            )
        self.payoffs = p
        n = p.shape[0]
        sizes = np.array(p.shape[1:])
        c = int(sizes.max())
        self.valid = np.arange(c)[None, :] < sizes[:, None]
        self.candidates = np.where(self.valid, np.arange(c)[None, :], 0)
        self.calls = 0
        self.n = n

    @property
    def n_players(self) -> int:
        return self.n

    def deviation_payoffs(
        self, profile: np.ndarray, banks: np.ndarray, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        self.calls += 1
        out = np.full((len(banks), self.valid.shape[1]), np.nan)
        for k, i in enumerate(np.asarray(banks)):
            idx = [int(a) for a in profile]
            idx[i] = slice(None)
            row = self.payoffs[i][tuple(idx)]
            out[k, : len(row)] = row
        if allowed is not None:
            keep = np.asarray(allowed, dtype=bool).copy()
            keep[np.arange(len(banks)), np.asarray(profile)[np.asarray(banks)]] = True
            out[~keep] = np.nan
        return out

    def expected_deviation_payoffs(self, strategy: np.ndarray) -> np.ndarray:
        """(N, C) exact expected payoff of each pure candidate against the others' mixed
        strategies ``strategy`` (N, C)."""
        n, c = self.valid.shape
        out = np.full((n, c), np.nan)
        for i in range(n):
            t = self.payoffs[i]
            for j in reversed(range(n)):  # contract the others' axes, last first
                if j != i:
                    t = np.tensordot(t, strategy[j, : t.shape[j]], axes=([j], [0]))
            out[i, : len(t)] = t
        return out
