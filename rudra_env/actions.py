"""The action kinds and the flat action space: one ``Discrete(A)`` over every (kind, target, size).

Every action kind is declared once, in ``KINDS``; the flat layout, ``encode``/``decode``, the
action masks, the dispatch to the core's executors and the agents' reading of observations all
derive from it. Adding a kind means one ``ActionKind`` entry here plus its validity rule and
executor in ``rudra_env.core.execution`` (and their tests).

With K counterparty slots, M markets and S size levels, ``A = 1 + 2*K*S + 2*M*S``. The layout
follows ``KINDS``: each kind takes one block of ``targets * S`` indices (HOLD takes one), and
within a block the index is ``target * S + size``:

==========  ==============================  ========================================
index       action                          meaning
==========  ==============================  ========================================
0           HOLD                            nothing
1 + k*S+s   LEND (INCREASE_LENDING)         lend ``size[s] * cash`` to slot k
1+KS+k*S+s  BORROW (DECREASE_LENDING)       call back ``size[s] * loans[i, slot k]``
1+2KS+m*S+s INVEST (INVEST_MARKET)          buy ``size[s] * cash`` of market m
1+2KS+MS+…  DIVEST (DIVEST_MARKET)          sell ``size[s] * units[i, m]``
==========  ==============================  ========================================

``encode`` and ``decode`` convert both ways (scalars or integer arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np

from rudra_env.errors import ActionError

__all__ = [
    "HOLD",
    "LEND",
    "BORROW",
    "INVEST",
    "DIVEST",
    "KINDS",
    "KIND_NAMES",
    "ActionKind",
    "ActionLayout",
    "Decoded",
    "encode",
    "decode",
]


@dataclass(frozen=True)
class ActionKind:
    """One kind of action: its code (its position in ``KINDS``), names and target axis."""

    code: int
    """Index in ``KINDS`` (and the ``kind`` value of ``decode``)."""
    name: str
    """Canonical name, as in events (``transaction.kind``)."""
    aliases: tuple[str, ...]
    """Other accepted names (the seed's long names)."""
    target: Literal["none", "slot", "market"]
    """What the action is aimed at: nothing (HOLD), a counterparty slot or a market."""
    sized_by: str
    """What the size level is a fraction of (documentation; ``""`` for HOLD)."""


KINDS: tuple[ActionKind, ...] = (
    ActionKind(0, "HOLD", (), "none", ""),
    ActionKind(1, "LEND", ("INCREASE_LENDING",), "slot", "cash"),
    ActionKind(2, "BORROW", ("DECREASE_LENDING",), "slot", "the loan to the slot's bank"),
    ActionKind(3, "INVEST", ("INVEST_MARKET",), "market", "cash"),
    ActionKind(4, "DIVEST", ("DIVEST_MARKET",), "market", "units held in the market"),
)
"""Every action kind, in layout order."""

HOLD, LEND, BORROW, INVEST, DIVEST = (k.code for k in KINDS)
KIND_NAMES = tuple(k.name for k in KINDS)
_BY_NAME = {name: k.code for k in KINDS for name in (k.name, *k.aliases)}
assert all(k.code == i for i, k in enumerate(KINDS)), "KINDS codes must be their positions"


class Decoded(NamedTuple):
    """A decoded action: ``kind`` code, ``target`` (slot or market index), ``size`` level index."""

    kind: np.ndarray | int
    target: np.ndarray | int
    size: np.ndarray | int


@dataclass(frozen=True)
class ActionLayout:
    """Sizes of the flat action space: K slots, M markets, S size levels."""

    K: int
    M: int
    S: int

    def targets(self, kind: int) -> int:
        """Number of targets of a kind: 1 for HOLD, K for slot kinds, M for market kinds."""
        return {"none": 1, "slot": self.K, "market": self.M}[KINDS[kind].target]

    def block(self, kind: int) -> int:
        """Number of flat indices of a kind: ``targets * S`` (1 for HOLD)."""
        return 1 if KINDS[kind].target == "none" else self.targets(kind) * self.S

    @cached_property
    def n(self) -> int:
        """A = 1 + 2KS + 2MS."""
        return sum(self.block(k.code) for k in KINDS)

    @cached_property
    def offsets(self) -> np.ndarray:
        """First index of each kind, indexed by kind code (read-only)."""
        sizes = [self.block(k.code) for k in KINDS]
        out = np.concatenate(([0], np.cumsum(sizes[:-1]))).astype(np.int64)
        out.flags.writeable = False
        return out

    def encode(self, kind: int | str, target: int = 0, size: int = 0) -> int:
        """Flat index of (kind, target, size); kind is a code or a name such as ``"LEND"``."""
        if isinstance(kind, str):
            if kind.upper() not in _BY_NAME:
                raise ActionError(
                    f"kind = {kind!r} is not an action: expected one of {sorted(_BY_NAME)}"
                )
            kind = _BY_NAME[kind.upper()]
        if not (isinstance(kind, int | np.integer) and 0 <= kind < len(KINDS)):
            raise ActionError(
                f"kind = {kind!r} is not an action: expected a code in 0..{len(KINDS) - 1}"
            )
        spec = KINDS[kind]
        if spec.target == "none":
            return int(self.offsets[kind])
        limit = self.targets(kind)
        if not 0 <= target < limit:
            raise ActionError(f"target = {target} is not a {spec.target}: expected 0..{limit - 1}")
        if not 0 <= size < self.S:
            raise ActionError(f"size = {size} is not a size level: expected 0..{self.S - 1}")
        return int(self.offsets[kind] + target * self.S + size)

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kind, target, size) of every flat action, each an (A,) int64 lookup table."""
        a = np.arange(self.n)
        offs = self.offsets
        kind = np.searchsorted(offs[1:], a, side="right")
        target, size = np.divmod(a - offs[kind], self.S)
        untargeted = np.array([k.target == "none" for k in KINDS])[kind]
        target[untargeted] = 0
        size[untargeted] = 0
        return kind, target, size

    def decode(self, a: np.ndarray | int) -> Decoded:
        """(kind, target, size) of flat action(s) ``a`` (any integer shape)."""
        arr = np.asarray(a, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n):
            bad = arr[(arr < 0) | (arr >= self.n)].flat[0]
            raise ActionError(
                f"action = {bad} is outside the action space: expected 0..{self.n - 1}"
            )
        kind, target, size = (t[arr] for t in self.tables)
        if np.ndim(a) == 0:
            return Decoded(int(kind), int(target), int(size))
        return Decoded(kind, target, size)

    def columns(self, kind: int, size: int) -> slice:
        """The flat indices of one kind at one size level, one per target (a strided slice):
        ``masks[..., layout.columns(LEND, s)]`` is (..., K)."""
        start = int(self.offsets[kind]) + size
        return slice(start, start + self.targets(kind) * self.S, self.S)


def encode(kind: int | str, target: int = 0, size: int = 0, *, K: int, M: int, S: int) -> int:
    """Flat index of (kind, target, size) in the layout (K, M, S); see ``ActionLayout``."""
    return ActionLayout(K, M, S).encode(kind, target, size)


def decode(a: np.ndarray | int, *, K: int, M: int, S: int) -> Decoded:
    """(kind, target, size) of flat action(s) ``a`` in the layout (K, M, S)."""
    return ActionLayout(K, M, S).decode(a)
