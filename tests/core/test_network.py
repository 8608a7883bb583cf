"""Initial balance sheets: every preset starts with each bank at (never above) its target
leverage, sheets that balance, and deposits >= 0."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import env_config_cases

from rudra_env.config import EnvConfig
from rudra_env.core import balance_sheet, initial_state


@pytest.mark.parametrize("cfg", env_config_cases())
def test_presets_start_within_target_leverage(cfg: EnvConfig) -> None:
    for seed in range(20):
        s = initial_state(cfg, np.random.default_rng(seed), worlds=5)
        bs = balance_sheet(s)
        leverage = bs["assets"] / bs["equity"]
        worst = float((leverage / s.target_leverage).max())
        assert worst <= 1.0 + 1e-9, f"seed {seed}: a bank starts at {worst:.4f}x its target"
        assert (s.deposits >= 0).all()
        np.testing.assert_allclose(bs["equity"], s.equity0, rtol=1e-12)


def test_heavy_borrowers_borrow_less_instead_of_growing() -> None:
    """A star whose hub borrows from everybody: the hub's borrowing is capped at A - E, so its
    assets stay at target_leverage * capital and its deposits at >= 0."""
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 6,
            "topology": {"kind": "complete", "reciprocal": 0.0},
            "banks": {
                "capital": [50.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                "target_leverage": [10.0, 2.0, 2.0, 2.0, 2.0, 2.0],
                "interbank_ratio": 0.4,
            },
        }
    )
    for seed in range(10):
        s = initial_state(cfg, np.random.default_rng(seed))
        bs = balance_sheet(s)
        np.testing.assert_allclose(bs["assets"][0], s.target_leverage[0] * s.equity0[0])
        assert (bs["ib_liab"][0] <= bs["assets"][0] - bs["equity"][0] + 1e-9).all()
