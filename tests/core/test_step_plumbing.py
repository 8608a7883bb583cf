"""The step's plumbing: the threaded chunked step (one chunk per worker on one named pool, every
output concatenated in world order), ``StepRecord.concat`` of chunk records, and the per-chunk
slot-index cache of ``NetworkState.view`` — each checked against the single-threaded step or a
plain recomputation."""

from __future__ import annotations

import dataclasses
import importlib
import threading

import numpy as np
import pytest

from rudra_env.config import EnvConfig
from rudra_env.core import StepRecord, action_masks, initial_state, step
from rudra_env.core.params import Params
from rudra_env.core.state import SlotIndex

# Small banks, many worlds: workers=2 needs at least 2 * 128 worlds. The crash makes defaults
# (and so non-trivial ``defaulted``, cascade and belief records) in the first steps.
CFG = EnvConfig.from_dict(
    {
        "num_banks": 5,
        "max_steps": 100,
        "max_counterparties": 3,
        "topology": {"kind": "erdos_renyi", "p": 0.6},
        "banks": {"market_ratio": 0.4},
        "scenario": {
            "shocks": [{"type": "market_crash", "magnitude": 0.8, "start": 1, "duration": 1}]
        },
    }
)
WORLDS = 256
# The module (``rudra_env.core.step`` the attribute is the function).
step_module = importlib.import_module("rudra_env.core.step")


def _actions(s, p, rng):
    masks = action_masks(s, p)
    return (rng.random(masks.shape) * masks).argmax(axis=-1)


def _close(x, y):
    if x.dtype.kind == "f":
        return np.allclose(x, y, rtol=1e-12, atol=1e-12)
    return x.dtype == y.dtype and np.array_equal(x, y)


def test_chunked_step_returns_every_output_of_a_single_thread():
    p = Params.from_config(CFG)
    s1 = initial_state(CFG, np.random.default_rng(0), worlds=WORLDS)
    s2 = s1.copy()
    rng1, rng2, arng = (
        np.random.default_rng(1),
        np.random.default_rng(1),
        np.random.default_rng(2),
    )
    seen_default = False
    for _ in range(2):
        acts = _actions(s1, p, arng)
        s1, o1 = step(s1, acts, p, rng1, inplace=True)
        s2, o2 = step(s2, acts, p, rng2, inplace=True, workers=2)
        for f in dataclasses.fields(o1):
            if f.name in ("record", "balance"):
                continue
            a, b = getattr(o1, f.name), getattr(o2, f.name)
            assert isinstance(b, np.ndarray) and b.shape == a.shape, f.name
            assert _close(a, b), f.name
        assert list(o2.balance) == list(o1.balance)
        for k, v in o1.balance.items():
            assert o2.balance[k].shape == v.shape and _close(v, o2.balance[k]), k
        seen_default |= bool(o1.defaulted.any())
        # Every event of the worlds either side of the chunk boundary, data included.
        for w in (0, WORLDS // 2 - 1, WORLDS // 2, WORLDS - 1):
            e1 = [(e.type, e.step, e.world) for e in o1.record.events(w)]
            assert [(e.type, e.step, e.world) for e in o2.record.events(w)] == e1
    assert seen_default, "the crash should make some bank default"


def test_chunked_step_runs_one_chunk_per_worker_on_one_named_pool(monkeypatch):
    # Spy on the chunk transitions: which thread ran them, on how many worlds.
    calls: list[tuple[str, int, int, int]] = []
    real = step_module.transition

    def spy(s, actions, p, noise):
        calls.append((threading.current_thread().name, s.shape[0], len(actions), len(noise.market)))
        return real(s, actions, p, noise)

    monkeypatch.setattr(step_module, "transition", spy)
    p = Params.from_config(CFG)
    s = initial_state(CFG, np.random.default_rng(0), worlds=WORLDS + 44)
    acts = np.zeros((s.shape[0], s.shape[1]), dtype=np.int64)
    s, _ = step(s, acts, p, np.random.default_rng(1), inplace=True, workers=2)
    pool = step_module._POOLS[2]
    s, _ = step(s, acts, p, np.random.default_rng(1), inplace=True, workers=2)
    assert step_module._POOLS[2] is pool, "the pool of a workers count is made once"
    assert pool._max_workers == 2  # ThreadPoolExecutor keeps its cap here (no public getter)
    assert sorted(c[1:] for c in calls) == [(150, 150, 150)] * 4
    for name, *_ in calls:
        assert name.startswith("rudra-step_"), name


def _record(b: int) -> StepRecord:
    return StepRecord(step=np.full(b, 7, dtype=np.int64))


def test_concat_offsets_worlds_and_fills_missing_per_world_events_with_typed_zeros():
    r1, r2 = _record(2), _record(3)
    r1.add_rows("default", world=np.array([1]), bank=np.array([4]), round=np.array([1]))
    r1.add_world(
        "belief_cascade",
        np.array([False, True]),
        banks=np.array([0, 3]),
        prices=np.array([[1.0, 2.0], [3.0, 4.0]]),
    )
    r2.add_rows("default", world=np.array([0, 2]), bank=np.array([1, 2]), round=np.array([1, 2]))
    out = StepRecord.concat([r1, r2], [0, 2])
    assert out.step.tolist() == [7] * 5
    assert out.ordered == ["default", "belief_cascade"]
    d = out.per_bank["default"]
    assert d["world"].tolist() == [1, 2, 4]
    assert d["bank"].tolist() == [4, 1, 2]
    bc = out.per_world["belief_cascade"]
    assert bc["mask"].dtype == bool and bc["mask"].tolist() == [False, True, False, False, False]
    assert bc["banks"].dtype == np.int64 and bc["banks"].tolist() == [0, 3, 0, 0, 0]
    assert bc["prices"].shape == (5, 2) and bc["prices"][2:].tolist() == [[0.0, 0.0]] * 3
    assert [e.type for e in out.events(1)] == ["default", "belief_cascade"]
    assert [e.type for e in out.events(4)] == ["default"]


def test_concat_needs_one_offset_per_record():
    r1, r2 = _record(1), _record(1)
    r1.add_rows("default", world=np.array([0]), bank=np.array([0]), round=np.array([1]))
    r2.add_rows("default", world=np.array([0]), bank=np.array([1]), round=np.array([1]))
    with pytest.raises(ValueError):
        StepRecord.concat([r1, r2], [0])


def _slot_fields_equal(a: SlotIndex, b: SlotIndex) -> bool:
    return all(
        np.array_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
    )


def test_view_caches_each_chunks_slot_index_until_the_slots_change():
    s = initial_state(CFG, np.random.default_rng(3), worlds=4)
    v1, v2 = s.view(1, 3), s.view(1, 3)
    assert v1.slot_index is v2.slot_index, "one slot index per chunk, built once"
    assert _slot_fields_equal(v1.slot_index, SlotIndex.build(s.slots[1:3]))
    assert s.view(0, 2).slot_index is not v1.slot_index
    # New slots (a new episode's network): the chunk's index is rebuilt from them.
    s.slots = np.roll(s.slots, 1, axis=2)
    v3 = s.view(1, 3)
    assert v3.slot_index is not v1.slot_index
    assert _slot_fields_equal(v3.slot_index, SlotIndex.build(s.slots[1:3]))
    assert s.view(1, 3).slot_index is v3.slot_index


def test_head_shares_the_slot_index_arrays_of_the_full_state():
    s = initial_state(CFG, np.random.default_rng(3), worlds=3)
    h = s.head(2)
    for f in dataclasses.fields(SlotIndex):
        assert np.shares_memory(getattr(h.slot_index, f.name), getattr(s.slot_index, f.name))
