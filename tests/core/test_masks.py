"""``action_masks`` per block, by hand.

Three banks, K = 3 slots (slot 2 always padded), one market, sizes (0.5, 1.0), so A = 17:
HOLD 0; LEND slot k size s at 1 + 2k + s; BORROW at 7 + 2k + s; INVEST 13, 14; DIVEST 15, 16.

    bank 0: cash 5, lent 4 to bank 1 (slot 0), 1 unit; slot 1 is bank 2, which is dead
    bank 1: no cash, no loans lent, no units (slots [0, 2, pad])
    bank 2: dead
"""

from __future__ import annotations

import numpy as np
from tiny import config, params, run, state

from rudra_env.actions import LEND
from rudra_env.core import action_masks

#            HOLD  LEND s0  LEND s1  LEND s2  BRW s0  BRW s1  BRW s2  INVEST  DIVEST
BANK0 = [1] + [1, 1] + [0, 0] + [0, 0] + [1, 1] + [0, 0] + [0, 0] + [1, 1] + [1, 1]
BANK1 = [1] + [0, 0] * 8
DEAD = [0] * 17


def _world(shocks=(), t: int = 0):
    p = params(config(k=3, scenario={"shocks": list(shocks)}))
    s = state(
        p,
        cash=[5.0, 0.0, 0.0],
        loans=[[0, 4, 0], [0, 0, 0], [0, 0, 0]],
        units=[[1.0], [0.0], [0.0]],
        external=[10.0, 10.0, 0.0],
        alive=[True, True, False],
        t=t,
    )
    return p, s


def test_mask_blocks_by_hand():
    p, s = _world()
    m = action_masks(s, p)
    assert m.shape == (1, 3, 17) and m.dtype == np.int8
    assert m[0].tolist() == [BANK0, BANK1, DEAD]


FREEZE = {"type": "funding_freeze", "start": 1, "duration": 2, "magnitude": 0.0}


def test_funding_freeze_masks_lending_only_while_active():
    # Active for steps 1 and 2: from t = 0 and t = 1 the next step is frozen; from t = 2 not.
    frozen = list(BANK0)
    frozen[1:7] = [0] * 6
    for t, want in ((0, frozen), (1, frozen), (2, BANK0)):
        p, s = _world([FREEZE], t=t)
        assert action_masks(s, p)[0, 0].tolist() == want, t


def test_lend_in_a_funding_freeze_is_invalid():
    p, s = _world([FREEZE])
    a = np.array([[p.layout.encode(LEND, 0, 0), 0, 0]])
    s2, out = run(s, p, a)
    assert out.invalid[0].tolist() == [True, False, False]
    assert s2.loans[0, 0, 1] == 4.0 and s2.cash[0, 0] == 5.0
