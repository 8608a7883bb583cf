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

import numpy as np

from rudra_env.core.dynamics import funding_frozen
from rudra_env.core.state import NetworkState, Params, balance_sheet

__all__ = ["OBS_LIMIT", "obs_size", "state_size", "observe", "action_masks", "state_vector",
           "OWN_FEATURES", "SLOT_FEATURES"]

OBS_LIMIT = 10.0
OWN_FEATURES = ("equity_ratio", "leverage_ratio", "liquidity_ratio", "cash_share",
                "interbank_assets_share", "interbank_liabilities_share", "market_share",
                "external_share", "deposits_share", "risk_factor")
SLOT_FEATURES = ("slot_used", "counterparty_alive", "lent_share", "borrowed_share", "belief")


def obs_size(p: Params) -> int:
    return len(OWN_FEATURES) + len(SLOT_FEATURES) * p.K + 2 * p.M + 2


def state_size(p: Params) -> int:
    return 4 * p.N + 2 * p.M + 1


def _own(s: NetworkState, bs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    equity, assets = bs["equity"], bs["assets"]
    a = np.maximum(assets, 1e-9)
    lev = assets / np.maximum(equity, 1e-9) / s.target_leverage
    liq = s.cash / np.maximum(bs["liabilities"], 1e-9)
    return np.stack([equity / np.maximum(s.equity0, 1e-9), lev, liq], axis=-1), a


def observe(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, N, obs_size) float32 observations of every bank (dead banks read as zeros)."""
    bs = balance_sheet(s) if bs is None else bs
    b, n, m = s.shape
    head, a = _own(s, bs)
    shares = np.stack([s.cash, bs["ib_assets"], bs["ib_liab"], bs["market_value"], s.external,
                       s.deposits], axis=-1) / a[..., None]
    valid = s.slots >= 0
    cp = np.maximum(s.slots, 0)
    bidx = np.arange(b)[:, None, None]
    lent = np.take_along_axis(s.loans, cp, axis=2)
    borrowed = s.loans[bidx, cp, np.arange(n)[None, :, None]]
    slot = np.stack([valid, valid & s.alive[bidx, cp], lent / a[..., None],
                     borrowed / a[..., None], s.belief], axis=-1) * valid[..., None]
    market = np.concatenate([s.price / s.price0, s.last_return * 10.0], axis=-1)
    tail = np.stack([s.t / p.config.max_steps, 1.0 - s.alive.mean(axis=1)], axis=-1)
    obs = np.concatenate([
        head, shares, s.risk_factor[..., None], slot.reshape(b, n, -1),
        np.broadcast_to(market[:, None, :], (b, n, 2 * m)),
        np.broadcast_to(tail[:, None, :], (b, n, 2)),
    ], axis=-1)
    obs = np.where(s.alive[..., None], obs, 0.0)
    return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)


def action_masks(s: NetworkState, p: Params) -> np.ndarray:
    """(B, N, A) int8: 1 where the action can apply now (HOLD always; nothing for the dead)."""
    b, n, m = s.shape
    sl = p.S
    valid = s.slots >= 0
    cp = np.maximum(s.slots, 0)
    bidx = np.arange(b)[:, None, None]
    cp_alive = valid & s.alive[bidx, cp]
    lent = np.take_along_axis(s.loans, cp, axis=2)
    has_cash = (s.cash > 0)[..., None]
    lend = cp_alive & has_cash & ~funding_frozen(s, p)[:, None, None]
    borrow = cp_alive & (lent > 0)
    invest = np.broadcast_to(has_cash, (b, n, m))
    divest = s.units > 0
    parts = [np.ones((b, n, 1), dtype=bool)] + [np.repeat(x, sl, axis=2) for x in
                                                (lend, borrow, invest, divest)]
    mask = np.concatenate(parts, axis=2) & s.alive[..., None]
    return mask.astype(np.int8)


def state_vector(s: NetworkState, p: Params, bs: dict[str, np.ndarray] | None = None
                 ) -> np.ndarray:
    """(B, state_size) float32 global state for centralised critics."""
    bs = balance_sheet(s) if bs is None else bs
    head, _ = _own(s, bs)
    banks = np.concatenate([head, s.alive[..., None]], axis=-1)
    banks = np.where(s.alive[..., None], banks, 0.0).reshape(s.shape[0], -1)
    vec = np.concatenate([banks, s.price / s.price0, s.last_return * 10.0,
                          (s.t / p.config.max_steps)[:, None]], axis=-1)
    return np.clip(vec, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)
