"""Profit booking (step 5): every ``booking_interval`` steps, market gains are realised.

In the worlds where booking is due, each live bank i's position in market m has the P&L
``pnl = units * mark - basis`` since its last booking. A gain is realised by selling the units it
represents at the mark, ``gain / mark`` units, through the market (one auction per market: the
fill is below the mark by the impact, so the cash realised is a little less than the gain); a
loss is booked without a trade. Then ``basis <- units * mark`` at the marks after the sales.

Each live bank with a non-zero P&L gets a ``profit_booking`` event (``pnl`` summed over markets,
``realised`` cash, an ``outside_flow`` of ``-realised``). Shapes: (B, N, M) positions, (B,)
``due``.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import ones
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import auction
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["book_profits", "booking_due"]


def booking_due(s: NetworkState, p: Params) -> np.ndarray:
    """(B,) bool: the step being taken (t + 1) is a booking step."""
    return ((s.t + 1) % p.booking_interval) == 0


def book_profits(s: NetworkState, p: Params, rec: StepRecord, due: np.ndarray) -> None:
    """Step 5 in the worlds ``due`` (B,): realise gains through the market, book losses."""
    mark = s.marks()[:, None, :]
    live = due[:, None] & s.alive
    pnl = (s.units * mark - s.basis) * live[..., None]
    sold = np.divide(np.maximum(pnl, 0.0), mark, out=np.zeros_like(pnl), where=mark > 0)
    fill = auction(s, p, np.zeros_like(s.price), sold.sum(axis=1))
    realised = (sold * fill[:, None, :]) @ ones(s.shape[2])
    s.units -= sold
    s.cash += realised
    s.outside -= realised.sum(axis=1)
    s.basis = np.where(live[..., None], s.units * s.marks()[:, None, :], s.basis)
    per_bank = pnl @ ones(s.shape[2])
    wi, bi = np.nonzero(live & ((np.abs(pnl) @ ones(s.shape[2])) > 0))
    rec.add_rows(
        "profit_booking",
        world=wi,
        bank=bi,
        pnl=per_bank[wi, bi],
        realised=realised[wi, bi],
        outside_flow=-realised[wi, bi],
    )
