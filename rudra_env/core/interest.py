"""Interest on interbank loans (step 4), paid out of what borrowers can raise.

Each step bank i owes ``r * sum_j loans[j, i]`` of interest (``r`` = ``interest_rate``). It pays
from cash, then by forced sales (``raise_cash``, reason ``interest``); each lender j receives the
share of what its borrower paid, ``r * loans[j, i] * paid_i / due_i``. What a borrower cannot pay
is lost to its lenders and leaves it illiquid: it defaults in the cascade. Money only moves
between banks (and, for the forced sales, to the market). Shapes: (B, N), loans (B, N, N).
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import TOL
from rudra_env.core.events import StepRecord
from rudra_env.core.markets import raise_cash
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState

__all__ = ["pay_interest"]


def pay_interest(s: NetworkState, p: Params, rec: StepRecord) -> np.ndarray:
    """Step 4. Returns (B, N) the borrowers that could not pay all their interest."""
    if p.interest_rate <= 0:
        return np.zeros(s.alive.shape, dtype=bool)
    due = p.interest_rate * s.ib_liab
    paid = raise_cash(s, p, due, rec, "interest")
    if paid is due:  # everybody paid in full: each lender gets r * its interbank assets
        s.cash += p.interest_rate * s.ib_assets
        return np.zeros(s.alive.shape, dtype=bool)
    share = np.divide(paid, due, out=np.ones_like(paid), where=due > 0)
    s.cash += p.interest_rate * (s.loans @ share[..., None])[..., 0]
    return due - paid > TOL * np.maximum(1.0, due)
