"""``training.evaluate``: a tiny tournament's numbers recomputed here by a plain loop (events,
the contagion library's DebtRank per source, the equilibrium library's ``epsilon``, a t quantile
from the tables); intervals narrow as seeds grow; the equilibrium gap of a converged
all-equilibrium population is 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents import CoreGame, EpisodeObserver, Population, epsilon, median_noise, run_episodes
from rudra_env.config import EnvConfig
from rudra_env.contagion import debtrank
from rudra_env.core import Params, StepNoise, balance_sheet, initial_state, step
from training.evaluate import TournamentConfig, evaluate, network_debtrank, step_gap
from training.rollout import parse_agents

ROOT = Path(__file__).resolve().parents[2]
SMALL = str(ROOT / "configs" / "env" / "small.yaml")
RING = str(ROOT / "configs" / "env" / "ring_vs_complete.yaml")
T_975_DF3 = 3.182446305284263  # Student's t, two-sided 95 %, 3 degrees of freedom (tables)


def tiny(**extra) -> TournamentConfig:
    """Two scenarios (a calm one; a ring whose capital hits at steps 3-5 start cascades)."""
    data = {
        "name": "tiny",
        "populations": {
            "random": "random",
            "heuristic": "heuristic",
            "mix": "heuristic:0.5,random",
        },
        "scenarios": {
            "calm": {"file": SMALL, "overrides": {"num_banks": 6, "max_steps": 4}},
            "ring": {"file": RING, "variant": "ring", "overrides": {"max_steps": 5}},
        },
        "seeds": 4,
        "worlds_per_batch": 2,
        "equilibrium_gap": {"every": 2},
        "cross_play": {"share": 0.5},
        "tensorboard": False,
        "progress_bar": False,
    }
    return TournamentConfig.from_dict({**data, **extra})


def seed_of(batch: int, base: int = 0) -> int:
    return int(np.random.SeedSequence([base, batch]).generate_state(1)[0])


def network_debtrank_by_hand(loans: np.ndarray, equity: np.ndarray, alive: np.ndarray) -> float:
    """Mean over live solvent banks s of the library's DebtRank with s alone distressed."""
    banks = np.flatnonzero(alive & (equity > 0))
    if len(banks) == 0:
        return 0.0
    sub = loans[np.ix_(banks, banks)]
    values = []
    for k in range(len(banks)):
        start = np.zeros(len(banks))
        start[k] = 1.0
        values.append(debtrank(sub, equity[banks], start).debtrank)
    return float(np.mean(values))


def play_by_hand(agent, env: EnvConfig, seed: int, worlds: int, gap_every: int | None) -> dict:
    """One batch, step by step, every metric from its definition (per world)."""
    p = Params.from_config(env)
    s = initial_state(env, np.random.default_rng(seed), worlds=worlds)
    noise_rng = np.random.default_rng(seed + 1)
    agent.reset(seed)
    equity0 = [balance_sheet(s)["equity"][w][s.alive[w]].sum() for w in range(worlds)]
    index = [[(s.price[w] / s.price0[w]).mean()] for w in range(worlds)]
    rewards, gaps = np.zeros((worlds, p.N)), np.zeros(worlds)
    cascades: list[list[int]] = [[] for _ in range(worlds)]
    for t in range(env.max_steps):
        if not s.alive.any():
            break
        noise = StepNoise.draw(noise_rng, worlds, p.N, p.M, p.K)
        actions = agent.act_batch(s, p)
        for w in range(worlds):
            if gap_every and t % gap_every == 0 and s.alive[w].any():
                game = CoreGame(s.take(np.array([w])), p, median_noise(1, p.N, p.M, p.K))
                eps = epsilon(game, game.indices(actions[w]))
                gaps[w] = max(gaps[w], eps if eps > 1e-9 else 0.0)
        s, out = step(s, actions, p, noise=noise, inplace=True)
        rewards += out.rewards
        for w in range(worlds):
            fell = sum(e.type == "default" for e in out.record.events(w))
            if fell:
                cascades[w].append(fell)
            index[w].append((s.price[w] / s.price0[w]).mean())
    eq = balance_sheet(s)["equity"]
    out = {k: [] for k in ("utility", "default_rate", "cascade_mean", "cascade_max")}
    out.update({k: [] for k in ("equity_lost", "debtrank", "drawdown", "rewards")})
    for w in range(worlds):
        out["utility"].append(rewards[w].sum() / p.N)
        out["default_rate"].append(np.count_nonzero(~s.alive[w]) / p.N)
        out["cascade_mean"].append(np.mean(cascades[w]) if cascades[w] else 0.0)
        out["cascade_max"].append(max(cascades[w], default=0))
        out["equity_lost"].append(equity0[w] - eq[w][s.alive[w]].sum())
        out["debtrank"].append(network_debtrank_by_hand(s.loans[w], eq[w], s.alive[w]))
        peak, worst = -np.inf, 0.0
        for x in index[w]:
            peak = max(peak, x)
            worst = max(worst, (peak - x) / peak)
        out["drawdown"].append(worst)
        out["rewards"].append(rewards[w])
    out["equilibrium_gap"] = list(gaps)
    return out


def by_hand(tour: TournamentConfig, population: str, env: EnvConfig) -> dict[str, np.ndarray]:
    per: dict[str, list] = {}
    for k in range(2):
        agent = parse_agents(tour.populations[population], env, seed_of(k)).population
        for key, v in play_by_hand(agent, env, seed_of(k), 2, 2).items():
            per.setdefault(key, []).extend(v)
    return {k: np.array(v) for k, v in per.items()}


@pytest.fixture(scope="module")
def played():
    tour = tiny()
    return tour, evaluate(tour)


def test_every_metric_recomputed_by_hand(played) -> None:
    tour, result = played
    assert result.metrics == [
        "utility",
        "default_rate",
        "cascade_mean",
        "cascade_max",
        "equity_lost",
        "debtrank",
        "drawdown",
        "equilibrium_gap",
    ]
    cascades_seen = 0
    for (pop, scen), cell in result.cells.items():
        want = by_hand(tour, pop, result.env_configs[scen])
        for metric in result.metrics:
            np.testing.assert_allclose(
                cell.values[metric],
                want[metric],
                rtol=1e-9,
                atol=1e-12,
                err_msg=(pop, scen, metric),
            )
            iv = result.interval(pop, scen, metric)
            x = want[metric]
            assert iv.mean == pytest.approx(x.mean(), abs=1e-12)
            assert iv.half == pytest.approx(T_975_DF3 * x.std(ddof=1) / 2.0, rel=1e-7, abs=1e-12)
        np.testing.assert_allclose(cell.rewards, want["rewards"], rtol=1e-12, atol=1e-12)
        cascades_seen += int(want["cascade_max"].max() > 1)
    assert cascades_seen >= 2, "the ring scenario should produce multi-bank cascades"
    assert result.cells[("random", "calm")].values["equilibrium_gap"].max() > 0


def test_cross_play_recomputed_by_hand(played) -> None:
    tour, result = played
    env = result.env_configs["ring"]
    seats = [
        np.sort(np.random.default_rng([0, k, 1]).choice(20, 10, replace=False)) for k in (0, 1)
    ]
    # off the diagonal: the row's agents in its seats, the column's in the others
    got = []
    for k in range(2):
        row = parse_agents("random", env, seed_of(k)).population
        col = parse_agents("heuristic:0.5,random", env, seed_of(k)).population
        pop = Population(
            {i: (row if i in seats[k] else col).agent_of(f"bank_{i}", i) for i in range(20)}
        )
        rewards = np.array(play_by_hand(pop, env, seed_of(k), 2, None)["rewards"])
        got.extend(rewards[:, seats[k]].mean(axis=1))
    np.testing.assert_allclose(result.cross[("ring", "random", "mix")], got, rtol=1e-12)
    # the diagonal is the population's own run over the same seats
    own = result.cells[("heuristic", "ring")].rewards
    diag = np.concatenate([own[2 * k : 2 * k + 2, seats[k]].mean(axis=1) for k in (0, 1)])
    np.testing.assert_allclose(result.cross[("ring", "heuristic", "heuristic")], diag)
    iv = result.cross_interval("ring", "random", "mix")
    assert iv.half == pytest.approx(T_975_DF3 * np.std(got, ddof=1) / 2.0, rel=1e-7)
    assert len(result.cross) == 2 * 3 * 3


def test_tables_match_the_numbers(played) -> None:
    tour, result = played
    md, table = result.markdown(), result.csv()
    iv = result.interval("mix", "ring", "utility")
    assert "## ring (20 banks, 5 steps)" in md and "| mix |" in md
    line = [row for row in table.splitlines() if row.startswith("mix,ring,")][0]
    assert line.split(",")[4:6] == [f"{iv.mean:.6g}", f"{iv.half:.6g}"]
    assert len(result.per_world_csv().splitlines()) == 1 + 3 * 2 * 4
    assert "| random |" in result.cross_markdown() and "row \\ column" in result.cross_markdown()


def test_network_debtrank_matches_the_library_on_random_networks() -> None:
    rng = np.random.default_rng(5)
    b, n = 6, 7
    loans = rng.random((b, n, n)) * (rng.random((b, n, n)) < 0.5)
    loans[:, np.arange(n), np.arange(n)] = 0.0
    equity = rng.uniform(-0.5, 3.0, (b, n))
    alive = rng.random((b, n)) < 0.8
    alive[0] = False  # a world with no live bank
    loans[1] = 0.0  # a world without exposures
    got = network_debtrank(loans, equity, alive)
    want = [network_debtrank_by_hand(loans[w], equity[w], alive[w]) for w in range(b)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[0] == 0.0 and got[1] == 0.0 and got[2:].max() > 0


def test_gap_of_a_sample_of_banks_is_at_most_the_full_gap() -> None:
    env = EnvConfig.from_yaml(SMALL).with_overrides({"num_banks": 6})
    p = Params.from_config(env)
    s = initial_state(env, np.random.default_rng(1), worlds=2)
    actions = parse_agents("random", env, 3).population.act_batch(s, p)
    full, calls, worlds = step_gap(s, actions, p)
    some, _, _ = step_gap(s, actions, p, banks=np.array([[0, 1], [2, 5]]))
    assert np.all(some <= full) and full.max() > 0 and calls >= 2 and worlds > 12
    for w in range(2):
        game = CoreGame(s.take(np.array([w])), p, median_noise(1, p.N, p.M, p.K))
        assert full[w] == pytest.approx(epsilon(game, game.indices(actions[w])), abs=1e-15)


# ---------------------------------------------------------------------------- seeds
def test_intervals_narrow_as_seeds_grow_and_more_seeds_keep_the_first_worlds() -> None:
    base = {"populations": {"random": "random"}, "scenarios": {"calm": tiny().scenarios["calm"]}}
    base.update(equilibrium_gap=None, cross_play=None, worlds_per_batch=4)
    few = evaluate(tiny(**base, seeds=4))
    many = evaluate(tiny(**base, seeds=40))
    for metric in ("utility", "equity_lost", "debtrank", "drawdown"):
        a, b = few.cells[("random", "calm")], many.cells[("random", "calm")]
        np.testing.assert_array_equal(a.values[metric], b.values[metric][:4])
        narrow = many.interval("random", "calm", metric).half
        assert narrow < 0.6 * few.interval("random", "calm", metric).half, metric


def test_same_config_same_numbers() -> None:
    one = evaluate(tiny(populations={"mix": "heuristic:0.5,random"}, seeds=3))
    two = evaluate(tiny(populations={"mix": "heuristic:0.5,random"}, seeds=3))
    assert one.csv() == two.csv() and one.per_world_csv() == two.per_world_csv()
    assert one.cross_csv() == two.cross_csv()
    other = evaluate(tiny(populations={"mix": "heuristic:0.5,random"}, seeds=3, seed=1))
    assert other.per_world_csv() != one.per_world_csv()


# ---------------------------------------------------------------------------- equilibrium gap
class _Converged(EpisodeObserver):
    """Records whether every equilibrium decision of the step converged to a pure one."""

    def __init__(self, agent) -> None:
        self.agent, self.flags = agent, []

    def before_step(self, state, actions, params) -> None:
        self.flags += [r.converged and r.kind == "pure" for r in self.agent.last_results]


def test_equilibrium_gap_is_zero_when_equilibrium_decisions_converged() -> None:
    calm = {"file": SMALL, "overrides": {"num_banks": 3, "max_steps": 4}}  # all converge
    tour = tiny(
        populations={"equilibrium": "equilibrium", "heuristic": "heuristic"},
        scenarios={"calm": calm},
        seeds=2,
        equilibrium_gap={"every": 1},
        cross_play=None,
    )
    result = evaluate(tour)
    env = result.env_configs["calm"]
    plan = parse_agents("equilibrium", env, seed_of(0))
    watch = _Converged(plan.population.members()[0])
    run_episodes(env, plan.population, 2, seed_of(0), [watch])
    assert len(watch.flags) == 2 * 4 and all(watch.flags), "premise: every decision converged"
    assert result.cells[("equilibrium", "calm")].values["equilibrium_gap"].tolist() == [0.0, 0.0]
    assert result.cells[("heuristic", "calm")].values["equilibrium_gap"].max() > 0
    calls, worlds = result.gap_cost()
    assert calls >= 2 * 2 * 4 and worlds > calls
