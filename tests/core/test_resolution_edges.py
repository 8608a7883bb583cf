"""Step 7 at its tolerances: the insolvency test ``equity < -TOL * max(1, E0)`` and the
called-loan shortfall test ``demand - paid > TOL * max(1, demand)``, each at, just inside and
just outside its bound, and the integer type of the round counter. Numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, events, params, run, state

from rudra_env.core.arrays import TOL


@pytest.mark.parametrize(
    ("owed", "e0", "falls"),
    [
        (1e-9, 0.5, False),  # equity -1e-9, bound -TOL * max(1, 0.5) = -1e-9: not below it
        (1e-9, 10.0, False),  # equity -1e-9, bound -TOL * 10 = -1e-8: above it
        (0.0, 1.0, False),  # equity 0 is solvent
        (1.5e-9, 1.0, True),  # equity -1.5e-9 < -TOL * max(1, 1): insolvent
    ],
)
def test_insolvency_threshold_scales_with_initial_equity_and_is_strict(owed, e0, falls):
    # Bank 1 holds nothing and owes only deposits ``owed``, so its equity is -owed exactly;
    # bank 0 is healthy. Only an insolvent bank 1 starts a cascade round (and then falls).
    p = params(config(n=2))
    s = state(p, cash=[10.0, 0.0], external=[10.0, 0.0], deposits=[0.0, owed], equity0=[20.0, e0])
    assert s.equity()[0, 1] == -owed
    _, out = run(s, p)
    assert out.defaulted[0].tolist() == [False, falls]
    assert out.cascade_rounds.dtype == np.int64 and out.cascade_rounds.tolist() == [int(falls)]
    if falls:
        (d,) = events(out, "default")
        assert (d["bank"], d["cause"], d["round"]) == (1, "insolvent", 1)


def test_called_loan_shortfalls_against_the_relative_tolerance():
    # Bank 0 is insolvent (deposits 100, assets 11 + 1e-9 of loans) and falls in round 1; its
    # loans to banks 1-3 are called. Nobody holds units, so each pays min(demand, cash):
    #   bank 1: owes 1,    cash 1 - 1.5e-9: short 1.5e-9 > TOL * 1      -> illiquid, falls;
    #   bank 2: owes 10,   cash 10 - 1e-9:  short ~1e-9 <= TOL * 10     -> repaid, survives;
    #   bank 3: owes 1e-9, cash 0:          short 1e-9 = TOL * 1, not more -> survives.
    # Banks 1-3 are solvent throughout (external 100 each).
    p = params(config(n=4))
    s = state(
        p,
        cash=[0.0, 1.0 - 1.5e-9, 10.0 - 1e-9, 0.0],
        loans=[[0, 1.0, 10.0, 1e-9], [0] * 4, [0] * 4, [0] * 4],
        external=[0.0, 100.0, 100.0, 100.0],
        deposits=[100.0, 0.0, 0.0, 0.0],
    )
    assert 10.0 - s.cash[0, 2] > TOL / 10.0  # what a 1/max(1, demand) scale would flag
    _, out = run(s, p)
    assert out.defaulted[0].tolist() == [True, True, False, False]
    causes = {d["bank"]: d["cause"] for d in events(out, "default")}
    assert causes == {0: "insolvent", 1: "illiquid"}
