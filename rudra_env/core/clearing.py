r"""Clearing of an interbank network: the greatest clearing vector with default costs.

Bank i owes ``L[i, j]`` to bank j and ``xl[i]`` to outside creditors (pari passu) and holds
external assets ``e[i]`` (possibly negative). With ``pbar_i = sum_j L[i, j] + xl_i`` and
``Pi[i, j] = L[i, j] / pbar_i``, a clearing vector is a fixed point of

    Phi(p)_i = pbar_i                                  if e_i + sum_j Pi[j, i] p_j >= pbar_i
             = max(0, alpha' e_i + beta sum_j Pi[j, i] p_j)   otherwise (in default),

``alpha' e_i = alpha * e_i`` for ``e_i >= 0`` and ``e_i`` otherwise (Rogers & Veraart 2013;
``alpha = beta = 1`` is Eisenberg & Noe 2001). ``clear`` finds the greatest one by the
fictitious-default (Greatest Clearing Vector) algorithm: start with every bank paying in full;
each round adds the banks that cannot pay to the default set and solves the default set's
payments exactly (Chandrasekaran's algorithm for the Z-matrix complementarity problem, at most
``|D|`` linear solves); stop when the default set no longer grows (at most N rounds).

Shapes: ``L`` (B, N, N) currency units, ``e`` and ``xl`` (B, N). ``clear`` trusts its inputs
(the cascade of the step builds them); ``rudra_env.contagion.eisenberg_noe`` is the checked,
documented face for everyone else, with the full derivation and the published worked examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rudra_env.core.arrays import sum_rows

__all__ = ["ClearingResult", "clear"]


@dataclass(frozen=True, eq=False)
class ClearingResult:
    """The greatest clearing vector of a network and what it implies for each bank.

    Shapes are ``(N,)`` for one network and ``(B, N)`` for a batch of ``B`` worlds. The arrays
    are read-only.
    """

    payments: np.ndarray
    """(..., N) currency units: total payment ``p_i`` each bank makes (to banks and outsiders)."""

    defaulted: np.ndarray
    """(..., N) bool: the bank pays less than its total obligation ``p_i < pbar_i``."""

    equity: np.ndarray
    """(..., N) currency units: ``e_i + sum_j Pi_ji p_j - pbar_i``, before default costs.

    Negative for defaulted banks; exactly zero counts as solvent."""

    obligations: np.ndarray
    """(..., N) currency units: total obligation ``pbar_i = sum_j L_ij + xl_i``."""

    rounds: int
    """Number of fictitious-default rounds in which new banks defaulted (0 if none did); for a
    batch, the maximum over worlds."""

    @property
    def recovery(self) -> np.ndarray:
        """(..., N) in [0, 1]: ``p_i / pbar_i``, the fraction of its debts each bank repays.

        1.0 for a bank that owes nothing. A creditor of bank ``i`` recovers this fraction of its
        claim (loss given default ``1 - recovery``)."""
        out = np.ones_like(self.payments)
        np.divide(self.payments, self.obligations, out=out, where=self.obligations > 0)
        return out


def clear(
    L: np.ndarray,
    e: np.ndarray,
    xl: np.ndarray,
    alpha: float,
    beta: float,
    tol: float = 1e-10,
    *,
    obligations: np.ndarray | None = None,
    full_receipts: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> ClearingResult:
    """The greatest clearing vector of B networks, on inputs known to be valid: ``L`` (B, N, N),
    ``e`` and ``xl`` (B, N), ``alpha`` and ``beta`` in [0, 1] (``eisenberg_noe`` checks them).
    A bank defaults only when its shortfall exceeds ``tol * max(1, pbar)``.

    ``Pi`` is never formed. What bank i receives is what it would receive if everyone paid in
    full, less what the defaulters D do not pay,

        sum_j Pi_ji p_j = sum_j L_ji - sum_{j in D} L_ji (1 - p_j / pbar_j),

    so a round reads only the defaulters' rows of ``L`` (O(N |D|), not O(N^2)), and the linear
    solves gather only the paying defaulters' block.

    Callers that keep the totals pass them: ``obligations`` = ``pbar`` = ``L.sum(-1) + xl`` and
    ``full_receipts`` = ``L.sum(-2)``, (B, N) each; then ``L`` is never read in full. ``rows``
    (B,) maps each world of ``e`` to its matrix in ``L`` (which may hold more worlds); default
    the same index.
    """
    b, n = e.shape
    if obligations is None or full_receipts is None:
        own = L if rows is None else L[rows]  # this batch's matrices
        pbar = own.sum(axis=-1) + xl if obligations is None else obligations
        full = own.sum(axis=-2) if full_receipts is None else full_receipts
    else:
        pbar, full = obligations, full_receipts
    rows = np.arange(b) if rows is None else rows
    owes = pbar > 0
    inv = np.divide(1.0, pbar, out=np.zeros_like(pbar), where=owes)  # 1 / pbar_j, 0 if none
    e_default = np.where(e >= 0, alpha * e, e)
    slack = tol * np.maximum(1.0, pbar)

    payments = pbar.copy()
    defaulted = np.zeros((b, n), dtype=bool)
    waves = np.zeros(b, dtype=int)
    for _ in range(n):
        shortfall = pbar - e - _received(L, rows, inv, payments, full, defaulted)
        new = owes & ~defaulted & (shortfall > slack)
        worlds = np.flatnonzero(new.any(axis=-1))  # only these need new payments
        if worlds.size == 0:
            break
        defaulted |= new
        waves[worlds] += 1
        payments[worlds] = _pay_defaulted(
            L,
            rows[worlds],
            inv[worlds],
            beta,
            pbar[worlds],
            e_default[worlds],
            defaulted[worlds],
            full[worlds],
        )

    equity = e + _received(L, rows, inv, payments, full, defaulted) - pbar
    return ClearingResult(
        payments=payments,
        defaulted=defaulted,
        equity=equity,
        obligations=pbar,
        rounds=int(waves.max()),
    )


def _received(
    L: np.ndarray,
    rows: np.ndarray,
    inv: np.ndarray,
    payments: np.ndarray,
    full: np.ndarray,
    defaulted: np.ndarray,
) -> np.ndarray:
    """(W, N): ``x_i = sum_j Pi_ji p_j``, what each bank receives when the ``defaulted`` banks
    pay ``payments`` and the others pay in full: ``full`` less the defaulters' unpaid shares
    (``inv`` = 1 / pbar, 0 where nothing is owed; ``rows`` (W,) the worlds' matrices in L)."""
    dw, dj = np.nonzero(defaulted)
    if dw.size == 0:
        return full.copy()
    unpaid = 1.0 - payments[dw, dj] * inv[dw, dj]
    lost = L[rows[dw], dj, :] * unpaid[:, None]  # (|D|, N)
    return full - sum_rows(lost, dw, len(full))


def _pay_defaulted(
    L: np.ndarray,
    rows: np.ndarray,
    inv: np.ndarray,
    beta: float,
    pbar: np.ndarray,
    e_default: np.ndarray,
    defaulted: np.ndarray,
    full: np.ndarray,
) -> np.ndarray:
    """(W, N) payments when ``defaulted`` is the default set: solvent banks pay ``pbar``,
    defaulted ones ``max(0, e_default + beta * Pi^T p)``.

    Chandrasekaran's algorithm for the Z-matrix complementarity problem: defaulted banks start
    paying 0; every round, the defaulted banks whose value would be positive join the paying set
    and the linear system is solved again, in the worlds where someone joined. The iterates rise
    to the solution; at most N rounds.
    """
    n = pbar.shape[-1]
    paying = np.zeros_like(defaulted)
    payments = np.where(defaulted, 0.0, pbar)
    for _ in range(n):
        value = e_default + beta * _received(L, rows, inv, payments, full, defaulted)
        join = defaulted & ~paying & (value > 0)
        worlds = np.flatnonzero(join.any(axis=-1))
        if worlds.size == 0:
            break
        paying |= join
        payments[worlds] = _solve_paying(
            L,
            rows[worlds],
            inv[worlds],
            beta,
            pbar[worlds],
            e_default[worlds],
            defaulted[worlds],
            paying[worlds],
            full[worlds],
        )
    return np.clip(payments, 0.0, pbar)


def _solve_paying(
    L: np.ndarray,
    rows: np.ndarray,
    inv: np.ndarray,
    beta: float,
    pbar: np.ndarray,
    e_default: np.ndarray,
    defaulted: np.ndarray,
    paying: np.ndarray,
    full: np.ndarray,
) -> np.ndarray:
    """(W, N) payments with the paying defaulters ``P`` solving their linear system exactly.

    Banks outside ``P`` pay a fixed ``q`` (``pbar`` if solvent, 0 if a non-paying defaulter);
    those in ``P`` satisfy ``p_P = e_P + (beta Pi^T)_PP p_P + (beta Pi^T)_{P,~P} q``. Only the
    ``|P| x |P|`` block is gathered from ``L`` and solved (padded to the largest ``|P|`` of the
    batch with identity rows), so a default set of a few banks costs a few-by-few solve, not an
    N-by-N one.
    """
    w, n = pbar.shape
    fixed = np.where(defaulted, 0.0, pbar)
    rhs_full = e_default + beta * _received(L, rows, inv, fixed, full, defaulted)
    counts = paying.sum(axis=-1)
    d = int(counts.max())
    order = np.argsort(~paying, axis=-1, kind="stable")[:, :d]  # paying banks first
    used = np.arange(d)[None, :] < counts[:, None]  # (W, d)
    # (beta Pi^T)[P_a, P_c] = beta * L[P_c, P_a] / pbar[P_c]
    block = L[rows[:, None, None], order[:, None, :], order[:, :, None]]
    block = beta * block * np.take_along_axis(inv, order, axis=-1)[:, None, :]
    block = block * (used[:, :, None] & used[:, None, :])
    system = np.eye(d) - block
    rhs = np.where(used, np.take_along_axis(rhs_full, order, axis=-1), 0.0)[..., None]
    try:
        solved = np.linalg.solve(system, rhs)[..., 0]
    except np.linalg.LinAlgError:
        # Only reachable in the degenerate case of the module docstring (a closed cycle of
        # paying defaulters with beta = 1); any solution of the consistent system will do.
        solved = (np.linalg.pinv(system) @ rhs)[..., 0]
    out = fixed.copy()
    wi, ki = np.nonzero(used)
    out[wi, order[wi, ki]] = solved[wi, ki]
    return out
