"""The parts of ``stage_equilibrium`` one at a time, on small hand-solved matrix games.

Games (payoffs[i, a_0, a_1] is player i's payoff):

* Coordination (common payoff): 2 if both play 0, 1 if both play 1, 0 on a mismatch. Pure
  equilibria (0, 0) and (1, 1). From (0, 1) player 0 gains 1 by moving to 1 and player 1 gains
  2 by moving to 0: one at a time, whoever moves first settles the game; both at once, they swap
  to (1, 0) and back.
* Matching pennies: player 0 gets 1 on a match and -1 otherwise, player 1 the opposite. Every
  pure profile leaves one player a gain of 2, so best responses go round the four profiles;
  the unique equilibrium is (1/2, 1/2) for both (von Neumann's minimax theorem).
* Shapley's game (Shapley, 1964): 3 actions each, player 0 gets 1 at (0, 1), (1, 2), (2, 0),
  player 1 gets 1 at (0, 2), (1, 0), (2, 1), else 0. Every pure profile leaves a gain of 1 and
  sequential best responses go round six profiles using all three actions; the unique
  equilibrium is uniform for both, where every action pays 1/3.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

import agents.equilibrium_agent as agent_module
import rudra_env
from agents import EnvView, EquilibriumAgent, EquilibriumOptions, MatrixGame, SolverOptions
from agents.equilibrium import (
    cycling_banks,
    detect_cycle,
    epsilon,
    mixed_epsilon,
    mixed_fallback,
    stage_equilibrium,
    start_search,
    sweep,
)
from rudra_env.errors import ConfigError

ONE_BY_ONE = SolverOptions(block_banks=1)


def coordination() -> MatrixGame:
    pay = np.array([[2.0, 0.0], [0.0, 1.0]])
    return MatrixGame(np.stack([pay, pay]))


def matching_pennies() -> MatrixGame:
    m = np.array([[1.0, -1.0], [-1.0, 1.0]])
    return MatrixGame(np.stack([m, -m]))


def shapley() -> MatrixGame:
    pay = np.zeros((2, 3, 3))
    for a0, a1 in ((0, 1), (1, 2), (2, 0)):
        pay[0, a0, a1] = 1.0
    for a0, a1 in ((0, 2), (1, 0), (2, 1)):
        pay[1, a0, a1] = 1.0
    return MatrixGame(pay)


def run_until_stop(game, options, start=None, seed=0):
    """The driver's loop, by hand: sweeps and cycle checks until the search stops."""
    rng = np.random.default_rng(seed)
    search = start_search(game, start, None, options)
    while search.stop == "max_sweeps" and search.sweeps < options.max_sweeps:
        sweep(game, search, options, rng)
        detect_cycle(search)
    return search, rng


# ----------------------------------------------------------------------------- the games
def test_the_hand_solved_games():
    coord, pennies, shap = coordination(), matching_pennies(), shapley()
    assert epsilon(coord, np.array([0, 0])) == epsilon(coord, np.array([1, 1])) == 0.0
    assert epsilon(coord, np.array([0, 1])) == 2.0
    for a in np.ndindex(2, 2):
        assert epsilon(pennies, np.array(a)) == 2.0
    for a in np.ndindex(3, 3):
        assert epsilon(shap, np.array(a)) == 1.0
    assert mixed_epsilon(pennies, np.full((2, 2), 0.5))[0] == 0.0
    assert mixed_epsilon(shap, np.full((2, 3), 1 / 3))[0] == pytest.approx(0.0, abs=1e-15)


# ----------------------------------------------------------------------------- start_search
def test_start_search_players_and_warm_shortlists():
    """A bank with one valid candidate is not a player; a given shortlist lists a bank only
    if it names a candidate besides the start one."""
    pay = np.zeros((3, 2, 3, 1))  # player 2 has a single candidate
    game = MatrixGame(pay)
    given = np.array([[True, False, False], [False, False, True], [True, False, False]])
    search = start_search(game, np.array([0, 1, 0]), given, SolverOptions())
    assert search.players.tolist() == [0, 1]
    assert search.listed.tolist() == [False, True, False]
    assert search.allowed[1].tolist() == [False, True, True]  # start candidate added
    assert search.held.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert not search.full_next and search.stop == "max_sweeps"
    assert start_search(game, None, given, SolverOptions(shortlist=None)).full_next
    assert not start_search(game, None, given, SolverOptions(shortlist=None)).listed.any()


def test_start_search_rejects_a_start_or_shortlists_that_do_not_fit():
    game = coordination()
    with pytest.raises(ConfigError, match=r"start = \[0, 2\] is not allowed: expected 2 valid"):
        start_search(game, np.array([0, 2]), None, SolverOptions())
    with pytest.raises(ConfigError, match=r"shortlists has shape \(3, 2\): expected \(2, 2\)"):
        start_search(game, None, np.ones((3, 2), dtype=bool), SolverOptions())


def test_no_players_is_converged_without_a_sweep():
    game = MatrixGame(np.array([[1.0]]))
    res = stage_equilibrium(game)
    assert res.converged and res.iterations == 0 and res.evaluations == 0 and res.epsilon == 0.0


# ----------------------------------------------------------------------------- sweep
@pytest.mark.parametrize("seed", range(4))
def test_sequential_sweep_settles_coordination_on_the_first_movers_choice(seed):
    """Blocks of one bank from (0, 1): the first bank in the sweep order switches to match the
    other, then the second has gain 0. One sweep, both checked, converged; the sweep's switched
    gain is the first mover's gain (1 for player 0, 2 for player 1)."""
    game = coordination()
    first = np.random.default_rng(seed).permutation(np.arange(2))[0]
    search = start_search(game, np.array([0, 1]), None, ONE_BY_ONE)
    sweep(game, search, ONE_BY_ONE, np.random.default_rng(seed))
    assert search.stop == "converged" and search.sweeps == 1
    assert search.profile.tolist() == ([1, 1] if first == 0 else [0, 0])
    assert search.history == [1.0 if first == 0 else 2.0]
    assert search.checked.all() and search.gains.tolist() == [0.0, 0.0]
    assert search.evaluations == 2 and search.used == 1
    assert search.last_moved.tolist() == ([1, -1] if first == 0 else [-1, 1])


def test_joint_sweep_switches_a_block_at_once():
    """One block holds both banks: against (0, 1) both switch together, to (1, 0), with summed
    gain 1 + 2 = 3; nobody is checked, and the next sweep searches the shortlists."""
    game = coordination()
    options = SolverOptions()
    search = start_search(game, np.array([0, 1]), None, options)
    sweep(game, search, options, np.random.default_rng(0))
    assert search.profile.tolist() == [1, 0]
    assert search.history == [3.0] and search.joint and search.used == 2
    assert not search.checked.any() and search.stop == "max_sweeps"
    assert search.listed.all() and not search.full_next
    assert search.returns.tolist() == [0, 0]


def test_stale_shortlist_is_rescored_fully():
    """One player, payoffs (3, 1, 2), at its best candidate 0. A shortlist {1} (plus the current
    0) whose best payoff (3) is below the recorded best unlisted payoff (5) is stale: the search
    sweep unlists the bank and checks nobody; the next sweep is full, lists the best candidate
    only (shortlist 1) with 2 as the best unlisted payoff, and converges."""
    game = MatrixGame(np.array([[3.0, 1.0, 2.0]]))
    options = SolverOptions(shortlist=1)
    search = start_search(game, None, np.array([[False, True, False]]), options)
    search.outside[0] = 5.0
    rng = np.random.default_rng(0)
    sweep(game, search, options, rng)
    assert not search.listed[0] and not search.checked[0] and search.full_next
    sweep(game, search, options, rng)
    assert search.stop == "converged" and search.sweeps == 2
    assert search.allowed[0].tolist() == [True, False, False] and search.outside[0] == 2.0


# ----------------------------------------------------------------------------- detect_cycle
def test_joint_swaps_are_isolated_then_settled_one_at_a_time():
    """Coordination from (0, 1) with one block: (1, 0), (0, 1), (1, 0) — both banks have gone
    back twice after joint moves, so both are isolated and the counts restart. Isolated banks
    switch one at a time (the larger gain first: player 0, 2 > 1, to (0, 0)), after which a
    search sweep and a full sweep verify the equilibrium (0, 0)."""
    game = coordination()
    options = SolverOptions()
    search = start_search(game, np.array([0, 1]), None, options)
    rng = np.random.default_rng(0)
    for _ in range(2):
        sweep(game, search, options, rng)
        detect_cycle(search)
    assert search.returns.tolist() == [1, 1] and not search.alone.any()
    sweep(game, search, options, rng)
    assert search.returns.tolist() == [2, 2]
    detect_cycle(search)
    assert search.alone.all() and not search.joint and search.stop == "max_sweeps"
    assert search.returns.tolist() == [0, 0]
    assert search.held.tolist() == [[False, True], [True, False]]  # only the current profile
    res = stage_equilibrium(
        game, np.array([0, 1]), rng=np.random.default_rng(0), options=SolverOptions(max_sweeps=10)
    )
    assert res.converged and res.fallback == "none"
    assert res.actions.tolist() == [0, 0] and res.isolated == 2
    assert res.iterations == 6 and res.history == [3.0, 3.0, 3.0, 2.0, 0.0, 0.0]


def test_detect_cycle_leaves_the_search_alone_below_two_returns_or_when_converged():
    game = coordination()
    search = start_search(game, np.array([0, 1]), None, SolverOptions())
    search.returns[:] = [1, 1]
    search.joint = True
    detect_cycle(search)
    assert search.stop == "max_sweeps" and not search.alone.any()
    search.returns[:] = [2, 2]
    search.stop = "converged"
    detect_cycle(search)
    assert search.stop == "converged" and search.cycle is None and not search.alone.any()


def test_detect_cycle_declares_a_cycle_among_isolated_banks():
    """When every bank that went back is isolated already (or no joint move happened), the
    oscillation is a cycle of the sequential dynamics: the cycle is who went back or moved in
    this sweep."""
    pay = np.zeros((3, 2, 2, 2))
    game = MatrixGame(pay)
    search = start_search(game, None, None, ONE_BY_ONE)
    search.sweeps = 4
    search.returns[:] = [2, 0, 0]
    search.last_moved[:] = [3, 4, 2]
    detect_cycle(search)
    assert search.stop == "cycle" and search.cycle.tolist() == [0, 1]
    assert cycling_banks(search).tolist() == [0, 1]


@pytest.mark.parametrize("seed", range(3))
def test_matching_pennies_cycle_is_detected_under_sequential_best_responses(seed):
    """Each player's action toggles every other step round the four profiles; a second return
    to a held action comes at the fifth switch, and a sweep makes one or two switches, so the
    cycle is declared in sweeps 3 to 5, with both players caught in it."""
    game = matching_pennies()
    search, _ = run_until_stop(game, SolverOptions(block_banks=1, max_sweeps=20), seed=seed)
    assert search.stop == "cycle" and 3 <= search.sweeps <= 5
    assert search.cycle.tolist() == [0, 1]
    assert search.held.all()


def test_shapley_game_cycles_through_every_action():
    game = shapley()
    search, _ = run_until_stop(game, SolverOptions(block_banks=1, max_sweeps=30))
    assert search.stop == "cycle" and search.cycle.tolist() == [0, 1]
    assert search.held.all(), "the best-response cycle of Shapley's game uses all 3 actions"


def test_cycling_banks_at_the_sweep_cap():
    """At the cap: banks that went back since the last isolation, else those that switched in
    the last two sweeps."""
    game = MatrixGame(np.zeros((3, 2, 2, 2)))
    search = start_search(game, None, None, SolverOptions())
    search.sweeps = 5
    search.last_moved[:] = [5, 4, 3]
    assert cycling_banks(search).tolist() == [0, 1]
    search.returns[:] = [0, 0, 1]
    assert cycling_banks(search).tolist() == [2]


# ----------------------------------------------------------------------------- mixed_fallback
def test_mixed_fallback_on_matching_pennies_approaches_one_half():
    """Regret matching over both actions of both players (zero-sum, two players): the average
    approaches (1/2, 1/2), and the exact epsilon of the result is small."""
    game = matching_pennies()
    options = SolverOptions(mixed_iters=4000)
    search, rng = run_until_stop(game, SolverOptions(block_banks=1, max_sweeps=20))
    res = mixed_fallback(game, search, cycling_banks(search), options, rng)
    assert res.kind == "mixed" and not res.converged and not res.epsilon_estimated
    assert res.iterations == search.sweeps and res.mixed_iterations == 4000
    assert np.abs(res.strategy - 0.5).max() < 0.05 and res.epsilon < 0.1
    assert res.epsilon == mixed_epsilon(game, res.strategy)[0]
    assert res.actions.tolist() == res.profile.tolist()  # MatrixGame candidates are indices


def test_mixed_fallback_keeps_other_banks_and_the_held_support():
    """Only the listed banks randomise, over the candidates they held; in Shapley's game with
    player 1 held at action 0, player 0's best response is action 2 (payoff 1), which regret
    matching finds, with action 1 (never held) getting no weight."""
    game = shapley()
    search = start_search(game, np.array([0, 0]), None, SolverOptions())
    search.held[0] = [True, False, True]
    res = mixed_fallback(
        game, search, np.array([0]), SolverOptions(mixed_iters=200), np.random.default_rng(0)
    )
    assert res.strategy[1].tolist() == [1.0, 0.0, 0.0]
    assert res.strategy[0, 1] == 0.0 and res.strategy[0, 2] > 0.95
    assert res.profile.tolist() == [2, 0] and res.mixed_players.tolist() == [0]
    # player 1 then gains 1 by moving to 1 (against player 0's action 2), nearly surely
    assert res.epsilon == pytest.approx(res.strategy[0, 2], abs=1e-12)


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("max_sweeps", 0, "an integer >= 1"),
        ("max_sweeps", 2.5, "an integer >= 1"),
        ("max_sweeps", True, "an integer >= 1"),
        ("block_worlds", -3, "an integer >= 1"),
        ("mixed_iters", 0, "an integer >= 1"),
        ("mixed_samples", "1", "an integer >= 1"),
        ("block_banks", 0, "an integer >= 1 or None"),
        ("shortlist", 0, "an integer >= 1 or None"),
        ("shortlist", 2.0, "an integer >= 1 or None"),
        ("tol", -1e-3, "a number >= 0"),
        ("tol", math.nan, "a number >= 0"),
        ("tol", "0", "a number >= 0"),
        ("mixed", "fp", "one of ('cce', 'regret_matching', 'none')"),
        ("fallback_tol", -0.1, "a number >= 0"),
        ("epsilon_target", -math.inf, "a number >= 0"),
        ("mixed_above", -1, "a number >= 0 or None"),
        ("polish_rounds", 1.5, "an integer >= 0"),
    ],
)
def test_solver_options_errors_name_the_field_value_and_what_is_allowed(name, value, allowed):
    with pytest.raises(ConfigError) as err:
        SolverOptions(**{name: value})
    assert str(err.value) == f"{name} = {value!r} is not allowed: expected {allowed}"


def test_solver_options_normalise_and_are_frozen():
    opts = SolverOptions(max_sweeps=np.int64(3), tol=0, shortlist=None, block_banks=np.int32(2))
    assert opts.max_sweeps == 3 and type(opts.max_sweeps) is int
    assert opts.tol == 0.0 and type(opts.tol) is float
    assert opts.block_banks == 2 and type(opts.block_banks) is int and opts.shortlist is None
    with pytest.raises(FrozenInstanceError):
        opts.max_sweeps = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("start", "nash", "one of ('previous', 'hold', 'heuristic')"),
        ("noise", "zero", "one of ('sample', 'median')"),
        ("mixed_action", "max", "one of ('sample', 'mode')"),
        ("scenarios", 0, "an integer >= 1"),
        ("solver", {"max_sweeps": 3}, "an agents.SolverOptions"),
    ],
)
def test_agent_options_errors_name_the_field_value_and_what_is_allowed(name, value, allowed):
    with pytest.raises(ConfigError) as err:
        EquilibriumOptions(**{name: value})
    assert str(err.value) == f"{name} = {value!r} is not allowed: expected {allowed}"


def test_agent_validates_once_and_passes_its_solver_options_down(monkeypatch):
    """The agent's keywords become one ``EquilibriumOptions``; ``stage_equilibrium`` receives
    its ``solver`` object itself, not a copy to validate again."""
    agent = EquilibriumAgent(max_sweeps=3, tol=0, shortlist=None, mixed="none", scenarios=2)
    solver = SolverOptions(max_sweeps=3, tol=0.0, shortlist=None, mixed="none", mixed_above=1.0)
    assert agent.options == EquilibriumOptions(scenarios=2, solver=solver)
    with pytest.raises(ConfigError, match="max_sweeps = 0 is not allowed"):
        EquilibriumAgent(max_sweeps=0)
    seen = []

    def spy(game, start=None, *, options=None, rng=None, shortlists=None):
        seen.append(options)
        return stage_equilibrium(game, start, options=options, rng=rng, shortlists=shortlists)

    monkeypatch.setattr(agent_module, "stage_equilibrium", spy)
    env = rudra_env.parallel_env("configs/env/small.yaml")
    obs, _ = env.reset(seed=0)
    agent.act(obs, EnvView.from_env(env))
    assert seen == [agent.options.solver] and seen[0] is agent.options.solver
