"""The fast batched core against the plain per-bank reference (tests/reference/reference_step.py).

For every YAML in configs/env (all variants), plus three synthetic configs that switch on what no
YAML does (Rogers–Veraart costs, a capped cascade, no interest, no margin, every shock type, a
removal and a capital injection; thin and deep markets, transient impact that fades within a
step or lasts, with and without a permanent share), fuzzed batches are stepped by both
implementations with the same ``StepNoise``: every field of the new state, the step outputs and
the events of each world (their numbers included) must agree. The fuzz perturbs
``initial_state`` (cash shortfalls, overdrafts, insolvent and dead banks, big loans, big and empty
positions, market prices displaced from their fundamentals, gains and losses since booking, high
realised volatility, steps at which shocks and bookings are due) and mixes masked-valid with
arbitrary actions, so that defaults, multi-round cascades, forced sales, margin calls, bookings,
auctions on both sides and at the price floor, and invalid actions all occur;
``test_fuzz_reaches_every_regime`` checks that they do.

Tolerance: ``RTOL = ATOL = 1e-9``. The core stops its fixed points (auctions with buyers and
pro-rata sales) at a relative change of 1e-13 and the reference solves them to about 1e-15; the
rest is float rounding in a different order.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, env_config_cases
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.reference_step import (
    World,
    encode_action,
    reference_step,
    valid_action,
    world_of,
)

from rudra_env.config import EnvConfig, Intervention, ScenarioConfig, Shock
from rudra_env.core import NetworkState, Params, StepNoise, initial_state, step

RTOL = ATOL = 1e-9


# ----------------------------------------------------------------------------- configs
def _synthetic_configs() -> dict[str, EnvConfig]:
    """Mechanisms no YAML switches on, on the small network: Rogers–Veraart costs, a capped
    cascade, no interest, no margin, every shock type, a removal and a capital injection; and
    markets of every kind (thin and deep, transient impact that fades within a step or lasts,
    with and without a permanent share)."""
    small = EnvConfig.from_yaml(_yaml("small"))
    bank_index, fin_services = small.markets
    costs = dataclasses.replace(
        small,
        contagion=dataclasses.replace(small.contagion, alpha=0.6, beta=0.8, max_rounds=2),
        markets=(
            dataclasses.replace(bank_index, impact=0.6, half_life=0.5, permanent_share=0.4),
            dataclasses.replace(fin_services, impact=0.1, half_life=20.0, permanent_share=0.0),
        ),
    )
    thin = dataclasses.replace(
        small,
        interest_rate=0.02,
        markets=(
            dataclasses.replace(bank_index, impact=3.0, half_life=0.2, permanent_share=0.0),
            dataclasses.replace(fin_services, impact=1.5, half_life=2.0, permanent_share=0.7),
        ),
    )
    everything = dataclasses.replace(
        small,
        interest_rate=0.0,
        profit_booking_interval=3,
        margin=dataclasses.replace(small.margin, enabled=False),
        markets=(
            dataclasses.replace(bank_index, impact=0.3, half_life=1.0, permanent_share=1.0),
            dataclasses.replace(fin_services, impact=0.8, depth=400.0, permanent_share=0.2),
        ),
        scenario=ScenarioConfig(
            name="everything",
            shocks=(
                Shock(
                    type="market_crash",
                    magnitude=0.5,
                    start=3,
                    duration=2,
                    targets=("FIN_SERVICES",),
                ),
                Shock(type="bank_capital_hit", magnitude=0.6, start=3, duration=1),
                Shock(type="deposit_run", magnitude=0.5, start=2, duration=2, targets=(1, 2, 3)),
                Shock(type="funding_freeze", magnitude=0.0, start=2, duration=2),
            ),
            interventions=(
                Intervention(type="capital_injection", step=3, bank=4, amount=5.0),
                Intervention(type="remove_bank", step=3, bank=0),
            ),
        ),
    )
    return {
        "synthetic:costs_capped": costs,
        "synthetic:thin_markets": thin,
        "synthetic:everything": everything,
    }


def _yaml(stem: str) -> Path:
    return ROOT / "configs" / "env" / f"{stem}.yaml"


CONFIGS: dict[str, EnvConfig] = {p.id: p.values[0] for p in env_config_cases()}
CONFIGS.update(_synthetic_configs())
REMOVAL_CONFIG = "synthetic:everything"


# ----------------------------------------------------------------------------- fuzzing
def _interesting_steps(cfg: EnvConfig) -> list[int]:
    """Values of ``t`` (the step taken is t + 1) at which shocks, interventions or a profit
    booking are due, plus a few quiet ones."""
    ts = {0, 1, 6}
    every = cfg.profit_booking_interval
    ts |= {every - 1, 2 * every - 1}
    for sh in cfg.scenario.shocks:
        ts |= set(range(sh.start - 1, sh.start + sh.duration - 1))
    for iv in cfg.scenario.interventions:
        ts.add(iv.step - 1)
    return sorted(ts)


def _kill(s: NetworkState, b: int, i: int, rng: np.random.Generator) -> None:
    """Make bank i of world b dead, with its books settled (zeroed), as the core leaves them."""
    s.loans[b, i, :] = 0.0
    s.loans[b, :, i] = 0.0
    for name in ("cash", "external", "deposits", "equity_prev"):
        getattr(s, name)[b, i] = 0.0
    s.units[b, i] = 0.0
    s.basis[b, i] = 0.0
    s.alive[b, i] = False
    s.default_step[b, i] = rng.integers(0, max(1, int(s.t[b])) + 1)


def fuzz_batch(
    cfg: EnvConfig, seed: int, worlds: int
) -> tuple[NetworkState, np.ndarray, StepNoise]:
    """A perturbed batch, actions and noise. Each world draws its own mix of perturbations."""
    rng = np.random.default_rng(seed)
    s = initial_state(cfg, rng, worlds=worlds)
    _b, n, m = s.units.shape
    k = s.slots.shape[2]
    steps = _interesting_steps(cfg)
    removal = any(iv.type == "remove_bank" for iv in cfg.scenario.interventions)
    if removal:  # every world at the same step: see test_removal_does_not_leak_into_other_worlds
        s.t[:] = rng.choice(steps)
    permanent = np.array([mk.permanent_share for mk in cfg.markets])
    protected = {iv.bank for iv in cfg.scenario.interventions if iv.type == "remove_bank"}
    for b in range(worlds):
        if not removal:
            s.t[b] = rng.choice(steps)
        heat = rng.choice([0.05, 0.3, 1.0])  # how rough this world is: calm, mild, rough
        rough = heat > 0.1
        # Markets: prices away from their start, realised volatility above sigma.
        s.price[b] *= np.exp(rng.normal(0.0, 0.3 * heat, m))
        # Displacement left by earlier trades, either way (marks at the fundamental where the
        # market price is above it), part of it permanent (the anchor prices revert to).
        s.fundamental[b] = s.price[b] * np.exp(rng.normal(0.0, 0.1 * heat, m))
        s.permanent[b] = np.where(permanent > 0, rng.normal(0.0, 0.05 * heat, m), 0.0)
        s.vol2[b] *= rng.uniform(0.5, 1.0 + 8.0 * heat, m)
        s.last_return[b] = rng.normal(0.0, 0.05, m)
        pick = rng.random((6, n)) < heat * np.array([[0.3, 0.25, 0.15, 0.12, 0.08, 0.1]]).T
        # Positions: scaled, emptied, or huge (a failed big holder floors the price); gains and
        # losses since the last booking.
        s.units[b] *= rng.uniform(1.0 - heat, 1.0 + 2.0 * heat, (n, 1))
        s.units[b, pick[0]] = 0.0
        s.units[b, pick[5]] *= rng.uniform(10.0, 60.0)
        s.basis[b] = s.units[b] * s.price[b] * rng.uniform(0.6, 1.4, (n, m))
        # Cash: thin, empty or overdrawn (the dynamics no longer overdraw a bank; the core must
        # still agree with the reference on such books: raise_cash covers the overdraft first).
        s.cash[b] *= rng.uniform(1.0 - heat, 1.0 + 0.5 * heat, n)
        s.cash[b, pick[1]] = 0.0
        s.cash[b, pick[2]] = -rng.uniform(0.0, 5.0, pick[2].sum())
        # Big loans (to borrowers whose cash is thin: calls they cannot pay).
        lent = np.argwhere(s.loans[b] > 0)
        big = lent[rng.random(len(lent)) < 0.3 * heat * rough]
        s.loans[b, big[:, 0], big[:, 1]] *= rng.uniform(2.0, 8.0, len(big))
        s.resync(np.array([b]))
        # Deposits close each sheet at a drawn equity: healthy, thin (contagion and fire sales
        # push it under) or negative (insolvent).
        target = s.equity0[b] * rng.uniform(0.5, 1.3, n)
        target[pick[3]] = s.equity0[b, pick[3]] * rng.uniform(0.0, 0.08, pick[3].sum())
        target[pick[4]] = -s.equity0[b, pick[4]] * rng.uniform(0.0, 0.5, pick[4].sum())
        s.deposits[b] = np.maximum(0.0, s.deposits[b] + s.equity()[b] - target)
        # Dead banks.
        for i in np.flatnonzero(rng.random(n) < 0.12 * heat * rough):
            if i not in protected:
                _kill(s, b, int(i), rng)
        valid = s.slots[b] >= 0
        belief = rng.random((n, k)) if rough else cfg.beliefs.prior * rng.uniform(0.5, 2.0, (n, k))
        s.belief[b] = np.where(valid, belief, 0.0)
    s.resync()
    equity = s.equity()
    s.equity_prev = np.where(s.alive, equity * rng.uniform(0.7, 1.3, equity.shape), 0.0)
    actions = np.stack([_actions(s, b, cfg, rng) for b in range(worlds)])
    scale = rng.choice([1.0, 1.0, 4.0, 30.0], size=(worlds, 1))  # 30: the circuit breaker
    noise = StepNoise(
        market=rng.standard_normal((worlds, m)) * scale,
        signal=rng.random((worlds, n, k), dtype=np.float32),
    )
    return s, actions, noise


def _actions(s: NetworkState, b: int, cfg: EnvConfig, rng: np.random.Generator) -> np.ndarray:
    """Per bank: a masked-valid action (BORROW favoured), an arbitrary one, or HOLD."""
    w: World = world_of(s, b)
    n, k, m, sizes = w.n, cfg.max_counterparties, len(cfg.markets), len(cfg.size_levels)
    a_count = 1 + 2 * k * sizes + 2 * m * sizes
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        u = rng.random()
        if u < 0.55:
            kind = rng.choice(["BORROW", "BORROW", "LEND", "INVEST", "DIVEST"])
            targets = range(k) if kind in ("LEND", "BORROW") else range(m)
            options = [
                encode_action(kind, t, z, cfg)
                for t in targets
                for z in range(sizes)
                if valid_action(w, i, encode_action(kind, t, z, cfg), cfg)
            ]
            if options:
                out[i] = rng.choice(options)
        elif u < 0.9:
            out[i] = rng.integers(0, a_count)
    return out


# ----------------------------------------------------------------------------- comparing
def _event_keys(type_: str, data: dict) -> tuple:
    """What must agree about an event besides its type and its numbers."""
    detail = {
        "transaction": "kind",
        "forced_sale": "reason",
        "default": "cause",
        "shock": "kind",
        "cascade": "round",
    }.get(type_)
    return (type_, data.get("bank", -1), data.get("round", 0), data.get(detail) if detail else "")


EVENT_NUMBERS = {
    "transaction": ("amount",),
    "forced_sale": ("sold",),
    "margin_call": ("requirement", "shortfall", "sold"),
    "profit_booking": ("pnl", "realised"),
    "default": (
        "equity",
        "recovery",
        "creditor_loss",
        "fire_sale_proceeds",
        "default_costs",
        "residual",
        "outside_flow",
    ),
    "cascade": ("prices",),
    "shock": ("loss", "outside_flow"),
    "capital_added": ("amount",),
}
"""The numbers each event carries that must agree (events of one key compared in order)."""


def _compare_events(problems: list[str], b: int, got: list, want: list) -> None:
    count_got, count_want = Counter(t for t, _ in got), Counter(t for t, _ in want)
    if count_got != count_want:
        problems.append(f"world {b} event counts: core {count_got} reference {count_want}")
        return
    keys_got = sorted(_event_keys(*e) for e in got)
    keys_want = sorted(_event_keys(*e) for e in want)
    if keys_got != keys_want:
        problems.append(f"world {b} events differ: core {keys_got} reference {keys_want}")
        return
    core_by_key: dict[tuple, list[dict]] = {}
    ref_by_key: dict[tuple, list[dict]] = {}
    for events, by_key in ((got, core_by_key), (want, ref_by_key)):
        for type_, data in events:  # in the order they happened
            by_key.setdefault(_event_keys(type_, data), []).append(data)
    for key, core_rows in core_by_key.items():
        for core_data, ref_data in zip(core_rows, ref_by_key[key], strict=True):
            for name in EVENT_NUMBERS.get(key[0], ()):
                _check(problems, f"world {b} event {key} {name}", core_data[name], ref_data[name])


def compare(cfg: EnvConfig, state: NetworkState, actions: np.ndarray, noise: StepNoise) -> dict:
    """Step both ways; return mismatches (empty when they agree) and the reference's regimes."""
    fast_state, fast = step(state, actions, Params.from_config(cfg), noise=noise)
    ref_state, ref = reference_step(state, actions, cfg, noise)
    problems: list[str] = []
    for f in dataclasses.fields(NetworkState):
        _check(problems, f"state.{f.name}", getattr(fast_state, f.name), getattr(ref_state, f.name))
    for name in ("rewards", "defaulted", "invalid", "executed", "cascade_rounds", "belief_cascade"):
        _check(problems, f"out.{name}", getattr(fast, name), getattr(ref, name))
    for b in range(len(actions)):
        _compare_events(
            problems, b, [(e.type, e.data) for e in fast.record.events(b)], ref.events[b]
        )
    regimes = Counter()
    for b, stats in enumerate(ref.stats):
        regimes.update(stats)
        regimes["worlds"] += 1
        regimes["multi_round_cascade"] += int(ref.cascade_rounds[b] >= 2)
        regimes["capped_cascade"] += int(ref.cascade_rounds[b] == cfg.contagion.max_rounds)
        regimes["belief_cascade"] += int(ref.belief_cascade[b])
        for type_, data in ref.events[b]:
            if type_ == "default":
                regimes[f"default:{data['cause']}"] += 1
            elif type_ in ("shock", "bank_removed", "capital_added"):
                regimes[type_] += 1
    return {"problems": problems, "regimes": regimes}


def _check(problems: list[str], name: str, got: np.ndarray, want: np.ndarray) -> None:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        problems.append(f"{name}: shape {got.shape} (core) != {want.shape} (reference)")
        return
    if got.dtype.kind in "biu" and want.dtype.kind in "biu":
        bad = got != want
    else:
        bad = ~np.isclose(got, want, rtol=RTOL, atol=ATOL)
    if bad.any():
        at = tuple(int(x) for x in np.argwhere(bad)[0])
        problems.append(
            f"{name}: {int(bad.sum())} entries differ, first at {at}: core {got[at]!r}, "
            f"reference {want[at]!r}"
        )


# ----------------------------------------------------------------------------- the runs
def _plan(cfg: EnvConfig) -> tuple[tuple[int, ...], int]:
    """(seeds, worlds per batch): fewer worlds for big networks (the reference is slow)."""
    if cfg.num_banks > 50:
        return (101, 102), 3
    return (11, 12, 13, 14, 15, 16), 6


@functools.cache
def run_config(name: str) -> dict:
    cfg = CONFIGS[name]
    seeds, worlds = _plan(cfg)
    problems, regimes = [], Counter()
    for seed in seeds:
        result = compare(cfg, *fuzz_batch(cfg, seed, worlds))
        problems += [f"seed {seed}: {p}" for p in result["problems"]]
        regimes.update(result["regimes"])
    return {"problems": problems, "regimes": regimes}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reference_matches_core(name):
    problems = run_config(name)["problems"]
    assert not problems, f"{name}: the core and the reference disagree:\n" + "\n".join(
        problems[:12]
    )


REGIMES = (
    "multi_round_cascade",
    "capped_cascade",
    "insolvent_by_marks",  # a liquidation lowered survivors' marks into the next round
    "residual_positive",  # a failed bank's estate kept something for its shareholders
    "forced_sale:loan_call",
    "forced_sale:interest",
    "forced_sale:resolution",
    "forced_sale:deposit_run",
    "interest_short",  # a borrower could not pay all its interest
    "margin_call",
    "profit_booking",
    "invalid",
    "circuit_breaker",
    "auction_two_sided",  # buyers and sellers in one market's auction
    "price_floor",  # an auction's path stopped at PRICE_FLOOR * F
    "anchor_moved",  # the permanent share of an auction's move
    "marked_at_fundamental",  # a market price above its fundamental at the end of a step
    "belief_cascade",
    "default:insolvent",
    "default:illiquid",
    "default:contagion",
    "default:removed",
    "shock",
    "bank_removed",
    "capital_added",
)


def test_fuzz_reaches_every_regime():
    """The differential test is only as good as what it exercises: each regime must occur."""
    total = Counter()
    for name in CONFIGS:
        total.update(run_config(name)["regimes"])
    missing = [r for r in REGIMES if total[r] == 0]
    assert not missing, f"the fuzz never reached {missing}; counts: {dict(total)}"


@pytest.mark.parametrize(
    ("name", "start"),
    [("small:default", 0), ("bank_run:default", 2), ("market_crash:default", 7)],
)
def test_reference_matches_core_along_rollouts(name, start):
    """States the core reaches itself (no hand perturbation), through the scenario's windows:
    each step of a rollout is checked from the core's own state."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(7)
    state = initial_state(cfg, rng, worlds=4)
    state.t[:] = start
    params = Params.from_config(cfg)
    _b, n, m = state.units.shape
    for t in range(12):
        actions = np.stack([_actions(state, b, cfg, rng) for b in range(4)])
        noise = StepNoise(
            market=rng.standard_normal((4, m)) * 2.0,
            signal=rng.random((4, n, cfg.max_counterparties), dtype=np.float32),
        )
        problems = compare(cfg, state, actions, noise)["problems"]
        assert not problems, f"{name} step {start + t + 1}:\n" + "\n".join(problems[:12])
        state, _ = step(state, actions, params, noise=noise, inplace=True)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1))
def test_reference_matches_core_on_drawn_seeds(seed):
    for name in ("small:default", "market_crash:default"):
        cfg = CONFIGS[name]
        problems = compare(cfg, *fuzz_batch(cfg, seed, 3))["problems"]
        assert not problems, f"{name} seed {seed}:\n" + "\n".join(problems[:12])


# ----------------------------------------------------------------------------- known bug
def _removal_case(t: list[int], kill_target: bool):
    """small.yaml with ``remove_bank`` of bank 0 at step 3; bank 5 insolvent in every world,
    submitting INVEST (market 0, smallest size)."""
    small = EnvConfig.from_yaml(_yaml("small"))
    cfg = dataclasses.replace(
        small,
        scenario=ScenarioConfig(
            name="removal", interventions=(Intervention(type="remove_bank", step=3, bank=0),)
        ),
    )
    rng = np.random.default_rng(5)
    s = initial_state(cfg, rng, worlds=len(t))
    s.t[:] = t
    s.external[:, 5] -= 2.0 * s.equity0[:, 5]  # equity about -equity0: insolvent
    if kill_target:
        for b in range(len(t)):
            _kill(s, b, 0, rng)
        s.resync()
    actions = np.zeros((len(t), cfg.num_banks), dtype=np.int64)
    actions[:, 5] = encode_action("INVEST", 0, 0, cfg)
    noise = StepNoise(
        market=rng.standard_normal((len(t), 2)),
        signal=rng.random((len(t), cfg.num_banks, cfg.max_counterparties), dtype=np.float32),
    )
    return cfg, s, actions, noise


@pytest.mark.parametrize(
    ("t", "kill_target"),
    [([2, 5], False), ([2], True)],
    ids=["other-world-at-another-step", "target-already-dead"],
)
def test_removal_does_not_leak_into_other_worlds(t, kill_target):
    cfg, s, actions, noise = _removal_case(t, kill_target)
    problems = compare(cfg, s, actions, noise)["problems"]
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- floor auctions
def _big_sale_case(big: float, buyer_market: int):
    """small.yaml, one world: bank 0 holds ``big`` times the depth of FIN_SERVICES (market 1)
    and DIVESTs 25% of it, so ``lambda * q = -big / 4 * impact * price0``: beyond the floor once
    ``big`` > 20; banks 1 and 2 INVEST in ``buyer_market`` in the same step."""
    cfg = CONFIGS["small:default"]
    rng = np.random.default_rng(0)
    s = initial_state(cfg, rng, worlds=1)
    s.units[0, 0, 1] = big * s.depth[0, 1] / s.price0[0, 1]
    s.basis[0, 0, 1] = s.units[0, 0, 1] * s.price[0, 1]
    actions = np.zeros((1, cfg.num_banks), dtype=np.int64)
    actions[0, 0] = encode_action("DIVEST", 1, 2, cfg)
    actions[0, 1] = encode_action("INVEST", buyer_market, 0, cfg)
    actions[0, 2] = encode_action("INVEST", buyer_market, 2, cfg)
    noise = StepNoise(
        market=np.zeros((1, 2)),
        signal=rng.random((1, cfg.num_banks, cfg.max_counterparties), dtype=np.float32),
    )
    return cfg, s, actions, noise


@pytest.mark.parametrize("big", [5.0, 50.0, 400.0])
def test_reference_matches_core_when_buyers_meet_a_sale_through_the_floor(big):
    """Buyers and one huge seller in the same market: the fill solves fill = VWAP(buy / fill -
    sell) on a path that stops at the floor (the core iterates there)."""
    result = compare(*_big_sale_case(big, buyer_market=1))
    assert not result["problems"], "\n".join(result["problems"][:12])
    if big > 20:
        assert result["regimes"]["price_floor"] and result["regimes"]["auction_two_sided"]


def test_a_huge_sale_in_one_market_while_another_market_has_buyers():
    cfg, s, actions, noise = _big_sale_case(50.0, buyer_market=0)
    with np.errstate(invalid="ignore"):
        problems = compare(cfg, s, actions, noise)["problems"]
    assert not problems, "\n".join(problems[:12])
