"""``Event`` serialisation and ``StepRecord.events``: plain Python values, the key order of the
JSON line, the per-type order of ``EVENT_TYPES``, and the step, world and columns of each
expanded event, for per-bank rows and per-world masks alike."""

from __future__ import annotations

import json

import numpy as np

from rudra_env.actions import KIND_NAMES
from rudra_env.core import StepRecord
from rudra_env.core.events import Event


def test_event_to_dict_turns_numpy_values_into_plain_python_all_the_way_down():
    ev = Event(
        "default",
        3,
        1,
        {
            "bank": np.int64(2),
            "prices": np.array([1.0, 2.0]),
            "nested": {"a": np.float64(0.5), "b": [np.int64(4)]},
            "pair": (np.int64(1), 2),
        },
    )
    d = ev.to_dict()
    assert d == {
        "type": "default",
        "step": 3,
        "world": 1,
        "bank": 2,
        "prices": [1.0, 2.0],
        "nested": {"a": 0.5, "b": [4]},
        "pair": [1, 2],
    }
    assert type(d["bank"]) is int
    assert type(d["nested"]["a"]) is float and type(d["nested"]["b"][0]) is int
    assert type(d["pair"][0]) is int


def test_event_to_json_keeps_type_step_world_first():
    ev = Event("default", 3, 1, {"bank": np.int64(2), "amount": np.float64(1.5)})
    line = ev.to_json()
    assert line == '{"type": "default", "step": 3, "world": 1, "bank": 2, "amount": 1.5}'
    assert json.loads(line) == ev.to_dict()


def _record() -> StepRecord:
    # Two worlds at steps 7 and 8. Recorded out of EVENT_TYPES order: a default (world 1),
    # then a transaction (worlds 0 and 1), then a belief cascade in world 1 only.
    rec = StepRecord(step=np.array([7, 8], dtype=np.int64))
    rec.add_rows("default", world=np.array([1]), bank=np.array([0]), round=np.array([1]))
    rec.add_rows(
        "transaction",
        world=np.array([0, 1]),
        bank=np.array([2, 1]),
        kind=np.array([0, 1]),
        amount=np.array([1.5, 2.5]),
    )
    rec.add_world(
        "belief_cascade",
        np.array([False, True]),
        share_shifted=np.array([0.0, 0.75]),
        mean_belief=np.array([0.1, 0.4]),
    )
    return rec


def test_events_expand_world_zero_by_default():
    evs = _record().events()
    assert [(e.type, e.step, e.world) for e in evs] == [("transaction", 7, 0)]
    assert evs[0].data == {"bank": 2, "kind": KIND_NAMES[0], "amount": 1.5}


def test_events_come_in_event_type_order_with_their_step_world_and_columns():
    # EVENT_TYPES order is transaction < default < belief_cascade, whatever the recording order.
    evs = _record().events(1)
    assert [(e.type, e.step, e.world) for e in evs] == [
        ("transaction", 8, 1),
        ("default", 8, 1),
        ("belief_cascade", 8, 1),
    ]
    assert evs[0].data == {"bank": 1, "kind": KIND_NAMES[1], "amount": 2.5}
    assert evs[1].data == {"bank": 0, "round": 1}
    assert evs[2].data == {"share_shifted": 0.75, "mean_belief": 0.4}  # no "mask"
    assert type(evs[2].data["share_shifted"]) is float
