"""The frozen, fully resolved parameters of the dynamics, derived once from an ``EnvConfig``.

Every mechanism reads its numbers from ``Params`` by name (``p.interest_rate``,
``p.clearing_alpha``...); none reads the config. Per-market numbers are (M,) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from rudra_env.actions import KINDS, ActionLayout
from rudra_env.config import EnvConfig, Intervention, Shock

__all__ = ["ActionTable", "Params"]


class ActionTable(NamedTuple):
    """What each flat action does, as (A,) lookup tables (the step gathers them per bank)."""

    kind: np.ndarray
    """int8 kind code (index into ``rudra_env.actions.KINDS``; int8 sorts fastest)."""
    on_slot: np.ndarray
    """bool: the target is a counterparty slot (LEND, BORROW)."""
    slot: np.ndarray
    """int64 counterparty slot of slot kinds (0 for the other kinds)."""
    market: np.ndarray
    """int64 market of market kinds (0 for the other kinds)."""
    fraction: np.ndarray
    """float64 size level as a fraction (0 for HOLD)."""


@dataclass(frozen=True)
class Params:
    """Frozen parameters of the dynamics and the utility (see ``EnvConfig`` for each meaning)."""

    layout: ActionLayout
    """The flat action space (K slots, M markets, S size levels)."""
    num_banks: int
    """N."""
    max_steps: int
    """Horizon (steps) — the observations' time fraction."""
    size_levels: np.ndarray
    """(S,) fractions."""
    market_names: tuple[str, ...]
    """(M,) market names."""
    impact: np.ndarray
    """(M,) kappa: relative price move of net buying worth the market's depth."""
    impact_decay: np.ndarray
    """(M,) share of the transient price displacement left after one step, 0.5^(1/half_life)."""
    permanent_share: np.ndarray
    """(M,) share of price impact that stays (moves the anchor prices revert to)."""
    max_move: np.ndarray
    """(M,) circuit breaker on one step's |log return|."""
    sigma: np.ndarray
    """(M,) per-step volatility."""
    drift: np.ndarray
    """(M,) per-step drift."""
    interest_rate: float
    """Interest per step on interbank loans, paid borrower -> lender."""
    booking_interval: int
    """Profit booking every this many steps."""
    margin_enabled: bool
    """Margin calls apply."""
    margin_z: float
    """VaR quantile multiplier of margins and of the utility's VaR."""
    margin_vol_sensitivity: float
    """beta of the margin multiplier ``1 + beta * vol_t``."""
    vol_ewma: float
    """Decay of the EWMA of squared log returns."""
    clearing_alpha: float
    """Rogers–Veraart share of a failed bank's non-interbank assets realised."""
    clearing_beta: float
    """Rogers–Veraart share of a failed bank's interbank collections realised."""
    max_cascade_rounds: int
    """Cap on cascade rounds per step."""
    belief_prior: float
    """Prior P(counterparty distressed); beliefs leak towards it."""
    signal_reliability: float
    """P(signal right)."""
    distress_threshold: float
    """Equity / assets below which a bank is truly distressed."""
    belief_leak: float
    """Per-step pull of beliefs towards the prior."""
    contagion_weight: float
    """How far beliefs about a fallen bank's neighbours move towards 1."""
    cascade_shift: float
    """Mean-belief move that counts as a shift."""
    cascade_fraction: float
    """Share of live banks shifting together that makes a belief cascade."""
    rho: float
    """Weight of Risk in the utility."""
    lam: float
    """Weight of Liquidity in the utility."""
    gamma: float
    """Weight of Regulatory in the utility."""
    default_penalty: float
    """One-off part of the reward of a bank at the step it defaults."""
    term_cap: float
    """Cap on Risk and on each part of Regulatory in one step."""
    liquidity_floor: float
    """Cash / liabilities floor of the Liquidity term."""
    min_capital_ratio: float
    """Equity / assets floor of the Regulatory term."""
    scenario_name: str
    """Label of the scenario (events)."""
    shocks: tuple[Shock, ...]
    """Scheduled shocks."""
    interventions: tuple[Intervention, ...]
    """Scheduled interventions."""

    @classmethod
    def from_config(cls, config: EnvConfig) -> Params:
        mk = config.markets
        cc, mc, bc, rc = config.contagion, config.margin, config.beliefs, config.reward
        return cls(
            layout=ActionLayout(config.max_counterparties, len(mk), len(config.size_levels)),
            num_banks=config.num_banks,
            max_steps=config.max_steps,
            size_levels=np.asarray(config.size_levels, dtype=np.float64),
            market_names=tuple(m.name for m in mk),
            impact=np.array([m.impact for m in mk]),
            impact_decay=np.array([0.5 ** (1.0 / m.half_life) for m in mk]),
            permanent_share=np.array([m.permanent_share for m in mk]),
            max_move=np.array([m.max_move for m in mk]),
            sigma=np.array([m.volatility for m in mk]),
            drift=np.array([m.drift for m in mk]),
            interest_rate=config.interest_rate,
            booking_interval=config.profit_booking_interval,
            margin_enabled=mc.enabled,
            margin_z=mc.z,
            margin_vol_sensitivity=mc.vol_sensitivity,
            vol_ewma=mc.ewma,
            clearing_alpha=cc.alpha,
            clearing_beta=cc.beta,
            max_cascade_rounds=cc.max_rounds,
            belief_prior=bc.prior,
            signal_reliability=bc.signal_reliability,
            distress_threshold=bc.distress_threshold,
            belief_leak=bc.leak,
            contagion_weight=bc.contagion_weight,
            cascade_shift=bc.cascade_shift,
            cascade_fraction=bc.cascade_fraction,
            rho=rc.rho,
            lam=rc.lam,
            gamma=rc.gamma,
            default_penalty=rc.default_penalty,
            term_cap=rc.term_cap,
            liquidity_floor=rc.liquidity_floor,
            min_capital_ratio=rc.min_capital_ratio,
            scenario_name=config.scenario.name,
            shocks=config.scenario.shocks,
            interventions=config.scenario.interventions,
        )

    @cached_property
    def action_table(self) -> ActionTable:
        """Lookup tables of every flat action (built once per ``Params``)."""
        kind, target, size = self.layout.tables
        aims = np.array([k.target for k in KINDS])[kind]
        return ActionTable(
            kind=kind.astype(np.int8),
            on_slot=aims == "slot",
            slot=np.where(aims == "slot", target, 0),
            market=np.where(aims == "market", target, 0),
            fraction=np.where(aims == "none", 0.0, self.size_levels[size]),
        )

    @property
    def step_cost_cap(self) -> float:
        """The largest cost of one step's utility terms: ``rho * cap + lam * liquidity_floor +
        gamma * 2 * cap``."""
        return (
            self.rho * self.term_cap
            + self.lam * self.liquidity_floor
            + self.gamma * 2.0 * self.term_cap
        )

    @cached_property
    def half_variance(self) -> np.ndarray:
        """(M,) ``0.5 * sigma**2``, the drift correction of the log price."""
        return 0.5 * self.sigma**2

    @cached_property
    def funding_freezes(self) -> tuple[Shock, ...]:
        """The scenario's ``funding_freeze`` shocks."""
        return tuple(sh for sh in self.shocks if sh.type == "funding_freeze")

    @property
    def N(self) -> int:
        return self.num_banks

    @property
    def K(self) -> int:
        return self.layout.K

    @property
    def M(self) -> int:
        return self.layout.M

    @property
    def S(self) -> int:
        return self.layout.S
