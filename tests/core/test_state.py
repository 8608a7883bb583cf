"""The state's plumbing: views, repeats, the dense belief view, the step's shared draws, event
records — each checked against a plain recomputation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny import config, params, state

from rudra_env.core import Event, StepNoise, initial_state
from rudra_env.core.beliefs import belief_entropy, binary_entropy


def _batch(worlds: int = 3):
    cfg = config(n=4, k=2)
    return initial_state(cfg, np.random.default_rng(0), worlds=worlds)


def test_repeat_puts_each_world_c_times_in_a_row():
    s = _batch()
    r = s.repeat(2)
    assert r.shape[0] == 6
    for name, arr in r.arrays().items():
        mine = getattr(s, name)
        assert np.array_equal(arr[0::2], mine) and np.array_equal(arr[1::2], mine), name


def test_head_is_a_view_of_the_first_worlds_with_their_slot_index():
    s = _batch()
    h = s.head(2)
    assert h.shape[0] == 2
    h.cash[1, 0] = 123.0  # a view: writes land in s
    assert s.cash[1, 0] == 123.0
    fresh = type(s)(**{k: v.copy() for k, v in h.arrays().items()})
    for f in ("valid", "cp", "bank", "out", "into", "mirror", "count"):
        assert np.array_equal(getattr(h.slot_index, f), getattr(fresh.slot_index, f)), f


def test_belief_matrix_spreads_slot_beliefs_and_leaves_nan_elsewhere():
    p = params(config(n=3, k=2))
    s = state(
        p,
        cash=[1.0, 1.0, 1.0],
        slots=[[1, -1], [0, 2], [1, 0]],
        belief=[[0.3, 0.0], [0.1, 0.2], [0.4, 0.5]],
    )
    m = s.belief_matrix()[0]
    want = np.array([[np.nan, 0.3, np.nan], [0.1, np.nan, 0.2], [0.5, 0.4, np.nan]])
    assert np.array_equal(np.isnan(m), np.isnan(want))
    assert m[~np.isnan(m)].tolist() == want[~np.isnan(want)].tolist()


def test_belief_entropy_is_the_mean_binary_entropy_over_used_slots():
    # H(0.5) = 1 bit, H(0.25) = -(0.25 log2 0.25 + 0.75 log2 0.75) = 0.811278..., padded slots
    # are left out of the mean; H(0) and H(1) are 0 (clipped at 1e-12).
    h = -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))
    assert binary_entropy(np.array([0.5, 0.25, 0.0, 1.0])) == pytest.approx(
        [1.0, h, 0.0, 0.0], abs=1e-10
    )
    p = params(config(n=3, k=2))
    s = state(
        p,
        cash=[1.0, 1.0, 1.0],
        slots=[[1, -1], [0, 2], [1, 0]],
        belief=[[0.5, 0.9], [0.5, 0.25], [1.0, 0.0]],
    )
    assert belief_entropy(s)[0] == pytest.approx([1.0, (1.0 + h) / 2, 0.0], abs=1e-10)


def test_step_noise_repeat_matches_state_repeat():
    rng = np.random.default_rng(1)
    noise = StepNoise.draw(rng, 2, 4, 3, 5)
    assert noise.market.shape == (2, 3) and noise.signal.shape == (2, 4, 5)
    assert noise.signal.dtype == np.float32
    r = noise.repeat(3)
    assert np.array_equal(r.market, np.repeat(noise.market, 3, axis=0))
    assert np.array_equal(r.signal, np.repeat(noise.signal, 3, axis=0))
    assert np.array_equal(noise.chunk(1, 2).market, noise.market[1:2])


def test_event_to_dict_and_to_json_are_plain():
    e = Event(
        "default",
        3,
        1,
        {"bank": np.int64(2), "recovery": np.float64(0.5), "prices": np.array([1.0, 2.0])},
    )
    d = e.to_dict()
    assert d == {
        "type": "default",
        "step": 3,
        "world": 1,
        "bank": 2,
        "recovery": 0.5,
        "prices": [1.0, 2.0],
    }
    assert json.loads(e.to_json()) == d
    assert list(json.loads(e.to_json())) == ["type", "step", "world", "bank", "recovery", "prices"]


def test_put_of_other_slots_rebuilds_the_slot_indices():
    """A reset writes another network's slots into a world: every cached index (the whole
    state's and each chunk's) must follow, and writing the same slots back keeps the cache."""
    s = _batch(worlds=2)
    before = s.slot_index
    chunk = s.view(0, 1).slot_index
    other = initial_state(config(n=4, k=2), np.random.default_rng(7), worlds=1)
    same = s.take(np.array([1]))
    s.put(np.array([1]), same)
    assert s.slot_index is before  # the same slots: the cache stands
    s.put(np.array([0]), other)
    assert not np.array_equal(other.slots[0], _batch(worlds=2).slots[0])
    fresh = type(s)(**{k: v.copy() for k, v in s.arrays().items()}).slot_index
    for f in ("valid", "cp", "bank", "out", "into", "mirror", "count"):
        assert np.array_equal(getattr(s.slot_index, f), getattr(fresh, f)), f
        assert np.array_equal(getattr(s.view(0, 1).slot_index, f), getattr(fresh, f)[:1]), f
    assert s.view(0, 1).slot_index is not chunk
