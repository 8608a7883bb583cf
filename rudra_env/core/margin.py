"""Margin calls on market positions (step 6).

Per market m, the margin rate is the VaR quantile ``z`` times the market's volatility, scaled up
when realised volatility runs above it:

    vol_t_m = max(0, sqrt(vol2_m) / sigma_m - 1)
    rate_m  = z * sigma_m * (1 + beta * vol_t_m)
    req_i   = sum_m units[i, m] * mark_m * rate_m

``vol2`` here already counts the step's price move so far (from the start of the step, shocks
and trades included: ``rudra_env.core.step``), so a crash raises margins in the step it happens.
A live bank whose cash falls short of its requirement, ``gap = req - cash > 0``, sells the same
fraction ``phi`` of each position through the market. Selling ``phi`` of its portfolio raises
``phi * v`` (``v`` = the portfolio's value at the auction's fill prices) and lowers the
requirement to ``(1 - phi) * req``, so ``phi = min(1, gap / (v + req))`` — just enough, found
jointly with the fill prices (``sell_pro_rata``). Each sale is a ``margin_call`` event. Shapes:
(B, N) per bank, (B, M) per market.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import TOL, entries, value
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import sell_pro_rata
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["margin_calls", "margin_rate"]


def margin_rate(vol2: np.ndarray, p: Params) -> np.ndarray:
    """(B, M) margin per unit of market value, ``z * sigma * (1 + beta * vol_t)``, for the
    EWMA variance ``vol2`` (B, M)."""
    vol_t = np.maximum(0.0, np.sqrt(vol2) / np.maximum(p.sigma, 1e-12) - 1.0)
    return p.margin_z * p.sigma * (1.0 + p.margin_vol_sensitivity * vol_t)


def margin_calls(s: NetworkState, p: Params, rec: StepRecord, vol2: np.ndarray) -> None:
    """Step 6: margin calls on market positions, met by selling units through the market;
    ``vol2`` (B, M) is the variance estimate that counts the step's move so far."""
    if not p.margin_enabled:
        return
    req = value(s.units, s.marks() * margin_rate(vol2, p))
    gap = (req - np.maximum(s.cash, 0.0)) * s.alive
    if not np.count_nonzero(gap > TOL):
        return
    callees = gap > TOL
    _phi, sold = sell_pro_rata(
        s,
        p,
        callees,
        lambda v: np.minimum(
            1.0, np.divide(gap, v + req, out=np.ones_like(v), where=(v + req) > 0)
        ),
    )
    at, wi, bi = entries(sold > 0)
    rec.add_rows(
        "margin_call",
        world=wi,
        bank=bi,
        requirement=req.ravel()[at],
        shortfall=gap.ravel()[at],
        sold=sold.ravel()[at],
        outside_flow=-sold.ravel()[at],
    )
