"""Markets: repricing on order flow, fire-sale impact, and sales of banks' units.

Repricing (step 3), per market m, on the step's net flow (buys - sells in currency, forced
sales included) and the step's normal draw ``eps``:

    r_m = clip(impact_m * flow_m / depth_m + drift_m + sigma_m * eps_m - sigma_m^2 / 2,
               -max_move_m, +max_move_m)
    price_m <- price_m * exp(r_m);   last_return_m <- r_m
    vol2_m  <- lam * vol2_m + (1 - lam) * r_m^2

``max_move`` is a limit-up/limit-down circuit breaker; ``lam`` is ``Params.vol_ewma``.

Fire sales (failed banks' estates, margin calls, overdrafts) move prices at once:

    price_m <- price_m * max(PRICE_FLOOR, 1 - fire_sale_impact * sold_m / depth_m)

Sales of banks' units (``sell_units``) go to the outside at the current price and are pro rata
over the bank's positions; ``raise_cash`` makes debtors pay a demand from cash first, then by
such sales. Shapes: (B, N) per bank, (B, M) per market, (B, N, M) positions.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import entries, over_banks, value
from rudra_env.core.events import StepRecord
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["PRICE_FLOOR", "fire_sale_prices", "raise_cash", "reprice", "sell_units"]

PRICE_FLOOR = 0.01
"""One fire-sale or margin round can cut a price to at most 1% of itself."""


def reprice(s: NetworkState, p: Params, flow: np.ndarray, eps: np.ndarray) -> None:
    """Step 3: prices move on the net ``flow`` (B, M) and the normal draws ``eps`` (B, M)."""
    r = p.impact * flow / s.depth + p.drift + p.sigma * eps - p.half_variance
    r = np.minimum(np.maximum(r, -p.max_move), p.max_move)
    s.price *= np.exp(r)
    s.last_return = r
    s.vol2 = p.vol_ewma * s.vol2 + (1.0 - p.vol_ewma) * r**2


def fire_sale_prices(s: NetworkState, sold_value: np.ndarray, impact: float) -> None:
    """price *= max(PRICE_FLOOR, 1 - impact * sold / depth) for (B, M) currency amounts sold."""
    s.price *= np.maximum(PRICE_FLOOR, 1.0 - impact * sold_value / s.depth)


def sell_units(s: NetworkState, sell: np.ndarray, mv: np.ndarray) -> np.ndarray:
    """Sell ``sell`` (B, N) of each bank's market value ``mv``, pro rata over its positions, at
    the current price to the outside (the caller decides where the proceeds go). Returns the
    value sold per market, (B, M).

    Callers cap ``sell`` at ``mv`` and never ask for a negative sale, so ``sell < mv`` implies
    ``mv > 0``; a bank asked for all of it (``sell >= mv``) sells everything.
    """
    frac = np.divide(sell, mv, out=np.ones_like(sell), where=sell < mv)
    sold = over_banks(frac, s.units) * s.price
    s.units -= s.units * frac[..., None]
    s.basis -= s.basis * frac[..., None]
    s.outside -= sell.sum(axis=1)
    return sold


def raise_cash(
    s: NetworkState,
    need: np.ndarray,
    flow: np.ndarray | None,
    rec: StepRecord | None = None,
    reason: str = "",
    worlds: np.ndarray | None = None,
) -> np.ndarray:
    """Debtors pay ``need`` (B, N) from cash, then by selling units pro rata at the current price.

    Returns what each could pay (<= need): ``need`` itself when everybody pays from cash. Sales
    add to ``flow`` (B, M) when given; the buyer is the outside. Each sale is a ``forced_sale``
    event (``worlds`` maps sub-state rows to world ids). Mutates ``s``.
    """
    if not np.count_nonzero(need > s.cash):  # everybody pays from cash: no sale
        s.cash -= need
        return need
    from_cash = np.minimum(need, np.maximum(s.cash, 0.0))
    rest = need - from_cash
    if not np.count_nonzero(rest > 0):  # the others owe nothing
        s.cash -= from_cash
        return need
    mv = value(s.units, s.price)
    sell = np.minimum(rest, mv)
    sold = sell_units(s, sell, mv)
    if flow is not None:
        flow -= sold
    s.cash -= from_cash
    if rec is not None:
        at, wi, bi = entries(sell > 0)
        sold_now = sell.reshape(-1)[at]
        rec.add_rows(
            "forced_sale",
            world=wi if worlds is None else worlds[wi],
            bank=bi,
            reason=np.full(len(wi), reason),
            sold=sold_now,
            outside_flow=-sold_now,
        )
    return from_cash + sell
