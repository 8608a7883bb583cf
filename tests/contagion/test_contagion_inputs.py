"""Input checks and result guarantees of ``rudra_env.contagion``, stated exactly.

``test_contagion.py`` checks that each error names its argument; these tests pin the whole
user-facing message (field name, index, value, what is allowed and why), the boundary values that
are accepted, that unbatched functions reject a batch, and that every result array is read-only.
They were written against the mutants that survived the mutation run: each test says which kind
of change to the library it catches.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from rudra_env.contagion import debtrank, eisenberg_noe, furfine
from rudra_env.errors import InputError


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


def starting(prefix: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for a message that begins with ``prefix``."""
    return f"^{re.escape(prefix)}"


TWO_BANKS = [[0.0, 1.0], [1.0, 0.0]]


# ---------------------------------------------------------------------------------------------
# Eisenberg–Noe: messages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"liabilities": [[0.0, -1.0], [1.0, 0.0]]},
            exactly(
                "liabilities[0, 1] = -1.0 is negative; liabilities must be >= 0 "
                "(liabilities[i, j] is what i owes j)"
            ),
        ),
        (
            {"liabilities": [[0.0, 1.0], [2.0, 3.0]]},
            exactly(
                "liabilities[1, 1] = 3.0: the diagonal of liabilities must be zero "
                "(a bank has no claim on itself)"
            ),
        ),
        (
            {"liabilities": np.zeros((2, 3))},
            exactly(
                "liabilities must have shape (N, N) or (B, N, N) with N >= 1, got shape (2, 3)"
            ),
        ),
        # A batch of non-square matrices: the check compares the last two axes.
        (
            {"liabilities": np.zeros((2, 2, 3))},
            exactly(
                "liabilities must have shape (N, N) or (B, N, N) with N >= 1, got shape (2, 2, 3)"
            ),
        ),
        (
            {"liabilities": np.zeros((0, 0))},
            exactly(
                "liabilities must have shape (N, N) or (B, N, N) with N >= 1, got shape (0, 0)"
            ),
        ),
        (
            {"liabilities": np.zeros((3, 0, 0))},
            exactly(
                "liabilities must have shape (N, N) or (B, N, N) with N >= 1, got shape (3, 0, 0)"
            ),
        ),
        # A 0-d value has no index: the message names the field alone.
        (
            {"liabilities": float("nan")},
            exactly("liabilities = nan: every entry of liabilities must be finite"),
        ),
        (
            {"liabilities": "abc"},
            starting("liabilities must be an array of real numbers, got str ("),
        ),
        (
            {"liabilities": [[0.0, 1.0], [1.0]]},
            starting("liabilities must be an array of real numbers, got list ("),
        ),
        (
            {"external_assets": [1.0, 2.0, 3.0]},
            exactly("external_assets must have shape (2,) or (B, 2) for N = 2 banks, got (3,)"),
        ),
        (
            {"external_assets": np.zeros((1, 1, 2))},
            exactly(
                "external_assets must have shape (2,) or (B, 2) for N = 2 banks, got (1, 1, 2)"
            ),
        ),
        (
            {"external_liabilities": [0.0, -2.0]},
            exactly(
                "external_liabilities[1] = -2.0 is negative; external_liabilities must be >= 0 "
                "(debts to outside creditors)"
            ),
        ),
        (
            {"external_liabilities": [[0.0, 0.0], [0.0, -2.0]]},
            exactly(
                "external_liabilities[1, 1] = -2.0 is negative; external_liabilities must be "
                ">= 0 (debts to outside creditors)"
            ),
        ),
        ({"alpha": "abc"}, exactly("alpha must be a real number in [0, 1], got 'abc'")),
        ({"beta": None}, exactly("beta must be a real number in [0, 1], got None")),
        ({"alpha": 1.0000001}, exactly("alpha = 1.0000001 is outside [0, 1]")),
        ({"beta": -1e-9}, exactly("beta = -1e-09 is outside [0, 1]")),
        ({"tol": "abc"}, exactly("tol must be a non-negative real number, got 'abc'")),
        ({"tol": -1e-12}, exactly("tol = -1e-12 must be finite and >= 0")),
        ({"tol": float("inf")}, exactly("tol = inf must be finite and >= 0")),
        (
            {
                "liabilities": np.zeros((3, 2, 2)),
                "external_liabilities": np.zeros((2, 2)),
            },
            exactly(
                "batch sizes differ (liabilities: B = 3, external_liabilities: B = 2); "
                "batched inputs must share B"
            ),
        ),
        (
            {"external_assets": np.zeros((4, 2)), "external_liabilities": np.zeros((2, 2))},
            exactly(
                "batch sizes differ (external_assets: B = 4, external_liabilities: B = 2); "
                "batched inputs must share B"
            ),
        ),
    ],
)
def test_eisenberg_noe_error_messages_are_exact(kwargs, match):
    args = {"liabilities": TWO_BANKS, "external_assets": [1.0, 1.0]} | kwargs
    with pytest.raises(InputError, match=match):
        eisenberg_noe(**args)


# ---------------------------------------------------------------------------------------------
# Eisenberg–Noe: accepted boundaries, tol, batching, read-only results
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_alpha_and_beta_accept_both_ends_of_the_unit_interval(value):
    result = eisenberg_noe(TWO_BANKS, [1.0, 1.0], alpha=value, beta=value)
    np.testing.assert_array_equal(result.payments, [1.0, 1.0])


def test_tol_zero_is_accepted_and_an_exactly_zero_equity_is_solvent():
    """Bank 0 owes 1 to bank 1 and holds exactly 1 outside: equity 0, solvent even at tol 0.
    With one millionth less it defaults at tol 0 and pays all it has."""
    L = [[0.0, 1.0], [0.0, 0.0]]
    solvent = eisenberg_noe(L, [1.0, 0.0], tol=0.0)
    np.testing.assert_array_equal(solvent.payments, [1.0, 0.0])
    np.testing.assert_array_equal(solvent.defaulted, [False, False])
    short = eisenberg_noe(L, [1.0 - 1e-6, 0.0], tol=0)
    np.testing.assert_array_equal(short.defaulted, [True, False])
    np.testing.assert_allclose(short.payments, [1.0 - 1e-6, 0.0], rtol=0, atol=1e-15)


def test_tol_is_passed_to_the_clearing():
    """A shortfall of 1e-6 on an obligation of 1 is a default at the default tol (1e-10) and at
    tol 1e-7, but counts as solvent at tol 1e-3."""
    L = [[0.0, 1.0], [0.0, 0.0]]
    e = [1.0 - 1e-6, 0.0]
    assert eisenberg_noe(L, e).defaulted.tolist() == [True, False]
    assert eisenberg_noe(L, e, tol=1e-7).defaulted.tolist() == [True, False]
    lenient = eisenberg_noe(L, e, tol=1e-3)
    assert lenient.defaulted.tolist() == [False, False]
    np.testing.assert_array_equal(lenient.payments, [1.0, 0.0])


def test_batched_external_liabilities_alone_batch_the_result():
    """Only ``external_liabilities`` carries B = 2: the result has two worlds. World 0 owes
    nothing outside (both banks pay 1); in world 1 bank 0 also owes 1 outside, so it holds
    1 + 1 = 2 against 2 owed and stays solvent, paying 1 to bank 1 and 1 outside."""
    result = eisenberg_noe(TWO_BANKS, [1.0, 1.0], [[0.0, 0.0], [1.0, 0.0]])
    assert result.payments.shape == (2, 2)
    np.testing.assert_array_equal(result.obligations, [[1.0, 1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(result.payments, [[1.0, 1.0], [2.0, 1.0]])


def test_batched_inputs_with_equal_batch_sizes_are_accepted():
    L = np.broadcast_to(np.array(TWO_BANKS), (3, 2, 2))
    result = eisenberg_noe(L, np.ones((3, 2)), np.zeros((3, 2)))
    assert result.payments.shape == (3, 2)


@pytest.mark.parametrize(
    ("liabilities", "external_assets"),
    [(TWO_BANKS, [0.5, 1.0]), ([TWO_BANKS, TWO_BANKS], [[0.5, 1.0], [1.0, 1.0]])],
    ids=["one network", "batch"],
)
def test_every_clearing_result_array_is_read_only(liabilities, external_assets):
    result = eisenberg_noe(liabilities, external_assets)
    for field in ("payments", "defaulted", "equity", "obligations"):
        arr = getattr(result, field)
        assert not arr.flags.writeable, field
        with pytest.raises(ValueError, match="read-only"):
            arr[..., 0] = 0


# ---------------------------------------------------------------------------------------------
# DebtRank
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"exposures": [[0.0, -1.0], [1.0, 0.0]]},
            exactly(
                "exposures[0, 1] = -1.0 is negative; exposures must be >= 0 "
                "(exposures[i, j] is what j owes i)"
            ),
        ),
        (
            {"exposures": np.zeros((2, 2, 2))},
            exactly("exposures must have shape (N, N) with N >= 1, got shape (2, 2, 2)"),
        ),
        (
            {"exposures": np.zeros((2, 3))},
            exactly("exposures must have shape (N, N) with N >= 1, got shape (2, 3)"),
        ),
        (
            {"equity": [1.0, 0.0]},
            exactly(
                "equity[1] = 0.0 must be > 0: the impact exposures[i, j] / equity[i] is "
                "undefined without equity (give a defaulted bank initial_distress 1 and its "
                "pre-shock equity)"
            ),
        ),
        (
            {"equity": [1.0]},
            exactly("equity must have shape (2,) for N = 2 banks, got (1,)"),
        ),
        # One network only: a batch of equities is rejected.
        (
            {"equity": [[1.0, 1.0]]},
            exactly("equity must have shape (2,) for N = 2 banks, got (1, 2)"),
        ),
        (
            {"initial_distress": [1.0, 0.0, 0.0]},
            exactly("initial_distress must have shape (2,) for N = 2 banks, got (3,)"),
        ),
        (
            {"initial_distress": [[1.0, 0.0]]},
            exactly("initial_distress must have shape (2,) for N = 2 banks, got (1, 2)"),
        ),
        (
            {"initial_distress": [1.0, np.nan]},
            exactly("initial_distress[1] = nan: every entry of initial_distress must be finite"),
        ),
        (
            {"weights": [1.0, 1.0, 1.0]},
            exactly("weights must have shape (2,) for N = 2 banks, got (3,)"),
        ),
        (
            {"weights": [[1.0, 1.0]]},
            exactly("weights must have shape (2,) for N = 2 banks, got (1, 2)"),
        ),
        (
            {"weights": [1.0, np.inf]},
            exactly("weights[1] = inf: every entry of weights must be finite"),
        ),
        (
            {"weights": [1.0, -0.5]},
            exactly(
                "weights[1] = -0.5 is negative; weights must be >= 0 (economic weight of each bank)"
            ),
        ),
    ],
)
def test_debtrank_error_messages_are_exact(kwargs, match):
    args = {"exposures": TWO_BANKS, "equity": [1.0, 1.0], "initial_distress": [1.0, 0.0]} | kwargs
    with pytest.raises(InputError, match=match):
        debtrank(**args)


@pytest.mark.parametrize(
    ("h0", "match"),
    [
        ([0.0, 1.0, 1.5], exactly("initial_distress[2] = 1.5 is outside [0, 1]")),
        ([0.0, 1.0, -0.25], exactly("initial_distress[2] = -0.25 is outside [0, 1]")),
        ([1.0, 2.5, 0.0], exactly("initial_distress[1] = 2.5 is outside [0, 1]")),
    ],
)
def test_debtrank_names_the_first_initial_distress_outside_the_unit_interval(h0, match):
    """Entries 0 and 1 at the ends of [0, 1] are valid; the message names the invalid one."""
    with pytest.raises(InputError, match=match):
        debtrank(np.zeros((3, 3)), np.ones(3), h0)


def test_debtrank_accepts_initial_distress_zero_and_one():
    result = debtrank(TWO_BANKS, [1.0, 1.0], [0.0, 1.0])
    np.testing.assert_array_equal(result.h, [1.0, 1.0])


def test_debtrank_default_weights_for_total_assets_below_one():
    """Interbank assets (0.5, 0) sum to 0.5: the weights are (1, 0), not uniform.

    Bank 0 lent 0.5 to bank 1; equity (1, 1); bank 1 fully distressed. W_01 = 0.5, so
    h = (0.5, 1) and R = 1 * 0.5 + 0 * 1 - (1 * 0 + 0 * 1) = 0.5 (uniform weights would give
    0.25). Rounds: bank 1 propagates, then bank 0 (to nobody): 2.
    """
    result = debtrank([[0.0, 0.5], [0.0, 0.0]], [1.0, 1.0], [0.0, 1.0])
    np.testing.assert_array_equal(result.h, [0.5, 1.0])
    assert result.debtrank == 0.5
    assert result.rounds == 2


def test_debtrank_impact_is_capped_at_one_for_partial_distress():
    """Bank 0 lent 4 to bank 1 with equity 1: W_01 = min(1, 4) = 1, so a distress of 1/4 at
    bank 1 passes on as 1/4, not 1. Weights (1, 0): R = 1/4."""
    result = debtrank([[0.0, 4.0], [0.0, 0.0]], [1.0, 1.0], [0.0, 0.25])
    np.testing.assert_array_equal(result.h, [0.25, 0.25])
    assert result.debtrank == 0.25


def test_debtrank_without_exposures_is_zero():
    result = debtrank(np.zeros((3, 3)), np.ones(3), [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(result.h, [1.0, 0.5, 0.0])
    assert result.debtrank == 0.0
    assert result.rounds == 1


def test_debtrank_result_is_read_only():
    result = debtrank(TWO_BANKS, [1.0, 1.0], [0.5, 0.0])
    assert not result.h.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        result.h[0] = 0.0


# ---------------------------------------------------------------------------------------------
# Furfine
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"exposures": [[0.0, -1.0], [1.0, 0.0]]},
            exactly(
                "exposures[0, 1] = -1.0 is negative; exposures must be >= 0 "
                "(exposures[i, j] is what j owes i)"
            ),
        ),
        # One network only: a batch of exposure matrices is rejected.
        (
            {"exposures": np.zeros((2, 2, 2))},
            exactly("exposures must have shape (N, N) with N >= 1, got shape (2, 2, 2)"),
        ),
        (
            {"capital": [1.0, 1.0, 1.0]},
            exactly("capital must have shape (2,) for N = 2 banks, got (3,)"),
        ),
        (
            {"capital": [[1.0, 1.0]]},
            exactly("capital must have shape (2,) for N = 2 banks, got (1, 2)"),
        ),
        (
            {"capital": [1.0, np.nan]},
            exactly("capital[1] = nan: every entry of capital must be finite"),
        ),
        (
            {"capital": [1.0, -2.0]},
            exactly(
                "capital[1] = -2.0 must be > 0 for a bank not in initial_defaults "
                "(a bank without capital has already failed: add it to initial_defaults)"
            ),
        ),
        # A 0-d lgd has no index: the message names the field alone.
        ({"lgd": float("nan")}, exactly("lgd = nan: every entry of lgd must be finite")),
        ({"lgd": [1.0, np.inf]}, exactly("lgd[1] = inf: every entry of lgd must be finite")),
        ({"lgd": {}}, starting("lgd must be an array of real numbers, got dict (")),
        ({"lgd": "high"}, starting("lgd must be an array of real numbers, got str (")),
        ({"lgd": -0.5}, exactly("lgd[0, 0] = -0.5 is outside [0, 1]")),
        (
            {"lgd": [[0.0, 1.0], [0.5, 1.2]]},
            exactly("lgd[1, 1] = 1.2 is outside [0, 1]"),
        ),
        (
            {"lgd": [[1.0, -0.1], [0.0, 1.0]]},
            exactly("lgd[0, 1] = -0.1 is outside [0, 1]"),
        ),
        (
            {"lgd": np.ones((3, 1))},
            exactly("lgd must be a scalar or broadcastable to (2, 2), got shape (3, 1)"),
        ),
        (
            {"initial_defaults": [0.5]},
            exactly(
                "initial_defaults must be an (N,) bool mask or a 1-D sequence of integer bank "
                "indices, got dtype float64 and shape (1,)"
            ),
        ),
        (
            {"initial_defaults": [[0], [1]]},
            exactly(
                "initial_defaults must be an (N,) bool mask or a 1-D sequence of integer bank "
                "indices, got dtype int64 and shape (2, 1)"
            ),
        ),
        (
            {"initial_defaults": [1, 3]},
            exactly("initial_defaults contains index 3, outside [0, 2)"),
        ),
        (
            {"initial_defaults": [0, -1]},
            exactly("initial_defaults contains index -1, outside [0, 2)"),
        ),
        (
            {"initial_defaults": [0, 1, 0]},
            exactly("initial_defaults repeats an index: [0, 1, 0]"),
        ),
        (
            {"initial_defaults": np.array([True, False, False])},
            exactly("initial_defaults as a bool mask must have shape (2,), got (3,)"),
        ),
    ],
)
def test_furfine_error_messages_are_exact(kwargs, match):
    args = {"exposures": TWO_BANKS, "capital": [1.0, 1.0], "initial_defaults": [0]} | kwargs
    with pytest.raises(InputError, match=match):
        furfine(**args)


@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=int), np.array([])])
def test_furfine_with_no_initial_defaults_has_no_failures(empty):
    result = furfine(TWO_BANKS, [0.5, 0.5], empty)
    assert result.defaulted.dtype == bool
    np.testing.assert_array_equal(result.defaulted, [False, False])
    np.testing.assert_array_equal(result.default_round, [-1, -1])
    assert [r.tolist() for r in result.rounds] == [[]]


def test_furfine_accepts_distinct_indices_in_any_order():
    """Two banks lent 1 to each other; both named as initial defaults, in reverse order."""
    result = furfine(np.array(TWO_BANKS), [1.0, 1.0], [1, 0])
    np.testing.assert_array_equal(result.default_round, [0, 0])
    assert [r.tolist() for r in result.rounds] == [[0, 1]]


def test_furfine_capital_of_an_initial_default_is_ignored():
    """Bank 0 has no capital but is an initial default; bank 1 loses 1 on it < capital 2."""
    result = furfine(TWO_BANKS, [0.0, 2.0], [0])
    np.testing.assert_array_equal(result.default_round, [0, -1])


@pytest.mark.parametrize(("lgd", "rounds"), [(0.0, [0, -1]), (1.0, [0, 1])])
def test_furfine_accepts_lgd_zero_and_one(lgd, rounds):
    """Bank 1 lent 1 to bank 0 and has capital 1: it fails on a full loss, not on none."""
    result = furfine(TWO_BANKS, [1.0, 1.0], [0], lgd=lgd)
    np.testing.assert_array_equal(result.default_round, rounds)


def test_every_furfine_result_array_is_read_only():
    """A three-round cascade on a chain: 0 fails, then 1, then 2."""
    X = np.zeros((3, 3))
    X[1, 0], X[2, 1] = 2.0, 2.0
    result = furfine(X, [1.0, 1.0, 1.0], [0])
    assert [r.tolist() for r in result.rounds] == [[0], [1], [2]]
    arrays = {"defaulted": result.defaulted, "default_round": result.default_round}
    arrays |= {f"rounds[{k}]": r for k, r in enumerate(result.rounds)}
    for name, arr in arrays.items():
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
