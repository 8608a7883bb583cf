r"""Contagion analytics on interbank networks: clearing, DebtRank and default cascades.

Three standalone, pure functions over plain numpy arrays, with their inputs checked. They hold
no state and draw no random numbers. ``eisenberg_noe`` is the documented face of the clearing
that the environment's cascade runs (``rudra_env.core.clearing.clear``), so the environment and
offline analysis clear networks with the same code. Glasserman & Young (2016) review the three
models.

Conventions
-----------
``liabilities[i, j]`` is what bank ``i`` owes bank ``j`` (currency units). ``exposures[i, j]`` is
bank ``i``'s asset exposure to bank ``j``, i.e. what ``j`` owes ``i``; for one network
``exposures = liabilities.T``. Banks are indexed ``0 .. N-1``; a leading axis ``B`` indexes
independent worlds where batching is supported.

1. Clearing with default costs (Eisenberg & Noe 2001; Rogers & Veraart 2013)
----------------------------------------------------------------------------
Bank ``i`` owes ``L_ij`` to bank ``j`` and ``xl_i`` to outside creditors who rank *pari passu*
with interbank creditors, and holds external assets ``e_i`` (possibly negative: external assets
net of senior outside debt). Its total obligation and the relative liabilities are

.. math::

    \bar p_i = \sum_j L_{ij} + xl_i, \qquad
    \Pi_{ij} = L_{ij} / \bar p_i \quad (\Pi_{ij} = 0 \text{ if } \bar p_i = 0).

Given the payments ``p`` of all banks, bank ``i`` receives ``x_i = \sum_j \Pi_{ji} p_j`` and pays

.. math::

    \Phi(p)_i = \begin{cases}
        \bar p_i & \text{if } e_i + x_i \ge \bar p_i \quad\text{(solvent; equity 0 is solvent)}\\
        \max\bigl(0,\ \tilde e_i + \beta x_i\bigr) & \text{otherwise (in default)}
    \end{cases}
    \qquad \tilde e_i = \begin{cases} \alpha e_i & e_i \ge 0 \\ e_i & e_i < 0 \end{cases}

A defaulting bank realises only a fraction ``alpha`` of its external assets and ``beta`` of its
interbank claims (the default costs of Rogers & Veraart 2013); ``alpha = beta = 1``
gives Eisenberg–Noe, where :math:`\Phi(p) = \min(\bar p, \max(0, e + \Pi^\top p))`. Default costs
are charged on *positive* external assets only: a negative ``e_i`` (senior outside debt that
exceeds the external assets) is passed through unscaled, so a defaulting bank never pays more
than it owes and :math:`\Phi` stays monotone. A clearing vector is a fixed point
:math:`p^* = \Phi(p^*)`; since :math:`\Phi` is monotone on the lattice :math:`[0, \bar p]`, the
fixed points have a greatest element (Tarski), which is the one returned.

Greatest Clearing Vector Algorithm (Rogers & Veraart 2013, Definition 3.6; with
``alpha = beta = 1`` the fictitious-default algorithm of Eisenberg & Noe 2001). Start with every
bank solvent, :math:`p^0 = \bar p`, :math:`D_0 = \emptyset`; at round ``k``

.. math::

    D_k = \{ i : e_i + \textstyle\sum_j \Pi_{ji} p^{k-1}_j < \bar p_i \},

(a bank with :math:`\bar p_i = 0` owes nothing and never defaults) and :math:`p^k` solves
:math:`p_i = \bar p_i` for :math:`i \notin D_k`,
:math:`p_i = \max(0, \tilde e_i + \beta \sum_j \Pi_{ji} p_j)` for :math:`i \in D_k`; stop when
:math:`D_k = D_{k-1}`. The default sets grow and the payments fall monotonically, every
:math:`p^k` stays above the greatest clearing vector, and the loop ends after at most ``N``
rounds at that vector. For a fixed default set the payments are found exactly: the ``max(0, .)``
makes it a linear complementarity problem with a Z-matrix, :math:`r = \max(0, c + B r)`,
:math:`B = \beta \Pi_{DD}^\top \ge 0`, which Chandrasekaran's (1970) algorithm solves in at most
``|D|`` linear solves: start with every defaulter paying 0, let every defaulter with positive
value ``c_i + (B r)_i > 0`` join the paying set ``P``, solve the linear system
:math:`(I - \beta\,\mathrm{diag}(1_P)\Pi^\top) p = \text{rhs}` with ``np.linalg.solve`` batched over
worlds, repeat until no defaulter joins. With non-negative external assets nobody is floored
and this is the plain linear step of the papers.

Equity after clearing is :math:`e_i + \sum_j \Pi_{ji} p^*_j - \bar p_i` (before default costs);
it is negative exactly for defaulted banks (and for a bank with nothing to pay whose negative
external assets exceed what it receives: such a bank owes nothing inside the clearing system
and is not counted as defaulted).

Degenerate case: with ``beta = 1`` a closed cycle of defaulted banks (owing only each other,
nothing to outside creditors) whose external value is exactly zero has a continuum of clearing
vectors (Eisenberg & Noe's regularity condition fails). The algorithm still returns a clearing
vector; only in that measure-zero case it is not guaranteed to be the greatest one.

2. DebtRank (Battiston et al. 2012)
----------------------------------
The impact on bank ``i`` of the distress of bank ``j`` is

.. math:: W_{ij} = \min\bigl(1,\ \text{exposures}_{ij} / \text{equity}_i\bigr).

Each bank has a distress ``h_i \in [0, 1]`` (fraction of equity lost) and a state: undistressed
(U), distressed (D) or inactive (I). At ``t = 1``, ``h(1)`` is the initial distress and banks with
``h_i(1) > 0`` are in D. Then

.. math::

    h_i(t) = \min\Bigl(1,\ h_i(t-1) + \sum_{j:\ s_j(t-1) = D} W_{ij}\, h_j(t-1)\Bigr),

and a bank in D at ``t-1`` becomes I at ``t`` (it propagates its distress exactly once); a bank in
U with ``h_i(t) > 0`` becomes D. The dynamics stop at the first ``T`` with no bank in D
(``T <= N + 1``). With economic weights ``v`` the system DebtRank, excluding the initial shock, is

.. math:: R = \sum_j h_j(T) v_j - \sum_j h_j(1) v_j.

By default ``v_i = A_i / \sum_k A_k`` with ``A_i = \sum_j \text{exposures}_{ij}`` the bank's
interbank assets (the relative economic value of Battiston et al. 2012). Because each bank
propagates once, DebtRank can understate losses on cycles (Bardoscia et al. 2015).

3. Default cascade (Furfine 2003)
---------------------------------
Banks in ``initial_defaults`` fail in round 0. In round ``k >= 1`` a surviving bank ``i`` fails if
its cumulative loss on all banks failed so far reaches its capital:

.. math:: \sum_{j \in F_{k-1}} \mathrm{lgd}_{ij}\, \text{exposures}_{ij} \ \ge\ \text{capital}_i .

The cascade stops at the first round with no new failure (at most ``N`` rounds).

References
----------
* Eisenberg, L. and Noe, T. H. (2001). Systemic risk in financial systems. *Management Science*
  47(2), 236–249.
* Rogers, L. C. G. and Veraart, L. A. M. (2013). Failure and rescue in an interbank network.
  *Management Science* 59(4), 882–898.
* Battiston, S., Puliga, M., Kaushik, R., Tasca, P. and Caldarelli, G. (2012). DebtRank: too
  central to fail? Financial networks, the FED and systemic risk. *Scientific Reports* 2, 541.
* Bardoscia, M., Battiston, S., Caccioli, F. and Caldarelli, G. (2015). DebtRank: a microscopic
  foundation for shock propagation. *PLoS ONE* 10(6), e0130406.
* Furfine, C. H. (2003). Interbank exposures: quantifying the risk of contagion. *Journal of
  Money, Credit and Banking* 35(1), 111–128.
* Glasserman, P. and Young, H. P. (2016). Contagion in financial networks. *Journal of Economic
  Literature* 54(3), 779–831.
* Chandrasekaran, R. (1970). A special case of the complementary pivot problem. *Opsearch* 7,
  263–268.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rudra_env.core.clearing import ClearingResult, clear
from rudra_env.errors import InputError

__all__ = [
    "ClearingResult",
    "DebtRankResult",
    "FurfineResult",
    "debtrank",
    "eisenberg_noe",
    "furfine",
]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DebtRankResult:
    """Outcome of the DebtRank distress dynamics on one network (arrays read-only)."""

    h: np.ndarray
    """(N,) in [0, 1]: final distress of each bank, the fraction of its equity lost."""

    debtrank: float
    """System DebtRank ``R = sum_j h_j(T) v_j - sum_j h_j(1) v_j`` (initial shock excluded)."""

    rounds: int
    """Number of propagation steps ``T - 1`` until no bank was left in the distressed state."""


@dataclass(frozen=True, eq=False)
class FurfineResult:
    """Outcome of a Furfine (2003) sequential default cascade on one network (arrays read-only)."""

    defaulted: np.ndarray
    """(N,) bool: the bank failed, initially or in the cascade."""

    default_round: np.ndarray
    """(N,) int: 0 for an initial default, ``k`` for a bank failing in round ``k``, -1 if never."""

    rounds: tuple[np.ndarray, ...]
    """``rounds[k]`` holds the indices (sorted, int) of the banks failing in round ``k``; round 0
    is the initial defaults. Ends with the last round in which some bank failed."""


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


def _where(name: str, index: Sequence[int]) -> str:
    return f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name


def _float_array(name: str, value: object) -> np.ndarray:
    """A float copy of ``value`` whose entries are all finite."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} must be an array of real numbers, got {type(value).__name__} ({exc})"
        ) from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        raise InputError(
            f"{_where(name, index)} = {float(arr[index])!r}: every entry of {name} must be finite"
        )
    return arr


def _check_non_negative(name: str, arr: np.ndarray, meaning: str) -> None:
    negative = arr < 0
    if negative.any():
        index = tuple(np.argwhere(negative)[0])
        raise InputError(
            f"{_where(name, index)} = {float(arr[index])!r} is negative; "
            f"{name} must be >= 0 ({meaning})"
        )


def _network(name: str, value: object, *, batched: bool, meaning: str) -> np.ndarray:
    """A validated (N, N) (or, if ``batched``, (B, N, N)) non-negative zero-diagonal matrix."""
    arr = _float_array(name, value)
    allowed = "(N, N) or (B, N, N)" if batched else "(N, N)"
    ndims = (2, 3) if batched else (2,)
    if arr.ndim not in ndims or arr.shape[-1] != arr.shape[-2] or arr.shape[-1] == 0:
        raise InputError(f"{name} must have shape {allowed} with N >= 1, got shape {arr.shape}")
    _check_non_negative(name, arr, meaning)
    diagonal = np.diagonal(arr, axis1=-2, axis2=-1)
    if np.any(diagonal != 0):
        index = tuple(np.argwhere(diagonal != 0)[0])
        full = (*index, index[-1])
        raise InputError(
            f"{_where(name, full)} = {float(arr[full])!r}: the diagonal of {name} must be zero "
            "(a bank has no claim on itself)"
        )
    return arr


def _vector(name: str, value: object, n: int, *, batched: bool) -> np.ndarray:
    """A validated finite (N,) (or, if ``batched``, (N,) or (B, N)) float array."""
    arr = _float_array(name, value)
    allowed = f"({n},) or (B, {n})" if batched else f"({n},)"
    if arr.ndim not in ((1, 2) if batched else (1,)) or arr.shape[-1] != n:
        raise InputError(f"{name} must have shape {allowed} for N = {n} banks, got {arr.shape}")
    return arr


def _unit_scalar(name: str, value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a real number in [0, 1], got {value!r}") from exc
    if not 0.0 <= x <= 1.0:  # also rejects NaN
        raise InputError(f"{name} = {x!r} is outside [0, 1]")
    return x


def _readonly(*arrays: np.ndarray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


# ---------------------------------------------------------------------------------------------
# Eisenberg–Noe / Rogers–Veraart clearing
# ---------------------------------------------------------------------------------------------


def eisenberg_noe(
    liabilities: np.ndarray,
    external_assets: np.ndarray,
    external_liabilities: np.ndarray | None = None,
    alpha: float = 1.0,
    beta: float = 1.0,
    *,
    tol: float = 1e-10,
) -> ClearingResult:
    r"""Greatest clearing vector of an interbank network, with Rogers–Veraart default costs.

    Solves :math:`p = \Phi(p)` with

    .. math::

        \Phi(p)_i = \bar p_i \ \text{ if } e_i + \textstyle\sum_j \Pi_{ji} p_j \ge \bar p_i,
        \quad\text{else}\quad \max\bigl(0,\ \tilde e_i + \beta \textstyle\sum_j \Pi_{ji} p_j\bigr),

    :math:`\bar p_i = \sum_j L_{ij} + xl_i`, :math:`\Pi_{ij} = L_{ij} / \bar p_i`,
    :math:`\tilde e_i = \alpha e_i` for :math:`e_i \ge 0` and :math:`e_i` otherwise, by the
    Greatest Clearing Vector Algorithm of Rogers & Veraart (2013, Def. 3.6), which with
    ``alpha = beta = 1`` is the fictitious-default algorithm of Eisenberg & Noe (2001); see the
    module docstring. Each round solves the linear system of the current default set exactly
    (``np.linalg.solve`` batched over worlds); there are at most ``N`` rounds.

    Args:
        liabilities: (N, N) or (B, N, N) currency units, ``>= 0``, zero diagonal;
            ``liabilities[..., i, j]`` is what bank ``i`` owes bank ``j``.
        external_assets: (N,) or (B, N) currency units; bank ``i``'s assets outside the
            interbank market, net of senior outside debt, so possibly negative.
        external_liabilities: (N,) or (B, N) currency units, ``>= 0``, default zeros; debts to
            outside creditors ranking pari passu with interbank debt.
        alpha: fraction of (positive) external assets a defaulting bank realises, in [0, 1].
        beta: fraction of interbank claims a defaulting bank realises, in [0, 1].
        tol: a bank is in default only when its shortfall
            :math:`\bar p_i - e_i - \sum_j \Pi_{ji} p_j` exceeds ``tol * max(1, pbar_i)``, so that
            an equity of zero up to rounding counts as solvent.

    Any of the three arrays may carry the batch axis ``B``; unbatched ones are shared by all
    worlds. The result is batched if any input is.

    Returns:
        :class:`ClearingResult` with ``payments``, ``defaulted``, ``equity``, ``obligations``,
        ``rounds`` and the ``recovery`` property.

    Raises:
        InputError: a shape is wrong or inconsistent, a value is not finite, a liability is
            negative, a diagonal entry is nonzero, or ``alpha``, ``beta`` or ``tol`` is out of
            range.
    """
    L = _network(
        "liabilities", liabilities, batched=True, meaning="liabilities[i, j] is what i owes j"
    )
    n = L.shape[-1]
    e = _vector("external_assets", external_assets, n, batched=True)
    if external_liabilities is None:
        xl = np.zeros(n)
    else:
        xl = _vector("external_liabilities", external_liabilities, n, batched=True)
        _check_non_negative("external_liabilities", xl, "debts to outside creditors")
    alpha = _unit_scalar("alpha", alpha)
    beta = _unit_scalar("beta", beta)
    try:
        tol = float(tol)
    except (TypeError, ValueError) as exc:
        raise InputError(f"tol must be a non-negative real number, got {tol!r}") from exc
    if not (np.isfinite(tol) and tol >= 0):
        raise InputError(f"tol = {tol!r} must be finite and >= 0")

    sizes = {
        name: arr.shape[0]
        for name, arr, ndim in (
            ("liabilities", L, 3),
            ("external_assets", e, 2),
            ("external_liabilities", xl, 2),
        )
        if arr.ndim == ndim
    }
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name}: B = {b}" for name, b in sizes.items())
        raise InputError(f"batch sizes differ ({listed}); batched inputs must share B")
    batched = bool(sizes)
    b = next(iter(sizes.values()), 1)
    result = clear(
        np.broadcast_to(L, (b, n, n)),
        np.broadcast_to(e, (b, n)),
        np.broadcast_to(xl, (b, n)),
        alpha,
        beta,
        tol,
    )
    if not batched:
        result = ClearingResult(
            payments=result.payments[0],
            defaulted=result.defaulted[0],
            equity=result.equity[0],
            obligations=result.obligations[0],
            rounds=result.rounds,
        )
    _readonly(result.payments, result.defaulted, result.equity, result.obligations)
    return result


# ---------------------------------------------------------------------------------------------
# DebtRank
# ---------------------------------------------------------------------------------------------


def debtrank(
    exposures: np.ndarray,
    equity: np.ndarray,
    initial_distress: np.ndarray,
    weights: np.ndarray | None = None,
) -> DebtRankResult:
    r"""DebtRank distress propagation of Battiston et al. (2012) on one network.

    Impact :math:`W_{ij} = \min(1, \text{exposures}_{ij} / \text{equity}_i)` of ``j``'s distress on
    ``i``; :math:`h_i(t) = \min(1, h_i(t-1) + \sum_{j \in D(t-1)} W_{ij} h_j(t-1))`, every bank
    propagating once (states U → D → I); :math:`R = \sum_j h_j(T) v_j - \sum_j h_j(1) v_j`.
    See the module docstring.

    Args:
        exposures: (N, N) currency units, ``>= 0``, zero diagonal; ``exposures[i, j]`` is bank
            ``i``'s asset exposure to bank ``j`` (what ``j`` owes ``i``).
        equity: (N,) currency units, every entry ``> 0`` (the impact is undefined for a bank
            without equity: a bank already in default enters through ``initial_distress = 1``
            with its pre-shock equity).
        initial_distress: (N,) ``h(1)``, the fraction of equity each bank has lost to the
            initial shock, in [0, 1]; a bool mask is read as distress 1 for the masked banks.
        weights: (N,) economic weights ``v >= 0`` used as given (not normalised); default the
            share of each bank in total interbank assets, ``v_i = sum_j exposures[i, j] /
            sum_kj exposures[k, j]`` (uniform ``1/N`` if there are no exposures at all).

    Returns:
        :class:`DebtRankResult` with the final distress ``h``, the system ``debtrank`` and the
        number of propagation ``rounds``.

    Raises:
        InputError: a shape is wrong, a value is not finite or out of range, an equity is not
            positive, or the diagonal of ``exposures`` is nonzero.
    """
    X = _network("exposures", exposures, batched=False, meaning="exposures[i, j] is what j owes i")
    n = X.shape[0]
    eq = _vector("equity", equity, n, batched=False)
    if np.any(eq <= 0):
        i = int(np.argmax(eq <= 0))
        raise InputError(
            f"equity[{i}] = {float(eq[i])!r} must be > 0: the impact exposures[i, j] / "
            "equity[i] is undefined without equity (give a defaulted bank initial_distress 1 "
            "and its pre-shock equity)"
        )
    h0 = _vector("initial_distress", initial_distress, n, batched=False)
    if np.any((h0 < 0) | (h0 > 1)):
        i = int(np.argmax((h0 < 0) | (h0 > 1)))
        raise InputError(f"initial_distress[{i}] = {float(h0[i])!r} is outside [0, 1]")
    if weights is None:
        assets = X.sum(axis=1)
        total = assets.sum()
        v = assets / total if total > 0 else np.full(n, 1.0 / n)
    else:
        v = _vector("weights", weights, n, batched=False)
        _check_non_negative("weights", v, "economic weight of each bank")

    impact = np.minimum(1.0, X / eq[:, None])
    h = h0.copy()
    distressed = h > 0
    inactive = np.zeros(n, dtype=bool)
    rounds = 0
    while distressed.any():
        h = np.minimum(1.0, h + impact @ np.where(distressed, h, 0.0))
        inactive |= distressed
        distressed = (h > 0) & ~inactive
        rounds += 1

    _readonly(h)
    return DebtRankResult(h=h, debtrank=float(v @ h - v @ h0), rounds=rounds)


# ---------------------------------------------------------------------------------------------
# Furfine cascade
# ---------------------------------------------------------------------------------------------


def furfine(
    exposures: np.ndarray,
    capital: np.ndarray,
    initial_defaults: np.ndarray | Sequence[int],
    lgd: float | np.ndarray = 1.0,
) -> FurfineResult:
    r"""Sequential default cascade of Furfine (2003) on one network.

    Round 0 is ``initial_defaults``; in round ``k`` a surviving bank ``i`` fails when
    :math:`\sum_{j \text{ failed}} \mathrm{lgd}_{ij}\, \text{exposures}_{ij} \ge \text{capital}_i`
    (losses accumulate over all banks failed so far). At most ``N`` rounds.

    Args:
        exposures: (N, N) currency units, ``>= 0``, zero diagonal; ``exposures[i, j]`` is bank
            ``i``'s asset exposure to bank ``j`` (what ``j`` owes ``i``).
        capital: (N,) currency units; the loss each bank can absorb. Must be ``> 0`` for every
            bank not in ``initial_defaults`` (a bank without capital has already failed: list it
            there); ignored for the initial defaults.
        initial_defaults: (N,) bool mask, or a sequence of distinct bank indices in
            ``[0, N)``.
        lgd: loss given default in [0, 1]: a scalar, or an array broadcastable to (N, N) with
            ``lgd[i, j]`` the fraction of ``exposures[i, j]`` lost when ``j`` fails (an (N,)
            array is therefore one LGD per failing borrower ``j``).

    Returns:
        :class:`FurfineResult` with ``defaulted``, ``default_round`` and ``rounds``.

    Raises:
        InputError: a shape is wrong, a value is not finite or out of range, an index is
            invalid or repeated, or a surviving bank has capital ``<= 0``.
    """
    X = _network("exposures", exposures, batched=False, meaning="exposures[i, j] is what j owes i")
    n = X.shape[0]
    cap = _vector("capital", capital, n, batched=False)
    failed = _initial_mask(initial_defaults, n)
    bad = ~failed & (cap <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"capital[{i}] = {float(cap[i])!r} must be > 0 for a bank not in initial_defaults "
            "(a bank without capital has already failed: add it to initial_defaults)"
        )
    lgd_arr = _float_array("lgd", lgd)
    try:
        lgd_arr = np.broadcast_to(lgd_arr, (n, n))
    except ValueError as exc:
        raise InputError(
            f"lgd must be a scalar or broadcastable to ({n}, {n}), got shape {lgd_arr.shape}"
        ) from exc
    if np.any((lgd_arr < 0) | (lgd_arr > 1)):
        index = tuple(np.argwhere((lgd_arr < 0) | (lgd_arr > 1))[0])
        raise InputError(f"{_where('lgd', index)} = {float(lgd_arr[index])!r} is outside [0, 1]")

    loss_if_failed = lgd_arr * X
    default_round = np.where(failed, 0, -1)
    rounds = [np.flatnonzero(failed)]
    for k in range(1, n + 1):
        loss = loss_if_failed @ failed
        new = ~failed & (loss >= cap)
        if not new.any():
            break
        failed = failed | new
        default_round[new] = k
        rounds.append(np.flatnonzero(new))

    _readonly(failed, default_round, *rounds)
    return FurfineResult(defaulted=failed, default_round=default_round, rounds=tuple(rounds))


def _initial_mask(initial_defaults: object, n: int) -> np.ndarray:
    """(N,) bool mask from a bool mask or a sequence of indices."""
    arr = np.asarray(initial_defaults)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InputError(
                f"initial_defaults as a bool mask must have shape ({n},), got {arr.shape}"
            )
        return arr.copy()
    if arr.size == 0:
        return np.zeros(n, dtype=bool)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            "initial_defaults must be an (N,) bool mask or a 1-D sequence of integer bank "
            f"indices, got dtype {arr.dtype} and shape {arr.shape}"
        )
    out_of_range = (arr < 0) | (arr >= n)
    if out_of_range.any():
        bad = int(arr[np.argmax(out_of_range)])
        raise InputError(f"initial_defaults contains index {bad}, outside [0, {n})")
    if np.unique(arr).size != arr.size:
        raise InputError(f"initial_defaults repeats an index: {arr.tolist()}")
    mask = np.zeros(n, dtype=bool)
    mask[arr] = True
    return mask
