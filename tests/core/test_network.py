"""Initial balance sheets: every preset starts with each bank at (never above) its target
leverage, sheets that balance, and deposits >= 0."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import env_config_cases

from rudra_env.config import EnvConfig
from rudra_env.core import balance_sheet, initial_state
from rudra_env.core.network import adjacency, assign_slots, draw_loans, load_exposures
from rudra_env.errors import ConfigError


@pytest.mark.parametrize("cfg", env_config_cases())
def test_presets_start_within_target_leverage(cfg: EnvConfig) -> None:
    for seed in range(20):
        s = initial_state(cfg, np.random.default_rng(seed), worlds=5)
        bs = balance_sheet(s)
        leverage = bs["assets"] / bs["equity"]
        worst = float((leverage / s.target_leverage).max())
        assert worst <= 1.0 + 1e-9, f"seed {seed}: a bank starts at {worst:.4f}x its target"
        assert (s.deposits >= 0).all()
        np.testing.assert_allclose(bs["equity"], s.equity0, rtol=1e-12)


def test_heavy_borrowers_borrow_less_instead_of_growing() -> None:
    """A star whose hub borrows from everybody: the hub's borrowing is capped at A - E, so its
    assets stay at target_leverage * capital and its deposits at >= 0."""
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 6,
            "topology": {"kind": "complete", "reciprocal": 0.0},
            "banks": {
                "capital": [50.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                "target_leverage": [10.0, 2.0, 2.0, 2.0, 2.0, 2.0],
                "interbank_ratio": 0.4,
            },
        }
    )
    for seed in range(10):
        s = initial_state(cfg, np.random.default_rng(seed))
        bs = balance_sheet(s)
        np.testing.assert_allclose(bs["assets"][0], s.target_leverage[0] * s.equity0[0])
        assert (bs["ib_liab"][0] <= bs["assets"][0] - bs["equity"][0] + 1e-9).all()


# --- load_exposures: CSV and NPZ, what it refuses and how it says so ---------------------------


def _msg(path, rest: str) -> str:
    return "^" + re.escape(f"topology.path = {str(path)!r}{rest}") + "$"


def test_missing_file_is_named() -> None:
    path = "/nowhere/exposures.csv"
    with pytest.raises(ConfigError, match=_msg(path, " is not an existing file")):
        load_exposures(path, 3)


def test_csv_of_ints_reads_as_float64_with_the_diagonal_zeroed(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("9,1,2\n3,9,4\n5,6,9\n")
    mat = load_exposures(path, 3)
    assert mat.dtype == np.float64
    assert mat.tolist() == [[0.0, 1.0, 2.0], [3.0, 0.0, 4.0], [5.0, 6.0, 0.0]]


def test_a_single_value_csv_is_a_1x1_matrix(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("7\n")
    mat = load_exposures(path, 1)
    assert mat.shape == (1, 1) and mat.tolist() == [[0.0]]


def test_wrong_shape_names_the_file_the_shape_and_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "row.csv"
    path.write_text("0,1,2\n")  # one row reads as (1, 3), not (3,)
    want = " holds a (1, 3) matrix: expected (3, 3) for num_banks = 3"
    with pytest.raises(ConfigError, match=_msg(path, want)):
        load_exposures(path, 3)


@pytest.mark.parametrize("bad", ["-1", "nan", "inf"])
def test_negative_or_non_finite_exposures_are_refused(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"0,{bad}\n1,0\n")
    with pytest.raises(ConfigError, match=_msg(path, ": exposures must be finite and >= 0")):
        load_exposures(path, 2)


def test_npz_reads_the_exposures_key_when_there_are_several(tmp_path: Path) -> None:
    path = tmp_path / "two.npz"
    np.savez(path, first=np.full((2, 2), 8.0), exposures=np.array([[5, 1], [2, 5]]))
    mat = load_exposures(path, 2)
    assert mat.dtype == np.float64
    assert mat.tolist() == [[0.0, 1.0], [2.0, 0.0]]


def test_npz_without_the_key_reads_its_only_array(tmp_path: Path) -> None:
    path = tmp_path / "only.npz"
    np.savez(path, loans=np.array([[5, 3], [4, 5]], dtype=np.int32))
    mat = load_exposures(path, 2)
    assert mat.dtype == np.float64
    assert mat.tolist() == [[0.0, 3.0], [4.0, 0.0]]


def test_npz_holding_an_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, exposures=np.array([[0, 1], [2, 0]], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_exposures(path, 2)


# --- topology generators: structure that holds for every draw ----------------------------------


def _topology(n: int, **topo) -> EnvConfig:
    return EnvConfig.from_dict({"num_banks": n, "topology": topo})


def _is_simple(adj: np.ndarray) -> bool:
    return adj.dtype == bool and (adj == adj.T).all() and not adj.diagonal().any()


def test_ring_links_each_bank_to_its_two_neighbours() -> None:
    adj = adjacency(_topology(6, kind="ring"), np.random.default_rng(0))
    assert _is_simple(adj)
    assert adj.sum(1).tolist() == [2] * 6
    assert all(adj[i, (i + 1) % 6] for i in range(6))


@pytest.mark.parametrize("topo", [{"kind": "complete"}, {"kind": "erdos_renyi", "p": 1.0}])
def test_complete_and_certain_erdos_renyi_link_every_pair(topo) -> None:
    adj = adjacency(_topology(5, **topo), np.random.default_rng(0))
    assert (adj == ~np.eye(5, dtype=bool)).all()


def test_core_periphery_blocks_with_certain_probabilities() -> None:
    # 10 banks, core_fraction 0.3: banks 0..2 are the core.
    core = np.arange(10) < 3
    inside = core[:, None] & core[None, :] & ~np.eye(10, dtype=bool)
    across = core[:, None] ^ core[None, :]
    rng = np.random.default_rng(0)
    only_core = adjacency(
        _topology(10, kind="core_periphery", core_fraction=0.3, core_p=1.0, periphery_p=0.0), rng
    )
    assert _is_simple(only_core) and (only_core == inside).all()
    only_across = adjacency(
        _topology(10, kind="core_periphery", core_fraction=0.3, core_p=0.0, periphery_p=1.0), rng
    )
    assert _is_simple(only_across) and (only_across == across).all()


@pytest.mark.parametrize(("n", "m"), [(10, 2), (7, 1), (8, 3)])
def test_barabasi_albert_edge_count_and_minimum_degree(n: int, m: int) -> None:
    for seed in range(5):
        adj = adjacency(_topology(n, kind="barabasi_albert", m=m), np.random.default_rng(seed))
        assert _is_simple(adj)
        assert adj.sum() // 2 == m * (n - m - 1) + m * (m + 1) // 2
        assert (adj.sum(1) >= m).all()
        assert adj[: m + 1, : m + 1].sum() == m * (m + 1)  # the seed core is complete


@pytest.mark.parametrize("reciprocal", [0.0, 1.0])
def test_loan_directions_follow_reciprocal(reciprocal: float) -> None:
    cfg = _topology(6, kind="complete", reciprocal=reciprocal)
    assets = np.arange(1.0, 7.0) * 10
    loans = draw_loans(cfg, assets, np.random.default_rng(3))
    one_way = (loans > 0) ^ (loans.T > 0)
    both = (loans > 0) & (loans.T > 0)
    off = ~np.eye(6, dtype=bool)
    assert (both[off] if reciprocal else one_way[off]).all()
    lenders = loans.sum(1) > 0
    np.testing.assert_allclose(loans.sum(1)[lenders], 0.2 * assets[lenders])


# --- assign_slots: order, ties and padding -------------------------------------------------------


def test_slots_by_exposure_ties_by_index_padded_with_minus_one() -> None:
    loans = np.array(
        [
            [0.0, 1.0, 0.0, 2.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    # exposures: bank 0 -> 1: 2, -> 3: 2 (tie, lower index first); bank 2 has none.
    assert assign_slots(loans, 2).tolist() == [[1, 3], [0, -1], [-1, -1], [0, -1]]
    wide = assign_slots(loans, 6)
    assert wide.dtype == np.int64 and wide.shape == (4, 6)
    assert wide[0].tolist() == [1, 3, -1, -1, -1, -1]
