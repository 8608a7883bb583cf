"""Small batched array helpers shared by the mechanisms (numpy only).

Shapes: B worlds, N banks, M markets; F rows of a compact (world, bank) list.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["TOL", "entries", "every_world", "ones", "over_banks", "sum_rows", "value"]

TOL = 1e-9
"""Relative tolerance of the model's comparisons (insolvency, shortfalls, overdrafts)."""


def every_world(b: int) -> np.ndarray:
    """A fresh (B,) all-true mask (``np.ones`` costs several times more for a short array)."""
    out = np.empty(b, dtype=bool)
    out.fill(True)
    return out


def entries(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices, worlds and banks of the true entries of a (B, N) mask, in bank order
    (``x.reshape(-1)[flat]`` gathers them: cheaper than ``x[worlds, banks]``)."""
    flat = mask.reshape(-1).nonzero()[0]
    wi, bi = np.divmod(flat, mask.shape[1])
    return flat, wi, bi


def value(units: np.ndarray, price: np.ndarray) -> np.ndarray:
    """(B, N) ``sum_m units[b, n, m] * price[b, m]`` (a batched matrix-vector product)."""
    return (units @ price[..., None])[..., 0]


def over_banks(weights: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(B, M) ``sum_n weights[b, n] * units[b, n, m]``."""
    return (weights[:, None, :] @ units)[:, 0]


def sum_rows(rows: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """(n, N) sums of the (F, N) ``rows`` by their sorted ``index`` (F,) in 0..n-1 (zeros
    elsewhere).

    Adds the r-th row of every index group in pass r: one pass when each index has one row (the
    common case, one defaulter per world), a few otherwise; ``np.add.at`` and a one-hot product
    are several times slower for rows of this size.
    """
    out = np.zeros((n, rows.shape[1]))
    if index.size < 2 or (index[1:] > index[:-1]).all():  # one row per index
        out[index] = rows
        return out
    start = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    rank = np.arange(index.size) - np.repeat(start, np.diff(np.append(start, index.size)))
    for r in range(int(rank.max()) + 1):
        at = rank == r
        out[index[at]] += rows[at]
    return out


@functools.cache
def ones(k: int) -> np.ndarray:
    """A read-only (k,) vector of ones (row sums as matrix-vector products)."""
    out = np.ones(k)
    out.flags.writeable = False
    return out
