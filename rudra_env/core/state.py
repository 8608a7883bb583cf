"""The explicit, copyable state of B parallel worlds.

Shapes use B worlds, N banks, M markets, K counterparty slots. Money is in currency units.

Every field of ``NetworkState`` is an array with the world axis first, declared once as a
dataclass field; copying, selecting worlds, chunking and writing a sub-state back all iterate
over ``dataclasses.fields``, so a new field travels with the others without further code.
Fields marked ``derived`` are kept in sync with ``loans`` by the core (``resync`` recomputes
them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NetworkState", "SlotIndex", "balance_sheet", "interbank_totals", "slot_exposures"]

_DERIVED = {"derived": True}


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

    Balance sheet of bank i: assets ``cash + sum_j loans[i, j] + sum_m units[i, m] * mark[m] +
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
    """(B, M) market prices (the fundamental displaced by the transient impact of trading)."""
    price0: np.ndarray
    """(B, M) initial prices."""
    depth: np.ndarray
    """(B, M) market depth in currency units at the initial price (the scale of price impact)."""
    last_return: np.ndarray
    """(B, M) the last step's log return of each market price, start of step to end."""
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
    fundamental: np.ndarray = None  # type: ignore[assignment]
    """(B, M) fundamental prices, moved only by drift, volatility and shocks (positions are
    marked at ``min(price, fundamental)``). Default: ``price``."""
    permanent: np.ndarray = None  # type: ignore[assignment]
    """(B, M) the permanent impact trading left: market prices revert to the anchor
    ``fundamental * (1 + permanent)`` (0 unless ``permanent_share`` > 0). Default: zeros."""
    ib_assets: np.ndarray = field(default=None, metadata=_DERIVED)  # type: ignore[assignment]
    """(B, N) derived: ``loans.sum(axis=2)``, kept in sync by the core (see ``resync``)."""
    ib_liab: np.ndarray = field(default=None, metadata=_DERIVED)  # type: ignore[assignment]
    """(B, N) derived: ``loans.sum(axis=1)``, kept in sync by the core."""
    slot_lent: np.ndarray = field(default=None, metadata=_DERIVED)  # type: ignore[assignment]
    """(B, N, K) derived: ``loans[b, i, slots[b, i, k]]`` (0 for padded slots), kept in sync."""
    slot_borrowed: np.ndarray = field(default=None, metadata=_DERIVED)  # type: ignore[assignment]
    """(B, N, K) derived: ``loans[b, slots[b, i, k], i]`` (0 for padded slots), kept in sync."""

    def __post_init__(self) -> None:
        if self.fundamental is None:
            self.fundamental = self.price.copy()
        if self.permanent is None:
            self.permanent = np.zeros_like(self.price)
        if self.ib_assets is None:
            self.resync()

    def marks(self) -> np.ndarray:
        """(B, M) the price positions are valued at: the lower of the market price and the
        fundamental (``rudra_env.core.markets`` says why)."""
        return np.minimum(self.price, self.fundamental)

    # ------------------------------------------------------------------ the declared fields
    def arrays(self, *, derived: bool = True) -> dict[str, np.ndarray]:
        """Every field by name (the derived ones too unless ``derived=False``)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if derived or not f.metadata.get("derived")
        }

    def _map(self, fn) -> NetworkState:
        return NetworkState(**{name: fn(arr) for name, arr in self.arrays().items()})

    def copy(self) -> NetworkState:
        out = self._map(np.copy)
        cache = self.__dict__.get("_slot_index")
        if cache is not None and cache[0] is self.slots:  # same slots: the index carries over
            out.__dict__["_slot_index"] = (out.slots, cache[1])
        return out

    def take(self, worlds: np.ndarray | slice, *, loans: bool = True) -> NetworkState:
        """A copy of a subset of worlds. ``loans=False`` leaves the (B, N, N) ``loans`` out
        (an empty (0, N, N) array) for callers that reach the full state's loans themselves;
        the derived interbank arrays are copied either way."""
        out = {
            name: arr[worlds].copy()
            for name, arr in self.arrays().items()
            if loans or name != "loans"
        }
        if not loans:
            out["loans"] = self.loans[:0]
        return NetworkState(**out)

    def put(self, worlds: np.ndarray, sub: NetworkState) -> None:
        """Write the sub-state ``sub`` (from ``take(worlds)``) back into those worlds; a sub-state
        without loans (``take(..., loans=False)``) leaves ``loans`` alone. Writing other worlds'
        slots (a reset) drops the cached slot indices, which the next read rebuilds."""
        new_slots = not np.array_equal(self.slots[worlds], sub.slots)
        for name, arr in sub.arrays().items():
            if len(arr) == len(worlds):
                getattr(self, name)[worlds] = arr
        if new_slots:
            self.__dict__.pop("_slot_index", None)
            self.__dict__.pop("_chunk_index", None)

    def view(self, lo: int, hi: int) -> NetworkState:
        """Worlds ``lo:hi`` as views (no copy): in-place updates land in this state. Its slot
        index is cached per chunk."""
        out = self._map(lambda arr: arr[lo:hi])
        cache = self.__dict__.setdefault("_chunk_index", {})
        hit = cache.get((lo, hi))
        if hit is None or hit[0] is not self.slots:
            hit = cache[(lo, hi)] = (self.slots, SlotIndex.build(self.slots[lo:hi]))
        out.__dict__["_slot_index"] = (out.slots, hit[1])
        return out

    def put_view(self, lo: int, hi: int, view: NetworkState) -> None:
        """Copy back into worlds ``lo:hi`` the fields that ``view`` (from ``view(lo, hi)``)
        replaced instead of updating in place."""
        for name, arr in view.arrays().items():
            mine = getattr(self, name)
            if not np.may_share_memory(arr, mine):
                mine[lo:hi] = arr

    def head(self, w: int) -> NetworkState:
        """A view (no copy) of the first ``w`` worlds, sharing this state's slot index (its flat
        indices are world-major, so the first ``w`` worlds' entries are the same)."""
        out = self._map(lambda arr: arr[:w])
        si = self.slot_index
        out.__dict__["_slot_index"] = (
            out.slots,
            SlotIndex(**{f.name: getattr(si, f.name)[:w] for f in dataclasses.fields(si)}),
        )
        return out

    def repeat(self, n: int) -> NetworkState:
        """B*n worlds: each world repeated n times consecutively (for candidate scoring)."""
        return self._map(lambda arr: np.repeat(arr, n, axis=0))

    def equal(self, other: NetworkState) -> bool:
        """Exact equality of every array."""
        theirs = other.arrays()
        return all(np.array_equal(arr, theirs[name]) for name, arr in self.arrays().items())

    # ------------------------------------------------------------------ derived quantities
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
        fresh = NetworkState(**self.arrays(derived=False))
        return all(
            np.allclose(arr, getattr(fresh, name), rtol=rtol, atol=atol)
            for name, arr in self.arrays().items()
            if name not in fresh.arrays(derived=False)
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
    """Derived (B, N) quantities: interbank assets/liabilities, market value (at the marks),
    assets, equity."""
    ib_assets, ib_liab = s.ib_assets, s.ib_liab
    mv = (s.units @ s.marks()[..., None])[..., 0]
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


def slot_exposures(
    s: NetworkState, bs: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(B, N, K) what each bank lent to / borrowed from its slot counterparties (0 if padded)."""
    return s.slot_lent, s.slot_borrowed
