"""Known answers for the equilibrium functions and the EquilibriumAgent.

The hand-solved games are market-entry games played in the env's own core: banks with no loans
and no market units choose between HOLD and INVEST (buy half their cash of one market at price 1);
every other action is masked. With interest, margin, profit booking, liquidity and regulatory
terms switched off, zero market noise and drift = sigma^2 / 2, one step gives

    P1 = exp(kappa * F),   F = 0.5 * sum of investors' cash (the step's net flow),
    U_i(HOLD) = 0 exactly (nothing on the balance sheet moves),
    U_i(INVEST) = (0.5 c_i / E0_i) * (P1 * (1 - rho z sigma) - 1)

(revenue = units * (P1 - 1) / E0, risk = rho * z * sigma * units * P1 / E0). Investing pays iff
kappa * F > theta = -ln(1 - rho z sigma); with rho = 0.5, z = 2.33, sigma = 0.1,
rho z sigma = 0.1165 and theta = 0.12386.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rudra_env
from agents import (
    CoreGame,
    EnvView,
    EquilibriumAgent,
    MatrixGame,
    SolverOptions,
    best_response,
    deviation_gains,
    epsilon,
    median_noise,
    mixed_epsilon,
    stage_equilibrium,
)
from agents import games as games_module
from rudra_env.core import step
from rudra_env.core.network import initial_state
from rudra_env.core.params import Params
from rudra_env.errors import ConfigError, InputError

RHO, Z, SIGMA = 0.5, 2.33, 0.1
THETA = -math.log(1 - RHO * Z * SIGMA)
ONE_BY_ONE = SolverOptions(block_banks=1)  # classical sequential best responses
INVEST = 3  # flat index of INVEST(market 0, size 0) with K = M = S = 1: HOLD, LEND, BORROW, INVEST


def market_game(cash, equity, kappa):
    """The env's one-step game for banks with ``cash`` and ``equity`` (see module docstring)."""
    n = len(cash)
    cfg = rudra_env.EnvConfig.from_dict(
        {
            "num_banks": n,
            "max_counterparties": 1,
            "size_levels": [0.5],
            "interest_rate": 0.0,
            "profit_booking_interval": 1000,
            "topology": {"kind": "complete"},
            "markets": [
                {
                    "name": "M",
                    "price0": 1.0,
                    "impact": kappa,
                    "depth": 1.0,
                    "volatility": SIGMA,
                    "drift": SIGMA**2 / 2,
                }
            ],
            "margin": {"enabled": False},
            "reward": {"rho": RHO, "lam": 0.0, "gamma": 0.0, "min_capital_ratio": 0.0},
        }
    )
    params = Params.from_config(cfg)
    s = initial_state(cfg, np.random.default_rng(0))
    cash = np.asarray(cash, dtype=float)
    equity = np.asarray(equity, dtype=float)
    s.cash = cash[None].copy()
    s.loans = np.zeros((1, n, n))
    s.units = np.zeros((1, n, 1))
    s.basis = np.zeros((1, n, 1))
    s.external = (4 * cash)[None].copy()
    s.deposits = (5 * cash - equity)[None].copy()
    s.slots = np.full((1, n, 1), -1)
    s.belief = np.zeros((1, n, 1))
    s.resync()  # derived interbank arrays follow the edits
    s.equity0 = s.equity()
    s.equity_prev = s.equity0.copy()
    assert np.allclose(s.equity0, equity)
    return CoreGame(s, params, median_noise(1, n, 1, 1)), params


def u_invest(c, e0, kappa, flow):
    return 0.5 * c / e0 * (math.exp(kappa * flow) * (1 - RHO * Z * SIGMA) - 1)


def profile_of(game, actions):
    return game.indices(np.asarray(actions))


def test_two_bank_game_solved_by_iterated_dominance():
    """Bank 0 (cash 30, equity 10) and bank 1 (cash 10, equity 5), kappa = 0.01.

    Bank 0 investing alone moves F = 15, kappa F = 0.15 > theta: INVEST strictly dominates HOLD
    for bank 0 (it pays even more when bank 1 invests too). Given bank 0 invests, bank 1
    investing gives F = 20, 0.2 > theta, so bank 1 invests; alone it would lose (0.05 < theta).
    Unique pure equilibrium: (INVEST, INVEST). Deviation gains by hand:
    epsilon(HOLD, HOLD) = U_0(I, H) = 1.5 (e^0.15 (1 - 0.1165) - 1) = 0.0397 (bank 1's gain there
    is negative); epsilon(I, H) = U_1(I, I) = e^0.2 (1 - 0.1165) - 1 = 0.0791; epsilon(I, I) = 0.
    """
    game, _ = market_game([30.0, 10.0], [10.0, 5.0], kappa=0.01)
    assert game.candidates[:, :2].tolist() == [[0, INVEST], [0, INVEST]]
    assert game.valid.sum() == 4
    assert THETA < 0.15 and 0.05 < THETA < 0.2
    hh, ih, ii = (profile_of(game, a) for a in ([0, 0], [INVEST, 0], [INVEST, INVEST]))
    pay = game.payoffs(ii)
    assert pay == pytest.approx([u_invest(30, 10, 0.01, 20), u_invest(10, 5, 0.01, 20)], rel=1e-9)
    assert game.payoffs(hh).tolist() == [0.0, 0.0]
    assert epsilon(game, hh) == pytest.approx(u_invest(30, 10, 0.01, 15), rel=1e-9)
    assert epsilon(game, ih) == pytest.approx(u_invest(10, 5, 0.01, 20), rel=1e-9)
    assert epsilon(game, ii) == 0.0

    res = stage_equilibrium(game, hh, rng=np.random.default_rng(0))
    assert res.kind == "pure" and res.converged
    assert res.actions.tolist() == [INVEST, INVEST]
    assert res.epsilon == 0.0
    assert res.iterations >= 1
    best, gain = best_response(game, hh)
    assert best.tolist() == [1, 0] and gain[0] == pytest.approx(u_invest(30, 10, 0.01, 15))


def test_three_bank_coordination_sweep_order_picks_the_equilibrium():
    """Three banks with cash 10 and equity 5, kappa = 0.01: k investors move F = 5k and each
    investor gets U(k) = e^{0.05 k}(1 - 0.1165) - 1 = -0.0712, -0.0236, +0.0265 for k = 1, 2, 3.
    Pure equilibria: all HOLD (a lone deviator gets U(1) < 0) and all INVEST (a deviator to HOLD
    gives up U(3) > 0). From (I, I, H) sequential best responses go to all-INVEST iff the holder
    (bank 2) moves first (it gains U(3)); if an investor moves first it drops out (gain -U(2)),
    then the last investor drops out (gain -U(1)) and all HOLD. epsilon(I, I, H) =
    max(-U(2), U(3)) = 0.0265; epsilon(I, H, H) = -U(1) = 0.0712.
    """
    game, _ = market_game([10.0] * 3, [5.0] * 3, kappa=0.01)
    u = {k: u_invest(10, 5, 0.01, 5 * k) for k in (1, 2, 3)}
    assert u[1] < u[2] < 0 < u[3]
    iih = profile_of(game, [INVEST, INVEST, 0])
    assert epsilon(game, iih) == pytest.approx(max(-u[2], u[3]), rel=1e-9)
    assert epsilon(game, profile_of(game, [INVEST, 0, 0])) == pytest.approx(-u[1], rel=1e-9)
    assert epsilon(game, profile_of(game, [0, 0, 0])) == 0.0
    assert epsilon(game, profile_of(game, [INVEST] * 3)) == 0.0
    outcomes = set()
    for seed in range(12):
        res = stage_equilibrium(game, iih, rng=np.random.default_rng(seed), options=ONE_BY_ONE)
        first = np.random.default_rng(seed).permutation(3)[0]
        expected = [INVEST] * 3 if first == 2 else [0, 0, 0]
        assert res.converged and res.epsilon == 0.0
        assert res.actions.tolist() == expected, f"seed {seed}: first mover {first}"
        again = stage_equilibrium(game, iih, rng=np.random.default_rng(seed), options=ONE_BY_ONE)
        assert again.actions.tolist() == res.actions.tolist()
        outcomes.add(tuple(res.actions.tolist()))
    assert len(outcomes) == 2


def test_simultaneous_updates_cycle_then_oscillating_banks_are_isolated():
    """Two banks with cash 10 and equity 5, kappa = 0.015: alone kappa F = 0.075 < theta, both
    0.15 > theta — equilibria (H, H) and (I, I). From (I, H), updating both at once swaps to
    (H, I) and back forever; the repeat is detected, both banks are isolated (one switch at a
    time), and sequential best responses settle on an equilibrium."""
    game, _ = market_game([10.0, 10.0], [5.0, 5.0], kappa=0.015)
    ih = profile_of(game, [INVEST, 0])
    res = stage_equilibrium(game, ih, rng=np.random.default_rng(1))
    assert res.converged and res.epsilon == 0.0
    assert res.actions.tolist() in ([0, 0], [INVEST, INVEST])
    assert res.isolated == 2
    stuck = stage_equilibrium(
        game, ih, rng=np.random.default_rng(1), options=SolverOptions(max_sweeps=1, mixed="none")
    )
    assert not stuck.converged and stuck.epsilon > 0


def test_prisoners_dilemma_matrix_game():
    """Prisoner's dilemma (T, R, P, S) = (5, 3, 1, 0): defecting strictly dominates, so
    (D, D) is the unique equilibrium; at (C, C) each player gains T - R = 2 by defecting."""
    r, s_, t, p = 3.0, 0.0, 5.0, 1.0
    pay0 = np.array([[r, s_], [t, p]])  # row player: 0 = cooperate, 1 = defect
    game = MatrixGame(np.stack([pay0, pay0.T]))
    assert epsilon(game, np.array([0, 0])) == t - r
    assert epsilon(game, np.array([1, 1])) == 0.0
    res = stage_equilibrium(game, np.array([0, 0]))
    assert res.converged and res.actions.tolist() == [1, 1] and res.epsilon == 0.0


def test_matching_pennies_has_only_a_mixed_equilibrium():
    """Matching pennies: player 0 wins 1 on a match, player 1 on a mismatch. Every pure profile
    leaves one player a gain of 2, so best responses cycle; the unique equilibrium is (1/2, 1/2)
    for both, with epsilon 0. Regret matching's average approaches it (zero-sum, 2 players)."""
    m = np.array([[1.0, -1.0], [-1.0, 1.0]])
    game = MatrixGame(np.stack([m, -m]))
    for prof in ([0, 0], [0, 1], [1, 0], [1, 1]):
        assert epsilon(game, np.array(prof)) == 2.0
    assert mixed_epsilon(game, np.full((2, 2), 0.5))[0] == 0.0
    assert mixed_epsilon(game, np.array([[0.8, 0.2], [0.5, 0.5]]))[0] == pytest.approx(0.6)
    res = stage_equilibrium(
        game,
        rng=np.random.default_rng(0),
        options=SolverOptions(max_sweeps=20, mixed_iters=4000),
    )
    assert res.kind == "mixed" and not res.converged and res.stop == "cycle"
    assert res.iterations < 20, "the oscillation is detected before the cap"
    assert res.strategy is not None and not res.epsilon_estimated
    assert np.abs(res.strategy - 0.5).max() < 0.05
    assert res.epsilon < 0.1
    none = stage_equilibrium(
        game, rng=np.random.default_rng(0), options=SolverOptions(max_sweeps=5, mixed="none")
    )
    assert none.kind == "pure" and not none.converged and none.epsilon == 2.0


def test_mixed_fallback_randomises_only_the_cycling_banks():
    """Players 0 and 1 play matching pennies; player 2 gets 1 for action 1 and 0 for action 0
    whatever the others do. Only 0 and 1 cycle, so only they randomise; player 2 keeps its
    dominant action, and the exact epsilon of the result is small."""
    m = np.array([[1.0, -1.0], [-1.0, 1.0]])
    pay = np.zeros((3, 2, 2, 2))
    pay[0] = m[:, :, None]
    pay[1] = -m[:, :, None]
    pay[2, :, :, 1] = 1.0
    game = MatrixGame(pay)
    res = stage_equilibrium(
        game, rng=np.random.default_rng(3), options=SolverOptions(mixed_iters=4000)
    )
    assert res.kind == "mixed" and res.mixed_players.tolist() == [0, 1]
    assert res.strategy[2].tolist() == [0.0, 1.0]
    assert np.abs(res.strategy[:2] - 0.5).max() < 0.05 and res.epsilon < 0.1


def small_env_game(seed=0, n=6, **kw):
    cfg = rudra_env.EnvConfig(num_banks=n, max_counterparties=4)
    params = Params.from_config(cfg)
    state = initial_state(cfg, np.random.default_rng(seed))
    game = CoreGame(state, params, rng=np.random.default_rng(seed + 100), **kw)
    return game, state, params


def test_no_unilateral_deviation_gains_more_than_epsilon():
    """Every (bank, candidate) deviation, stepped one world at a time with the same noise, gains
    at most epsilon, and the largest gain is epsilon — for random profiles and the equilibrium."""
    game, state, params = small_env_game(seed=3)
    rng = np.random.default_rng(0)
    n = len(game.valid)
    profiles = [np.array([rng.choice(np.nonzero(v)[0]) for v in game.valid]) for _ in range(3)]
    profiles.append(stage_equilibrium(game, rng=np.random.default_rng(1)).profile)
    for prof in profiles:
        eps = epsilon(game, prof)
        base = game.actions(prof)
        _, ref = step(state, base[None], params, noise=game.noise)
        largest = 0.0
        for i in range(n):  # reference: one plain step per deviation
            for c in np.nonzero(game.valid[i])[0]:
                acts = base.copy()
                acts[i] = game.candidates[i, c]
                _, out = step(state, acts[None], params, noise=game.noise)
                gain = out.rewards[0, i] - ref.rewards[0, i]
                assert gain <= eps + 1e-12
                largest = max(largest, gain)
        assert largest == pytest.approx(eps, abs=1e-12)
    assert epsilon(game, profiles[-1]) == 0.0


def test_candidates_are_scored_in_one_batched_core_call(monkeypatch):
    """All banks' deviations share one call of the core (world axis = candidates), not a loop."""
    game, _, _ = small_env_game(seed=1, batch_worlds=10_000)
    calls = []

    def counting_step(state, actions, params, rng=None, **kw):
        calls.append(state.shape[0])
        return step(state, actions, params, rng, **kw)

    monkeypatch.setattr(games_module, "step", counting_step)
    prof = np.zeros(len(game.valid), dtype=np.int64)
    _, gain, pay = deviation_gains(game, prof)
    assert calls == [1 + int((game.valid.sum(axis=1) - 1).sum())]
    assert np.isnan(pay[~game.valid]).all() and not np.isnan(pay[game.valid]).any()
    small, _, _ = small_env_game(seed=1, batch_worlds=16)
    monkeypatch.setattr(games_module, "step", counting_step)
    calls.clear()
    _, gain_small, _ = deviation_gains(small, prof)
    assert max(calls) <= 16 and sum(calls) == 1 + int((small.valid.sum(axis=1) - 1).sum())
    np.testing.assert_allclose(gain_small, gain, rtol=0, atol=1e-12)


def test_common_random_numbers_and_scenarios():
    """Candidate worlds share the game's noise: scoring twice gives identical payoffs, and with
    S scenarios a payoff is the mean over S plain steps with those draws."""
    game, state, params = small_env_game(seed=2, scenarios=3)
    prof = np.zeros(len(game.valid), dtype=np.int64)
    a = game.deviation_payoffs(prof, np.arange(len(prof)))
    b = game.deviation_payoffs(prof, np.arange(len(prof)))
    np.testing.assert_array_equal(a, b)
    means = np.mean(
        [
            step(
                state,
                game.actions(prof)[None],
                params,
                noise=type(game.noise)(game.noise.market[k : k + 1], game.noise.signal[k : k + 1]),
            )[1].rewards[0]
            for k in range(3)
        ],
        axis=0,
    )
    np.testing.assert_allclose(game.payoffs(prof), means, rtol=0, atol=1e-12)


def test_shortlist_search_ends_at_an_exact_equilibrium():
    """Search sweeps over shortlists still stop only at a profile whose full epsilon is 0."""
    game, _, _ = small_env_game(seed=4, n=10)
    for shortlist in (1, 3, None):
        options = SolverOptions(shortlist=shortlist, max_sweeps=30)
        res = stage_equilibrium(game, rng=np.random.default_rng(0), options=options)
        assert res.converged
        assert epsilon(game, res.profile) == res.epsilon == 0.0


def test_equilibrium_agent_in_env_respects_fixed_banks_and_reports():
    env = rudra_env.parallel_env("configs/env/small.yaml")
    obs, _ = env.reset(seed=0)
    before = env.core_state.copy()
    agent = EquilibriumAgent(seed=0)
    view = EnvView.from_env(env)
    acts = agent.act(obs, view)
    assert set(acts) == set(obs)
    assert all(obs[a]["action_mask"][v] == 1 for a, v in acts.items())
    assert env.core_state.equal(before), "the agent must not touch the env's state"
    res = agent.last_result
    assert res.kind == "pure" and res.converged and res.epsilon == 0.0 and res.iterations >= 1
    # Fix two banks: they are not players, and the others best-respond to them.
    fixed = {"bank_0": 0, "bank_1": int(np.flatnonzero(obs["bank_1"]["action_mask"])[-1])}
    acts2 = agent.act({a: obs[a] for a in obs if a not in fixed}, view.with_fixed(fixed))
    game = agent.game(view.state, view.params)
    assert set(acts2) == set(obs) - set(fixed)
    res2 = agent.last_result
    assert res2.actions[0] == 0 and res2.actions[1] == fixed["bank_1"]
    assert res2.candidates[0, 1:].tolist() == [0] * (res2.candidates.shape[1] - 1)
    assert game.valid[0].sum() > 1  # without fixing, bank 0 would have been a player
    _, _, _, _, info = env.step(acts)
    assert not any(i["invalid_action"] for i in info.values())


def test_equilibrium_agent_batched_and_heuristic_start():
    cfg = rudra_env.EnvConfig.from_yaml("configs/env/small.yaml")
    params = Params.from_config(cfg)
    state = initial_state(cfg, np.random.default_rng(5), worlds=2)
    agent = EquilibriumAgent(start="heuristic", seed=3)
    acts = agent.act_batch(state, params)
    assert acts.shape == (2, cfg.num_banks)
    assert len(agent.last_results) == 2 and all(r.converged for r in agent.last_results)
    for w in range(2):
        game = agent.game(state.take(np.array([w])), params)
        assert epsilon(game, game.indices(acts[w])) == 0.0
    again = EquilibriumAgent(start="heuristic", seed=3).act_batch(state, params)
    np.testing.assert_array_equal(acts, again)


def test_warm_start_from_the_previous_decision_is_cheaper_and_still_exact():
    """start="previous" (the default) begins at the last decision's equilibrium with its
    shortlists, so its first sweep scores shortlists only; the answer is still verified by a full
    sweep, so it is an exact equilibrium of the new game. Over three decisions after the first it
    scores fewer worlds than cold starts from HOLD at the same states."""
    env = rudra_env.parallel_env("configs/env/small.yaml")
    obs, _ = env.reset(seed=0)
    warm = EquilibriumAgent(seed=0)
    warm_worlds = cold_worlds = 0
    for d in range(4):
        view = EnvView.from_env(env)
        cold = EquilibriumAgent(seed=0, start="hold")
        cold.act(obs, view)
        acts = warm.act(obs, view)
        res = warm.last_result
        assert res.converged and res.shortlists is not None
        assert epsilon(warm.last_game, res.profile) == res.epsilon == 0.0
        if d > 0:
            warm_worlds += warm.last_game.worlds
            cold_worlds += cold.last_game.worlds
        obs, *_ = env.step(acts)
    assert warm_worlds < cold_worlds
    warm.reset(seed=0)
    view = EnvView.from_env(env)
    warm.act(obs, view)  # after reset: a cold start again, same generator as `cold`
    cold = EquilibriumAgent(seed=0, start="hold")
    cold.act(obs, view)
    assert warm.last_game.worlds == cold.last_game.worlds


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="start = 'nash'"):
        EquilibriumAgent(start="nash")
    with pytest.raises(ConfigError, match="max_sweeps = 0"):
        EquilibriumAgent(max_sweeps=0)
    with pytest.raises(ConfigError, match="noise = 'zero'"):
        EquilibriumAgent(noise="zero")
    game, _, _ = small_env_game()
    with pytest.raises(ConfigError, match="mixed = 'fp'"):
        SolverOptions(mixed="fp")
    with pytest.raises(ConfigError, match="start = "):
        stage_equilibrium(game, np.full(len(game.valid), 99))
    with pytest.raises(ConfigError, match=r"shortlists has shape \(2, 2\)"):
        stage_equilibrium(game, shortlists=np.ones((2, 2), dtype=bool))
    with pytest.raises(InputError, match="model-based.*EnvView.from_env"):
        EquilibriumAgent().act({}, None)
