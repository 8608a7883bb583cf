"""The batched core: worlds are independent, threaded chunks change nothing, copies are pure."""

from __future__ import annotations

import dataclasses

import numpy as np

from rudra_env.config import EnvConfig
from rudra_env.core import StepNoise, action_masks, initial_state, step
from rudra_env.core.params import Params

CFG = EnvConfig.from_dict(
    {
        "num_banks": 12,
        "max_steps": 1000,
        "max_counterparties": 4,
        "topology": {"kind": "erdos_renyi", "p": 0.4},
        "banks": {"market_ratio": 0.3},
        "scenario": {
            "shocks": [{"type": "market_crash", "magnitude": 0.7, "start": 3, "duration": 2}]
        },
    }
)


def _actions(s, p, rng):
    masks = action_masks(s, p)
    return (rng.random(masks.shape) * masks).argmax(axis=-1)


def _assert_same(a, b):
    """Same worlds up to floating-point rounding: numpy's SIMD reductions may add in another
    order when a chunk's arrays start at another memory offset (differences ~1e-14)."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x.dtype.kind == "f":
            assert np.allclose(x, y, rtol=1e-12, atol=1e-12), f.name
        else:
            assert np.array_equal(x, y), f.name


def test_threaded_chunks_match_a_single_thread():
    p = Params.from_config(CFG)
    s1 = initial_state(CFG, np.random.default_rng(0), worlds=300)
    s2 = s1.copy()
    rng1, rng2, arng = (
        np.random.default_rng(1),
        np.random.default_rng(1),
        np.random.default_rng(2),
    )
    for _ in range(6):
        acts = _actions(s1, p, arng)
        s1, o1 = step(s1, acts, p, rng1, inplace=True)
        s2, o2 = step(s2, acts, p, rng2, inplace=True, workers=2)
        _assert_same(s1, s2)
        assert np.allclose(o1.rewards, o2.rewards, rtol=1e-12, atol=1e-12)
        for w in (0, 150, 299):
            e1, e2 = o1.record.events(w), o2.record.events(w)
            assert [(e.type, e.data.get("bank")) for e in e1] == [
                (e.type, e.data.get("bank")) for e in e2
            ]
    assert (~s1.alive).any(), "the crash should have caused defaults somewhere"


def test_each_world_evolves_as_if_alone():
    """World k of a batch equals the same world stepped alone with the same draws."""
    p = Params.from_config(CFG)
    batch = initial_state(CFG, np.random.default_rng(5), worlds=4)
    alone = batch.take(slice(2, 3))
    arng = np.random.default_rng(3)
    for _ in range(5):
        acts = _actions(batch, p, arng)
        noise = StepNoise.draw(np.random.default_rng(arng.integers(1 << 30)), 4, 12, 2, p.K)
        batch, _ = step(batch, acts, p, noise=noise, inplace=True)
        alone, _ = step(
            alone, acts[2:3], p, noise=StepNoise(noise.market[2:3], noise.signal[2:3]), inplace=True
        )
    assert alone.equal(batch.take(slice(2, 3)))


def test_step_does_not_touch_its_input_unless_inplace():
    p = Params.from_config(CFG)
    s = initial_state(CFG, np.random.default_rng(0), worlds=2)
    before = s.copy()
    step(s, _actions(s, p, np.random.default_rng(0)), p, np.random.default_rng(0))
    assert s.equal(before)
