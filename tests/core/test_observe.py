"""``observe`` column by column (the table in ``rudra_env.core.observe``) and ``state_vector``,
on a world where the columns hold distinct values, so that swapped columns fail.

Four banks, K = 3 slots, markets A (price0 10, price 11) and B (price0 5.2, price 6.5),
t = 7 of max_steps 20; bank 3 is dead. Bank 0 (slots [1, 2, 3]):

    cash 3; lent 7 to bank 1, 2 to bank 2 (interbank assets 9); borrowed 5 from bank 1, 3.5
    from bank 2 (interbank liabilities 8.5); units (1, 2): market value 11 + 13 = 24;
    external 64; deposits 65.5. Assets 3 + 9 + 24 + 64 = 100, liabilities 74, equity 26;
    E0 25, target leverage 5, risk factor 0.37; beliefs (0.11, 0.23, 0.97).
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny import config, market, params, state

from rudra_env.core import balance_sheet, observe, state_vector

F32 = 1e-6  # observations are float32


def _world():
    p = params(config(n=4, k=3, max_steps=20, markets=[market("A"), market("B", price0=5.2)]))
    s = state(
        p,
        cash=[3.0, 10.0, 4.0, 0.0],
        loans=[[0, 7, 2, 0], [5, 0, 0, 0], [3.5, 0, 0, 0], [0, 0, 0, 0]],
        units=[[1.0, 2.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
        external=[64.0, 10.0, 10.0, 0.0],
        deposits=[65.5, 17.99, 0.0, 0.0],
        price=[11.0, 6.5],
        alive=[True, True, True, False],
        belief=[[0.11, 0.23, 0.97], [0.2] * 3, [0.2] * 3, [0.0] * 3],
        last_return=[0.031, -0.052],
        equity0=[25.0, 10.0, 11.0, 1.0],
        target_leverage=[5.0, 10.0, 10.0, 10.0],
        risk_factor=[0.37, 0.5, 0.5, 0.5],
        t=7,
    )
    return p, s


# Bank 0's observation by hand, by the documented index.
BANK0 = {
    0: ("equity / E0", 26 / 25),
    1: ("leverage / target", 100 / 26 / 5),
    2: ("cash / liabilities", 3 / 74),
    3: ("cash share", 0.03),
    4: ("interbank assets share", 0.09),
    5: ("interbank liabilities share", 0.085),
    6: ("market share", 0.24),
    7: ("external share", 0.64),
    8: ("deposits share", 0.655),
    9: ("risk factor", 0.37),
    10: ("slot 0 used", 1.0),
    11: ("slot 0 counterparty alive", 1.0),
    12: ("slot 0 lent / assets", 0.07),
    13: ("slot 0 borrowed / assets", 0.05),
    14: ("slot 0 belief", 0.11),
    15: ("slot 1 used", 1.0),
    16: ("slot 1 counterparty alive", 1.0),
    17: ("slot 1 lent / assets", 0.02),
    18: ("slot 1 borrowed / assets", 0.035),
    19: ("slot 1 belief", 0.23),
    20: ("slot 2 used", 1.0),
    21: ("slot 2 counterparty alive (bank 3 is dead)", 0.0),
    22: ("slot 2 lent / assets", 0.0),
    23: ("slot 2 borrowed / assets", 0.0),
    24: ("slot 2 belief", 0.97),
    25: ("price / price0, A", 1.1),
    26: ("price / price0, B", 6.5 / 5.2),
    27: ("last return * 10, A", 0.31),
    28: ("last return * 10, B", -0.52),
    29: ("t / max_steps", 0.35),
    30: ("share of banks defaulted", 0.25),
}


def test_every_observation_column_by_name():
    p, s = _world()
    obs = observe(s, p)
    assert obs.shape == (1, 4, len(BANK0)) and obs.dtype == np.float32
    for col, (name, want) in BANK0.items():
        assert obs[0, 0, col] == pytest.approx(want, rel=F32, abs=1e-7), f"{col}: {name}"


def test_the_continuous_columns_are_distinct():
    # Guards the test above: every column that is not a 0/1 flag or a zero holds its own value,
    # so any two swapped columns change the observation.
    values = [v for _, v in BANK0.values() if v not in (0.0, 1.0)]
    assert len(set(np.round(values, 6))) == len(values)


def test_observation_clips_dead_bank_zeros_and_shared_columns():
    # bank 1: assets 10 + 5 + 10 = 25, liabilities 17.99 + 7 = 24.99, equity 0.01:
    # leverage 25 / 0.01 / 10 = 250, clipped to 10. The dead bank 3 reads as zeros.
    p, s = _world()
    obs = observe(s, p)
    assert obs[0, 1, 1] == 10.0
    assert not obs[0, 3].any()
    for bank in (1, 2):  # market and world columns are the same for every live bank
        assert obs[0, bank, 25:].tolist() == obs[0, 0, 25:].tolist()


def test_state_vector_by_hand():
    # Per bank [equity / E0, leverage / target, cash / liabilities, alive]; dead bank zeros;
    # then price / price0, last return * 10, t / max_steps.
    #   bank 1: equity 0.01 / 10; leverage clipped 10; 10 / 24.99
    #   bank 2: assets 4 + 3.5 (lent to bank 0) + 10 = 17.5, liabilities 2 (borrowed from
    #           bank 0), equity 15.5: 15.5 / 11; 17.5 / 15.5 / 10; 4 / 2
    p, s = _world()
    vec = state_vector(s, p)
    want = [26 / 25, 100 / 26 / 5, 3 / 74, 1.0]
    want += [0.01 / 10, 10.0, 10 / 24.99, 1.0]
    want += [15.5 / 11, 17.5 / 15.5 / 10, 4 / 2, 1.0]
    want += [0.0, 0.0, 0.0, 0.0]
    want += [1.1, 6.5 / 5.2, 0.31, -0.52, 0.35]
    assert vec.shape == (1, len(want)) and vec.dtype == np.float32
    assert vec[0].tolist() == pytest.approx(want, rel=1e-5, abs=1e-7)


def _small_world():
    """A bank smaller than one currency unit: cash 0.2, external 0.6 (assets 0.8), deposits 0.4
    (liabilities 0.4), equity 0.4 of E0 0.5, so the 1e-9 floors must not bite; market A at 15x
    its initial price and a last return of -2 push columns past both limits."""
    p = params(config(n=2, k=1, max_steps=10, markets=[market("A"), market("B")]))
    s = state(
        p,
        cash=[0.2, 5.0],
        external=[0.6, 5.0],
        deposits=[0.4, 2.0],
        price=[150.0, 10.0],
        last_return=[-2.0, 0.05],
        equity0=[0.5, 9.0],
        target_leverage=[3.0, 2.0],
        t=4,
    )
    return p, s


def test_small_bank_observation_and_limits():
    p, s = _small_world()
    obs = observe(s, p)[0, 0]
    assert obs[0] == pytest.approx(0.4 / 0.5, rel=F32)  # equity / E0
    assert obs[1] == pytest.approx(0.8 / 0.4 / 3.0, rel=F32)  # leverage / target
    assert obs[2] == pytest.approx(0.2 / 0.4, rel=F32)  # cash / liabilities
    assert obs[3] == pytest.approx(0.2 / 0.8, rel=F32)  # cash / assets
    assert obs[7] == pytest.approx(0.6 / 0.8, rel=F32)  # external / assets
    assert obs[8] == pytest.approx(0.4 / 0.8, rel=F32)  # deposits / assets
    # price ratios (15 -> 10, 1), last returns * 10 (-20 -> -10, 0.5), t / max_steps, defaults
    assert obs[-6:].tolist() == pytest.approx([10.0, 1.0, -10.0, 0.5, 0.4, 0.0], rel=F32)


def test_small_bank_state_vector_and_limits():
    p, s = _small_world()
    vec = state_vector(s, p)[0]
    # bank 1: assets 10, liabilities 2, equity 8 of E0 9
    want = [0.4 / 0.5, 0.8 / 0.4 / 3.0, 0.2 / 0.4, 1.0, 8.0 / 9.0, 10.0 / 8.0 / 2.0, 5.0 / 2.0, 1.0]
    want += [10.0, 1.0, -10.0, 0.5, 0.4]
    assert vec.tolist() == pytest.approx(want, rel=1e-6)


def test_observe_and_state_vector_use_the_balance_sheet_they_are_given():
    p, s = _world()
    bs = balance_sheet(s)
    given = {key: value.copy() for key, value in bs.items()}
    given["market_value"][0, 0] += 10.0  # 24 -> 34 of assets 100
    given["equity"][0, 0] = 30.0  # 26 -> 30 of E0 25
    assert observe(s, p, given)[0, 0, 6] == pytest.approx(0.34, rel=F32)
    assert observe(s, p, bs)[0, 0, 6] == pytest.approx(0.24, rel=F32)
    assert state_vector(s, p, given)[0, 0] == pytest.approx(30 / 25, rel=F32)
    assert state_vector(s, p, bs)[0, 0] == pytest.approx(26 / 25, rel=F32)
