"""``rudra_env.rudra_v1``: PettingZoo's module form (``env``, ``parallel_env``, ``raw_env``)."""

from __future__ import annotations

from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

import rudra_env
from rudra_env import rudra_v1
from rudra_env.environment import RudraParallelEnv


def test_the_module_exposes_the_three_factories():
    assert set(rudra_v1.__all__) >= {"env", "parallel_env", "raw_env"}
    par = rudra_v1.parallel_env(num_banks=4)
    raw = rudra_v1.raw_env(num_banks=4)
    wrapped = rudra_v1.env(num_banks=4)
    assert isinstance(par, ParallelEnv) and isinstance(par, RudraParallelEnv)
    assert isinstance(raw, AECEnv) and isinstance(raw, rudra_v1.RudraAECEnv)
    assert not isinstance(raw, OrderEnforcingWrapper)
    assert isinstance(wrapped, OrderEnforcingWrapper)
    assert isinstance(wrapped.env, rudra_v1.RudraAECEnv)
    assert par.metadata["name"] == raw.metadata["name"] == "rudra_v1"


def test_factories_take_config_render_mode_and_overrides(root):
    path = root / "configs" / "env" / "small.yaml"
    for make in (rudra_v1.env, rudra_v1.raw_env, rudra_v1.parallel_env):
        e = make(path, render_mode="ansi", max_steps=7)
        assert e.render_mode == "ansi"
        assert e.unwrapped.config.max_steps == 7


def test_package_factories_are_the_modules():
    assert type(rudra_env.env(num_banks=3)) is type(rudra_v1.env(num_banks=3))
    assert type(rudra_env.parallel_env(num_banks=3)) is RudraParallelEnv


def test_module_envs_pass_pettingzoo_api_tests():
    api_test(rudra_v1.env(num_banks=5, max_steps=8), num_cycles=10)
    api_test(rudra_v1.raw_env(num_banks=5, max_steps=8), num_cycles=10)
    parallel_api_test(rudra_v1.parallel_env(num_banks=5, max_steps=8), num_cycles=10)
