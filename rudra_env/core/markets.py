"""Markets: one batch auction for every trade, transient price impact, and the price marks.

Each market m has a *fundamental* price ``F``, moved only by drift, volatility and shocks, an
*anchor* ``A = F * (1 + k)`` that the market price reverts to (``k``, the ``permanent`` impact
trading left, is 0 unless ``permanent_share`` > 0), and a *market* price ``P = A * (1 + d)``;
``d`` is the transient displacement left by trading.

**Impact, linear in units and symmetric** (Huberman & Stanzl 2004). A net order of ``q`` units
(buys - sells) moves the market price by ``lambda * q``, with

    lambda = impact * price0^2 / depth          (price per unit; B x M)

so net buying worth ``depth`` at the initial price moves the price by ``impact * price0``.
Every participant of one auction fills at the same price: the average price along the impact
path (VWAP), ``P + lambda * q / 2``; the path stops at the floor ``PRICE_FLOOR * F``, below which
the rest fills at the floor. With buyers, who spend currency, the fill is the fixed point
``fill = VWAP(buy_value / fill - sell_units)`` (a quadratic without the floor). The anchor
follows a share ``p = permanent_share`` of the move, ``A <- A * (P_after / P)^p``; the rest of the
displacement is transient: at every repricing ``d <- d * 0.5^(1 / half_life)``. With linear,
symmetric impact a round trip earns nothing (buy q at ``P + lambda q/2``; the price is then
``P + lambda q``; selling q fills at ``P + lambda q/2``), and decay between the legs only makes
it lose.

Every trade goes through ``auction``: the banks' INVEST and DIVEST orders, forced sales to meet
loan calls, deposit runs and interest (``raise_cash``), margin calls, profit booking and the
liquidation of failed banks. Each is a trade with the outside (its cash is an ``outside_flow``).

**Marks.** Positions are valued at ``mark = min(P, F)``, the lower of the market and the
fundamental price: buying pressure (one's own or one's peers', transient or permanent) never
lifts a mark above the fundamental, so no sequence of trades books value it could not realise;
selling pressure — fire sales, margin spirals — marks positions down at once, which is how
fire-sale contagion travels.

**Repricing** (step 3), with the step's normal draw ``eps``:

    g = clip(drift + sigma * eps - sigma^2 / 2, -max_move, +max_move)
    F <- F * exp(g);   A <- F * (1 + k);   d <- d * decay;   P <- A * (1 + d)

``max_move`` is a circuit breaker on the exogenous move. Shapes: (B, N) per bank, (B, M) per
market, (B, N, M) positions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rudra_env.core.arrays import entries, over_banks, value
from rudra_env.core.events import StepRecord
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = [
    "PRICE_FLOOR",
    "auction",
    "impact_per_unit",
    "raise_cash",
    "reprice",
    "sell_pro_rata",
    "step_variance",
]

PRICE_FLOOR = 0.01
"""The market price never falls below this fraction of the fundamental."""

_ITERATIONS = 100
"""Cap on the fixed-point iterations of an auction with buyers or of a pro-rata sale (they
converge geometrically at the rate of the relative impact; a handful is usual)."""


def impact_per_unit(s: NetworkState, p: Params) -> np.ndarray:
    """(B, M) lambda: the market price's move per unit of net buying."""
    return p.impact * s.price0**2 / s.depth


def _vwap(price: np.ndarray, floor: np.ndarray, lam: np.ndarray, q: np.ndarray):
    """(fill, price after) of a net order of ``q`` units along the linear impact path that stops
    at ``floor`` (or at the price itself if it is already lower); everything (B, M)."""
    floor = np.minimum(floor, price)
    after = price + lam * q
    fill = price + 0.5 * lam * q
    below = (after < floor) & (q < 0)
    if np.count_nonzero(below):
        # Units down to the floor fill at the mean of the path's ends, the rest at the floor.
        to_floor = np.where(below, (floor - price) / np.where(lam > 0, lam, 1.0), 0.0)
        q_safe = np.where(below, q, 1.0)
        floored = (to_floor * 0.5 * (price + floor) + (q - to_floor) * floor) / q_safe
        fill = np.where(below, floored, fill)
        after = np.where(below, floor, after)
    return fill, after


def _settled(new: np.ndarray, old: np.ndarray, tol: np.ndarray | float) -> bool:
    """A fixed-point iteration has settled: no entry moved by more than ``tol``."""
    return bool((np.abs(new - old) <= tol).all())


def auction(
    s: NetworkState, p: Params, buy_value: np.ndarray, sell_units: np.ndarray
) -> np.ndarray:
    """One batch auction per market: buyers spend ``buy_value`` (B, M) currency in all, sellers
    deliver ``sell_units`` (B, M) units in all; everybody fills at one price, the VWAP of the
    net order's impact path. Moves the market price (and, by ``permanent_share``, the
    anchor). Returns the (B, M) fill price. Nothing else of the state changes: the caller
    moves units and cash."""
    lam = impact_per_unit(s, p)
    floor = PRICE_FLOOR * s.fundamental
    price = s.price
    fill, after = _vwap(price, floor, lam, -sell_units)
    buying = buy_value > 0
    if np.count_nonzero(buying):
        # Without the floor the fixed point is a quadratic in the fill (positive where there are
        # buyers); markets without buyers keep the sellers' fill.
        a = price - 0.5 * lam * sell_units
        fill = np.where(buying, 0.5 * (a + np.sqrt(a * a + 2.0 * lam * buy_value)), fill)
        for _ in range(_ITERATIONS):  # only where the floor binds does this iterate
            new, after = _vwap(price, floor, lam, buy_value / fill - sell_units)
            if _settled(new, fill, 1e-13 * price):
                break
            fill = new
    if np.count_nonzero(p.permanent_share):
        anchor = (1.0 + s.permanent) * (after / price) ** p.permanent_share
        s.permanent[...] = anchor - 1.0
    s.price[...] = after
    return fill


def sell_pro_rata(
    s: NetworkState,
    p: Params,
    sellers: np.ndarray,
    fraction: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Banks in ``sellers`` (B, N) sell the same fraction ``phi`` of each of their positions in
    one auction, where ``phi = fraction(v)`` (B, N) in [0, 1] is chosen from ``v``, the value of
    a bank's whole portfolio at the auction's fill prices; the fill depends on what all sell,
    so ``phi`` is their joint fixed point (it rises monotonically to it from the no-impact
    value). Returns (phi (B, N), proceeds (B, N)); units and basis shrink by ``phi``, proceeds
    go to cash, the outside pays them, prices fall."""
    units = s.units * sellers[..., None]
    lam = impact_per_unit(s, p)
    floor = PRICE_FLOOR * s.fundamental

    def phi_at(prices: np.ndarray) -> np.ndarray:
        return np.clip(fraction(value(units, prices)), 0.0, 1.0) * sellers

    phi = phi_at(s.price)
    for _ in range(_ITERATIONS):
        fill, _after = _vwap(s.price, floor, lam, -over_banks(phi, units))
        new = phi_at(fill)
        if _settled(new, phi, 1e-13):
            break
        phi = new
    fill = auction(s, p, np.zeros_like(s.price), over_banks(phi, units))
    proceeds = phi * value(units, fill)
    s.units -= units * phi[..., None]
    s.basis -= s.basis * (phi * sellers)[..., None]
    s.cash += proceeds
    s.outside -= proceeds.sum(axis=1)
    return phi, proceeds


def raise_cash(
    s: NetworkState,
    p: Params,
    need: np.ndarray,
    rec: StepRecord | None = None,
    reason: str = "",
    worlds: np.ndarray | None = None,
) -> np.ndarray:
    """Debtors pay ``need`` (B, N) from cash, then by selling the same fraction of each position
    (one auction, ``sell_pro_rata``). Returns what each paid (<= need): ``need`` itself when
    everybody pays from cash. The cash paid leaves each debtor (the caller says where it goes);
    each sale is a ``forced_sale`` event (``worlds`` maps sub-state rows to world ids)."""
    if not np.count_nonzero(need > s.cash):  # everybody pays from cash: no sale
        s.cash -= need
        return need
    short = need - np.minimum(need, np.maximum(s.cash, 0.0))
    sellers = short > 0
    _phi, proceeds = sell_pro_rata(
        s,
        p,
        sellers,
        lambda v: np.minimum(1.0, np.divide(short, v, out=np.ones_like(v), where=v > short)),
    )
    paid = np.minimum(need, np.maximum(s.cash, 0.0))
    s.cash -= paid
    if rec is not None:
        at, wi, bi = entries(proceeds > 0)
        sold = proceeds.reshape(-1)[at]
        rec.add_rows(
            "forced_sale",
            world=wi if worlds is None else worlds[wi],
            bank=bi,
            reason=np.full(len(wi), reason),
            sold=sold,
            outside_flow=-sold,
        )
    return paid


def reprice(s: NetworkState, p: Params, eps: np.ndarray) -> None:
    """Step 3: the fundamental moves with drift and noise ``eps`` (B, M); the displacement the
    trades left around the anchor decays."""
    g = np.minimum(np.maximum(p.drift + p.sigma * eps - p.half_variance, -p.max_move), p.max_move)
    displacement = s.price / (s.fundamental * (1.0 + s.permanent)) - 1.0
    s.fundamental *= np.exp(g)
    s.price[...] = s.fundamental * (1.0 + s.permanent) * (1.0 + displacement * p.impact_decay)


def step_variance(s: NetworkState, p: Params, price_start: np.ndarray) -> np.ndarray:
    """(B, M) the EWMA of squared log returns with this step's return so far, from
    ``price_start`` to now (every move counts: shocks, trades, fire sales, the exogenous move):
    ``lam * vol2 + (1 - lam) * log(price / price_start)^2``, ``lam`` = ``vol_ewma``. The step
    records it at its end; margin calls read it mid-step."""
    r = np.log(s.price / price_start)
    return p.vol_ewma * s.vol2 + (1.0 - p.vol_ewma) * r * r
