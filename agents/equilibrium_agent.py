"""``EquilibriumAgent``: every bank it controls plays a Nash equilibrium of the one-step game.

At each decision it builds the env's one-step game at the current state (``agents.games.
CoreGame``: the env's own utility, scored by the batched core on copies of the state under
common random numbers) and solves it with ``agents.equilibrium.stage_equilibrium``: a pure
equilibrium when best responses find one, otherwise the fallback's answer — the best exactly
scored profile of its polish, or, when that still leaves a bank a gain above ``mixed_above``, a
coarse correlated profile that the agent plays through its device. The result of the last
decision is kept in ``last_result`` (``converged``, ``iterations``, ``epsilon``, ``kind``,
``fallback``); with ``act_batch`` one result per world is kept in ``last_results``.

Who plays: banks named in ``view.fixed`` (actions already chosen by other members of a
``Population``) are held at those actions; every other live bank is a player — including banks
this agent was not asked about, which are assumed to play the equilibrium too.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agents.base import Agent, EnvView, Observations
from agents.equilibrium import Equilibrium, SolverOptions, sample_profile, stage_equilibrium
from agents.games import CoreGame, median_noise
from agents.simple import HeuristicAgent
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState
from rudra_env.errors import ConfigError, InputError

__all__ = ["EquilibriumAgent", "EquilibriumOptions"]

START_KINDS = ("previous", "hold", "heuristic")
NOISE_KINDS = ("sample", "median")
MIXED_ACTIONS = ("sample", "mode")


@dataclass(frozen=True)
class EquilibriumOptions:
    """Every knob of an ``EquilibriumAgent``, validated once here (``ConfigError`` names the
    field, the value and what is allowed); ``solver`` goes to ``stage_equilibrium`` as is."""

    start: Literal["previous", "hold", "heuristic"] = "previous"
    """Start profile of each decision: "previous" (the last decision's equilibrium actions and
    shortlists in the same world; HOLD after ``reset``), "hold" or "heuristic"."""
    noise: Literal["sample", "median"] = "median"
    """The step's randomness in the game: "median" (certainty-equivalent draw) or "sample"
    (drawn from the agent's generator); one draw shared by every candidate world."""
    scenarios: int = 1
    """Noise draws averaged per decision ("sample" only), an integer >= 1; the worlds scored
    (and the time) grow about linearly with it."""
    mixed_action: Literal["sample", "mode"] = "sample"
    """With a mixed or correlated result, "sample" each bank's candidate (from its strategy, or
    from a round of the device drawn first) or play its "mode"."""
    solver: SolverOptions = field(default_factory=SolverOptions)
    """The solver's knobs (sweep cap, tolerance, blocks, shortlist size, the fallback's)."""

    def __post_init__(self) -> None:
        for name, allowed in (
            ("start", START_KINDS),
            ("noise", NOISE_KINDS),
            ("mixed_action", MIXED_ACTIONS),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name} = {value!r} is not allowed: expected one of {allowed}")
        s = self.scenarios
        if not (isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1):
            raise ConfigError(f"scenarios = {s!r} is not allowed: expected an integer >= 1")
        object.__setattr__(self, "scenarios", int(s))
        if not isinstance(self.solver, SolverOptions):
            raise ConfigError(
                f"solver = {self.solver!r} is not allowed: expected an agents.SolverOptions"
            )


class EquilibriumAgent(Agent):
    """Nash best-response baseline (DESIGN section 8).

    Args:
        start: start profile of the iteration: "previous" (a warm start: the equilibrium
            actions and candidate shortlists of this agent's last decision in the same world,
            so the first sweep scores shortlists only; HOLD on the first decision after
            ``reset``), "hold" (everyone HOLDs) or "heuristic" (the ``HeuristicAgent``'s
            actions). Whatever the start, a full sweep verifies before convergence is declared.
        max_sweeps: best-response sweep cap of the exact phase, >= 1. Calm states converge
            in 3-6 sweeps at N = 100; past the cap the fallback takes over.
        tol: smallest utility gain that counts as an improvement, >= 0.
        noise: "median" (certainty-equivalent: market shocks 0, truthful belief signals) or
            "sample" (draw the step's randomness from the agent's seeded generator). Either way
            one draw is shared by every candidate world (common random numbers). "median" is
            the default: with a single sampled draw the game rewards trading on a market move
            that the env will not repeat, and at N = 100 its best responses often cycle.
        scenarios: noise draws averaged per decision ("sample" only), >= 1; each scenario
            multiplies the worlds scored, so S scenarios cost about S times as much.
        block_worlds: deviation worlds per core call (and per Gauss-Seidel block), >= 1.
        shortlist: candidates per bank re-scored in search sweeps between full sweeps (None:
            every candidate every sweep); see ``stage_equilibrium``.
        fallback_tol, epsilon_target, polish_rounds: the fallback's polish, when the exact
            phase finds no pure equilibrium: the last profile is scored exactly; while its
            epsilon exceeds ``epsilon_target`` (utility units, >= 0; 0.1 is 1 % of the default
            penalty), a round (at most ``polish_rounds``, >= 0) lets the banks gaining more than
            ``fallback_tol`` (>= 0) move one at a time, largest gain first, and scores the new
            profile exactly. The best profile scored is played, with its exact epsilon.
        mixed_above, mixed: when the polished epsilon still exceeds ``mixed_above`` (utility
            units, >= 0; None: ``epsilon_target``), the mixed stage: "cce" (regret matching
            toward a coarse correlated equilibrium, played through its device),
            "regret_matching" (the cycling banks mix independently) or "none"; its answer is
            played only if its epsilon is smaller. In the env a run of the stage costs about as
            much as a whole decision, and the polish rarely leaves more than 0.1, so the agent
            tries it only above 1.0 (a tenth of the default penalty: a bank left defaulting).
        mixed_iters, mixed_samples: regret-matching rounds of the mixed stage (each scores the
            mixing banks' candidates) and Monte Carlo samples for its epsilon in a sampled game
            (each a full scoring of every bank; the estimate is rough with the default of one).
        mixed_action: with a mixed or correlated result, "sample" (each bank from its
            strategy; for a correlated one, a round of the device first) or play each bank's
            "mode".
        seed: seed of the agent's generator (sweep orders, noise, mixed sampling).
        heuristic: the ``HeuristicAgent`` of the "heuristic" start (default parameters if None).

    The keyword arguments other than ``seed`` and ``heuristic`` are validated once, into
    ``self.options`` (an ``EquilibriumOptions``; the solver's share goes to
    ``stage_equilibrium`` as ``options.solver``).
    """

    needs_view = True

    def __init__(
        self,
        *,
        start: Literal["previous", "hold", "heuristic"] = "previous",
        max_sweeps: int = 5,
        tol: float = 1e-9,
        noise: Literal["sample", "median"] = "median",
        scenarios: int = 1,
        block_worlds: int = 128,
        shortlist: int | None = 6,
        fallback_tol: float = 0.01,
        polish_rounds: int = 2,
        epsilon_target: float = 0.1,
        mixed_above: float | None = 1.0,
        mixed: Literal["cce", "regret_matching", "none"] = "cce",
        mixed_iters: int = 32,
        mixed_samples: int = 1,
        mixed_action: Literal["sample", "mode"] = "sample",
        seed: int | None = None,
        heuristic: HeuristicAgent | None = None,
    ) -> None:
        self.options = EquilibriumOptions(
            start=start,
            noise=noise,
            scenarios=scenarios,
            mixed_action=mixed_action,
            solver=SolverOptions(
                max_sweeps=max_sweeps,
                tol=tol,
                block_worlds=block_worlds,
                shortlist=shortlist,
                fallback_tol=fallback_tol,
                polish_rounds=polish_rounds,
                epsilon_target=epsilon_target,
                mixed_above=mixed_above,
                mixed=mixed,
                mixed_iters=mixed_iters,
                mixed_samples=mixed_samples,
            ),
        )
        """Every knob of this agent, validated once (the solver's in ``options.solver``)."""
        self.heuristic = heuristic if heuristic is not None else HeuristicAgent()
        self._rng = np.random.default_rng(seed)
        self.last_result: Equilibrium | None = None
        """The equilibrium behind the last decision (of the last world for ``act_batch``)."""
        self.last_results: list[Equilibrium] = []
        """One result per world of the last ``act_batch`` (one entry after ``act``)."""
        self.last_game: CoreGame | None = None
        """The game of the last decision (its ``calls`` and ``worlds`` count the core work)."""
        self._warm: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        """Per world: the last decision's flat actions (N,) and shortlisted actions (N, A)."""

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.last_result = None
        self.last_results = []
        self.last_game = None
        self._warm = {}

    # ------------------------------------------------------------------ the interface
    def act(self, observations: Observations, view: EnvView | None = None) -> dict[str, int]:
        if view is None:
            raise InputError(
                "EquilibriumAgent is model-based: call act(observations, "
                "view=EnvView.from_env(env))"
            )
        acts = self.act_batch(view.state, view.params, view.fixed_array())[0]
        return {name: int(acts[view.index(name)]) for name in observations}

    def act_batch(
        self, state: NetworkState, params: Params, fixed: np.ndarray | None = None
    ) -> np.ndarray:
        """(B, N) equilibrium actions, one game per world (a loop over worlds, each solved with
        batched core calls)."""
        b, n, _ = state.shape
        if fixed is not None and np.shape(fixed) != (b, n):
            raise InputError(
                f"fixed has shape {np.shape(fixed)}: expected ({b}, {n}) with -1 "
                "for banks that are not fixed"
            )
        out = np.zeros((b, n), dtype=np.int64)
        self.last_results = []
        for w in range(b):
            one = state.take(np.array([w]))
            res = self.solve(one, params, None if fixed is None else np.asarray(fixed)[w], world=w)
            out[w] = self._play(res)
            self.last_results.append(res)
        self.last_result = self.last_results[-1] if self.last_results else None
        return np.where(state.alive, out, 0)

    # ------------------------------------------------------------------ the solver
    def game(
        self, state: NetworkState, params: Params, fixed: np.ndarray | None = None
    ) -> CoreGame:
        """The one-step game this agent solves at ``state`` (B = 1)."""
        _, n, m = state.shape
        noise = median_noise(1, n, m, params.K) if self.options.noise == "median" else None
        return CoreGame(
            state,
            params,
            noise,
            rng=self._rng,
            scenarios=self.options.scenarios,
            fixed=fixed,
            batch_worlds=self.options.solver.block_worlds,
        )

    def solve(
        self,
        state: NetworkState,
        params: Params,
        fixed: np.ndarray | Mapping[int, int] | None = None,
        *,
        world: int = 0,
    ) -> Equilibrium:
        """The equilibrium of the one-step game at ``state`` (B = 1); ``fixed`` (N,) int holds
        other banks' actions (-1 = player); ``world`` keys the "previous" warm start."""
        if isinstance(fixed, Mapping):
            arr = np.full(state.shape[1], -1, dtype=np.int64)
            for k, v in fixed.items():
                arr[int(k)] = int(v)
            fixed = arr
        game = self.game(state, params, fixed)
        self.last_game = game
        n = state.shape[1]
        shortlists = None
        warm = self._warm.get(world) if self.options.start == "previous" else None
        if warm is not None and warm[0].shape == (n,):
            start_actions = warm[0]
            rows = np.arange(n)[:, None]
            shortlists = warm[1][rows, game.candidates] & game.valid
        elif self.options.start == "heuristic":
            start_actions = self.heuristic.act_batch(state, params)[0]
        else:
            start_actions = np.zeros(n, dtype=np.int64)
        res = stage_equilibrium(
            game,
            game.indices(start_actions),
            options=self.options.solver,
            rng=self._rng,
            shortlists=shortlists,
        )
        if res.shortlists is not None:
            listed = np.zeros((n, params.layout.n), dtype=bool)
            rows, cols = np.nonzero(res.shortlists)
            listed[rows, game.candidates[rows, cols]] = True
            self._warm[world] = (res.actions.copy(), listed)
        return res

    def _play(self, res: Equilibrium) -> np.ndarray:
        """The flat actions to play: a pure answer's; a mixed one's sampled (each bank from its
        strategy); a correlated one's drawn from the device (a round t, then each bank from
        device[t]); with ``mixed_action="mode"``, each bank's most likely candidate."""
        if res.kind == "pure" or self.options.mixed_action == "mode":
            return res.actions
        strategy = res.strategy
        if res.kind == "correlated" and res.device is not None:
            strategy = res.device[self._rng.integers(len(res.device))]
        idx = sample_profile(strategy, self._rng)
        return res.candidates[np.arange(len(idx)), idx]
