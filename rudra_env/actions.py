"""The flat action space: one ``Discrete(A)`` over every (kind, target, size) combination.

``A = 1 + 2*K*S + 2*M*S`` with K counterparty slots, M markets and S size levels. Layout:

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
from typing import NamedTuple

import numpy as np

from rudra_env.errors import ActionError

__all__ = [
    "HOLD",
    "LEND",
    "BORROW",
    "INVEST",
    "DIVEST",
    "KIND_NAMES",
    "ActionLayout",
    "Decoded",
    "encode",
    "decode",
]

HOLD, LEND, BORROW, INVEST, DIVEST = 0, 1, 2, 3, 4
KIND_NAMES = ("HOLD", "LEND", "BORROW", "INVEST", "DIVEST")
_ALIASES = {
    "HOLD": HOLD,
    "LEND": LEND,
    "INCREASE_LENDING": LEND,
    "BORROW": BORROW,
    "DECREASE_LENDING": BORROW,
    "INVEST": INVEST,
    "INVEST_MARKET": INVEST,
    "DIVEST": DIVEST,
    "DIVEST_MARKET": DIVEST,
}


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

    @property
    def n(self) -> int:
        """A = 1 + 2KS + 2MS."""
        return 1 + 2 * self.K * self.S + 2 * self.M * self.S

    @property
    def offsets(self) -> np.ndarray:
        """First index of each kind, indexed by kind code (HOLD..DIVEST)."""
        ks, ms = self.K * self.S, self.M * self.S
        return np.array([0, 1, 1 + ks, 1 + 2 * ks, 1 + 2 * ks + ms], dtype=np.int64)

    def encode(self, kind: int | str, target: int = 0, size: int = 0) -> int:
        """Flat index of (kind, target, size); kind is a code or a name such as ``"LEND"``."""
        if isinstance(kind, str):
            if kind.upper() not in _ALIASES:
                raise ActionError(
                    f"kind = {kind!r} is not an action: expected one of {sorted(_ALIASES)}"
                )
            kind = _ALIASES[kind.upper()]
        if kind == HOLD:
            return 0
        limit = self.K if kind in (LEND, BORROW) else self.M
        if kind not in (LEND, BORROW, INVEST, DIVEST):
            raise ActionError(f"kind = {kind!r} is not an action: expected a code in 0..4")
        if not 0 <= target < limit:
            what = "slot" if kind in (LEND, BORROW) else "market"
            raise ActionError(f"target = {target} is not a {what}: expected 0..{limit - 1}")
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
        target[kind == HOLD] = 0
        size[kind == HOLD] = 0
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


def encode(kind: int | str, target: int = 0, size: int = 0, *, K: int, M: int, S: int) -> int:
    """Flat index of (kind, target, size) in the layout (K, M, S); see ``ActionLayout``."""
    return ActionLayout(K, M, S).encode(kind, target, size)


def decode(a: np.ndarray | int, *, K: int, M: int, S: int) -> Decoded:
    """(kind, target, size) of flat action(s) ``a`` in the layout (K, M, S)."""
    return ActionLayout(K, M, S).decode(a)
