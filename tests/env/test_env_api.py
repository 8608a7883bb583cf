"""PettingZoo's own compliance tests over every YAML in configs/env/ (and each variant)."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import (
    api_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    state_test,
)

import rudra_env
from tests.conftest import env_config_cases

CASES = env_config_cases()


def _short(cfg):
    """Keep the big presets quick: fewer steps, same network and dynamics."""
    return cfg.with_overrides({"max_steps": min(cfg.max_steps, 30)})


@pytest.mark.parametrize("cfg", CASES)
def test_parallel_api(cfg):
    parallel_api_test(rudra_env.parallel_env(_short(cfg)), num_cycles=40)


@pytest.mark.parametrize("cfg", CASES)
def test_aec_api(cfg):
    api_test(rudra_env.env(_short(cfg)), num_cycles=20)


@pytest.mark.parametrize("cfg", CASES)
def test_parallel_seed(cfg):
    parallel_seed_test(lambda: rudra_env.parallel_env(_short(cfg)), num_cycles=20)


def test_render_and_state():
    cfg = rudra_env.EnvConfig(num_banks=8, max_steps=10)
    render_test(lambda render_mode=None: rudra_env.env(cfg, render_mode=render_mode))
    state_test(rudra_env.env(cfg), rudra_env.parallel_env(cfg))


def test_render_modes_output():
    env = rudra_env.parallel_env(num_banks=6, render_mode="ansi")
    env.reset(seed=1)
    text = env.render()
    assert "equity" in text and text.count("\n") >= 7
    env = rudra_env.parallel_env(num_banks=6, render_mode="rgb_array")
    env.reset(seed=1)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.std() > 0  # something was drawn
    env.close()


def test_spaces_match_documented_sizes():
    env = rudra_env.parallel_env(num_banks=10, max_counterparties=4)
    k, m, s = 4, 2, 3
    assert env.action_space("bank_0").n == 1 + 2 * k * s + 2 * m * s
    assert env.observation_space("bank_0")["observation"].shape == (10 + 5 * k + 2 * m + 2,)
    assert env.state_space.shape == (4 * 10 + 2 * m + 1,)
