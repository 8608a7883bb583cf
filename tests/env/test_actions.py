from __future__ import annotations

import numpy as np
import pytest

from rudra_env.actions import BORROW, DIVEST, HOLD, INVEST, LEND, ActionLayout, decode, encode
from rudra_env.errors import ActionError


def test_layout_size_and_roundtrip():
    lay = ActionLayout(K=4, M=2, S=3)
    assert lay.n == 1 + 2 * 4 * 3 + 2 * 2 * 3
    seen = {encode("HOLD", K=4, M=2, S=3)}
    for kind, limit in ((LEND, 4), (BORROW, 4), (INVEST, 2), (DIVEST, 2)):
        for t in range(limit):
            for s in range(3):
                a = lay.encode(kind, t, s)
                assert tuple(lay.decode(a)) == (kind, t, s)
                seen.add(a)
    assert seen == set(range(lay.n))
    k, t, s = decode(np.arange(lay.n), K=4, M=2, S=3)
    assert k[0] == HOLD and (np.diff(k) >= 0).all()


def test_names_and_errors():
    lay = ActionLayout(K=2, M=1, S=2)
    assert lay.encode("DECREASE_LENDING", 1, 1) == lay.encode(BORROW, 1, 1)
    with pytest.raises(ActionError, match="target = 2 is not a slot"):
        lay.encode(LEND, 2, 0)
    with pytest.raises(ActionError, match="outside the action space"):
        lay.decode(lay.n)
