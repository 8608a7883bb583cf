"""Margin calls on market positions (step 6).

Per market m, the margin rate is the VaR quantile ``z`` times the market's volatility, scaled up
when realised volatility runs above it:

    vol_t_m = max(0, sqrt(vol2_m) / sigma_m - 1)
    rate_m  = z * sigma_m * (1 + beta * vol_t_m)
    req_i   = sum_m units[i, m] * price_m * rate_m

A live bank whose cash falls short of its requirement, ``short = req - max(cash, 0) > 0``, sells
units pro rata. Selling ``x`` of market value ``mv`` also lowers the requirement by
``x * req / mv``, so it sells ``x = min(mv, short / (1 + req / mv))`` — just enough. The
proceeds go to cash; the sales move prices like a fire sale and each is a ``margin_call`` event.
Shapes: (B, N) per bank, (B, M) per market.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import TOL, entries, value
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import fire_sale_prices, sell_units
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["margin_calls", "margin_rate"]


def margin_rate(s: NetworkState, p: Params) -> np.ndarray:
    """(B, M) margin per unit of market value, ``z * sigma * (1 + beta * vol_t)``."""
    vol_t = np.maximum(0.0, np.sqrt(s.vol2) / np.maximum(p.sigma, 1e-12) - 1.0)
    return p.margin_z * p.sigma * (1.0 + p.margin_vol_sensitivity * vol_t)


def margin_calls(s: NetworkState, p: Params, rec: StepRecord) -> None:
    """Step 6: margin calls on market positions, met by selling units (fire-sale impact)."""
    if not p.margin_enabled:
        return
    req = value(s.units, s.price * margin_rate(s, p))
    gap = req - np.maximum(s.cash, 0.0)
    if not np.count_nonzero((gap > TOL) & s.alive):  # i.e. no short > TOL below
        return
    short = np.maximum(0.0, gap) * s.alive
    mv = value(s.units, s.price)
    c = np.divide(req, mv, out=np.zeros_like(req), where=mv > 0)
    sell = np.minimum(mv, short / (1.0 + c))
    sold_value = sell_units(s, sell, mv)
    s.cash += sell
    fire_sale_prices(s, sold_value, p.fire_sale_impact)
    at, wi, bi = entries(sell > TOL)
    sold_now = sell.ravel()[at]
    rec.add_rows(
        "margin_call",
        world=wi,
        bank=bi,
        requirement=req.ravel()[at],
        shortfall=short.ravel()[at],
        sold=sold_now,
        outside_flow=-sold_now,
    )
