"""The scenario presets are severe, but the banks' play decides how they end: the default rates
of all-HOLD, all-random and all-heuristic populations (same 30 worlds, same draws) span at least
10 points, and the best of them loses fewer than 60% of its banks."""

from __future__ import annotations

import pytest

from agents import HeuristicAgent, HoldAgent, RandomAgent, run_episodes
from rudra_env.config import load_variants


@pytest.mark.parametrize("preset", ["bank_run", "market_crash", "ring_vs_complete:ring"])
def test_play_decides_the_outcome(root, preset: str) -> None:
    name, _, variant = preset.partition(":")
    cfg = load_variants(root / "configs" / "env" / f"{name}.yaml")[variant or "default"]
    rates = {
        label: float(run_episodes(cfg, agent, worlds=30).default_rate.mean())
        for label, agent in (
            ("hold", HoldAgent()),
            ("random", RandomAgent(seed=0)),
            ("heuristic", HeuristicAgent()),
        )
    }
    assert max(rates.values()) - min(rates.values()) >= 0.10, rates
    assert min(rates.values()) < 0.60, rates
    assert max(rates.values()) >= 0.20, f"not severe: {rates}"
