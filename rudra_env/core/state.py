"""The explicit, copyable state of B parallel worlds, and the frozen parameters of the dynamics.

Shapes use B worlds, N banks, M markets, K counterparty slots. Money is in currency units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from rudra_env.actions import BORROW, DIVEST, HOLD, INVEST, LEND, ActionLayout
from rudra_env.config import EnvConfig

__all__ = [
    "ActionTable",
    "NetworkState",
    "Params",
    "SlotIndex",
    "balance_sheet",
    "interbank_totals",
    "slot_exposures",
]

_DERIVED = ("ib_assets", "ib_liab", "slot_lent", "slot_borrowed")


@dataclass(frozen=True)
class SlotIndex:
    """Precomputed flat indices of every (world, bank, slot), for fast gathers.

    Slots are fixed for an episode, so these are computed once per state object (and again for
    copies); gathers through them cost one ``np.take`` instead of fancy indexing.
    """

    valid: np.ndarray
    """(B, N, K) bool: the slot holds a counterparty."""
    cp: np.ndarray
    """(B, N, K) counterparty index, 0 where the slot is padded."""
    bank: np.ndarray
    """(B, N, K) flat index ``b * N + cp`` into (B, N) arrays."""
    out: np.ndarray
    """(B, N, K) flat index of ``loans[b, i, cp]`` (what i lent its counterparty)."""
    into: np.ndarray
    """(B, N, K) flat index of ``loans[b, cp, i]`` (what i borrowed from it)."""
    mirror: np.ndarray
    """(B, N, K) flat index into (B, N, K) arrays of the counterparty's slot that holds bank i
    (``slots[b, cp, k'] == i``), or -1 when i is not among its counterparty's slots."""
    count: np.ndarray
    """(B, N) number of used slots, at least 1 (a divisor for means over slots)."""

    @classmethod
    def build(cls, slots: np.ndarray) -> SlotIndex:
        b, n, _k = slots.shape
        cp = np.maximum(slots, 0)
        w = np.arange(b)[:, None, None]
        i = np.arange(n)[None, :, None]
        valid = slots >= 0
        k = slots.shape[2]
        their = slots[w, cp]  # (B, N, K, K) cp's slots
        match = (their == i[..., None]) & valid[..., None]
        pos = match.argmax(axis=3)
        mirror = np.where(match.any(axis=3), (w * n + cp) * k + pos, -1)
        return cls(
            valid=valid,
            cp=cp,
            bank=w * n + cp,
            out=(w * n + i) * n + cp,
            into=(w * n + cp) * n + i,
            mirror=mirror,
            count=np.maximum(valid.sum(axis=2), 1),
        )


@dataclass
class NetworkState:
    """State of B worlds (arrays with a leading world axis; B = 1 for the PettingZoo env).

    Balance sheet of bank i: assets ``cash + sum_j loans[i, j] + sum_m units[i, m] * price[m] +
    external``; liabilities ``deposits + sum_j loans[j, i]``; equity = assets - liabilities.
    A defaulted bank's books are settled and zeroed, so it holds nothing and owes nothing.
    """

    cash: np.ndarray
    """(B, N) liquid reserves."""
    loans: np.ndarray
    """(B, N, N) ``loans[b, i, j]``: principal bank i lent bank j (asset of i, liability of j)."""
    units: np.ndarray
    """(B, N, M) units of market m held by bank i."""
    basis: np.ndarray
    """(B, N, M) booked value of each position at its last profit booking (or cost)."""
    external: np.ndarray
    """(B, N) illiquid external assets (loans to the real economy)."""
    deposits: np.ndarray
    """(B, N) external liabilities."""
    alive: np.ndarray
    """(B, N) bool: not defaulted nor removed."""
    price: np.ndarray
    """(B, M) market prices."""
    price0: np.ndarray
    """(B, M) initial prices."""
    depth: np.ndarray
    """(B, M) market depth in currency units (the ``depth`` of price impact and fire sales)."""
    last_return: np.ndarray
    """(B, M) last step's log return of each market."""
    vol2: np.ndarray
    """(B, M) EWMA of squared log returns (realised variance per step)."""
    slots: np.ndarray
    """(B, N, K) int: counterparty of each slot (largest initial exposures first), -1 = padded."""
    belief: np.ndarray
    """(B, N, K) P(counterparty in slot k is distressed / defaults within the horizon)."""
    equity0: np.ndarray
    """(B, N) initial equity (normaliser of rewards and observations)."""
    equity_prev: np.ndarray
    """(B, N) equity at the end of the previous step (for Revenue)."""
    target_leverage: np.ndarray
    """(B, N) regulatory target of total assets / equity."""
    risk_factor: np.ndarray
    """(B, N) market risk appetite in [0, 1]."""
    default_step: np.ndarray
    """(B, N) int: step at which the bank defaulted, -1 if alive."""
    outside: np.ndarray
    """(B,) net cash that has left the banking system (to markets, depositors, shocks, costs).
    Conservation: ``cash.sum(-1) + outside`` is constant."""
    t: np.ndarray
    """(B,) int step counter (0 after reset)."""
    ib_assets: np.ndarray = None  # type: ignore[assignment]
    """(B, N) derived: ``loans.sum(axis=2)``, kept in sync by the core (see ``resync``)."""
    ib_liab: np.ndarray = None  # type: ignore[assignment]
    """(B, N) derived: ``loans.sum(axis=1)``, kept in sync by the core."""
    slot_lent: np.ndarray = None  # type: ignore[assignment]
    """(B, N, K) derived: ``loans[b, i, slots[b, i, k]]`` (0 for padded slots), kept in sync."""
    slot_borrowed: np.ndarray = None  # type: ignore[assignment]
    """(B, N, K) derived: ``loans[b, slots[b, i, k], i]`` (0 for padded slots), kept in sync."""

    def __post_init__(self) -> None:
        if self.ib_assets is None:
            self.resync()

    def resync(self, worlds: np.ndarray | slice | None = None) -> None:
        """Recompute the derived interbank arrays from ``loans`` (in the given worlds, or all).

        The core updates them incrementally as loans change; call this after editing ``loans``
        by hand.
        """
        w = slice(None) if worlds is None else worlds
        si = self.slot_index
        flat = self.loans.reshape(-1)
        assets, liab = interbank_totals(self.loans[w])
        lent = np.where(si.valid[w], flat[si.out[w]], 0.0)
        borrowed = np.where(si.valid[w], flat[si.into[w]], 0.0)
        if worlds is None:
            self.ib_assets, self.ib_liab = assets, liab
            self.slot_lent, self.slot_borrowed = lent, borrowed
        else:
            self.ib_assets[w], self.ib_liab[w] = assets, liab
            self.slot_lent[w], self.slot_borrowed[w] = lent, borrowed

    def in_sync(self, rtol: float = 1e-9, atol: float = 1e-9) -> bool:
        """Whether the derived arrays match a fresh computation from ``loans``."""
        fresh = NetworkState(
            **{
                f.name: getattr(self, f.name)
                for f in dataclasses.fields(self)
                if f.name not in _DERIVED
            }
        )
        return all(
            np.allclose(getattr(self, k), getattr(fresh, k), rtol=rtol, atol=atol) for k in _DERIVED
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, N, M)."""
        b, n, m = self.units.shape
        return b, n, m

    @property
    def slot_index(self) -> SlotIndex:
        """Cached ``SlotIndex`` of ``slots`` (slots never change within an episode)."""
        cache = self.__dict__.get("_slot_index")
        if cache is None or cache[0] is not self.slots:
            cache = (self.slots, SlotIndex.build(self.slots))
            self.__dict__["_slot_index"] = cache
        return cache[1]

    def head(self, w: int) -> NetworkState:
        """A view (no copy) of the first ``w`` worlds, sharing this state's slot index (its flat
        indices are world-major, so the first ``w`` worlds' entries are the same)."""
        out = NetworkState(**{f.name: getattr(self, f.name)[:w] for f in dataclasses.fields(self)})
        si = self.slot_index
        out.__dict__["_slot_index"] = (
            out.slots,
            SlotIndex(**{f.name: getattr(si, f.name)[:w] for f in dataclasses.fields(si)}),
        )
        return out

    def chunk_slot_index(self, lo: int, hi: int) -> SlotIndex:
        """Cached ``SlotIndex`` of worlds ``lo:hi`` (for chunked, threaded steps)."""
        cache = self.__dict__.setdefault("_chunk_index", {})
        hit = cache.get((lo, hi))
        if hit is None or hit[0] is not self.slots:
            hit = (self.slots, SlotIndex.build(self.slots[lo:hi]))
            cache[(lo, hi)] = hit
        return hit[1]

    def copy(self) -> NetworkState:
        out = NetworkState(
            **{f.name: getattr(self, f.name).copy() for f in dataclasses.fields(self)}
        )
        cache = self.__dict__.get("_slot_index")
        if cache is not None and cache[0] is self.slots:  # same slots: the index carries over
            out.__dict__["_slot_index"] = (out.slots, cache[1])
        return out

    def take(self, worlds: np.ndarray | slice, *, loans: bool = True) -> NetworkState:
        """A copy of a subset of worlds. ``loans=False`` leaves the (B, N, N) ``loans`` out
        (an empty (0, N, N) array) for callers that reach the full state's loans themselves;
        the derived interbank arrays are copied either way."""
        out = {
            f.name: getattr(self, f.name)[worlds].copy()
            for f in dataclasses.fields(self)
            if loans or f.name != "loans"
        }
        if not loans:
            out["loans"] = self.loans[:0]
        return NetworkState(**out)

    def repeat(self, n: int) -> NetworkState:
        """B*n worlds: each world repeated n times consecutively (for candidate scoring)."""
        return NetworkState(
            **{
                f.name: np.repeat(getattr(self, f.name), n, axis=0)
                for f in dataclasses.fields(self)
            }
        )

    def equal(self, other: NetworkState) -> bool:
        """Exact equality of every array."""
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
        )

    def equity(self) -> np.ndarray:
        """(B, N) equity E_i = assets - liabilities."""
        return balance_sheet(self)["equity"]

    def belief_matrix(self) -> np.ndarray:
        """(B, N, N) dense view of beliefs: ``[b, i, j]`` = bank i's belief that j defaults.

        Beliefs are held per counterparty slot; pairs outside a bank's slots read as NaN.
        """
        b, n, _ = self.shape
        out = np.full((b, n, n), np.nan)
        bi, ii, kk = np.nonzero(self.slots >= 0)
        out[bi, ii, self.slots[bi, ii, kk]] = self.belief[bi, ii, kk]
        return out


def interbank_totals(loans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, N) interbank assets (row sums) and liabilities (column sums) of (B, N, N) loans."""
    return loans.sum(axis=2), loans.sum(axis=1)


def balance_sheet(s: NetworkState) -> dict[str, np.ndarray]:
    """Derived (B, N) quantities: interbank assets/liabilities, market value, assets, equity."""
    ib_assets, ib_liab = s.ib_assets, s.ib_liab
    mv = (s.units @ s.price[..., None])[..., 0]
    assets = s.cash + ib_assets + mv + s.external
    liabilities = s.deposits + ib_liab
    return {
        "ib_assets": ib_assets,
        "ib_liab": ib_liab,
        "market_value": mv,
        "assets": assets,
        "liabilities": liabilities,
        "equity": assets - liabilities,
    }


class ActionTable(NamedTuple):
    """What each flat action does, as (A,) lookup tables (the step gathers them per bank)."""

    kind: np.ndarray
    """int64 kind code (``HOLD`` .. ``DIVEST``)."""
    group: np.ndarray
    """int8 execution group: 0 HOLD, 1 BORROW, 2 LEND, 3 INVEST, 4 DIVEST — kinds that share
    work are neighbours (BORROW and LEND move loans, LEND and INVEST spend cash, INVEST and
    DIVEST trade a market)."""
    on_slot: np.ndarray
    """bool: LEND or BORROW (the target is a counterparty slot)."""
    slot: np.ndarray
    """int64 counterparty slot of LEND and BORROW (0 for the other kinds)."""
    market: np.ndarray
    """int64 market of INVEST and DIVEST (0 for the other kinds)."""
    fraction: np.ndarray
    """float64 size level as a fraction (0 for HOLD)."""


GROUPS = (HOLD, BORROW, LEND, INVEST, DIVEST)
"""Kind codes in ``ActionTable.group`` order."""


@dataclass(frozen=True)
class Params:
    """Frozen parameters of the dynamics, derived once from an ``EnvConfig``."""

    config: EnvConfig
    layout: ActionLayout
    size_levels: np.ndarray
    """(S,) fractions."""
    impact: np.ndarray
    """(M,) kappa: log-price change when net flow equals the market's depth."""
    max_move: np.ndarray
    """(M,) circuit breaker on one step's |log return|."""
    sigma: np.ndarray
    """(M,) per-step volatility."""
    drift: np.ndarray
    """(M,) per-step drift."""
    market_names: tuple[str, ...]

    @classmethod
    def from_config(cls, config: EnvConfig) -> Params:
        mk = config.markets
        return cls(
            config=config,
            layout=ActionLayout(config.max_counterparties, len(mk), len(config.size_levels)),
            size_levels=np.asarray(config.size_levels, dtype=np.float64),
            impact=np.array([m.impact for m in mk]),
            max_move=np.array([m.max_move for m in mk]),
            sigma=np.array([m.volatility for m in mk]),
            drift=np.array([m.drift for m in mk]),
            market_names=tuple(m.name for m in mk),
        )

    @cached_property
    def action_table(self) -> ActionTable:
        """Lookup tables of every flat action (built once per ``Params``)."""
        kind, target, size = self.layout.tables
        on_slot = (kind == LEND) | (kind == BORROW)
        on_market = (kind == INVEST) | (kind == DIVEST)
        group = np.array([GROUPS.index(k) for k in range(len(GROUPS))], np.int8)[kind]
        fraction = np.where(kind == HOLD, 0.0, self.size_levels[size])
        return ActionTable(
            kind=kind,
            group=group,
            on_slot=on_slot,
            slot=np.where(on_slot, target, 0),
            market=np.where(on_market, target, 0),
            fraction=fraction,
        )

    @cached_property
    def half_variance(self) -> np.ndarray:
        """(M,) ``0.5 * sigma**2``, the drift correction of the log price."""
        return 0.5 * self.sigma**2

    @cached_property
    def funding_freezes(self) -> tuple:
        """The scenario's ``funding_freeze`` shocks."""
        return tuple(sh for sh in self.config.scenario.shocks if sh.type == "funding_freeze")

    @property
    def N(self) -> int:
        return self.config.num_banks

    @property
    def K(self) -> int:
        return self.layout.K

    @property
    def M(self) -> int:
        return self.layout.M

    @property
    def S(self) -> int:
        return self.layout.S


def slot_exposures(
    s: NetworkState, bs: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(B, N, K) what each bank lent to / borrowed from its slot counterparties (0 if padded)."""
    return s.slot_lent, s.slot_borrowed
