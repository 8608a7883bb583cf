"""``step``'s entry checks and its choice between one thread and chunks: the action range (both
ends), the dtype of the actions, the missing-randomness message, and when ``workers`` applies."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest
from tiny import config, params, run, state

from rudra_env.core import StepNoise, step
from rudra_env.errors import ActionError

step_module = importlib.import_module("rudra_env.core.step")


def _world():
    p = params(config(n=3))
    return state(p, cash=[1.0, 2.0, 3.0], external=[1.0, 1.0, 1.0]), p


def _noise(p, b: int = 1) -> StepNoise:
    return StepNoise(market=np.zeros((b, p.M)), signal=np.full((b, p.N, p.K), 0.5, np.float32))


@pytest.mark.parametrize("bad", [-1, "A"])
def test_actions_outside_the_range_are_refused(bad):
    # Valid flat actions are 0 .. A - 1 (A = layout.n); A itself and -1 are both refused.
    s, p = _world()
    a = np.zeros((1, 3), dtype=np.int64)
    a[0, 1] = p.layout.n if bad == "A" else bad
    with pytest.raises(ActionError):
        step(s, a, p, noise=_noise(p))


def test_the_last_action_is_accepted():
    s, p = _world()
    a = np.full((1, 3), p.layout.n - 1, dtype=np.int64)
    step(s, a, p, noise=_noise(p))


def test_int32_actions_are_taken_as_int64():
    # Three banks: an int32 (1, 3) array cannot be viewed as uint64; step converts first.
    s, p = _world()
    s1, o1 = step(s, np.zeros((1, 3), dtype=np.int32), p, noise=_noise(p))
    s2, o2 = step(s, np.zeros((1, 3), dtype=np.int64), p, noise=_noise(p))
    assert np.array_equal(s1.cash, s2.cash) and np.array_equal(o1.rewards, o2.rewards)


def test_step_without_rng_or_noise_says_so():
    s, p = _world()
    with pytest.raises(ValueError, match=r"^step\(\) needs rng or noise: got neither$"):
        step(s, np.zeros((1, 3), dtype=np.int64), p)


def _spy(monkeypatch):
    names: list[tuple[str, int]] = []
    real = step_module.transition

    def spy(s, actions, p, noise, masks=None):
        names.append((threading.current_thread().name, s.shape[0]))
        return real(s, actions, p, noise, masks)

    monkeypatch.setattr(step_module, "transition", spy)
    return names


def test_one_worker_by_default_even_for_many_worlds(monkeypatch):
    # 256 worlds could make two chunks of 128, but workers defaults to 1: one call, this thread.
    names = _spy(monkeypatch)
    s, p = _world()
    big = s.take(np.zeros(256, dtype=np.int64))
    step(big, np.zeros((256, 3), dtype=np.int64), p, noise=_noise(p, 256))
    assert names == [(threading.current_thread().name, 256)]


def test_too_few_worlds_for_two_chunks_run_on_one_thread(monkeypatch):
    # 200 worlds, workers=2: 200 // 128 = 1 chunk of at least 128, so one call on this thread.
    names = _spy(monkeypatch)
    s, p = _world()
    big = s.take(np.zeros(200, dtype=np.int64))
    step(big, np.zeros((200, 3), dtype=np.int64), p, noise=_noise(p, 200), workers=2)
    assert names == [(threading.current_thread().name, 200)]


def test_noise_draw_takes_normals_then_float32_uniforms_from_the_one_generator():
    got = StepNoise.draw(np.random.default_rng(5), 2, 3, 1, 2)
    rng = np.random.default_rng(5)
    market = rng.standard_normal((2, 1))
    signal = rng.random((2, 3, 2), dtype=np.float32)
    assert got.market.shape == (2, 1) and np.array_equal(got.market, market)
    assert got.signal.dtype == np.float32 and np.array_equal(got.signal, signal)


def test_noise_repeat_repeats_each_world_consecutively():
    # Two worlds, two markets, two banks with one slot each; each world's rows repeated 3 times.
    nz = StepNoise(
        market=np.array([[1.0, 2.0], [3.0, 4.0]]),
        signal=np.array([[[0.1], [0.2]], [[0.3], [0.4]]], dtype=np.float32),
    )
    r = nz.repeat(3)
    assert r.market.tolist() == [[1.0, 2.0]] * 3 + [[3.0, 4.0]] * 3
    assert r.signal.shape == (6, 2, 1) and r.signal.dtype == np.float32
    assert r.signal[:, :, 0].tolist() == (
        [pytest.approx([0.1, 0.2])] * 3 + [pytest.approx([0.3, 0.4])] * 3
    )


def test_step_end_summarises_the_world_after_the_cascade():
    # Bank 1: cash 1, deposits 3: equity -2, insolvent; it falls in round 1 and pays its
    # depositors 1 of 3 (recovery 1/3): 1 leaves the banking system (outside +1). Bank 0
    # (cash 10, external 10) is untouched: alive 1, total equity 20, bank cash 10; price 10.
    p = params(config(n=2))
    s = state(p, cash=[10.0, 1.0], external=[10.0, 0.0], deposits=[0.0, 3.0])
    _, out = run(s, p)
    (end,) = [e.data for e in out.record.events(0) if e.type == "step_end"]
    assert end == {
        "alive": 1,
        "defaults": 1,
        "cascade_rounds": 1,
        "total_equity": 20.0,
        "prices": [10.0],
        "outside": 1.0,
        "bank_cash": 10.0,
    }
