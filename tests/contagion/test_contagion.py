"""Known-answer and property tests of ``rudra_env.contagion``.

Every known-answer test states its source and carries the hand computation in its docstring; the
expected numbers are the hand-computed ones, never the function's own output. Property tests
draw small networks on a grid of quarter units (so that ties such as an equity of exactly zero
occur, and are exact) and check the defining properties of each algorithm.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudra_env.contagion import (
    ClearingResult,
    debtrank,
    eisenberg_noe,
    furfine,
)
from rudra_env.errors import InputError

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

# The network of the examples in the documentation of ``default_clearing`` and
# ``default_cascade`` in the R package ``systemicrisk`` (Gandy & Veraart, CRAN, version 0.4.x):
#   ea <- c(1/2,5/8,3/4); el <- c(3/2,1/2,1/2); x <- 0.5
#   L <- matrix(c(0,x,1-x,1-x,0,x,x,1-x,0),nrow=3)      # filled column by column
GV_L = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
GV_EA = np.array([1 / 2, 5 / 8, 3 / 4])
GV_EL = np.array([3 / 2, 1 / 2, 1 / 2])


def relative_liabilities(L: np.ndarray, xl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pbar = L.sum(axis=-1) + xl
    pi = np.divide(L, pbar[..., None], out=np.zeros_like(L), where=pbar[..., None] > 0)
    return pbar, pi


def clearing_map(p, L, e, xl, alpha, beta):
    """Phi(p) of the module docstring, written out independently of the implementation."""
    pbar, pi = relative_liabilities(L, xl)
    x = pi.T @ p
    e_default = np.where(e >= 0, alpha * e, e)
    solvent = (pbar == 0) | (e + x >= pbar - 1e-10 * np.maximum(1.0, pbar))
    return np.where(solvent, pbar, np.maximum(0.0, e_default + beta * x))


def all_clearing_vectors(L, e, xl, alpha, beta, tol=1e-10):
    """Every clearing vector found by trying all 3^N (solvent / paying / zero) classifications.

    For each classification solve the linear system it implies and keep the solution if it is
    consistent with the classification. Singular systems (a continuum of solutions) are skipped,
    so the list can miss clearing vectors but never contains a wrong one.
    """
    n = len(e)
    pbar, pi = relative_liabilities(L, xl)
    e_default = np.where(e >= 0, alpha * e, e)
    slack = tol * np.maximum(1.0, pbar)
    found = []
    for states in itertools.product("SPZ", repeat=n):
        s = np.array(states)
        if np.any((pbar == 0) & (s != "S")):
            continue
        a = np.eye(n) - beta * (s == "P")[:, None] * pi.T
        rhs = np.where(s == "S", pbar, np.where(s == "P", e_default, 0.0))
        if np.linalg.cond(a) > 1e10:
            continue
        p = np.linalg.solve(a, rhs)
        x = pi.T @ p
        shortfall = pbar - e - x
        value = e_default + beta * x
        ok = np.where(
            s == "S",
            shortfall <= slack,
            (shortfall > slack) & np.where(s == "P", value >= -1e-9, value <= 1e-9),
        )
        if ok.all():
            found.append(p)
    return found


@st.composite
def networks(draw, min_n=1, max_n=4, min_e=-8, min_xl=0):
    """(L, e, xl) on a grid: L in halves up to 4, e in quarters from min_e/4 to 4, xl in halves."""
    n = draw(st.integers(min_n, max_n))
    cells = st.lists(st.integers(0, 8), min_size=n * n, max_size=n * n)
    L = np.array(draw(cells), dtype=float).reshape(n, n) / 2
    np.fill_diagonal(L, 0.0)
    e = np.array(draw(st.lists(st.integers(min_e, 16), min_size=n, max_size=n)), float) / 4
    xl = np.array(draw(st.lists(st.integers(min_xl, 4), min_size=n, max_size=n)), float) / 2
    return L, e, xl


unit = st.sampled_from([0.0, 0.25, 0.5, 0.8, 1.0])


# ---------------------------------------------------------------------------------------------
# Eisenberg–Noe / Rogers–Veraart: published and hand-solved examples
# ---------------------------------------------------------------------------------------------


def test_en_gandy_veraart_example_without_default_costs():
    """Eisenberg–Noe clearing of the example in the ``systemicrisk`` documentation.

    Source: Gandy & Veraart, R package ``systemicrisk`` (CRAN), help page ``default_clearing``,
    example ``default_clearing(L, ea, el)``, whose printed output is
    ``defaultind = 1 1 0`` and ``clearingvec = 1.473214 1.419643 1.500000``.

    Hand computation (banks 1..3 as in the R example, external liabilities pari passu):
    pbar = rowsums(L) + el = (1 + 3/2, 1 + 1/2, 1 + 1/2) = (5/2, 3/2, 3/2);
    Pi row 1 = (0, 1/5, 1/5), rows 2 and 3 have 1/3 off the diagonal.
    Round 1 (p = pbar): bank 1 has 1/2 + 1/3*3/2 + 1/3*3/2 = 3/2 < 5/2: defaults.
      Bank 2: 5/8 + 1/5*5/2 + 1/3*3/2 = 13/8 >= 3/2; bank 3: 3/4 + 1/2 + 1/2 = 7/4 >= 3/2.
      p1 = 1/2 + 1/2 + 1/2 = 3/2.
    Round 2: bank 2 has 5/8 + 1/5*3/2 + 1/2 = 57/40 < 3/2: defaults; bank 3 has
      3/4 + 3/10 + 1/2 = 31/20 >= 3/2.  Solve p1 = 1 + p2/3, p2 = 9/8 + p1/5 (p3 = 3/2):
      p1 (1 - 1/15) = 1 + 3/8 -> p1 = 165/112 = 1.4732142..., p2 = 9/8 + 33/112 = 159/112.
    Round 3: bank 3 has 3/4 + 33/112 + 53/112 = 170/112 >= 168/112: stable, 2 rounds.
    Equity = p - pbar for the defaulted: 165/112 - 280/112 = -115/112, 159/112 - 168/112 =
    -9/112; bank 3: 170/112 - 168/112 = 1/56.
    """
    result = eisenberg_noe(GV_L, GV_EA, GV_EL)
    np.testing.assert_allclose(result.payments, [165 / 112, 159 / 112, 3 / 2], rtol=1e-12)
    np.testing.assert_allclose(result.payments, [1.473214, 1.419643, 1.5], atol=5e-7)
    np.testing.assert_array_equal(result.defaulted, [True, True, False])
    np.testing.assert_allclose(result.equity, [-115 / 112, -9 / 112, 1 / 56], rtol=1e-12)
    np.testing.assert_allclose(result.obligations, [5 / 2, 3 / 2, 3 / 2])
    np.testing.assert_allclose(result.recovery, [165 / 280, 159 / 168, 1.0], rtol=1e-12)
    assert result.rounds == 2


def test_rv_gandy_veraart_example_with_default_costs():
    """Rogers–Veraart clearing (alpha = 0.5, beta = 0.7) of the ``systemicrisk`` example.

    Source: Gandy & Veraart, R package ``systemicrisk`` (CRAN), help page ``default_clearing``
    (which implements the Greatest Clearing Vector Algorithm, Rogers & Veraart 2013, Definition
    3.6), example ``default_clearing(L, ea, el, alpha=0.5, beta=0.7)``, printed output
    ``defaultind = 1 1 1``, ``clearingvec = 0.5020200 0.5147049 0.5653806``.

    Hand computation (same pbar and Pi as the test above):
    Round 1: only bank 1 defaults (3/2 < 5/2, as without costs);
      p1 = alpha e1 + beta (p2/3 + p3/3) = 1/4 + 0.7 * (1/2 + 1/2) = 0.95.
    Round 2: bank 2 has 5/8 + 0.95/5 + 1/2 = 1.315 < 3/2, bank 3 has 3/4 + 0.19 + 1/2 = 1.44
      < 3/2: both default, and all three pay alpha e + beta Pi^T p:
        p1 = 0.25   + 0.7 (p2/3 + p3/3)
        p2 = 0.3125 + 0.7 (p1/5 + p3/3)
        p3 = 0.375  + 0.7 (p1/5 + p2/3),
      whose solution (checked below as residuals of these three equations) is the printed one.
    Round 3: everybody is already in default: stable after 2 rounds.
    """
    result = eisenberg_noe(GV_L, GV_EA, GV_EL, alpha=0.5, beta=0.7)
    p1, p2, p3 = result.payments
    residuals = [
        p1 - (0.25 + 0.7 * (p2 / 3 + p3 / 3)),
        p2 - (0.3125 + 0.7 * (p1 / 5 + p3 / 3)),
        p3 - (0.375 + 0.7 * (p1 / 5 + p2 / 3)),
    ]
    np.testing.assert_allclose(residuals, 0.0, atol=1e-12)
    np.testing.assert_allclose(result.payments, [0.5020200, 0.5147049, 0.5653806], atol=5e-8)
    np.testing.assert_array_equal(result.defaulted, [True, True, True])
    assert result.rounds == 2
    # Equity is reported before default costs: e + Pi^T p - pbar.
    pbar, pi = relative_liabilities(GV_L, GV_EL)
    np.testing.assert_allclose(result.equity, GV_EA + pi.T @ result.payments - pbar)


def test_rv_default_costs_make_several_clearing_vectors_and_the_greatest_is_returned():
    """With default costs clearing vectors need not be unique; the algorithm returns the greatest.

    Source: Rogers & Veraart (2013), Section 3: with alpha, beta < 1 there can be many clearing
    vectors, among them a greatest one, found by the Greatest Clearing Vector Algorithm.

    Hand-solved example: two banks owe each other 1, e = (1/2, 1/2), alpha = beta = 0.
    * p = (1, 1): each bank has 1/2 + 1 = 3/2 >= 1, solvent, pays 1: a clearing vector.
    * p = (0, 0): each bank has 1/2 + 0 < 1, defaults and pays alpha/2 + beta*0 = 0: also one.
    The greatest is (1, 1), reached with no default round; (0, 0) is checked to be a fixed point
    of the clearing map too.
    """
    L = np.array([[0.0, 1.0], [1.0, 0.0]])
    e = np.array([0.5, 0.5])
    xl = np.zeros(2)
    result = eisenberg_noe(L, e, alpha=0.0, beta=0.0)
    np.testing.assert_array_equal(result.payments, [1.0, 1.0])
    np.testing.assert_array_equal(result.defaulted, [False, False])
    np.testing.assert_array_equal(result.equity, [0.5, 0.5])
    assert result.rounds == 0
    np.testing.assert_array_equal(clearing_map(np.zeros(2), L, e, xl, 0.0, 0.0), [0.0, 0.0])


def test_en_non_unique_cycle_without_outside_assets_greatest_is_full_payment():
    """A cycle without outside assets: every p = (t, t), 0 <= t <= 1, clears; (1, 1) is returned.

    Source: Eisenberg & Noe (2001) show uniqueness for 'regular' systems, where every risk orbit
    has positive operating cash flow; the orbit {0, 1} here has none.
    Hand computation: each bank receives t and owes 1; with t = 1 it has 0 + 1 = 1 >= 1 (equity
    exactly 0, solvent) so p = (1, 1) clears and is the greatest. Equity exactly 0 is solvent.
    """
    result = eisenberg_noe([[0.0, 1.0], [1.0, 0.0]], [0.0, 0.0])
    np.testing.assert_array_equal(result.payments, [1.0, 1.0])
    np.testing.assert_array_equal(result.defaulted, [False, False])
    np.testing.assert_array_equal(result.equity, [0.0, 0.0])
    assert result.rounds == 0


def test_en_chain_hand_solved():
    """Eisenberg–Noe on a chain 0 -> 1 -> 2 (hand-solved; the algorithm of Eisenberg & Noe 2001).

    Bank 0 owes bank 1 10, bank 1 owes bank 2 10; e = (4, 2, 0).
    Round 1 (p = pbar = (10, 10, 0)): bank 0 has 4 < 10: defaults, pays 4.
      Bank 1 has 2 + 10 = 12 >= 10 at round 1's start.
    Round 2: bank 1 has 2 + 4 = 6 < 10: defaults, pays 6. Bank 2 owes nothing (never defaults).
    Equity: (4 - 10, 2 + 4 - 10, 0 + 6 - 0) = (-6, -4, 6); recovery (0.4, 0.6, 1).
    """
    L = np.zeros((3, 3))
    L[0, 1] = L[1, 2] = 10.0
    result = eisenberg_noe(L, [4.0, 2.0, 0.0])
    np.testing.assert_allclose(result.payments, [4.0, 6.0, 0.0])
    np.testing.assert_array_equal(result.defaulted, [True, True, False])
    np.testing.assert_allclose(result.equity, [-6.0, -4.0, 6.0])
    np.testing.assert_allclose(result.recovery, [0.4, 0.6, 1.0])
    assert result.rounds == 2


def test_negative_external_assets_floor_payments_at_zero():
    """Negative external assets (senior outside debt) floor the payment at 0 (hand-solved).

    Two banks owe each other 1; e = (-1/2, 0).
    Round 1 (p = (1, 1)): bank 0 has -1/2 + 1 < 1: defaults, pays max(0, -1/2 + p1) = 1/2.
    Round 2: bank 1 has 0 + 1/2 < 1: defaults. Now p0 = max(0, p1 - 1/2), p1 = max(0, p0):
      any p0 > 0 would give p0 = p0 - 1/2, so p = (0, 0): the senior debt absorbs everything.
    Equity: (-1/2 + 0 - 1, 0 + 0 - 1) = (-3/2, -1).
    """
    result = eisenberg_noe([[0.0, 1.0], [1.0, 0.0]], [-0.5, 0.0])
    np.testing.assert_array_equal(result.payments, [0.0, 0.0])
    np.testing.assert_array_equal(result.defaulted, [True, True])
    np.testing.assert_array_equal(result.equity, [-1.5, -1.0])
    assert result.rounds == 2


def test_negative_external_assets_are_not_scaled_by_alpha():
    """Default costs apply to positive external assets only (documented choice; hand-solved).

    Two banks owe each other 1; e = (-0.1, 0.5); alpha = beta = 1/2.
    Round 1: bank 0 has -0.1 + 1 < 1: defaults, pays -0.1 + 0.5 * 1 = 0.4 (the negative -0.1
      is not halved). Bank 1 has 0.5 + 1 >= 1.
    Round 2: bank 1 has 0.5 + 0.4 < 1: defaults. p0 = -0.1 + p1/2, p1 = 0.25 + p0/2, so
      p0 = -0.1 + 0.125 + p0/4 -> p0 = 1/30 and p1 = 0.25 + 1/60 = 4/15.
    """
    result = eisenberg_noe([[0.0, 1.0], [1.0, 0.0]], [-0.1, 0.5], alpha=0.5, beta=0.5)
    np.testing.assert_allclose(result.payments, [1 / 30, 4 / 15], rtol=1e-12)
    np.testing.assert_array_equal(result.defaulted, [True, True])
    assert result.rounds == 2


def test_bank_without_obligations_never_defaults_and_recovers_one():
    """A bank that owes nothing pays 0, is not in default and has recovery 1 (hand-solved).

    Bank 1 owes nothing and has e = -3: it receives bank 0's payment of 2 (bank 0 is solvent with
    e = 5 >= 2), so its equity is -3 + 2 - 0 = -1 < 0, yet it has no payment to miss.
    """
    result = eisenberg_noe([[0.0, 2.0], [0.0, 0.0]], [5.0, -3.0])
    np.testing.assert_array_equal(result.payments, [2.0, 0.0])
    np.testing.assert_array_equal(result.defaulted, [False, False])
    np.testing.assert_array_equal(result.equity, [3.0, -1.0])
    np.testing.assert_array_equal(result.recovery, [1.0, 1.0])


def test_external_liabilities_pari_passu_hand_solved():
    """Outside creditors share a defaulter's payment pro rata with bank creditors (hand-solved).

    Bank 0 owes bank 1 3 and outsiders 1 (pbar0 = 4), e0 = 2: it defaults and pays 2, of which
    bank 1 gets 3/4 * 2 = 1.5 and outsiders 0.5. Bank 1 (e1 = 0, owes nothing) has equity 1.5.
    """
    result = eisenberg_noe([[0.0, 3.0], [0.0, 0.0]], [2.0, 0.0], [1.0, 0.0])
    np.testing.assert_allclose(result.payments, [2.0, 0.0])
    np.testing.assert_allclose(result.equity, [-2.0, 1.5])
    np.testing.assert_allclose(result.recovery, [0.5, 1.0])


def test_batched_rounds_is_the_maximum_over_worlds_and_inputs_broadcast():
    """One chain network (see ``test_en_chain_hand_solved``) shared by three shocks.

    e = (4, 2, 0): 2 rounds; e = (4, 7, 0): bank 1 has 7 + 4 = 11 >= 10, 1 round;
    e = (10, 0, 0): nobody defaults, 0 rounds. The batch reports max = 2.
    """
    L = np.zeros((3, 3))
    L[0, 1] = L[1, 2] = 10.0
    e = np.array([[4.0, 2.0, 0.0], [4.0, 7.0, 0.0], [10.0, 0.0, 0.0]])
    result = eisenberg_noe(L, e)
    assert result.payments.shape == (3, 3)
    np.testing.assert_allclose(result.payments, [[4, 6, 0], [4, 10, 0], [10, 10, 0]])
    assert result.rounds == 2
    assert [eisenberg_noe(L, row).rounds for row in e] == [2, 1, 0]


def test_results_are_read_only_and_inputs_untouched():
    L = GV_L.copy()
    result = eisenberg_noe(L, GV_EA, GV_EL)
    assert isinstance(result, ClearingResult)
    with pytest.raises(ValueError):
        result.payments[0] = 0.0
    np.testing.assert_array_equal(L, GV_L)


# ---------------------------------------------------------------------------------------------
# Eisenberg–Noe / Rogers–Veraart: properties
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(networks(), unit, unit)
def test_clearing_is_a_fixed_point_within_bounds(net, alpha, beta):
    """0 <= p <= pbar, p = Phi(p), defaulted <=> p < pbar <=> equity < 0 (for banks that owe)."""
    L, e, xl = net
    result = eisenberg_noe(L, e, xl, alpha, beta)
    pbar = result.obligations
    p = result.payments
    assert np.all(p >= 0) and np.all(p <= pbar)
    np.testing.assert_allclose(p, clearing_map(p, L, e, xl, alpha, beta), atol=1e-9)
    owes = pbar > 0
    np.testing.assert_array_equal(result.defaulted, owes & (p < pbar))
    np.testing.assert_array_equal(result.defaulted[owes], result.equity[owes] < -1e-9)
    assert 0 <= result.rounds <= len(e)


@settings(max_examples=120, deadline=None)
@given(networks(max_n=4), unit, unit)
def test_clearing_is_the_greatest_clearing_vector(net, alpha, beta):
    """The result dominates every clearing vector found by brute force over 3^N classifications."""
    L, e, xl = net
    p = eisenberg_noe(L, e, xl, alpha, beta).payments
    found = all_clearing_vectors(L, e, xl, alpha, beta)
    for q in found:
        assert np.all(p >= q - 1e-9), (p, q)
    if found:
        assert min(np.abs(q - p).max() for q in found) < 1e-9


@settings(max_examples=60, deadline=None)
@given(networks(max_n=6, min_xl=1))
def test_en_equals_picard_iteration_from_full_payment(net):
    """alpha = beta = 1: the result equals the limit of p <- min(pbar, max(0, e + Pi^T p)) from
    p = pbar, the greatest fixed point (every bank owes outsiders >= 1/2, so Pi is strictly
    substochastic and the iteration contracts)."""
    L, e, xl = net
    pbar, pi = relative_liabilities(L, xl)
    q = pbar.copy()
    for _ in range(3000):
        q = np.minimum(pbar, np.maximum(0.0, e + pi.T @ q))
    np.testing.assert_allclose(eisenberg_noe(L, e, xl).payments, q, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(networks(min_e=0), unit, unit)
def test_value_is_conserved_up_to_default_costs(net, alpha, beta):
    """e >= 0: total external assets = positive equity + payments to outsiders + default costs.

    Each bank keeps e_i + x_i - p_i: its equity if solvent, (1 - alpha) e_i + (1 - beta) x_i
    (destroyed) if in default; summing, sum_i x_i = sum_j p_j (1 - xl_j / pbar_j).
    With alpha = beta = 1 no value is lost (Eisenberg & Noe 2001).
    """
    L, e, xl = net
    result = eisenberg_noe(L, e, xl, alpha, beta)
    pbar, pi = relative_liabilities(L, xl)
    p = result.payments
    x = pi.T @ p
    to_outsiders = np.divide(p * xl, pbar, out=np.zeros_like(p), where=pbar > 0).sum()
    lost = np.where(result.defaulted, (1 - alpha) * e + (1 - beta) * x, 0.0).sum()
    kept = np.maximum(result.equity, 0.0).sum()
    np.testing.assert_allclose(kept + to_outsiders + lost, e.sum(), atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(networks(), unit, unit)
def test_external_liabilities_equal_a_sink_bank(net, alpha, beta):
    """Pari passu: owing xl_i to outsiders is the same as owing it to an extra bank that owes
    nothing and holds nothing; that bank's equity is what the outsiders receive."""
    L, e, xl = net
    n = len(e)
    big = np.zeros((n + 1, n + 1))
    big[:n, :n] = L
    big[:n, n] = xl
    direct = eisenberg_noe(L, e, xl, alpha, beta)
    sink = eisenberg_noe(big, np.append(e, 0.0), None, alpha, beta)
    np.testing.assert_allclose(sink.payments[:n], direct.payments, atol=1e-12)
    np.testing.assert_allclose(sink.equity[:n], direct.equity, atol=1e-12)
    np.testing.assert_array_equal(sink.defaulted[:n], direct.defaulted)
    pbar = direct.obligations
    paid_out = np.divide(direct.payments * xl, pbar, out=np.zeros(n), where=pbar > 0).sum()
    np.testing.assert_allclose(sink.equity[n], paid_out, atol=1e-12)
    assert sink.rounds == direct.rounds


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 4).flatmap(lambda n: st.lists(networks(n, n), min_size=1, max_size=4)),
    unit,
    unit,
)
def test_batched_equals_per_world(worlds, alpha, beta):
    L = np.stack([w[0] for w in worlds])
    e = np.stack([w[1] for w in worlds])
    xl = np.stack([w[2] for w in worlds])
    batch = eisenberg_noe(L, e, xl, alpha, beta)
    singles = [eisenberg_noe(*w, alpha, beta) for w in worlds]
    np.testing.assert_allclose(batch.payments, [s.payments for s in singles], atol=1e-12)
    np.testing.assert_allclose(batch.equity, [s.equity for s in singles], atol=1e-12)
    np.testing.assert_array_equal(batch.defaulted, [s.defaulted for s in singles])
    np.testing.assert_allclose(batch.recovery, [s.recovery for s in singles], atol=1e-12)
    assert batch.rounds == max(s.rounds for s in singles)


# ---------------------------------------------------------------------------------------------
# Eisenberg–Noe: input errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"liabilities": np.zeros((2, 3))}, r"liabilities must have shape .* got shape \(2, 3\)"),
        ({"liabilities": np.zeros(3)}, r"liabilities must have shape"),
        ({"liabilities": [[0, -1], [1, 0]]}, r"liabilities\[0, 1\] = -1\.0 is negative"),
        ({"liabilities": [[2, 1], [1, 0]]}, r"liabilities\[0, 0\] = 2\.0: the diagonal"),
        ({"liabilities": [[0, np.nan], [1, 0]]}, r"liabilities\[0, 1\] = nan.*finite"),
        ({"liabilities": "abc"}, r"liabilities must be an array of real numbers"),
        ({"external_assets": [1.0, 2.0, 3.0]}, r"external_assets must have shape \(2,\)"),
        ({"external_assets": [1.0, np.inf]}, r"external_assets\[1\] = inf"),
        ({"external_liabilities": [0.0, -2.0]}, r"external_liabilities\[1\] = -2\.0 is neg"),
        ({"external_liabilities": [0.0]}, r"external_liabilities must have shape"),
        ({"alpha": 1.5}, r"alpha = 1\.5 is outside \[0, 1\]"),
        ({"beta": -0.1}, r"beta = -0\.1 is outside \[0, 1\]"),
        ({"beta": float("nan")}, r"beta = nan is outside"),
        ({"tol": -1.0}, r"tol = -1\.0 must be finite and >= 0"),
        (
            {"liabilities": np.zeros((3, 2, 2)), "external_assets": np.zeros((2, 2))},
            r"batch sizes differ \(liabilities: B = 3, external_assets: B = 2\)",
        ),
    ],
)
def test_eisenberg_noe_input_errors_name_the_argument(kwargs, match):
    args = {"liabilities": [[0.0, 1.0], [1.0, 0.0]], "external_assets": [1.0, 1.0]} | kwargs
    with pytest.raises(InputError, match=match):
        eisenberg_noe(**args)


# ---------------------------------------------------------------------------------------------
# DebtRank
# ---------------------------------------------------------------------------------------------


def test_debtrank_chain_hand_solved():
    """DebtRank on a chain (hand-solved with the dynamics of Battiston et al. 2012, Sci. Rep. 2,
    541, section 'DebtRank': states U/D/I, each distressed bank propagating once).

    Bank 0 lent 4 to bank 1, bank 1 lent 2.5 to bank 2; equity (10, 5, 4); bank 2 fully
    distressed. W[0, 1] = 4/10 = 0.4, W[1, 2] = 2.5/5 = 0.5.
    t=1: h = (0, 0, 1), D = {2}.
    t=2: h1 = 0.5 * 1 = 0.5; bank 2 -> I, D = {1}.
    t=3: h0 = 0.4 * 0.5 = 0.2; bank 1 -> I, D = {0}.
    t=4: nobody is exposed to bank 0; bank 0 -> I; D empty: 3 propagation steps.
    Weights = shares of interbank assets (4, 2.5, 0) / 6.5; R = (0.2*4 + 0.5*2.5) / 6.5 - 0
    = 2.05 / 6.5 (bank 2's own shock has weight 0 here).
    """
    X = np.zeros((3, 3))
    X[0, 1], X[1, 2] = 4.0, 2.5
    result = debtrank(X, [10.0, 5.0, 4.0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(result.h, [0.2, 0.5, 1.0])
    assert result.debtrank == pytest.approx(2.05 / 6.5)
    assert result.rounds == 3


def test_debtrank_cycle_each_bank_propagates_once():
    """Two banks each lent 5 to the other, equity 10 each: W = [[0, .5], [.5, 0]] (hand-solved;
    Battiston et al. 2012 rule that a distressed node propagates only once, the reason for the
    underestimation noted by Bardoscia et al. 2015, PLoS ONE 10(6) e0130406).

    t=1: h = (0.5, 0), D = {0}.
    t=2: h1 = 0.5 * 0.5 = 0.25; bank 0 -> I; D = {1}.
    t=3: h0 = 0.5 + 0.5 * 0.25 = 0.625 (an inactive bank still receives distress); bank 1 -> I.
      Bank 0 is inactive, so its extra 0.125 never returns to bank 1: h1 stays 0.25.
    Weights (5, 5)/10: R = 0.5 (0.625 + 0.25) - 0.5 * 0.5 = 0.1875; 2 propagation steps.
    """
    X = np.array([[0.0, 5.0], [5.0, 0.0]])
    result = debtrank(X, [10.0, 10.0], [0.5, 0.0])
    np.testing.assert_allclose(result.h, [0.625, 0.25])
    assert result.debtrank == pytest.approx(0.1875)
    assert result.rounds == 2


def test_debtrank_impact_and_distress_saturate_at_one():
    """W = min(1, exposure/equity) and h = min(1, ...) (Battiston et al. 2012; hand-solved).

    Equity 10 everywhere. Bank 0 lent 20 to bank 1: W[0, 1] = min(1, 20/10) = 1, so bank 1
    fully distressed (a bool mask) makes bank 0 fully distressed. Bank 3 lent 6 to bank 0 and 6
    to bank 1 (W = 0.6 each; bank 2 is isolated). With h(1) = (1, 0.3, 0, 0) bank 3 receives
    0.6 * 1 + 0.6 * 0.3 = 0.78 at t = 2 (R = 0.78 with weight 1 on bank 3 only); with
    h(1) = (1, 1, 0, 0) it would receive 1.2 and is capped at 1.
    """
    X = np.zeros((4, 4))
    X[0, 1] = 20.0
    X[3, 0] = X[3, 1] = 6.0
    equity = np.full(4, 10.0)
    weights = np.array([0.0, 0.0, 0.0, 1.0])
    partial = debtrank(X, equity, [1.0, 0.3, 0.0, 0.0], weights)
    assert partial.h[3] == pytest.approx(0.78)
    assert partial.debtrank == pytest.approx(0.78)
    full = debtrank(X, equity, [1.0, 1.0, 0.0, 0.0], weights)
    assert full.h[3] == 1.0
    saturated = debtrank(X, equity, np.array([False, True, False, False]))
    assert saturated.h[0] == 1.0  # W[0, 1] = 1 and h1 = 1 (a bool mask means distress 1)


def test_debtrank_without_shock_is_zero():
    result = debtrank([[0.0, 1.0], [1.0, 0.0]], [1.0, 1.0], [0.0, 0.0])
    np.testing.assert_array_equal(result.h, [0.0, 0.0])
    assert result.debtrank == 0.0
    assert result.rounds == 0


@settings(max_examples=100, deadline=None)
@given(networks(min_e=1), st.lists(unit, min_size=6, max_size=6))
def test_debtrank_properties(net, shock):
    """h(T) >= h(1), h in [0, 1], R in [0, 1] with the default weights, at most N + 1 steps."""
    X, equity, _ = net
    n = len(equity)
    h0 = np.array(shock[:n])
    result = debtrank(X, equity, h0)
    assert np.all(result.h >= h0) and np.all(result.h <= 1.0)
    assert -1e-12 <= result.debtrank <= 1.0 + 1e-12
    assert result.rounds <= n + 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"equity": [1.0, 0.0]}, r"equity\[1\] = 0\.0 must be > 0"),
        ({"equity": [1.0]}, r"equity must have shape \(2,\)"),
        ({"initial_distress": [1.5, 0.0]}, r"initial_distress\[0\] = 1\.5 is outside \[0, 1\]"),
        ({"exposures": [[0.0, -1.0], [0.0, 0.0]]}, r"exposures\[0, 1\] = -1\.0 is negative"),
        ({"exposures": [[1.0, 1.0], [0.0, 0.0]]}, r"exposures\[0, 0\] = 1\.0: the diagonal"),
        ({"exposures": np.zeros((2, 2, 2))}, r"exposures must have shape \(N, N\)"),
        ({"weights": [1.0, -1.0]}, r"weights\[1\] = -1\.0 is negative"),
    ],
)
def test_debtrank_input_errors_name_the_argument(kwargs, match):
    args = {
        "exposures": [[0.0, 1.0], [1.0, 0.0]],
        "equity": [1.0, 1.0],
        "initial_distress": [1.0, 0.0],
    } | kwargs
    with pytest.raises(InputError, match=match):
        debtrank(**args)


# ---------------------------------------------------------------------------------------------
# Furfine
# ---------------------------------------------------------------------------------------------


def test_furfine_cascade_with_cumulative_losses():
    """Hand-solved Furfine (2003) cascade; losses on all failed banks accumulate.

    Bank 1 lent 5 to bank 0; bank 2 lent 3 to bank 0 and 4 to bank 1; bank 3 lent 10 to bank 2.
    Capital (1, 4, 6, 20); bank 0 fails initially; lgd = 1.
    Round 1: bank 1 loses 5 >= 4: fails. Bank 2 loses 3 < 6.
    Round 2: bank 2 loses 3 + 4 = 7 >= 6: fails (only because both losses add up).
    Round 3: bank 3 loses 10 < 20: the cascade stops.
    """
    X = np.zeros((4, 4))
    X[1, 0], X[2, 0], X[2, 1], X[3, 2] = 5.0, 3.0, 4.0, 10.0
    result = furfine(X, [1.0, 4.0, 6.0, 20.0], [0])
    np.testing.assert_array_equal(result.defaulted, [True, True, True, False])
    np.testing.assert_array_equal(result.default_round, [0, 1, 2, -1])
    assert [r.tolist() for r in result.rounds] == [[0], [1], [2]]


def test_furfine_lgd_scales_losses_and_ties_fail():
    """Same network as above. lgd = 1/2: bank 1 loses 2.5 < 4 and bank 2 1.5 < 6: no contagion.
    lgd = 0.8: bank 1 loses exactly 4 = capital and fails (loss >= capital); bank 2 then loses
    0.8 * 7 = 5.6 < 6 and survives. Per-borrower lgd (1, 1/2, ...) (an (N,) array broadcasts
    over borrowers j): bank 1 loses 5 >= 4, bank 2 loses 3 + 0.5 * 4 = 5 < 6."""
    X = np.zeros((4, 4))
    X[1, 0], X[2, 0], X[2, 1], X[3, 2] = 5.0, 3.0, 4.0, 10.0
    capital = [1.0, 4.0, 6.0, 20.0]
    half = furfine(X, capital, [0], lgd=0.5)
    np.testing.assert_array_equal(half.default_round, [0, -1, -1, -1])
    assert [r.tolist() for r in half.rounds] == [[0]]
    tie = furfine(X, capital, np.array([True, False, False, False]), lgd=0.8)
    np.testing.assert_array_equal(tie.default_round, [0, 1, -1, -1])
    per_borrower = furfine(X, capital, [0], lgd=np.array([1.0, 0.5, 1.0, 1.0]))
    np.testing.assert_array_equal(per_borrower.default_round, [0, 1, -1, -1])


def test_furfine_gandy_veraart_default_cascade_example():
    """The network of the ``systemicrisk`` help page ``default_cascade`` (Gandy & Veraart, CRAN),
    a Furfine-type cascade with recovery 0.

    Net worth = colsums(L) + ea - rowsums(L) - el = 1 + ea - 1 - el = (-1, 1/8, 1/4): bank 1
    (index 0) is insolvent at the start. Exposures are L^T = L (symmetric). Round 1: banks 2 and
    3 each lose 1/2 on bank 1, more than their net worth 1/8 and 1/4: both fail.
    """
    capital = GV_L.sum(axis=0) + GV_EA - GV_L.sum(axis=1) - GV_EL
    np.testing.assert_allclose(capital, [-1.0, 1 / 8, 1 / 4])
    result = furfine(GV_L.T, capital, capital < 0)
    np.testing.assert_array_equal(result.default_round, [0, 1, 1])
    assert [r.tolist() for r in result.rounds] == [[0], [1, 2]]


@settings(max_examples=100, deadline=None)
@given(networks(min_e=1), st.lists(st.booleans(), min_size=4, max_size=4), unit)
def test_furfine_properties(net, initial, lgd):
    """Every failure in round k >= 1 is justified by the losses on banks failed before round k;
    every survivor's total loss stays below its capital; rounds partition the failed banks."""
    X, capital, _ = net
    n = len(capital)
    mask = np.array(initial[:n])
    result = furfine(X, capital, mask, lgd)
    r = result.default_round
    assert np.all(r[mask] == 0) and np.all(r[~mask] != 0)
    for i in np.flatnonzero(r > 0):
        assert lgd * X[i] @ ((r >= 0) & (r < r[i])) >= capital[i]
    survivors = ~result.defaulted
    assert np.all(lgd * X[survivors] @ result.defaulted < capital[survivors])
    assert sorted(np.concatenate(result.rounds).tolist()) == np.flatnonzero(r >= 0).tolist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"initial_defaults": [2]}, r"initial_defaults contains index 2, outside \[0, 2\)"),
        ({"initial_defaults": [0, 0]}, r"initial_defaults repeats an index"),
        ({"initial_defaults": [0.5]}, r"initial_defaults must be an \(N,\) bool mask"),
        ({"initial_defaults": np.array([True])}, r"bool mask must have shape \(2,\)"),
        ({"capital": [1.0, 0.0]}, r"capital\[1\] = 0\.0 must be > 0"),
        ({"lgd": 1.2}, r"lgd.* = 1\.2 is outside \[0, 1\]"),
        ({"lgd": np.ones(3)}, r"lgd must be a scalar or broadcastable to \(2, 2\)"),
        ({"exposures": [[0.0, 1.0]]}, r"exposures must have shape \(N, N\)"),
    ],
)
def test_furfine_input_errors_name_the_argument(kwargs, match):
    args = {
        "exposures": [[0.0, 1.0], [1.0, 0.0]],
        "capital": [1.0, 1.0],
        "initial_defaults": [0],
    } | kwargs
    with pytest.raises(InputError, match=match):
        furfine(**args)
