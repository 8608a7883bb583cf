"""Where each feature sits in the observation (``ObservationLayout``) and the sizes of the
observation and of the global state, checked against hand-counted columns."""

from __future__ import annotations

import pytest
from tiny import config, market, params

from rudra_env.core.observe import (
    OWN_FEATURES,
    ObservationLayout,
    obs_size,
    observation_layout,
    state_size,
)

# K = 3 slots, M = 2 markets: 10 own columns, slots 10..24 (5 per slot), price ratios 25..26,
# last returns 27..28, time fraction 29, default share 30: 31 columns.
LAY = ObservationLayout(K=3, M=2)


def test_own_columns_in_order() -> None:
    assert [LAY.own(name) for name in OWN_FEATURES] == list(range(10))


def test_slot_block_and_strided_slot_features() -> None:
    assert LAY.slots == slice(10, 25)
    assert LAY.slot("slot_used") == slice(10, 25, 5)
    assert LAY.slot("counterparty_alive") == slice(11, 25, 5)
    assert LAY.slot("belief") == slice(14, 25, 5)
    assert list(range(31))[LAY.slot("lent_share")] == [12, 17, 22]


def test_market_and_world_columns() -> None:
    assert LAY.market("price_ratio") == slice(25, 27)
    assert LAY.market("last_return") == slice(27, 29)
    assert LAY.world("time_fraction") == 29
    assert LAY.world("default_share") == 30
    assert LAY.size == 31


@pytest.mark.parametrize(
    ("n", "k", "m", "obs", "state"),
    [(4, 3, 2, 31, 4 * 4 + 2 * 2 + 1), (3, 2, 1, 10 + 10 + 2 + 2, 4 * 3 + 2 * 1 + 1)],
)
def test_obs_and_state_sizes(n: int, k: int, m: int, obs: int, state: int) -> None:
    markets = [market(name) for name in "AB"[:m]]
    p = params(config(n=n, k=k, markets=markets))
    assert observation_layout(p) == ObservationLayout(K=k, M=m)
    assert obs_size(p) == obs
    assert state_size(p) == state
