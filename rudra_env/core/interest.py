"""Interest on interbank loans (step 4), and overdrafts covered by forced sales.

Each step every borrower pays ``r * loans[j, i]`` to each lender j (``r`` = ``interest_rate``),
so bank i's cash changes by ``r * (ib_assets_i - ib_liab_i)``; money only moves between banks.
A bank left with negative cash sells units pro rata to cover it (a ``forced_sale`` with reason
``overdraft``, moving prices like a fire sale); what it cannot cover leaves it illiquid, and it
defaults in the cascade. Shapes: (B, N).
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import TOL
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import fire_sale_prices, raise_cash
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["cover_overdrafts", "pay_interest"]


def pay_interest(s: NetworkState, p: Params, rec: StepRecord) -> None:
    """Step 4: interest from borrowers to lenders, then overdrafts covered."""
    if p.interest_rate > 0:
        s.cash += p.interest_rate * (s.ib_assets - s.ib_liab)
        cover_overdrafts(s, p, rec)


def cover_overdrafts(s: NetworkState, p: Params, rec: StepRecord) -> None:
    """Banks left with negative cash sell units pro rata (fire-sale impact) to cover it; what
    they cannot cover leaves them illiquid (they default in the cascade)."""
    if not np.count_nonzero((s.cash < -TOL) & s.alive):  # i.e. no need > TOL below
        return
    need = np.maximum(0.0, -s.cash) * s.alive
    sold = np.zeros_like(s.price)
    got = raise_cash(s, need, sold, rec, "overdraft")
    s.cash += got
    fire_sale_prices(s, -sold, p.fire_sale_impact)
