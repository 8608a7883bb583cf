"""The fallback of ``stage_equilibrium`` when best responses find no pure equilibrium: the
polish (``polish``, ``settle``) and the coarse correlated stage (``cce_regret_matching``,
``correlated_fallback``), on hand-solved games.

Games (payoffs[i, a_0, ...] is player i's payoff):

* Matching pennies and Shapley's game (``test_equilibrium_parts``): no pure equilibrium; the
  unique Nash equilibrium is uniform. Payoff ranges Delta = 2 and 1.
* A trap: players 0 and 1 play matching pennies; player 2 either stays (payoff 0, but -10, a
  default, when player 0 plays 1) or escapes (-0.1 whatever happens). With sequential best
  responses (seed 1) the cycle is declared while player 2 stays, so the old fallback mixed
  players 0 and 1 only and left player 2 staying: it defaults whenever player 0's mix lands on
  1, and its gain from escaping, about 10 * P(player 0 plays 1) - 0.1, was the reported epsilon
  (5.6).
* A default cycle, a miniature of decision 10 of the N = 100 benchmark episode: bank A lends to
  one of two counterparties (a0, a1); bank B defaults (-150) unless its action matches A's (b0
  with a0, b1 with a1). A would rather mismatch, a little: at (a0, b0) it gains 0.032 by moving
  to a1, at (a1, b1) 0.144 by moving to a0. Best responses go round the four profiles; the best
  pure profile, (a0, b0), has epsilon 0.032 and B does not default there.

The bound checked (module docstring of ``agents.equilibrium``): regret matching gives
max_c R_i(c) / T <= sqrt(sum_t |r_i^t|^2) / T <= Delta_i sqrt(C_i / T) for every player.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_equilibrium_parts import matching_pennies, run_until_stop, shapley

import rudra_env
from agents import CoreGame, EnvView, EquilibriumAgent, MatrixGame, SolverOptions
from agents.equilibrium import (
    cce_regret_matching,
    correlated_epsilon,
    correlated_fallback,
    cycling_banks,
    deviation_gains,
    mixed_fallback,
    polish,
    settle,
    stage_equilibrium,
    start_search,
    sweep,
)
from rudra_env.core.network import initial_state
from rudra_env.core.params import Params


def trap() -> MatrixGame:
    m = np.array([[1.0, -1.0], [-1.0, 1.0]])
    pay = np.zeros((3, 2, 2, 2))
    pay[0] = m[:, :, None]
    pay[1] = -m[:, :, None]
    pay[2, 1, :, 0] = -10.0  # stays while player 0 plays 1: defaults
    pay[2, :, :, 1] = -0.1  # escapes
    return MatrixGame(pay)


def default_cycle() -> MatrixGame:
    pay = np.zeros((2, 2, 2))
    pay[0, 1, 0] = 0.032  # A at (a0, b0) gains 0.032 by moving to a1
    pay[0, 0, 1] = 0.144  # A at (a1, b1) gains 0.144 by moving to a0
    pay[1] = np.where(np.eye(2, dtype=bool), 0.0, -150.0)  # B defaults on a mismatch
    return MatrixGame(pay)


class Sampled:
    """A matrix game seen only through ``deviation_payoffs`` (as the env's ``CoreGame``): mixed
    and correlated epsilons are then Monte Carlo estimates."""

    def __init__(self, game: MatrixGame) -> None:
        self.game, self.candidates, self.valid = game, game.candidates, game.valid

    def deviation_payoffs(self, profile, banks, allowed=None):
        return self.game.deviation_payoffs(profile, banks, allowed)


# ----------------------------------------------------------------------------- the bound
@pytest.mark.parametrize(
    ("make", "delta"), [(matching_pennies, 2.0), (shapley, 1.0)], ids=["pennies", "shapley"]
)
@pytest.mark.parametrize("iters", [64, 1000])
def test_correlated_fallback_is_within_its_stated_bound(make, delta, iters):
    """No pure equilibrium, so the fallback ends with the correlated stage: its epsilon is the
    exact gap of the device it returns (recomputed by ``correlated_epsilon``), at most the
    reported bound, which is at most Delta sqrt(C / T) (C = 2 or 3 candidates, T rounds)."""
    game = make()
    options = SolverOptions(max_sweeps=20, mixed_iters=iters)
    res = stage_equilibrium(game, rng=np.random.default_rng(0), options=options)
    assert res.kind == "correlated" and res.fallback == "cce" and not res.converged
    assert not res.epsilon_estimated and res.mixed_iterations == iters
    assert res.device.shape == (iters, 2, game.valid.shape[1])
    np.testing.assert_allclose(res.device.sum(axis=2), 1.0)
    exact, gains, estimated = correlated_epsilon(game, res.device)
    assert not estimated
    assert res.epsilon == pytest.approx(exact, abs=1e-12)
    np.testing.assert_allclose(res.gains, gains, atol=1e-12)
    c = game.valid.shape[1]
    assert res.epsilon <= res.epsilon_bound + 1e-12
    assert res.epsilon_bound <= delta * math.sqrt(c / iters)
    assert res.epsilon < 0.15 if iters == 64 else res.epsilon < 0.03


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "sampled"])
def test_regret_matching_bound_holds_for_every_player_of_a_random_game(exact):
    """The bound |R^+|^2 <= sum_t |r^t|^2 needs no zero-sum structure and holds whether each
    round uses exact expectations or one sampled profile (the cross term R^+ . r^t is 0 for
    the regrets as computed): 3 players, 3-4 candidates, random payoffs in [-1, 1]."""
    pay = np.random.default_rng(7).uniform(-1, 1, size=(3, 4, 3, 4))
    pay[1, 3] = pay[1, 2]  # player 1 has 3 candidates: the padded 4th copies the 3rd
    game = MatrixGame(pay[:, :, :, :])
    played = game if exact else Sampled(game)
    run = cce_regret_matching(played, 300, np.random.default_rng(1))
    assert run.exact == exact
    top = np.maximum(run.regret.max(axis=1), 0.0)
    assert (top <= np.sqrt(run.sumsq) + 1e-9).all()
    assert (np.sqrt(run.sumsq) / 300 <= 2.0 * np.sqrt(4 / 300)).all()  # Delta <= 2, C <= 4


def test_correlated_epsilon_estimate_approaches_the_exact_value():
    """Monte Carlo over profiles drawn from the device (round, then each player) agrees with
    the exact gap within sampling error, and says it is an estimate."""
    game = shapley()
    run = cce_regret_matching(game, 50, np.random.default_rng(0))
    exact, _, estimated = correlated_epsilon(game, run.device)
    approx, _, sampled = correlated_epsilon(
        Sampled(game), run.device, np.random.default_rng(0), samples=4000
    )
    assert not estimated and sampled
    assert approx == pytest.approx(exact, abs=0.03)


# ----------------------------------------------------------------------------- the trap
def test_old_fallback_left_a_defaulting_bank_the_new_one_does_not():
    """The trap with sequential best responses, seed 1: the cycle is declared while player 2
    stays. The old fallback (regret matching for the cycle's banks, everyone else held) leaves
    player 2 staying and reports epsilon 5.6 — its default risk. The new fallback's polish
    finds no pure profile below the target, and its correlated stage lets every bank whose gap
    exceeds the target play: player 2 escapes, and epsilon is small and within its bound."""
    game = trap()
    options = SolverOptions(block_banks=1)
    search, rng = run_until_stop(game, options, seed=1)
    assert search.stop == "cycle" and cycling_banks(search).tolist() == [0, 1]
    old = mixed_fallback(game, search, cycling_banks(search), options, rng)
    assert old.strategy[2].tolist() == [1.0, 0.0], "player 2 held where it can default"
    assert old.epsilon == old.gains[2] == pytest.approx(5.629, abs=1e-3)

    options = SolverOptions(block_banks=1, mixed_iters=1000)
    new = stage_equilibrium(game, rng=np.random.default_rng(1), options=options)
    assert new.kind == "correlated" and new.mixed_players.tolist() == [0, 1, 2]
    assert new.strategy[2, 1] > 0.99, "player 2 escapes"
    assert new.gains[2] < 0.01 and new.epsilon < 0.03
    assert new.epsilon <= new.epsilon_bound + 1e-12
    assert new.epsilon == pytest.approx(correlated_epsilon(game, new.device)[0], abs=1e-12)


# ----------------------------------------------------------------------------- the polish
def test_settle_stops_on_a_cycle_at_the_profile_left_with_the_smallest_gain():
    """The default cycle from (a1, b1): A moves to a0 (gain 0.144), which pushes B into default;
    B's current payoff drops by 150, it is scored again and moves to b0; A (scored again) moves
    to a1 (0.032); B moves to b1; (a1, b1) comes round again: a cycle. settle goes back to the
    profile it left with the smallest gain, (a0, b0), where B does not default."""
    game = default_cycle()
    options = SolverOptions()
    search = start_search(game, np.array([1, 1]), None, options)
    _, gains, payoffs = deviation_gains(game, search.profile)
    assert gains.tolist() == pytest.approx([0.144, 0.0])
    settle(game, search, payoffs, options)
    assert search.profile.tolist() == [0, 0]
    assert search.evaluations == 4, "B, A, B and A scored again after the other moved"
    _, gains, _ = deviation_gains(game, search.profile)
    assert gains.tolist() == pytest.approx([0.032, 0.0])


def test_polish_keeps_the_best_exactly_scored_profile():
    """From (a0, b1), where B defaults (gain 150): the exact scoring, a round of moves (back to
    (a0, b0) after the cycle), an exact scoring with epsilon 0.032 <= the target: stop. The
    gains returned are the exact ones of the profile kept. With no rounds, the answer is the
    last profile, exactly scored."""
    game = default_cycle()
    search = start_search(game, np.array([0, 1]), None, SolverOptions())
    gains = polish(game, search, SolverOptions())
    assert search.profile.tolist() == [0, 0]
    np.testing.assert_array_equal(gains, deviation_gains(game, search.profile)[1])
    assert gains.max() == pytest.approx(0.032)
    search = start_search(game, np.array([0, 1]), None, SolverOptions())
    gains = polish(game, search, SolverOptions(polish_rounds=0))
    assert search.profile.tolist() == [0, 1] and gains.max() == pytest.approx(150.0)


def test_default_cycle_is_answered_by_the_polish_without_a_default():
    """Best responses cycle (there is no pure equilibrium), the polish's best profile has
    epsilon 0.032, below the target, so no mixed stage runs: the answer is pure, B does not
    default, and the epsilon is exact."""
    game = default_cycle()
    res = stage_equilibrium(game, np.array([1, 1]), rng=np.random.default_rng(0))
    assert res.kind == "pure" and res.fallback == "polish" and not res.converged
    assert res.actions.tolist() == [0, 0] and res.epsilon == pytest.approx(0.032)
    assert not res.epsilon_estimated


# ----------------------------------------------------------------------------- in the env
def small_world(seed: int, n: int = 8):
    cfg = rudra_env.EnvConfig(num_banks=n, max_counterparties=4)
    params = Params.from_config(cfg)
    return initial_state(cfg, np.random.default_rng(seed)), params


def test_correlated_stage_in_the_core_is_estimated_and_playable():
    """The correlated stage in the env's own game, after one sweep and an exact scoring, with
    a target of 0 (every bank that gains at all plays): the players' gaps come from sampled
    rounds and the others' from a sampled profile, so epsilon is an estimate; the device's rows
    are distributions over each bank's valid candidates; a bank that is not a player is one-hot
    at its polished candidate in every round; the agent's play of it is legal."""
    state, params = small_world(3)
    game = CoreGame(state, params, rng=np.random.default_rng(0))
    options = SolverOptions(max_sweeps=1, polish_rounds=0, epsilon_target=0.0, mixed_iters=8)
    rng = np.random.default_rng(0)
    search = start_search(game, None, None, options)
    sweep(game, search, options, rng)
    gains = polish(game, search, options)
    assert (gains > 0).any()
    res = correlated_fallback(game, search, gains, options, rng)
    assert res.kind == "correlated" and res.fallback == "cce" and res.epsilon_estimated
    n, c = game.valid.shape
    assert res.device.shape == (8, n, c)
    np.testing.assert_allclose(res.device.sum(axis=2), 1.0)
    assert (res.device[:, ~game.valid] == 0).all()
    assert set(np.nonzero(gains > 0)[0]) <= set(res.mixed_players)
    fixed = np.setdiff1d(np.arange(n), res.mixed_players)
    np.testing.assert_array_equal(res.device[:, fixed].argmax(axis=2), [search.profile[fixed]] * 8)
    assert (res.device[:, fixed].max(axis=2) == 1.0).all()
    agent = EquilibriumAgent(seed=0)
    for _ in range(5):
        acts = agent._play(res)
        assert ((game.candidates == acts[:, None]) & game.valid).any(axis=1).all()
    assert (EquilibriumAgent(mixed_action="mode")._play(res) == res.actions).all()


def test_fallback_is_deterministic_for_a_seed():
    """Two agents with the same seed, along the same episode (decisions that end in the
    fallback: the sweep cap is 1), give the same actions and the same results; the correlated
    stage is forced too (mixed_above 0), so its sampling is covered."""
    runs = []
    for _ in range(2):
        env = rudra_env.parallel_env("configs/env/small.yaml")
        obs, _ = env.reset(seed=4)
        agent = EquilibriumAgent(seed=11, max_sweeps=1, mixed_above=0.0, mixed_iters=4)
        trace = []
        for _ in range(3):
            acts = agent.act(obs, EnvView.from_env(env))
            res = agent.last_result
            trace.append((acts, res.kind, res.fallback, res.epsilon, res.gains.tolist()))
            obs, *_ = env.step(acts)
        runs.append(trace)
    assert runs[0] == runs[1]
    assert {kind for _, kind, fallback, *_ in runs[0]} <= {"pure", "correlated"}
    assert all(fallback != "none" for _, _, fallback, *_ in runs[0])
