"""Observations, action masks and the global state vector, batched over worlds.

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

import numpy as np

from rudra_env.core.dynamics import funding_frozen
from rudra_env.core.state import NetworkState, Params, balance_sheet, slot_exposures

__all__ = [
    "OBS_LIMIT",
    "obs_size",
    "state_size",
    "observe",
    "action_masks",
    "state_vector",
    "OWN_FEATURES",
    "SLOT_FEATURES",
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
SLOT_FEATURES = ("slot_used", "counterparty_alive", "lent_share", "borrowed_share", "belief")


def obs_size(p: Params) -> int:
    return len(OWN_FEATURES) + len(SLOT_FEATURES) * p.K + 2 * p.M + 2


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
    k = p.K
    out = np.empty((b, n, obs_size(p)), dtype=np.float32)
    eq_ratio, lev, liq, a = _own(s, bs)
    inv_a = 1.0 / a
    out[..., 0], out[..., 1], out[..., 2] = eq_ratio, lev, liq
    for col, arr in enumerate(
        (s.cash, bs["ib_assets"], bs["ib_liab"], bs["market_value"], s.external, s.deposits),
        start=3,
    ):
        out[..., col] = arr * inv_a
    out[..., 9] = s.risk_factor
    si = s.slot_index
    lent, borrowed = slot_exposures(s, bs)
    slot = out[..., 10 : 10 + 5 * k].reshape(b, n, k, 5)
    slot[..., 0] = si.valid
    slot[..., 1] = si.valid & s.alive.reshape(-1)[si.bank]
    slot[..., 2] = lent * inv_a[..., None]
    slot[..., 3] = borrowed * inv_a[..., None]
    slot[..., 4] = s.belief
    base = 10 + 5 * k
    out[..., base : base + m] = (s.price / s.price0)[:, None, :]
    out[..., base + m : base + 2 * m] = (s.last_return * 10.0)[:, None, :]
    out[..., -2] = (s.t / p.config.max_steps)[:, None]
    out[..., -1] = (1.0 - s.alive.sum(axis=1) / n)[:, None]
    np.minimum(out, OBS_LIMIT, out=out)
    np.maximum(out, -OBS_LIMIT, out=out)
    if np.count_nonzero(s.alive) < s.alive.size:  # zero the dead (x * 1 == x for the rest)
        out *= s.alive.astype(np.float32)[..., None]
    return out


def action_masks(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, N, A) int8: 1 where the action can apply now (HOLD always; nothing for the dead)."""
    b, n, m = s.shape
    k = p.K
    si = s.slot_index
    alive = s.alive
    cp_alive = si.valid & alive.ravel()[si.bank] & alive[..., None]
    has_cash = (s.cash > 0) & alive
    lends = (has_cash & ~funding_frozen(s, p)[:, None]) if p.funding_freezes else has_cash
    # One column per block (HOLD, LEND and BORROW per slot, INVEST and DIVEST per market),
    # written in place; each block column is then spread over its S size levels.
    blocks = np.empty((b, n, 1 + 2 * k + 2 * m), dtype=bool)
    blocks[..., 0] = alive
    np.logical_and(cp_alive, lends[..., None], out=blocks[..., 1 : 1 + k])
    np.logical_and(cp_alive, s.slot_lent > 0, out=blocks[..., 1 + k : 1 + 2 * k])
    blocks[..., 1 + 2 * k : 1 + 2 * k + m] = has_cash[..., None]
    np.logical_and(s.units > 0, alive[..., None], out=blocks[..., 1 + 2 * k + m :])
    return blocks[..., _spread(k, m, p.S)].view(np.int8)


@functools.cache
def _spread(k: int, m: int, sl: int) -> np.ndarray:
    """Column of ``blocks`` behind each action: HOLD once, every other block S times."""
    return np.concatenate([[0], np.repeat(np.arange(1, 1 + 2 * k + 2 * m), sl)])


def state_vector(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, state_size) float32 global state for centralised critics."""
    bs = balance_sheet(s) if bs is None else bs
    eq_ratio, lev, liq, _ = _own(s, bs)
    banks = np.stack([eq_ratio, lev, liq, s.alive], axis=-1)
    banks = np.where(s.alive[..., None], banks, 0.0).reshape(s.shape[0], -1)
    vec = np.concatenate(
        [banks, s.price / s.price0, s.last_return * 10.0, (s.t / p.config.max_steps)[:, None]],
        axis=-1,
    )
    return np.clip(vec, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)
