"""rudra_env.analysis on hand-built networks: every expected value is computed here independently
(by hand, by a linear solve or an eigen-decomposition), not by calling the function under test
again; DebtRank and Furfine numbers are checked against ``rudra_env.contagion``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from rudra_env.analysis import (
    CENTRALITIES,
    analysis_markdown,
    analyze_network,
    bottlenecks,
    cascade_sizes,
    centralities,
    contagion_paths,
    debtrank_ranking,
    hhi,
    impact_matrix,
    interconnectedness,
    lending_graph,
)
from rudra_env.config import EnvConfig
from rudra_env.contagion import debtrank, furfine
from rudra_env.core import balance_sheet, initial_state
from rudra_env.errors import InputError

SMALL = Path(__file__).resolve().parents[2] / "configs" / "env" / "small.yaml"


def hand_loans() -> np.ndarray:
    """Four banks, five loans: 0 -> 1 (2), 1 -> 2 (1), 2 -> 0 (1), 0 -> 2 (3), 3 -> 0 (1)
    (``i -> j``: i lent j). Banks 0, 1, 2 form a cycle; 3 only lends."""
    loans = np.zeros((4, 4))
    for i, j, amount in [(0, 1, 2.0), (1, 2, 1.0), (2, 0, 1.0), (0, 2, 3.0), (3, 0, 1.0)]:
        loans[i, j] = amount
    return loans


def chain() -> tuple[np.ndarray, np.ndarray]:
    """0 lent 1 five, 1 lent 2 four; equity 4, 3, 5: 2's failure takes 1 (loss 4 >= 3), whose
    failure takes 0 (loss 5 >= 4). Impacts W[0, 1] = W[1, 2] = 1."""
    loans = np.zeros((3, 3))
    loans[0, 1], loans[1, 2] = 5.0, 4.0
    return loans, np.array([4.0, 3.0, 5.0])


# ---------------------------------------------------------------------------- centralities
def test_degree_betweenness_closeness_by_hand() -> None:
    c = centralities(hand_loans())
    # in + out links over N - 1 = 3: bank 0 has lenders 2, 3 and borrowers 1, 2
    np.testing.assert_allclose(c["degree"], [4 / 3, 2 / 3, 3 / 3, 1 / 3])
    # shortest directed paths through 0: 2->0->1, 3->0->1, 3->0->2; through 2: 1->2->0;
    # divided by (N - 1)(N - 2) = 6
    np.testing.assert_allclose(c["betweenness"], [3 / 6, 0, 1 / 6, 0])
    # incoming hops: to 0 from 1 (2), 2 (1), 3 (1); to 1 from 0 (1), 2 (2), 3 (2);
    # to 2 from 0 (1), 1 (1), 3 (2); nobody reaches 3
    np.testing.assert_allclose(c["closeness"], [3 / 4, 3 / 5, 3 / 4, 0])


def test_pagerank_solves_its_linear_system() -> None:
    loans, d = hand_loans(), 0.85
    n = len(loans)
    p = loans / loans.sum(axis=1, keepdims=True)  # no bank lends nothing here
    expected = np.linalg.solve(np.eye(n) - d * p.T, np.full(n, (1 - d) / n))
    np.testing.assert_allclose(centralities(loans, damping=d)["pagerank"], expected, atol=1e-9)


def test_pagerank_spreads_a_bank_that_lends_nothing_uniformly() -> None:
    loans = np.zeros((3, 3))
    loans[0, 1], loans[1, 2] = 1.0, 1.0  # bank 2 is dangling
    d, n = 0.5, 3
    p = np.array([[0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]])
    expected = np.linalg.solve(np.eye(n) - d * p.T, np.full(n, (1 - d) / n))
    np.testing.assert_allclose(centralities(loans, damping=d)["pagerank"], expected, atol=1e-9)


def test_katz_is_the_resolvent_with_alpha_a_share_of_the_spectral_radius() -> None:
    loans = hand_loans()
    a = loans / loans.max()
    rho = max(abs(np.linalg.eigvals(a)))
    alpha = 0.5 / rho
    x = np.linalg.solve(np.eye(4) - alpha * a.T, np.ones(4))
    got = centralities(loans, katz_share=0.5)["katz"]
    np.testing.assert_allclose(got, x / np.linalg.norm(x), atol=1e-8)
    # the currency unit does not matter
    np.testing.assert_allclose(centralities(1000 * loans)["katz"], got, atol=1e-8)


def test_eigenvector_is_the_perron_vector_of_total_exposures() -> None:
    loans = hand_loans()
    values, vectors = np.linalg.eigh(loans + loans.T)
    perron = np.abs(vectors[:, np.argmax(values)])
    got = centralities(loans)["eigenvector"]
    np.testing.assert_allclose(got, perron / np.linalg.norm(perron), atol=1e-6)


def test_centralities_match_networkx_on_the_lending_graph() -> None:
    loans = hand_loans()
    g = lending_graph(loans)
    assert sorted(g.edges(data="weight")) == [
        (0, 1, 2.0),
        (0, 2, 3.0),
        (1, 2, 1.0),
        (2, 0, 1.0),
        (3, 0, 1.0),
    ]
    c = centralities(loans)
    assert list(c) == list(CENTRALITIES)
    for name, fn in [
        ("degree", nx.degree_centrality),
        ("betweenness", nx.betweenness_centrality),
        ("closeness", nx.closeness_centrality),
    ]:
        want = fn(g)
        np.testing.assert_allclose(c[name], [want[i] for i in range(4)], err_msg=name)


def test_centralities_of_a_network_without_loans() -> None:
    c = centralities(np.zeros((3, 3)))
    np.testing.assert_allclose(c["pagerank"], [1 / 3] * 3)
    np.testing.assert_allclose(c["degree"], 0.0)
    np.testing.assert_allclose(c["betweenness"], 0.0)


# ---------------------------------------------------------------------------- DebtRank
def test_debtrank_ranking_by_hand_on_a_chain() -> None:
    loans = np.zeros((3, 3))
    loans[0, 1], loans[1, 2] = 5.0, 2.0
    equity = np.array([10.0, 4.0, 5.0])
    # W[0,1] = 0.5, W[1,2] = 0.5; weights = interbank assets share [5, 2, 0] / 7
    # 2 fails: h1 = 0.5, then h0 = 0.25 -> R = 5/7 * 0.25 + 2/7 * 0.5; 1 fails: h0 = 0.5
    np.testing.assert_allclose(debtrank_ranking(loans, equity), [0.0, 2.5 / 7, 2.25 / 7])


def test_debtrank_ranking_agrees_with_the_contagion_library_on_small_yaml() -> None:
    state = initial_state(EnvConfig.from_yaml(SMALL), np.random.default_rng(0))
    loans, equity = state.loans[0], balance_sheet(state)["equity"][0]
    got = debtrank_ranking(loans, equity)
    for s in range(len(equity)):
        start = np.zeros(len(equity))
        start[s] = 1.0
        assert got[s] == pytest.approx(debtrank(loans, equity, start).debtrank, abs=1e-12)
    sizes = cascade_sizes(loans, equity)
    for s in range(len(equity)):
        assert sizes.defaults[s] == furfine(loans, equity, [s]).defaulted.sum() - 1


def test_banks_without_equity_are_left_out() -> None:
    loans, equity = chain()
    equity[2] = 0.0
    sizes = cascade_sizes(loans, equity)
    assert np.isnan(sizes.distress[2]) and sizes.defaults[2] == -1
    # bank 1 failing still takes bank 0 (the sub-network 0, 1)
    assert sizes.distress[1] == pytest.approx(1.0) and sizes.defaults[1] == 1


# ---------------------------------------------------------------------------- contagion paths
def test_contagion_paths_take_the_most_probable_chain() -> None:
    loans = np.zeros((4, 4))
    equity = np.full(4, 10.0)
    loans[1, 3] = 5.0  # 3 hits 1 with 0.5
    loans[0, 1] = 8.0  # 1 hits 0 with 0.8: 3 -> 1 -> 0 has 0.4
    loans[2, 3] = 9.0  # 3 hits 2 with 0.9
    loans[0, 2] = 3.0  # 2 hits 0 with 0.3: 3 -> 2 -> 0 has 0.27 < 0.4
    paths = contagion_paths(loans, equity, source=3, threshold=0.35)
    got = [(p.target, p.path, p.probability) for p in paths]
    assert [g[:2] for g in got] == [(2, (3, 2)), (1, (3, 1)), (0, (3, 1, 0))]
    np.testing.assert_allclose([g[2] for g in got], [0.9, 0.5, 0.4])
    assert [p.target for p in contagion_paths(loans, equity, 3, threshold=0.45)] == [2, 1]


def test_impact_matrix_caps_at_one_and_leaves_out_banks_without_equity() -> None:
    loans, equity = chain()
    w = impact_matrix(loans, np.array([4.0, 0.0, 5.0]))
    assert w[0, 1] == 1.0 and np.isnan(w[1]).all() and (w[2] == 0).all()


# ---------------------------------------------------------------------------- bottlenecks
def test_bottleneck_by_hand_on_a_chain() -> None:
    loans, equity = chain()
    sizes = cascade_sizes(loans, equity)
    np.testing.assert_allclose(sizes.distress, [0.0, 5 / 9, 1.0])  # weights [5, 4, 0] / 9
    np.testing.assert_array_equal(sizes.defaults, [0, 1, 2])
    # removing 1 saves bank 0 from 2's cascade (5/9 of value, 1 default) and changes
    # nothing for source 0: averaged over the two other sources
    b = bottlenecks(loans, equity)
    np.testing.assert_allclose(b.distress, [0.0, 5 / 18, 0.0])
    np.testing.assert_allclose(b.defaults, [0.0, 0.5, 0.0])
    only = bottlenecks(loans, equity, candidates=[1])
    assert np.isnan(only.distress[[0, 2]]).all() and only.distress[1] == pytest.approx(5 / 18)


def test_bottleneck_of_a_parallel_route_is_shared() -> None:
    # 3 fails -> 1 and 2 fail (each lost 5 >= 3) -> 0 fails only when both do (each loan to
    # them is 3 < its equity 4, together 6 >= 4): removing 1 or 2 saves 0 in Furfine
    loans = np.zeros((4, 4))
    loans[1, 3] = loans[2, 3] = 5.0
    loans[0, 1] = loans[0, 2] = 3.0
    equity = np.array([4.0, 3.0, 3.0, 10.0])
    b = bottlenecks(loans, equity)
    # sources other than k: for k = 1, sources 0, 2, 3; only 3's cascade reaches 1
    assert b.defaults[1] == pytest.approx(1 / 3) and b.defaults[2] == pytest.approx(1 / 3)
    assert b.defaults[0] == 0 and b.defaults[3] == 0


# ---------------------------------------------------------------------------- concentration
def test_hhi_by_hand() -> None:
    c = hhi(hand_loans())
    # lending: bank 0 lends 2 and 3 (shares .4 .6), bank 1 lends 1, bank 2 lends 1, bank 3 lends 1
    np.testing.assert_allclose(c.lending, [0.4**2 + 0.6**2, 1.0, 1.0, 1.0])
    # borrowing: 0 from 2 and 3 (1, 1), 1 from 0, 2 from 0 (3) and 1 (1), 3 from nobody
    np.testing.assert_allclose(c.borrowing[:3], [0.5, 1.0, 0.75**2 + 0.25**2])
    assert np.isnan(c.borrowing[3])
    # system: lent [5, 1, 1, 1] / 8, borrowed [2, 2, 4, 0] / 8
    assert c.system_lending == pytest.approx((25 + 1 + 1 + 1) / 64)
    assert c.system_borrowing == pytest.approx((4 + 4 + 16) / 64)


# ---------------------------------------------------------------------------- interconnectedness
def test_interconnectedness_by_hand() -> None:
    got = interconnectedness(hand_loans(), assets=np.full(4, 20.0))
    assert got["links"] == 5 and got["banks"] == 4
    assert got["density"] == pytest.approx(5 / 12)
    assert got["reciprocity"] == pytest.approx(2 / 5)  # 0 -> 2 and 2 -> 0
    assert got["mean_degree"] == pytest.approx(5 / 4)
    # undirected triangle 0-1-2 plus 0-3: clustering 1/3, 1, 1, 0
    assert got["clustering"] == pytest.approx((1 / 3 + 1 + 1 + 0) / 4)
    assert got["components"] == 1 and got["largest_scc_share"] == pytest.approx(3 / 4)
    assert got["interbank_share"] == pytest.approx(8 / 80)


# ---------------------------------------------------------------------------- all together
def test_analyze_network_leaves_out_defaulted_banks_and_keeps_indices() -> None:
    loans, equity = chain()
    big = np.zeros((4, 4))
    big[np.ix_([0, 2, 3], [0, 2, 3])] = loans  # bank 1 defaulted: its books are empty
    eq = np.array([4.0, 0.0, 3.0, 5.0])
    result = analyze_network(big, eq, np.full(4, 10.0), [True, False, True, True])
    assert result.banks.tolist() == [0, 2, 3]
    assert result.ranking() == [3, 2, 0]
    np.testing.assert_allclose(result.bottleneck.distress, [0.0, 5 / 18, 0.0])
    assert sorted(p.path for p in result.paths if p.source == 3) == [(3, 2), (3, 2, 0)]
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["defaulted"] == [1]
    assert [row["bank"] for row in data["banks"]] == [3, 2, 0]
    text = analysis_markdown(result, "chain")
    assert "| 1 | 3 |" in text and "3 → 2 → 0" in text and "## Bottleneck banks" in text


def test_every_analysis_number_is_finite_or_null_on_small_yaml() -> None:
    state = initial_state(EnvConfig.from_yaml(SMALL), np.random.default_rng(1))
    bs = balance_sheet(state)
    result = analyze_network(state.loans[0], bs["equity"][0], bs["assets"][0], state.alive[0])
    data = result.to_dict()
    json.dumps(data, allow_nan=False)
    assert len(data["banks"]) == 10 and all(row["rank"] for row in data["banks"])
    assert all(math.isfinite(row["debtrank"]) for row in data["banks"])


def test_a_network_with_every_bank_defaulted_or_without_loans_is_reported() -> None:
    none = analyze_network(np.zeros((2, 2)), [1.0, 2.0], [3.0, 4.0], [False, False])
    assert none.ranking() == [] and none.to_dict()["defaulted"] == [0, 1]
    assert "0 live banks of 2" in analysis_markdown(none)
    idle = analyze_network(np.zeros((2, 2)), [1.0, 2.0], [3.0, 4.0])
    data = json.loads(json.dumps(idle.to_dict(), allow_nan=False))
    assert [row["debtrank"] for row in data["banks"]] == [0.0, 0.0]
    assert data["system"]["hhi_lending"] is None and data["paths"] == []


@pytest.mark.parametrize(
    ("loans", "message"),
    [
        (np.zeros((2, 3)), "shape (N, N)"),
        (np.array([[0.0, -1.0], [0.0, 0.0]]), "loans[0, 1] = -1.0"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "loans[0, 0] = 1.0"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), "finite"),
    ],
)
def test_bad_loans_name_the_entry(loans: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        centralities(loans)


def test_bad_arguments_name_the_value() -> None:
    loans, equity = chain()
    with pytest.raises(InputError, match="source = 5 is not a bank"):
        contagion_paths(loans, equity, 5)
    with pytest.raises(InputError, match="threshold = 0"):
        contagion_paths(loans, equity, 0, threshold=0)
    with pytest.raises(InputError, match=r"equity must have shape \(3,\)"):
        cascade_sizes(loans, equity[:2])
    with pytest.raises(InputError, match="damping = 1"):
        centralities(loans, damping=1)
