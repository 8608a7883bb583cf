"""Profit booking (step 5): every ``booking_interval`` steps, market gains are realised.

In the worlds where booking is due, for each live bank i and market m with value
``V = units * price`` and booked value ``basis``:

    pnl   = V - basis
    gain  = max(pnl, 0)      -> sold to the outside at the market price: units -= gain / price,
                                cash += gain (an ``outside_flow`` of -gain)
    loss  = min(pnl, 0)      -> booked without a trade
    basis <- units * price   (after the sale)

Each live bank with a non-zero P&L gets a ``profit_booking`` event (``pnl`` summed over markets,
``realised`` cash). Shapes: (B, N, M) positions, (B,) ``due``.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import ones
from rudra_env.core.events import StepRecord
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["book_profits", "booking_due"]


def booking_due(s: NetworkState, p: Params) -> np.ndarray:
    """(B,) bool: the step being taken (t + 1) is a booking step."""
    return ((s.t + 1) % p.booking_interval) == 0


def book_profits(s: NetworkState, rec: StepRecord, due: np.ndarray) -> None:
    """Step 5 in the worlds ``due`` (B,): realise gains to cash, book losses; reset basis."""
    value = s.units * s.price[:, None, :]
    pnl = (value - s.basis) * due[:, None, None] * s.alive[..., None]
    gain = np.maximum(pnl, 0.0)
    s.units -= np.divide(gain, s.price[:, None, :])
    per_market = ones(s.shape[2])
    gain_bank = gain @ per_market
    s.cash += gain_bank
    s.outside -= gain_bank.sum(axis=1)
    s.basis = np.where(due[:, None, None], s.units * s.price[:, None, :], s.basis)
    per_bank = pnl @ per_market
    wi, bi = np.nonzero(due[:, None] & s.alive & ((np.abs(pnl) @ per_market) > 0))
    realised = gain_bank[wi, bi]
    rec.add_rows(
        "profit_booking",
        world=wi,
        bank=bi,
        pnl=per_bank[wi, bi],
        realised=realised,
        outside_flow=-realised,
    )
