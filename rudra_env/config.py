"""Validated, frozen configuration of the RUDRA environment.

Every section is a frozen dataclass with a docstring per field (units included). Configs are
built from plain mappings (YAML, keyword overrides, CLI ``--set a.b=c``); an unknown key is an
error that suggests the closest allowed name, and a bad value names the field, the value and what
is allowed — before anything runs.

Units: money is in abstract currency units (a bank's capital is of order 10); rates are per step.

Example::

    cfg = EnvConfig.from_yaml("configs/env/small.yaml")
    cfg = cfg.with_overrides({"num_banks": 50, "topology.kind": "ring"})
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import yaml

from rudra_env.errors import ConfigError

__all__ = [
    "Param",
    "TopologyConfig",
    "BankConfig",
    "MarketConfig",
    "ContagionConfig",
    "MarginConfig",
    "BeliefConfig",
    "RewardConfig",
    "Shock",
    "Intervention",
    "ScenarioConfig",
    "EnvConfig",
    "load_variants",
    "YAMLConfigError",
    # helpers for configs built the same way (training's TrainConfig, tournaments)
    "build",
    "check",
    "check_number",
    "fail",
    "missing_file",
    "to_plain",
    "unknown_key",
]

TOPOLOGIES = ("erdos_renyi", "barabasi_albert", "core_periphery", "ring", "complete", "from_file")
DISTRIBUTIONS = ("constant", "uniform", "normal", "lognormal")
SHOCK_TYPES = ("market_crash", "bank_capital_hit", "deposit_run", "funding_freeze")
INTERVENTION_TYPES = ("capital_injection", "remove_bank")


class YAMLConfigError(ConfigError, yaml.YAMLError):
    """A config file that ``yaml.safe_load`` refuses (a syntax error, a tag it will not build);
    the message names the file, line and column. Also a ``yaml.YAMLError``, so code that catches
    the YAML library's error still does."""


def fail(path: str, value: Any, allowed: str) -> typing.NoReturn:
    """Raise ``ConfigError`` naming the field ``path``, the ``value`` and what is ``allowed``."""
    raise ConfigError(f"{path} = {value!r} is not allowed: expected {allowed}")


def check(ok: bool, path: str, value: Any, allowed: str) -> None:
    """``fail(path, value, allowed)`` unless ``ok``."""
    if not ok:
        fail(path, value, allowed)


def check_number(
    path: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    integer: bool = False,
) -> None:
    """Check that ``value`` is a finite number in the given range."""
    kind = "an integer" if integer else "a number"
    if lo is not None and hi is not None:
        rng = f"{kind} in {'(' if lo_open else '['}{lo}, {hi}]"
    elif lo is not None:
        rng = f"{kind} {'>' if lo_open else '>='} {lo}"
    else:
        rng = kind
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    if integer:
        ok_type = isinstance(value, int) and not isinstance(value, bool)
    check(ok_type and math.isfinite(value), path, value, rng)
    if lo is not None:
        check(value > lo if lo_open else value >= lo, path, value, rng)
    if hi is not None:
        check(value <= hi, path, value, rng)


# --------------------------------------------------------------------------- bank parameters
@dataclass(frozen=True)
class Param:
    """A per-bank parameter: a constant, an explicit list (one value per bank), or a distribution.

    YAML forms: ``10.0``; ``[10, 12, 8]`` (length = num_banks); ``{dist: uniform, low: 5, high:
    15}``; ``{dist: normal, mean: 10, std: 2}``; ``{dist: lognormal, mean: 2.3, std: 0.4}`` (mean
    and std of the log). Draws come from the episode's seeded generator and are clipped to the
    parameter's allowed range.
    """

    dist: str = "constant"
    """One of constant, uniform, normal, lognormal, or ``list``."""
    value: float = 0.0
    """The constant (dist = constant)."""
    low: float = 0.0
    """Lower bound (uniform)."""
    high: float = 1.0
    """Upper bound (uniform)."""
    mean: float = 0.0
    """Mean (normal), or mean of the log (lognormal)."""
    std: float = 0.0
    """Standard deviation (normal), or of the log (lognormal); >= 0."""
    values: tuple[float, ...] = ()
    """Explicit per-bank values (dist = list)."""

    @classmethod
    def parse(cls, raw: Any, path: str) -> Param:
        if isinstance(raw, Param):
            return raw
        if isinstance(raw, bool):
            fail(path, raw, "a number, a list of numbers, or {dist: ...}")
        if isinstance(raw, int | float):
            check_number(path, raw)
            return cls(dist="constant", value=float(raw))
        if isinstance(raw, Sequence) and not isinstance(raw, str):
            for k, v in enumerate(raw):
                check_number(f"{path}[{k}]", v)
            check(len(raw) > 0, path, raw, "a non-empty list")
            return cls(dist="list", values=tuple(float(v) for v in raw))
        if isinstance(raw, Mapping):
            data = dict(raw)
            check("dist" in data, path, raw, "a mapping with a 'dist' key")
            dist = data.pop("dist")
            check(dist in DISTRIBUTIONS, f"{path}.dist", dist, f"one of {DISTRIBUTIONS}")
            need = {
                "constant": ("value",),
                "uniform": ("low", "high"),
                "normal": ("mean", "std"),
                "lognormal": ("mean", "std"),
            }[dist]
            for key in data:
                if key not in need:
                    unknown_key(f"{path}.{key}", key, need)
            for key in need:
                check(key in data, f"{path}.{key}", None, f"a number (required for {dist})")
                check_number(f"{path}.{key}", data[key])
            if dist == "uniform":
                check(
                    data["low"] <= data["high"],
                    f"{path}.high",
                    data["high"],
                    f"a number >= low ({data['low']})",
                )
            if dist in ("normal", "lognormal"):
                check_number(f"{path}.std", data["std"], lo=0.0)
            return cls(dist=dist, **{k: float(v) for k, v in data.items()})
        fail(path, raw, "a number, a list of numbers, or {dist: ...}")

    def check_range(
        self,
        path: str,
        lo: float,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        n: int | None = None,
    ) -> None:
        """Validate the values this parameter can take against ``[lo, hi]``."""
        if self.dist == "constant":
            check_number(path, self.value, lo, hi, lo_open)
        elif self.dist == "list":
            if n is not None:
                check(
                    len(self.values) == n,
                    path,
                    list(self.values),
                    f"a list of exactly num_banks = {n} values",
                )
            for k, v in enumerate(self.values):
                check_number(f"{path}[{k}]", v, lo, hi, lo_open)
        elif self.dist == "uniform":
            check_number(f"{path}.low", self.low, lo, hi, lo_open)
            check_number(f"{path}.high", self.high, lo, hi, lo_open)

    def sample(self, n: int, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
        """Draw ``n`` values, shape (n,), clipped to ``[lo, hi]``."""
        if self.dist == "constant":
            out = np.full(n, self.value)
        elif self.dist == "list":
            out = np.asarray(self.values, dtype=np.float64)
        elif self.dist == "uniform":
            out = rng.uniform(self.low, self.high, size=n)
        elif self.dist == "normal":
            out = rng.normal(self.mean, self.std, size=n)
        else:
            out = rng.lognormal(self.mean, self.std, size=n)
        return np.clip(out, lo, hi)

    def to_dict(self) -> Any:
        if self.dist == "constant":
            return self.value
        if self.dist == "list":
            return list(self.values)
        keys = {
            "uniform": ("low", "high"),
            "normal": ("mean", "std"),
            "lognormal": ("mean", "std"),
        }[self.dist]
        return {"dist": self.dist, **{k: getattr(self, k) for k in keys}}


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class TopologyConfig:
    """How the interbank network is drawn (fixed for an episode, redrawn on each reset)."""

    kind: str = "erdos_renyi"
    """One of erdos_renyi, barabasi_albert, core_periphery, ring, complete, from_file."""
    p: float = 0.2
    """Edge probability (erdos_renyi), in (0, 1]."""
    m: int = 2
    """Edges added per new node (barabasi_albert), 1 <= m < num_banks."""
    core_fraction: float = 0.2
    """Share of banks in the core (core_periphery), in (0, 1)."""
    core_p: float = 0.9
    """Edge probability inside the core (core_periphery)."""
    periphery_p: float = 0.3
    """Probability that a periphery bank links to each core bank (core_periphery)."""
    path: str | None = None
    """CSV or NPZ exposure matrix (from_file): entry [i, j] is what bank i lent bank j."""
    reciprocal: float = 0.5
    """Probability that a drawn link carries loans both ways (otherwise one random direction)."""

    def validate(self, path: str, n: int) -> None:
        check(self.kind in TOPOLOGIES, f"{path}.kind", self.kind, f"one of {TOPOLOGIES}")
        check_number(f"{path}.p", self.p, 0.0, 1.0, lo_open=True)
        check_number(f"{path}.m", self.m, 1, integer=True)
        if self.kind == "barabasi_albert":
            check(self.m < n, f"{path}.m", self.m, f"an integer in [1, num_banks - 1 = {n - 1}]")
        check_number(f"{path}.core_fraction", self.core_fraction, 0.0, 1.0, lo_open=True)
        check_number(f"{path}.core_p", self.core_p, 0.0, 1.0)
        check_number(f"{path}.periphery_p", self.periphery_p, 0.0, 1.0)
        check_number(f"{path}.reciprocal", self.reciprocal, 0.0, 1.0)
        if self.kind == "from_file":
            check(
                isinstance(self.path, str) and self.path.endswith((".csv", ".npz")),
                f"{path}.path",
                self.path,
                "a path to a .csv or .npz exposure matrix",
            )


@dataclass(frozen=True)
class BankConfig:
    """Balance-sheet parameters of each bank: constants, per-bank lists or distributions."""

    capital: Param = field(default_factory=lambda: Param(dist="uniform", low=8.0, high=12.0))
    """Initial equity (currency units), > 0."""
    target_leverage: Param = field(
        default_factory=lambda: Param(dist="uniform", low=8.0, high=14.0)
    )
    """Total assets / equity the bank starts at and is regulated towards, >= 1."""
    risk_factor: Param = field(default_factory=lambda: Param(dist="uniform", low=0.0, high=1.0))
    """Appetite for market risk in [0, 1]: scales the market share of assets (0.5x to 1.5x)."""
    cash_ratio: float = 0.10
    """Initial cash as a share of total assets."""
    interbank_ratio: float = 0.20
    """Initial interbank lending as a share of total assets (split over outgoing links)."""
    market_ratio: float = 0.10
    """Initial market holdings as a share of total assets (before the risk factor)."""

    def validate(self, path: str, n: int) -> None:
        self.capital.check_range(f"{path}.capital", 0.0, lo_open=True, n=n)
        self.target_leverage.check_range(f"{path}.target_leverage", 1.0, n=n)
        self.risk_factor.check_range(f"{path}.risk_factor", 0.0, 1.0, n=n)
        check_number(f"{path}.cash_ratio", self.cash_ratio, 0.0, 1.0)
        check_number(f"{path}.interbank_ratio", self.interbank_ratio, 0.0, 1.0)
        check_number(f"{path}.market_ratio", self.market_ratio, 0.0, 1.0)
        total = self.cash_ratio + self.interbank_ratio + 1.5 * self.market_ratio
        check(
            total <= 1.0,
            f"{path}.market_ratio",
            self.market_ratio,
            "cash_ratio + interbank_ratio + 1.5 * market_ratio <= 1 "
            f"(now {total:.3f}); the rest is external assets",
        )


@dataclass(frozen=True)
class MarketConfig:
    """One market index that banks can invest in."""

    name: str = "BANK_INDEX"
    """Name used in observations, events and TensorBoard tags."""
    price0: float = 100.0
    """Initial price (currency per unit), > 0."""
    impact: float = 0.2
    """kappa: relative price move of net buying (or selling) worth ``depth`` at the initial
    price; impact is linear in units: ``lambda = kappa * price0^2 / depth`` per unit. With
    ``impact = 1`` and ``depth = 1000``, $1 of net buying moves the price by 0.1% (the seed's
    rule)."""
    depth: float | None = None
    """Market depth in currency units; None = the value of all banks' initial holdings of this
    market in the world (so impact per unit of flow scales with the system's size)."""
    half_life: float = 5.0
    """Steps after which half of the transient price displacement left by trading is gone."""
    permanent_share: float = 0.0
    """Share of each trade's price impact that stays, in [0, 1]: it moves the level the market
    price reverts to (positions are still marked at most at the fundamental price)."""
    max_move: float = 0.2
    """Circuit breaker: the largest |log move| of one step's drift and volatility."""
    volatility: float = 0.02
    """Per-step volatility sigma of the log price, >= 0."""
    drift: float = 0.0
    """Per-step drift mu of the log price."""

    def validate(self, path: str, n: int) -> None:
        check(
            isinstance(self.name, str) and self.name.isidentifier(),
            f"{path}.name",
            self.name,
            "an identifier-like name such as BANK_INDEX",
        )
        check_number(f"{path}.price0", self.price0, 0.0, lo_open=True)
        check_number(f"{path}.impact", self.impact, 0.0)
        if self.depth is not None:
            check_number(f"{path}.depth", self.depth, 0.0, lo_open=True)
        check_number(f"{path}.half_life", self.half_life, 0.0, lo_open=True)
        check_number(f"{path}.permanent_share", self.permanent_share, 0.0, 1.0)
        check_number(f"{path}.max_move", self.max_move, 0.0, lo_open=True)
        check_number(f"{path}.volatility", self.volatility, 0.0, 1.0)
        check_number(f"{path}.drift", self.drift, -1.0, 1.0)


@dataclass(frozen=True)
class ContagionConfig:
    """Default resolution and cascade parameters (step 7 of ``rudra_env.core.dynamics``)."""

    alpha: float = 1.0
    """Rogers–Veraart share of external assets realised by a defaulted bank, in [0, 1]."""
    beta: float = 1.0
    """Rogers–Veraart share of interbank assets realised by a defaulted bank, in [0, 1]."""
    max_rounds: int = 100
    """Cap on cascade rounds per step (clear -> fire sale -> re-mark)."""

    def validate(self, path: str, n: int) -> None:
        check_number(f"{path}.alpha", self.alpha, 0.0, 1.0)
        check_number(f"{path}.beta", self.beta, 0.0, 1.0)
        check_number(f"{path}.max_rounds", self.max_rounds, 1, integer=True)


@dataclass(frozen=True)
class MarginConfig:
    """Margin calls on market positions (step 6 of ``rudra_env.core.dynamics``)."""

    enabled: bool = True
    """Apply margin calls each step."""
    z: float = 2.33
    """VaR quantile multiplier (2.33 = 99% one-sided normal)."""
    vol_sensitivity: float = 1.0
    """beta in VaR * (1 + beta * vol_t), vol_t = max(0, realised vol / sigma - 1)."""
    ewma: float = 0.94
    """Decay of the EWMA estimate of realised volatility, in [0, 1)."""

    def validate(self, path: str, n: int) -> None:
        check(isinstance(self.enabled, bool), f"{path}.enabled", self.enabled, "true or false")
        check_number(f"{path}.z", self.z, 0.0)
        check_number(f"{path}.vol_sensitivity", self.vol_sensitivity, 0.0)
        check_number(f"{path}.ewma", self.ewma, 0.0, 0.999)


@dataclass(frozen=True)
class BeliefConfig:
    """Bayesian beliefs about counterparties (step 8 of ``rudra_env.core.dynamics``)."""

    prior: float = 0.05
    """Prior probability that a counterparty is distressed (will default within the horizon)."""
    signal_reliability: float = 0.8
    """P(signal says 'distressed' | distressed) = P('healthy' | healthy), in [0.5, 1]."""
    distress_threshold: float = 0.04
    """Equity / assets below which a counterparty is truly distressed."""
    leak: float = 0.05
    """Per-step pull of each belief back towards the prior (keeps beliefs responsive)."""
    contagion_weight: float = 0.3
    """On a default, beliefs about the defaulter's neighbours move this far towards 1."""
    cascade_shift: float = 0.05
    """A bank's mean belief moving by more than this in one step counts as a shift."""
    cascade_fraction: float = 0.25
    """A belief cascade is a step where at least this share of live banks shift together."""

    def validate(self, path: str, n: int) -> None:
        check_number(f"{path}.prior", self.prior, 0.0, 1.0, lo_open=True)
        check(self.prior < 1.0, f"{path}.prior", self.prior, "a number in (0, 1)")
        check_number(f"{path}.signal_reliability", self.signal_reliability, 0.5, 1.0)
        check_number(f"{path}.distress_threshold", self.distress_threshold, 0.0, 1.0)
        check_number(f"{path}.leak", self.leak, 0.0, 1.0)
        check_number(f"{path}.contagion_weight", self.contagion_weight, 0.0, 1.0)
        check_number(f"{path}.cascade_shift", self.cascade_shift, 0.0, 1.0)
        check_number(f"{path}.cascade_fraction", self.cascade_fraction, 0.0, 1.0, lo_open=True)


@dataclass(frozen=True)
class RewardConfig:
    """Coefficients of the utility U = Revenue - rho*Risk - lam*Liquidity - gamma*Regulatory."""

    rho: float = 0.5
    """Weight of Risk (belief-weighted counterparty exposure plus market VaR, per equity)."""
    lam: float = 1.0
    """Weight of Liquidity (shortfall of cash / liabilities below liquidity_floor)."""
    gamma: float = 0.5
    """Weight of Regulatory (leverage above target, capital ratio below min_capital_ratio)."""
    default_penalty: float = 10.0
    """Reward of a bank at the step it defaults, on top of the cost of the steps it leaves
    (``remaining steps * the largest cost of one step``, so defaulting never beats surviving)."""
    term_cap: float = 1.0
    """Largest value of Risk and of each of the two parts of Regulatory in one step, > 0
    (bounds the cost of one step: ``rho * cap + lam * liquidity_floor + 2 * gamma * cap``)."""
    liquidity_floor: float = 0.05
    """Minimum cash / total liabilities before the Liquidity term bites."""
    min_capital_ratio: float = 0.04
    """Minimum equity / total assets before the capital-ratio part of Regulatory bites."""

    def validate(self, path: str, n: int) -> None:
        for name in ("rho", "lam", "gamma", "default_penalty"):
            check_number(f"{path}.{name}", getattr(self, name), 0.0)
        check_number(f"{path}.term_cap", self.term_cap, 0.0, lo_open=True)
        check_number(f"{path}.liquidity_floor", self.liquidity_floor, 0.0, 1.0)
        check_number(f"{path}.min_capital_ratio", self.min_capital_ratio, 0.0, 1.0)


@dataclass(frozen=True)
class Shock:
    """A scheduled shock, applied at step_start of steps [start, start + duration)."""

    type: str = "market_crash"
    """market_crash (price falls), bank_capital_hit (external assets written down),
    deposit_run (deposits withdrawn: paid from cash, then forced sales), funding_freeze (no new
    interbank lending)."""
    magnitude: float = 0.2
    """Total fraction lost over the duration (price, external assets or deposits), in [0, 1]."""
    start: int = 10
    """First step (1-based: the first call of step() is step 1)."""
    duration: int = 1
    """Number of steps; the magnitude is spread evenly (compounded) over them."""
    targets: tuple[Any, ...] = ()
    """Bank indices (capital hit, deposit run) or market names (crash); empty = all."""

    def validate(self, path: str, n: int) -> None:
        check(self.type in SHOCK_TYPES, f"{path}.type", self.type, f"one of {SHOCK_TYPES}")
        check_number(f"{path}.magnitude", self.magnitude, 0.0, 1.0)
        check_number(f"{path}.start", self.start, 1, integer=True)
        check_number(f"{path}.duration", self.duration, 1, integer=True)
        if self.type in ("bank_capital_hit", "deposit_run"):
            for k, b in enumerate(self.targets):
                check(
                    isinstance(b, int) and 0 <= b < n,
                    f"{path}.targets[{k}]",
                    b,
                    f"a bank index in [0, {n - 1}]",
                )


@dataclass(frozen=True)
class Intervention:
    """A scheduled intervention, applied at step_start of its step."""

    type: str = "capital_injection"
    """capital_injection (central bank adds cash = equity) or remove_bank (resolution)."""
    step: int = 1
    """Step at which it applies (1-based)."""
    bank: int = 0
    """Target bank index."""
    amount: float = 0.0
    """Cash injected (capital_injection), >= 0."""

    def validate(self, path: str, n: int) -> None:
        check(
            self.type in INTERVENTION_TYPES,
            f"{path}.type",
            self.type,
            f"one of {INTERVENTION_TYPES}",
        )
        check_number(f"{path}.step", self.step, 1, integer=True)
        check_number(f"{path}.bank", self.bank, 0, n - 1, integer=True)
        check_number(f"{path}.amount", self.amount, 0.0)


@dataclass(frozen=True)
class ScenarioConfig:
    """A named list of shocks and interventions."""

    name: str = "baseline"
    """Label shown in events, renders and TensorBoard."""
    shocks: tuple[Shock, ...] = ()
    """Scheduled shocks."""
    interventions: tuple[Intervention, ...] = ()
    """Scheduled interventions."""

    def validate(self, path: str, n: int) -> None:
        check(isinstance(self.name, str), f"{path}.name", self.name, "a string")
        for k, s in enumerate(self.shocks):
            s.validate(f"{path}.shocks[{k}]", n)
        for k, iv in enumerate(self.interventions):
            iv.validate(f"{path}.interventions[{k}]", n)


def _default_markets() -> tuple[MarketConfig, ...]:
    return (
        MarketConfig("BANK_INDEX", price0=100.0, volatility=0.02),
        MarketConfig("FIN_SERVICES", price0=50.0, volatility=0.015),
    )


@dataclass(frozen=True)
class EnvConfig:
    """The whole environment: network, banks, markets, dynamics, rewards and scenario."""

    num_banks: int = 30
    """Number of banks N (agents), >= 2."""
    max_steps: int = 100
    """Horizon: the episode is truncated after this many steps."""
    max_counterparties: int = 8
    """K: counterparty slots per bank (largest initial exposures first; padded and masked)."""
    size_levels: tuple[float, ...] = (0.05, 0.1, 0.25)
    """S action sizes: fractions of cash (LEND, INVEST), loan (BORROW) or units (DIVEST)."""
    profit_booking_interval: int = 5
    """Every this many steps, market gains since the last booking are realised to cash."""
    interest_rate: float = 0.001
    """Interest per step on interbank loans, paid borrower -> lender; 0 allowed."""
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    """The network generator."""
    banks: BankConfig = field(default_factory=BankConfig)
    """Bank balance-sheet parameters."""
    markets: tuple[MarketConfig, ...] = field(default_factory=_default_markets)
    """Market indices (default BANK_INDEX and FIN_SERVICES)."""
    contagion: ContagionConfig = field(default_factory=ContagionConfig)
    """Clearing costs and fire sales."""
    margin: MarginConfig = field(default_factory=MarginConfig)
    """Margin calls."""
    beliefs: BeliefConfig = field(default_factory=BeliefConfig)
    """Bayesian beliefs about counterparties."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Utility coefficients."""
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    """Scheduled shocks and interventions."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        n = self.num_banks
        check_number("num_banks", n, 2, 100_000, integer=True)
        check_number("max_steps", self.max_steps, 1, integer=True)
        check_number("max_counterparties", self.max_counterparties, 1, 1024, integer=True)
        check(
            len(self.size_levels) >= 1,
            "size_levels",
            list(self.size_levels),
            "a non-empty list of fractions in (0, 1]",
        )
        for k, s in enumerate(self.size_levels):
            check_number(f"size_levels[{k}]", s, 0.0, 1.0, lo_open=True)
        check_number("profit_booking_interval", self.profit_booking_interval, 1, integer=True)
        check_number("interest_rate", self.interest_rate, 0.0, 1.0)
        check(len(self.markets) >= 1, "markets", self.markets, "at least one market")
        names = [m.name for m in self.markets]
        check(len(set(names)) == len(names), "markets", names, "distinct market names")
        for k, m in enumerate(self.markets):
            m.validate(f"markets[{k}]", n)
        self.topology.validate("topology", n)
        self.banks.validate("banks", n)
        self.contagion.validate("contagion", n)
        self.margin.validate("margin", n)
        self.beliefs.validate("beliefs", n)
        self.reward.validate("reward", n)
        self.scenario.validate("scenario", n)
        for k, s in enumerate(self.scenario.shocks):
            if s.type == "market_crash":
                for j, name in enumerate(s.targets):
                    check(
                        name in names,
                        f"scenario.shocks[{k}].targets[{j}]",
                        name,
                        f"a market name, one of {names}",
                    )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnvConfig:
        """Build from a plain mapping (as loaded from YAML); raises ConfigError."""
        return build(cls, dict(data or {}), "")

    @classmethod
    def from_yaml(cls, path: str | Path, variant: str | None = None) -> EnvConfig:
        """Load a YAML file (``yaml.safe_load``); ``variant`` picks one of its ``variants``."""
        variants = load_variants(path)
        if variant is None:
            return next(iter(variants.values()))
        if variant not in variants:
            fail("variant", variant, f"one of {list(variants)}")
        return variants[variant]

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that ``from_dict`` turns back into an equal config."""
        return to_plain(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> EnvConfig:
        """A copy with overrides applied; keys may be dotted (``topology.kind``)."""
        data = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(data, key, value)
        return EnvConfig.from_dict(data)


# --------------------------------------------------------------------------- generic builder
def unknown_key(path: str, key: str, allowed: Sequence[str]) -> typing.NoReturn:
    """Raise ``ConfigError`` for an unknown key, suggesting the closest allowed one."""
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"unknown key '{path}'{hint} allowed keys: {', '.join(allowed)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(cls: type, data: Any, prefix: str) -> Any:
    """The frozen dataclass ``cls`` from a mapping, field by field (nested dataclasses, tuples,
    optionals, ``Param``), every key and value checked; ``prefix`` is the dotted path of the
    section in error messages (``""`` at the top, ``"topology."`` below)."""
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, Mapping):
        fail(where, data, f"a mapping of {cls.__name__} fields")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in names:
            unknown_key(f"{prefix}{key}", key, names)
        kwargs[key] = _convert(hints[key], raw, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"{where}: {exc}") from exc


def _convert(tp: Any, raw: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Param:
        return Param.parse(raw, path)
    if dataclasses.is_dataclass(tp):
        return build(tp, raw, f"{path}.")
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(tp)
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            fail(path, raw, "a list")
        return tuple(_convert(inner, v, f"{path}[{k}]") for k, v in enumerate(raw))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if raw is None:
            return None
        return _convert(args[0], raw, path)
    if tp is float:
        check_number(path, raw)
        return float(raw)
    if tp is int:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        check_number(path, raw, integer=True)
        return raw
    if tp is bool:
        check(isinstance(raw, bool), path, raw, "true or false")
        return raw
    if tp is str:
        check(isinstance(raw, str), path, raw, "a string")
        return raw
    return raw  # Any


def to_plain(obj: Any) -> Any:
    """A config dataclass as plain mappings, lists and scalars (what ``build`` reads back)."""
    if isinstance(obj, Param):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_plain(v) for v in obj]
    return obj


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for k, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if part not in node:
            unknown_key(".".join(parts[: k + 1]), part, list(node))
        if not isinstance(node[part], dict | list):
            fail(".".join(parts[: k + 1]), node[part], "a section (mapping) to set a key in")
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
        return
    if last not in node:
        unknown_key(key, last, list(node))
    if isinstance(node[last], dict) and isinstance(value, Mapping):
        merged = dict(node[last])
        merged.update(value)
        node[last] = merged
    else:
        node[last] = value


def load_variants(path: str | Path) -> dict[str, EnvConfig]:
    """Load an env YAML into ``{variant name: EnvConfig}``.

    A file is one config, or a base config plus ``variants: {name: {overrides}}`` (for example
    ``ring_vs_complete.yaml``); the single-config case returns ``{"default": cfg}``. Loaded with
    ``yaml.safe_load``. A relative ``path`` is read from the current working directory.
    ``ConfigError`` for a missing file (naming the directory searched), a YAML syntax error
    (naming the file and line) or a bad value.
    """
    p = Path(path)
    if not p.is_file():
        missing_file(p)
    try:
        with p.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).replace("\n", " ")
        what = (
            "YAML error"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        raise YAMLConfigError(f"config file {str(p)!r}{where}: {what}: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}): expected a YAML file"
        ) from exc
    if not isinstance(data, Mapping):
        fail(str(path), type(data).__name__, "a YAML mapping at the top level")
    data = dict(data)
    variants = data.pop("variants", None)
    base = EnvConfig.from_dict(data)
    if not variants:
        return {"default": base}
    if not isinstance(variants, Mapping):
        fail("variants", variants, "a mapping {name: {dotted.key: value}}")
    return {str(name): base.with_overrides(dict(over or {})) for name, over in variants.items()}


def missing_file(p: Path) -> typing.NoReturn:
    """``ConfigError`` for a config path that is not a file: the directory searched, and the
    closest YAML name in it when there is one."""
    full = p if p.is_absolute() else Path.cwd() / p
    what = "is a directory, not a YAML file" if full.is_dir() else "does not exist"
    relative = (
        ""
        if p.is_absolute()
        else f" (a relative path is read from the current directory, {Path.cwd()})"
    )
    hint = ""
    if full.parent.is_dir():
        names = sorted(q.name for q in full.parent.glob("*.y*ml"))
        close = difflib.get_close_matches(p.name, names, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean {str(p.with_name(close[0]))!r}?"
    raise ConfigError(f"config path = {str(p)!r} {what}: searched {full.parent}{relative}{hint}")
