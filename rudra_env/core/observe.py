"""Observations and the global state vector, batched over worlds (masks: ``execution``).

Observation of bank i (float32, every entry clipped to [-10, 10]):

=================  ==========================================================================
index              meaning
=================  ==========================================================================
0                  equity / initial equity
1                  leverage / target leverage (assets / max(equity, 1e-9), clipped)
2                  liquidity ratio: cash / total liabilities
3..8               cash, interbank assets, interbank liabilities, market value, external
                   assets, deposits — each / total assets
9                  risk factor in [0, 1]
10 + 5k .. 14 + 5k per slot k < K: slot used (0/1), counterparty alive (0/1), lent to it / assets,
                   borrowed from it / assets, belief that it defaults
10 + 5K + 2m ..    per market m: price / initial price, last log return * 10
end - 2            time fraction t / max_steps
end - 1            share of this world's banks that have defaulted
=================  ==========================================================================

The global state (``state_vector``) concatenates, per bank, [equity / E0, leverage / target,
liquidity ratio, alive], then per market price / price0 and last return * 10, then the time
fraction; clipped to [-10, 10].
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, balance_sheet, slot_exposures

__all__ = [
    "OBS_LIMIT",
    "obs_size",
    "state_size",
    "observe",
    "state_vector",
    "MARKET_FEATURES",
    "OWN_FEATURES",
    "SLOT_FEATURES",
    "WORLD_FEATURES",
    "ObservationLayout",
    "observation_layout",
]

OBS_LIMIT = 10.0
OWN_FEATURES = (
    "equity_ratio",
    "leverage_ratio",
    "liquidity_ratio",
    "cash_share",
    "interbank_assets_share",
    "interbank_liabilities_share",
    "market_share",
    "external_share",
    "deposits_share",
    "risk_factor",
)
"""The bank's own features, in column order."""
SLOT_FEATURES = ("slot_used", "counterparty_alive", "lent_share", "borrowed_share", "belief")
"""Features of each counterparty slot, in order within a slot's block."""
MARKET_FEATURES = ("price_ratio", "last_return")
"""Features of the markets: one block of M columns each, in this order."""
WORLD_FEATURES = ("time_fraction", "default_share")
"""The last columns: features of the bank's world."""


@dataclass(frozen=True)
class ObservationLayout:
    """Where each feature sits in a bank's observation vector (K slots, M markets)."""

    K: int
    M: int

    def own(self, name: str) -> int:
        """Column of an own feature (``OWN_FEATURES``)."""
        return OWN_FEATURES.index(name)

    @property
    def slots(self) -> slice:
        """The K slot blocks; ``obs[..., slots].reshape(..., K, len(SLOT_FEATURES))``."""
        start = len(OWN_FEATURES)
        return slice(start, start + len(SLOT_FEATURES) * self.K)

    def slot(self, name: str) -> slice:
        """The K columns of one slot feature (``SLOT_FEATURES``), one per slot (strided)."""
        return slice(
            self.slots.start + SLOT_FEATURES.index(name), self.slots.stop, len(SLOT_FEATURES)
        )

    def market(self, name: str) -> slice:
        """The M columns of a market feature (``MARKET_FEATURES``)."""
        start = self.slots.stop + MARKET_FEATURES.index(name) * self.M
        return slice(start, start + self.M)

    def world(self, name: str) -> int:
        """Column of a world feature (``WORLD_FEATURES``)."""
        return self.size - len(WORLD_FEATURES) + WORLD_FEATURES.index(name)

    @property
    def size(self) -> int:
        return self.slots.stop + len(MARKET_FEATURES) * self.M + len(WORLD_FEATURES)


@functools.cache
def _layout(k: int, m: int) -> ObservationLayout:
    return ObservationLayout(k, m)


def observation_layout(p: Params) -> ObservationLayout:
    """The observation layout of an env's parameters (one object per (K, M))."""
    return _layout(p.K, p.M)


@functools.cache
def _columns(lay: ObservationLayout) -> tuple[slice, slice, int, int]:
    """Columns of the market and world features, in the order ``observe`` writes them."""
    return (
        lay.market("price_ratio"),
        lay.market("last_return"),
        lay.world("time_fraction"),
        lay.world("default_share"),
    )


def obs_size(p: Params) -> int:
    return observation_layout(p).size


def state_size(p: Params) -> int:
    return 4 * p.N + 2 * p.M + 1


def _own(
    s: NetworkState, bs: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Equity ratio, leverage / target, liquidity ratio and max(assets, tiny), each (B, N)."""
    equity, assets = bs["equity"], bs["assets"]
    a = np.maximum(assets, 1e-9)
    lev = assets / np.maximum(equity, 1e-9) / s.target_leverage
    liq = s.cash / np.maximum(bs["liabilities"], 1e-9)
    return equity / np.maximum(s.equity0, 1e-9), lev, liq, a


def observe(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, N, obs_size) float32 observations of every bank (dead banks read as zeros)."""
    bs = balance_sheet(s) if bs is None else bs
    b, n, m = s.shape
    lay = observation_layout(p)
    out = np.empty((b, n, lay.size), dtype=np.float32)
    eq_ratio, lev, liq, a = _own(s, bs)
    inv_a = 1.0 / a
    own = {
        "equity_ratio": eq_ratio,
        "leverage_ratio": lev,
        "liquidity_ratio": liq,
        "cash_share": s.cash * inv_a,
        "interbank_assets_share": bs["ib_assets"] * inv_a,
        "interbank_liabilities_share": bs["ib_liab"] * inv_a,
        "market_share": bs["market_value"] * inv_a,
        "external_share": s.external * inv_a,
        "deposits_share": s.deposits * inv_a,
        "risk_factor": s.risk_factor,
    }
    for column, name in enumerate(OWN_FEATURES):
        out[..., column] = own[name]
    si = s.slot_index
    lent, borrowed = slot_exposures(s, bs)
    slot = {
        "slot_used": si.valid,
        "counterparty_alive": si.valid & s.alive.reshape(-1)[si.bank],
        "lent_share": lent * inv_a[..., None],
        "borrowed_share": borrowed * inv_a[..., None],
        "belief": s.belief,
    }
    blocks = out[..., lay.slots].reshape(b, n, p.K, len(SLOT_FEATURES))  # a view (contiguous)
    for column, name in enumerate(SLOT_FEATURES):
        blocks[..., column] = slot[name]
    price_ratio, last_return, time_fraction, default_share = _columns(lay)
    out[..., price_ratio] = (s.price / s.price0)[:, None, :]
    out[..., last_return] = (s.last_return * 10.0)[:, None, :]
    out[..., time_fraction] = (s.t / p.max_steps)[:, None]
    out[..., default_share] = (1.0 - s.alive.sum(axis=1) / n)[:, None]
    np.minimum(out, OBS_LIMIT, out=out)
    np.maximum(out, -OBS_LIMIT, out=out)
    if np.count_nonzero(s.alive) < s.alive.size:  # zero the dead (x * 1 == x for the rest)
        out *= s.alive.astype(np.float32)[..., None]
    return out


def state_vector(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, state_size) float32 global state for centralised critics."""
    bs = balance_sheet(s) if bs is None else bs
    eq_ratio, lev, liq, _ = _own(s, bs)
    banks = np.stack([eq_ratio, lev, liq, s.alive], axis=-1)
    banks = np.where(s.alive[..., None], banks, 0.0).reshape(s.shape[0], -1)
    vec = np.concatenate(
        [banks, s.price / s.price0, s.last_return * 10.0, (s.t / p.max_steps)[:, None]],
        axis=-1,
    )
    return np.clip(vec, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)
