"""Typed event records.

Event types, in the order they occur within a step: ``step_start``, ``shock``, ``capital_added``,
``bank_removed``, ``transaction``, ``forced_sale``, ``profit_booking``, ``margin_call``,
``default``, ``cascade``, ``belief_cascade``, ``step_end``; plus ``init`` after reset and
``complete`` at the episode's end. ``shock``, ``forced_sale`` (units sold to meet a loan call, a
deposit run, an overdraft or a failed bank's liquidator), ``margin_call`` and ``belief_cascade``
extend DESIGN section 11's list.

Within a step, events are grouped by type in the order of ``EVENT_TYPES`` (each ``default``
and ``cascade`` carries its cascade round; each ``forced_sale`` its reason).

The batched core records events compactly — one record per event *type* per step, holding arrays
over (world, bank) — so that stepping 1024 worlds does not build a million Python objects.
``StepRecord.events(world)`` expands them into ``Event`` objects on demand.

A ``transaction`` names its action kind (``LEND``, ``BORROW``, ``INVEST``, ``DIVEST``), its
``target`` (counterparty bank for LEND/BORROW, market index for INVEST/DIVEST), ``size`` level
fraction and ``amount`` in currency.

Every movement of money across the banking system's boundary carries an amount in its event
(``outside_flow``: cash that left the banks, negative when it entered), so conservation can be
checked from the log alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rudra_env.actions import KIND_NAMES

__all__ = ["EVENT_TYPES", "Event", "StepRecord"]

EVENT_TYPES = (
    "init",
    "step_start",
    "shock",
    "capital_added",
    "bank_removed",
    "transaction",
    "forced_sale",
    "profit_booking",
    "margin_call",
    "default",
    "cascade",
    "belief_cascade",
    "step_end",
    "complete",
)


_RANK = {t: k for k, t in enumerate(EVENT_TYPES)}


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True)
class Event:
    """One typed record: ``type`` (one of EVENT_TYPES), ``step``, ``world`` and its data."""

    type: str
    step: int
    world: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "step": self.step, "world": self.world, **_plain(self.data)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)


@dataclass
class StepRecord:
    """Compact events of one batched step.

    ``per_bank[type]`` maps to columns of equal length with a ``world`` column: one row per event
    (e.g. per transaction). ``per_world[type]`` holds (B,)-shaped columns plus a ``mask`` (B,) of
    the worlds where the event happened. ``ordered`` lists types in occurrence order.
    """

    step: np.ndarray
    """(B,) step number each world reached."""
    per_bank: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    per_world: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    ordered: list[str] = field(default_factory=list)

    def add_rows(self, type_: str, **cols: np.ndarray) -> None:
        """Append rows (columns of the same length along axis 0, including ``world``)."""
        if not len(cols["world"]):
            return
        if type_ in self.per_bank:
            old = self.per_bank[type_]
            self.per_bank[type_] = {k: np.concatenate([old[k], v]) for k, v in cols.items()}
        else:
            self.per_bank[type_] = cols
            self.ordered.append(type_)

    def add_world(self, type_: str, mask: np.ndarray, **cols: np.ndarray) -> None:
        """Record a per-world event in the worlds where ``mask`` is true."""
        if not np.count_nonzero(mask):
            return
        self.per_world[type_] = {"mask": mask, **cols}
        self.ordered.append(type_)

    @classmethod
    def concat(cls, records: list[StepRecord], offsets: list[int]) -> StepRecord:
        """One record for consecutive chunks of worlds (chunk k's world 0 is ``offsets[k]``)."""
        sizes = [len(r.step) for r in records]
        out = cls(step=np.concatenate([r.step for r in records]))
        for r in records:
            for t in r.ordered:
                if t not in out.ordered:
                    out.ordered.append(t)
        for t in out.ordered:
            if any(t in r.per_bank for r in records):
                tables = [
                    (r.per_bank[t], off)
                    for r, off in zip(records, offsets, strict=True)
                    if t in r.per_bank
                ]
                keys = list(tables[0][0])
                out.per_bank[t] = {
                    k: np.concatenate(
                        [tab[k] + off if k == "world" else tab[k] for tab, off in tables]
                    )
                    for k in keys
                }
            else:
                template = next(r.per_world[t] for r in records if t in r.per_world)
                cols = {k: [] for k in template}
                for r, size in zip(records, sizes, strict=True):
                    src = r.per_world.get(t)
                    for k, v in template.items():
                        cols[k].append(
                            src[k]
                            if src is not None
                            else np.zeros((size,) + v.shape[1:], dtype=v.dtype)
                        )
                out.per_world[t] = {k: np.concatenate(v) for k, v in cols.items()}
        return out

    def events(self, world: int = 0) -> list[Event]:
        """Expand this step's events of one world into ``Event`` objects, in order."""
        step = int(self.step[world])
        out: list[Event] = []
        for type_ in sorted(self.ordered, key=_RANK.__getitem__):
            if type_ in self.per_bank:
                cols = self.per_bank[type_]
                rows = np.nonzero(cols["world"] == world)[0]
                for r in rows:
                    data = {k: _plain(v[r]) for k, v in cols.items() if k != "world"}
                    if type_ == "transaction":
                        data["kind"] = KIND_NAMES[data["kind"]]
                    elif type_ == "cascade":
                        data = {
                            "round": data["round"],
                            "banks": self._round_defaults(world, data["round"]),
                            "prices": data["prices"],
                        }
                    out.append(Event(type_, step, world, data))
            else:
                cols = self.per_world[type_]
                if cols["mask"][world]:
                    out.append(
                        Event(
                            type_,
                            step,
                            world,
                            {k: _plain(v[world]) for k, v in cols.items() if k != "mask"},
                        )
                    )
        return out

    def _round_defaults(self, world: int, rnd: int) -> list[int]:
        """Banks of the ``default`` rows of one world and cascade round."""
        d = self.per_bank["default"]
        return d["bank"][(d["world"] == world) & (d["round"] == rnd)].tolist()
