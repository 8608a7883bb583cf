"""Network topologies and initial balance sheets.

Topology generators return a symmetric boolean adjacency (N, N) with an empty diagonal; links
become directed loans (both ways with probability ``reciprocal``, otherwise one random
direction). ``from_file`` reads the exposure matrix itself (``[i, j]`` = what bank i lent bank j)
from CSV (comma-separated, no header) or NPZ (key ``exposures``, or the only array).

Balance sheet of bank i (before the market's risk tilt): equity ``E_i`` = capital, total assets
``A_i = target_leverage_i * E_i``; cash ``cash_ratio * A``; interbank lending ``interbank_ratio *
A`` split over outgoing links with random weights in [0.5, 1.5]; market holdings ``market_ratio *
(0.5 + risk_factor) * A`` split equally over markets; external assets the rest; deposits close the
sheet (``A - E - interbank borrowing``). A bank's borrowing is capped at ``A - E`` (its loans from
each lender scaled down together; the lenders hold the difference as external assets), so every
bank starts exactly at its target leverage with deposits >= 0. Only exposures read ``from_file``
are taken as given: there a bank whose sheet would not close grows its external assets instead.

Initial generation loops over worlds (it runs once per reset); the step never does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rudra_env.config import EnvConfig
from rudra_env.core.state import NetworkState
from rudra_env.errors import ConfigError

__all__ = ["adjacency", "draw_loans", "load_exposures", "initial_state", "assign_slots"]


def adjacency(config: EnvConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, N) symmetric bool adjacency of the configured topology."""
    topo, n = config.topology, config.num_banks
    if topo.kind == "erdos_renyi":
        upper = np.triu(rng.random((n, n)) < topo.p, k=1)
    elif topo.kind == "complete":
        upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    elif topo.kind == "ring":
        upper = np.zeros((n, n), dtype=bool)
        idx = np.arange(n)
        upper[idx, (idx + 1) % n] = True
    elif topo.kind == "core_periphery":
        n_core = max(1, round(topo.core_fraction * n))
        core = np.arange(n) < n_core
        draw = rng.random((n, n))
        both_core = core[:, None] & core[None, :]
        one_core = core[:, None] ^ core[None, :]
        upper = np.triu(
            (both_core & (draw < topo.core_p)) | (one_core & (draw < topo.periphery_p)), k=1
        )
    elif topo.kind == "barabasi_albert":
        upper = _barabasi_albert(n, topo.m, rng)
    else:
        raise ConfigError(f"topology.kind = {topo.kind!r} has no adjacency generator")
    adj = upper | upper.T
    np.fill_diagonal(adj, False)
    return adj


def _barabasi_albert(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Preferential attachment (Barabási & Albert 1999): each new node links to m distinct
    existing nodes drawn with probability proportional to degree (seeded from ``rng``)."""
    adj = np.zeros((n, n), dtype=bool)
    for a in range(m + 1):  # start from a small complete core of m + 1 nodes
        adj[a, :a] = True
    deg = adj.sum(0) + adj.sum(1)
    for new in range(m + 1, n):
        weights = deg[:new].astype(np.float64)
        chosen = rng.choice(new, size=m, replace=False, p=weights / weights.sum())
        adj[new, chosen] = True
        deg[chosen] += 1
        deg[new] += m
    return np.triu(adj | adj.T, k=1)


def load_exposures(path: str | Path, n: int) -> np.ndarray:
    """Read an (n, n) exposure matrix from CSV or NPZ (never pickled objects)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"topology.path = {str(path)!r} is not an existing file")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as data:
            keys = list(data.keys())
            key = "exposures" if "exposures" in keys else keys[0]
            mat = np.asarray(data[key], dtype=np.float64)
    else:
        mat = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
    if mat.shape != (n, n):
        raise ConfigError(
            f"topology.path = {str(path)!r} holds a {mat.shape} matrix: expected "
            f"({n}, {n}) for num_banks = {n}"
        )
    if not np.all(np.isfinite(mat)) or (mat < 0).any():
        raise ConfigError(f"topology.path = {str(path)!r}: exposures must be finite and >= 0")
    mat = mat.copy()
    np.fill_diagonal(mat, 0.0)
    return mat


def draw_loans(config: EnvConfig, assets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, N) loans: each bank's interbank budget split over its outgoing links."""
    n = config.num_banks
    if config.topology.kind == "from_file":
        return load_exposures(config.topology.path, n)  # type: ignore[arg-type]
    adj = adjacency(config, rng)
    both = rng.random((n, n)) < config.topology.reciprocal
    both = np.triu(both, 1)
    both = both | both.T
    forward = np.triu(rng.random((n, n)) < 0.5, 1)
    forward = forward | np.tril(~forward.T, -1)  # exactly one of (i,j), (j,i) is "forward"
    out = adj & (both | forward)
    weights = np.where(out, rng.uniform(0.5, 1.5, size=(n, n)), 0.0)
    row = weights.sum(1, keepdims=True)
    budget = config.banks.interbank_ratio * assets[:, None]
    return np.divide(weights * budget, row, out=np.zeros((n, n)), where=row > 0)


def assign_slots(loans0: np.ndarray, k: int) -> np.ndarray:
    """(N, K) slots: each bank's neighbours by initial exposure (lent + borrowed), largest first,
    ties by lower index; -1 pads banks with fewer than K neighbours."""
    n = loans0.shape[0]
    expo = loans0 + loans0.T
    order = np.argsort(-expo, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(expo, order, axis=1) > 0
    slots = np.where(valid, order, -1)
    if k > n:  # more slots than banks (e.g. K = 8, N = 6): pad to K columns
        slots = np.pad(slots, ((0, 0), (0, k - n)), constant_values=-1)
    return slots.astype(np.int64)


def initial_state(config: EnvConfig, rng: np.random.Generator, worlds: int = 1) -> NetworkState:
    """Draw ``worlds`` independent initial states (topology and bank parameters per world)."""
    n, m = config.num_banks, len(config.markets)
    drawn = [_draw_world(config, rng) for _ in range(worlds)]
    st = {key: np.stack([d[key] for d in drawn]) for key in drawn[0]}
    units = st["units"]
    price = np.broadcast_to(np.array([mk.price0 for mk in config.markets]), (worlds, m)).copy()
    held = units.sum(axis=1) * price
    fixed = np.array([np.nan if mk.depth is None else mk.depth for mk in config.markets])
    depth = np.where(np.isnan(fixed), np.maximum(held, 1e-6), fixed)
    state = NetworkState(
        cash=st["cash"],
        loans=st["loans"],
        units=units,
        depth=depth,
        basis=units * price[:, None, :],
        external=st["external"],
        deposits=st["deposits"],
        alive=np.ones((worlds, n), dtype=bool),
        price=price,
        price0=price.copy(),
        last_return=np.zeros((worlds, m)),
        vol2=np.broadcast_to(
            np.array([mk.volatility for mk in config.markets]) ** 2, (worlds, m)
        ).copy(),
        slots=st["slots"],
        belief=np.where(st["slots"] >= 0, config.beliefs.prior, 0.0),
        equity0=st["capital"],
        equity_prev=st["capital"].copy(),
        target_leverage=st["target_leverage"],
        risk_factor=st["risk_factor"],
        default_step=np.full((worlds, n), -1, dtype=np.int64),
        outside=np.zeros(worlds),
        t=np.zeros(worlds, dtype=np.int64),
    )
    state.equity0 = state.equity()  # exact equity of the drawn sheet (== capital up to rounding)
    state.equity_prev = state.equity0.copy()
    return state


def _draw_world(config: EnvConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One world's banks: parameters, loans, and a balance sheet that closes.

    Bank i gets capital E_i and target leverage lev_i, so assets ``A_i = lev_i * E_i``; its
    loans are drawn on the topology; cash is ``cash_ratio * A``; market value
    ``market_ratio * (0.5 + risk) * A`` (what is left after cash and interbank assets at most),
    split evenly over the markets; external assets fill the rest; deposits close the sheet,
    ``A - E - interbank liabilities``. Borrowing is capped at ``A - E`` (heavy borrowers' loans
    scaled down), so the sheet closes at the target leverage; only ``from_file`` exposures, taken
    as given, can make assets grow to cover them.
    """
    n, m, k = config.num_banks, len(config.markets), config.max_counterparties
    bc = config.banks
    price0 = np.array([mk.price0 for mk in config.markets])
    capital = bc.capital.sample(n, rng, 1e-6, np.inf)
    lev = bc.target_leverage.sample(n, rng, 1.0, np.inf)
    risk = bc.risk_factor.sample(n, rng, 0.0, 1.0)
    assets = lev * capital
    loans = draw_loans(config, assets, rng)
    if config.topology.kind != "from_file":  # cap borrowing at A - E: leverage stays on target
        room = assets - capital
        borrowed = loans.sum(0)
        loans = loans * np.minimum(
            1.0, np.divide(room, borrowed, out=np.ones(n), where=borrowed > room)
        )
    ib_assets, ib_liab = loans.sum(1), loans.sum(0)
    mkt_share = bc.market_ratio * (0.5 + risk)
    assets = np.maximum.reduce(
        [assets, ib_assets / max(1e-12, 1.0 - bc.cash_ratio) + 0.0, capital + ib_liab]
    )
    cash = bc.cash_ratio * assets
    mv = np.minimum(mkt_share * assets, np.maximum(0.0, assets - cash - ib_assets))
    external = assets - cash - mv - ib_assets
    deposits = assets - capital - ib_liab
    return {
        "cash": cash,
        "loans": loans,
        "units": (mv[:, None] / m) / price0[None, :],
        "external": np.maximum(external, 0.0),
        "deposits": np.maximum(deposits, 0.0),
        "capital": capital,
        "target_leverage": lev,
        "risk_factor": risk,
        "slots": assign_slots(loans, k),
    }
