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


def test_slot_ties_keep_index_order_in_long_rows_and_small_exposures_count() -> None:
    # Bank 0 lends 0.5 and 0.25 alternately to banks 1..15: long enough that an unstable sort
    # would reorder the ties, small enough that any exposure > 0 must still fill a slot.
    loans = np.zeros((16, 16))
    loans[0, 1:] = np.where(np.arange(1, 16) % 2, 0.5, 0.25)
    big = [j for j in range(1, 16) if j % 2]
    small = [j for j in range(1, 16) if not j % 2]
    assert assign_slots(loans, 15)[0].tolist() == big + small
    assert assign_slots(loans, 15)[1].tolist() == [0] + [-1] * 14


# --- topology generators: what the block probabilities and preferential attachment mean --------


def test_core_periphery_keeps_at_least_one_core_bank() -> None:
    # round(0.1 * 10) = 1 core bank: with certain core-periphery links the network is a star.
    cfg = _topology(10, kind="core_periphery", core_fraction=0.1, core_p=1.0, periphery_p=1.0)
    adj = adjacency(cfg, np.random.default_rng(0))
    star = np.zeros((10, 10), dtype=bool)
    star[0, 1:] = star[1:, 0] = True
    assert (adj == star).all()


def test_core_periphery_draws_each_pair_independently() -> None:
    # 6 core banks of 12: 15 core pairs and 36 core-periphery pairs, each linked with p = 0.5,
    # so a block is almost never all linked or all empty (one draw per pair, not per block).
    core = np.arange(12) < 6
    inside = np.triu(core[:, None] & core[None, :], 1)
    across = np.triu(core[:, None] ^ core[None, :], 1)
    cfg = _topology(12, kind="core_periphery", core_fraction=0.5, core_p=0.5, periphery_p=0.5)
    for seed in range(5):
        adj = adjacency(cfg, np.random.default_rng(seed))
        assert 0 < adj[inside].sum() < 15
        assert 0 < adj[across].sum() < 36


def test_adjacency_refuses_a_kind_without_a_generator() -> None:
    cfg = _topology(3, kind="from_file", path="x.csv")
    want = "topology.kind = 'from_file' has no adjacency generator"
    with pytest.raises(ConfigError, match="^" + re.escape(want) + "$"):
        adjacency(cfg, np.random.default_rng(0))


class _RecordingRng:
    """Forwards ``choice`` to a seeded generator and records what it was asked for."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self.calls: list[tuple[int, np.ndarray | None]] = []

    def choice(self, a, size=None, replace=True, p=None):
        self.calls.append((a, None if p is None else np.array(p)))
        return self._rng.choice(a, size=size, replace=replace, p=p)


@pytest.mark.parametrize(("n", "m"), [(12, 2), (9, 1), (10, 3)])
def test_barabasi_albert_attaches_in_proportion_to_degree(n: int, m: int) -> None:
    """Node ``new`` picks among nodes 0..new-1 with probability degree / total degree, where the
    degrees are those of the graph so far (the final graph restricted to nodes < new)."""
    for seed in range(3):
        rng = _RecordingRng(seed)
        adj = adjacency(_topology(n, kind="barabasi_albert", m=m), rng)  # type: ignore[arg-type]
        assert [a for a, _ in rng.calls] == list(range(m + 1, n))
        for new, p in rng.calls:
            deg = adj[:new, :new].sum(1)
            assert p is not None
            np.testing.assert_allclose(p, deg / deg.sum(), rtol=1e-12)
            assert adj[new, :new].sum() == m


# --- draw_loans: directions and weights ---------------------------------------------------------


def test_one_way_links_point_either_way_even_between_neighbouring_indices() -> None:
    cfg = _topology(8, kind="complete", reciprocal=0.0)
    up = []
    for seed in range(10):
        loans = draw_loans(cfg, np.ones(8), np.random.default_rng(seed))
        up += [bool(loans[i, i + 1] > 0) for i in range(7)]
    assert any(up) and not all(up)


def test_loan_weights_spread_over_half_to_one_and_a_half() -> None:
    """Weights are U[0.5, 1.5]: two loans of one lender differ by at most a factor 3, and with
    39 links per lender the spread comes close to it."""
    cfg = _topology(40, kind="complete", reciprocal=1.0)
    loans = draw_loans(cfg, np.ones(40), np.random.default_rng(0))
    off = ~np.eye(40, dtype=bool)
    pos = loans[off].reshape(40, 39)
    assert (pos > 0).all()
    ratio = pos.max(1) / pos.min(1)
    assert ratio.max() <= 3.0 + 1e-12
    assert ratio.max() > 2.5


# --- initial_state: each bank's sheet by hand ---------------------------------------------------


def test_initial_sheet_by_hand_on_a_small_complete_network() -> None:
    """Constant parameters, a complete network with loans both ways and nobody near the
    borrowing cap (bank i borrows at most 0.6 * 0.2 * (sum of others' assets) < A_i - E_i)."""
    capital = np.array([0.1, 0.15, 0.2, 0.25])
    risk = np.array([0.0, 0.25, 0.5, 1.0])
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 4,
            "max_counterparties": 5,
            "topology": {"kind": "complete", "reciprocal": 1.0},
            "banks": {
                "capital": capital.tolist(),
                "target_leverage": 10.0,
                "risk_factor": risk.tolist(),
                "cash_ratio": 0.1,
                "interbank_ratio": 0.2,
                "market_ratio": 0.2,
            },
            "beliefs": {"prior": 0.07},
        }
    )
    s = initial_state(cfg, np.random.default_rng(1), worlds=2)
    a = 10.0 * capital
    price0 = np.array([100.0, 50.0])
    for b in range(2):
        loans = s.loans[b]
        mv = 0.2 * (0.5 + risk) * a
        np.testing.assert_allclose(s.cash[b], 0.1 * a)
        np.testing.assert_allclose(loans.sum(1), 0.2 * a)  # nobody's lending scaled down
        np.testing.assert_allclose(s.units[b] * price0, np.stack([mv / 2, mv / 2], 1))
        np.testing.assert_allclose(s.basis[b], s.units[b] * price0)
        np.testing.assert_allclose(s.external[b], a - 0.1 * a - 0.2 * a - mv)
        np.testing.assert_allclose(s.deposits[b], a - capital - loans.sum(0))
        # depth: the world's holdings of each market (below 1 here, no floor applied)
        np.testing.assert_allclose(s.depth[b], (s.units[b] * price0).sum(0))
        assert (s.depth[b] < 1.0).all()
    np.testing.assert_allclose(s.equity0, np.stack([capital, capital]))
    np.testing.assert_allclose(s.vol2, [[0.02**2, 0.015**2]] * 2)
    # 3 neighbours each, 5 slots: the prior on used slots (bank 0 included), 0 on the padding
    assert (s.slots[..., :3] >= 0).all() and (s.slots[..., 3:] == -1).all()
    assert (s.belief[..., :3] == 0.07).all() and (s.belief[..., 3:] == 0.0).all()
    assert (s.default_step == -1).all() and s.default_step.dtype == np.int64
    assert s.t.dtype == np.int64 and (s.t == 0).all()


def test_a_configured_depth_is_kept() -> None:
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 3,
            "markets": [{"name": "A", "depth": 7.5}, {"name": "B", "price0": 20.0}],
        }
    )
    s = initial_state(cfg, np.random.default_rng(0), worlds=3)
    assert (s.depth[:, 0] == 7.5).all()
    np.testing.assert_allclose(s.depth[:, 1], (s.units[:, :, 1] * 20.0).sum(1))


def test_small_constant_parameters_are_not_clipped() -> None:
    cfg = EnvConfig.from_dict(
        {"num_banks": 3, "banks": {"capital": 0.5, "target_leverage": 1.5, "interbank_ratio": 0.0}}
    )
    s = initial_state(cfg, np.random.default_rng(0))
    assert (s.target_leverage == 1.5).all()
    np.testing.assert_allclose(s.equity0, 0.5)
    np.testing.assert_allclose(balance_sheet(s)["assets"], 0.75)


def test_drawn_parameters_are_clipped_to_their_ranges() -> None:
    wide = {"dist": "normal", "mean": 0.5, "std": 5.0}
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 30,
            "banks": {"capital": wide, "target_leverage": wide, "risk_factor": wide},
        }
    )
    s = initial_state(cfg, np.random.default_rng(0), worlds=4)
    assert (s.equity0 > 0).all() and np.isclose(s.equity0, 1e-6).any()
    assert (s.target_leverage >= 1.0).all() and (s.target_leverage == 1.0).any()
    assert ((s.risk_factor >= 0.0) & (s.risk_factor <= 1.0)).all()
    assert (s.risk_factor == 0.0).any() and (s.risk_factor == 1.0).any()


def test_from_file_exposures_are_taken_as_given_and_the_borrower_grows(tmp_path: Path) -> None:
    # Bank 0 (capital 1, target leverage 10: room 9) borrows 100 from each of the others.
    path = tmp_path / "heavy.csv"
    path.write_text("0,0,0\n100,0,0\n100,0,0\n")
    cfg = EnvConfig.from_dict(
        {
            "num_banks": 3,
            "topology": {"kind": "from_file", "path": str(path)},
            "banks": {"capital": 1.0, "target_leverage": 10.0},
        }
    )
    s = initial_state(cfg, np.random.default_rng(0))
    assert s.loans[0].tolist() == [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [100.0, 0.0, 0.0]]
    bs = balance_sheet(s)
    np.testing.assert_allclose(bs["assets"][0, 0], 1.0 + 200.0)
    np.testing.assert_allclose(s.equity0, 1.0)
    assert (s.deposits >= 0).all()
